"""RetryPolicies (contract 5.9): which failures are retried, after how long, and how often."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import sluice
from sluice.config import reset_config
from sluice.errors import PipelineError
from sluice.processing import Processor, ScriptProcessor
from sluice.workflow.executor import ExecutionDriver
from sluice.workflow.graph import RetrySpec
from sluice.workflow.pipeline import Pipeline
from sluice.workflow.pipeline_context import PipelineSession
from sluice.workflow.retry import SageMakerJobExceptionTypeEnum, SageMakerJobStepRetryPolicy
from sluice.workflow.runners.base import StepFailed
from sluice.workflow.runners.jobs import failure_type
from sluice.workflow.steps import ProcessingStep
from tests.waiting import wait_until

LIMIT = "SageMaker.RESOURCE_LIMIT"
ROLE = sluice.get_execution_role()


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


# ---- end to end: a step refused for capacity is retried once the instance is free -------------------------

TYPE = "ml.m5.large"


@pytest.fixture
def limited(sluice_home: Path) -> Iterator[sluice.Session]:
    """A session allowing one ml.m5.large, and a standalone job holding it until the test stops it."""
    (sluice_home / "config.toml").write_text(f'[quotas]\n"{TYPE}" = 1\n')
    reset_config()
    session = sluice.Session()
    session.metadata.list_jobs()
    holder = Processor(role=ROLE, image_uri=None, instance_count=1, instance_type=TYPE,
                       entrypoint=["python3", "-c", "import time; time.sleep(3600)"], sagemaker_session=session)
    holder.run(job_name="holder", wait=False, logs=False)
    yield session
    if session.metadata.get_job("ProcessingJob", "holder").status == "InProgress":
        session.stop_processing_job("holder")
        wait_until(lambda: session.metadata.get_job("ProcessingJob", "holder").status == "Stopped", "holder stopped")




def capacity_pipeline(tmp_path: Path, policies: list) -> Pipeline:
    sess = PipelineSession()
    code = tmp_path / "work.py"
    code.write_text("print('ran')\n")
    processor = ScriptProcessor(command=["python3"], image_uri=None, role=ROLE, instance_count=1, instance_type=TYPE,
                                sagemaker_session=sess)
    work = ProcessingStep(name="Work", step_args=processor.run(code=str(code)), retry_policies=policies)
    pipeline = Pipeline(name="capacity", steps=[work], sagemaker_session=sess)
    pipeline.upsert(role_arn=ROLE)
    return pipeline


def test_a_step_refused_for_capacity_is_retried_when_the_instance_frees(limited, tmp_path):
    policy = SageMakerJobStepRetryPolicy(exception_types=[SageMakerJobExceptionTypeEnum.RESOURCE_LIMIT],
                                         interval_seconds=1, backoff_rate=1.0, max_attempts=20)
    execution = capacity_pipeline(tmp_path, [policy]).start()
    attempts = lambda: execution.step_records().get("Work", {}).get("Attempts", [])  # noqa: E731
    wait_until(lambda: len(attempts()) >= 1, "a refused attempt to be recorded")
    assert attempts()[0]["FailureType"] == "SageMaker.RESOURCE_LIMIT"
    assert "current utilization of 1 Instances" in attempts()[0]["FailureReason"]
    limited.stop_processing_job("holder")
    execution.wait()
    (step,) = execution.list_steps()
    assert step["StepStatus"] == "Succeeded"
    assert step["AttemptCount"] == len(execution.step_records()["Work"]["Attempts"]) + 1 >= 2


def test_without_a_policy_a_capacity_refusal_fails_the_execution(limited, tmp_path):
    execution = capacity_pipeline(tmp_path, []).start()
    with pytest.raises(PipelineError, match="ResourceLimitExceeded"):
        execution.wait()
    (step,) = execution.list_steps()
    assert step["StepStatus"] == "Failed" and step["AttemptCount"] == 1
    assert "current utilization of 1 Instances" in step["FailureReason"]
