"""RetryPolicies (contract 5.9): which failures are retried, after how long, and how often."""

from __future__ import annotations

import pytest

from sluice.workflow.executor import ExecutionDriver
from sluice.workflow.graph import RetrySpec
from sluice.workflow.runners.base import StepFailed
from sluice.workflow.runners.jobs import failure_type

LIMIT = "SageMaker.RESOURCE_LIMIT"


def delays(policies, failure, attempts=10):
    """The waits the executor would take before each retry of ``failure``, until it gives up (attempts
    themselves taking no time)."""
    retries: dict[int, int] = {}
    out: list[float] = []
    for _ in range(attempts):
        delay = ExecutionDriver._retry_delay(tuple(policies), failure, retries, first_attempt=0.0, now=sum(out))
        if delay is None:
            break
        out.append(delay)
    return out


def test_backoff_grows_by_the_rate_until_max_attempts_retries():
    policy = RetrySpec(exception_types=(LIMIT,), interval_seconds=2, backoff_rate=3.0, max_attempts=3)
    assert delays([policy], StepFailed("ResourceLimitExceeded: ...", failure_type=LIMIT)) == [2.0, 6.0, 18.0]


def test_zero_max_attempts_never_retries_and_defaults_allow_five():
    assert delays([RetrySpec(exception_types=(LIMIT,), max_attempts=0)], StepFailed("x", failure_type=LIMIT)) == []
    assert delays([RetrySpec(exception_types=(LIMIT,))], StepFailed("x", failure_type=LIMIT)) == \
        [1.0, 2.0, 4.0, 8.0, 16.0]


def test_user_errors_and_other_types_are_not_retried():
    policy = RetrySpec(exception_types=(LIMIT,), max_attempts=5)
    assert delays([policy], StepFailed("AlgorithmError: exit 1", failure_type=None)) == []
    assert delays([policy], StepFailed("InternalServerError", failure_type="SageMaker.JOB_INTERNAL_ERROR")) == []
    assert delays([policy], StepFailed("stopped", status="Stopped", failure_type=LIMIT)) == []


def test_expire_after_min_bounds_the_retrying_by_time():
    policy = RetrySpec(exception_types=(LIMIT,), interval_seconds=30, backoff_rate=2.0, expire_after_min=2)
    # 30 s + 60 s end 90 s after the first attempt; a third wait (120 s) would end past the two minutes.
    assert delays([policy], StepFailed("x", failure_type=LIMIT)) == [30.0, 60.0]


def test_the_first_matching_policy_governs_with_its_own_count():
    internal = "SageMaker.JOB_INTERNAL_ERROR"
    policies = [RetrySpec(exception_types=(internal,), max_attempts=1, interval_seconds=5),
                RetrySpec(exception_types=(LIMIT,), max_attempts=2, interval_seconds=1)]
    assert delays(policies, StepFailed("x", failure_type=LIMIT)) == [1.0, 2.0]
    assert delays(policies, StepFailed("x", failure_type=internal)) == [5.0]


@pytest.mark.parametrize(("reason", "kind"), [
    ("InternalServerError: sluice driver failed: boom", "SageMaker.JOB_INTERNAL_ERROR"),
    ("ResourceLimitExceeded: The account-level service limit ...", "SageMaker.RESOURCE_LIMIT"),
    ("AlgorithmError: algo-1 exited with code 1", None),
    ("ClientError: no such key", None),
])
def test_job_failure_reasons_map_to_retry_types(reason, kind):
    assert failure_type(reason) == kind
