"""``sluice.workflow.retry``: retry policies of a step (SDK ``sagemaker.workflow.retry``, contract 5.9).

Definition form::

    {"BackoffRate": 2.0, "IntervalSeconds": 1, "MaxAttempts": 3, "ExceptionType": ["Step.SERVICE_FAULT"]}

with ``ExpireAfterMin`` in place of (or, as the SDK really emits, beside) ``MaxAttempts``. The documented
rule is exactly one of the two, but the SDK's check never fires (contract 5.9, 7.10), so definitions in
the wild carry both or neither; sluice accepts all three and applies the documented default
(5 attempts) when neither is given.
"""

from __future__ import annotations

import enum
from typing import Any

from sluice.errors import PipelineError
from sluice.workflow.entities import Entity

__all__ = [
    "DEFAULT_BACKOFF_RATE",
    "DEFAULT_INTERVAL_SECONDS",
    "MAX_ATTEMPTS_CAP",
    "MAX_EXPIRE_AFTER_MIN",
    "RetryPolicy",
    "SageMakerJobExceptionTypeEnum",
    "SageMakerJobStepRetryPolicy",
    "StepExceptionTypeEnum",
    "StepRetryPolicy",
]

DEFAULT_BACKOFF_RATE = 2.0
DEFAULT_INTERVAL_SECONDS = 1
MAX_ATTEMPTS_CAP = 20
MAX_EXPIRE_AFTER_MIN = 14400
MAX_INTERVAL_SECONDS = 43200


class StepExceptionTypeEnum(enum.Enum):
    """Failures of the step itself (the service retries these by default too)."""

    SERVICE_FAULT = "Step.SERVICE_FAULT"
    THROTTLING = "Step.THROTTLING"


class SageMakerJobExceptionTypeEnum(enum.Enum):
    """Failures of the job a step started (infrastructure only: user code failing is never retried)."""

    INTERNAL_ERROR = "SageMaker.JOB_INTERNAL_ERROR"
    CAPACITY_ERROR = "SageMaker.CAPACITY_ERROR"
    RESOURCE_LIMIT = "SageMaker.RESOURCE_LIMIT"


def retry_problems(interval_seconds: Any, backoff_rate: Any, max_attempts: Any, expire_after_mins: Any) -> list[str]:
    """What is wrong with these retry settings (empty when nothing is); shared with the definition validator."""
    problems = []

    def number(value: Any, integral: bool) -> bool:
        kinds = int if integral else int | float
        return isinstance(value, kinds) and not isinstance(value, bool)

    if not number(interval_seconds, True) or not 0 <= interval_seconds <= MAX_INTERVAL_SECONDS:
        problems.append(f"IntervalSeconds {interval_seconds!r} must be an integer from 0 to {MAX_INTERVAL_SECONDS}")
    if not number(backoff_rate, False) or backoff_rate < 0:
        problems.append(f"BackoffRate {backoff_rate!r} must be a number >= 0")
    if max_attempts is not None and (not number(max_attempts, True) or not 0 <= max_attempts <= MAX_ATTEMPTS_CAP):
        problems.append(f"MaxAttempts {max_attempts!r} must be an integer from 0 to {MAX_ATTEMPTS_CAP}")
    if expire_after_mins is not None and (not number(expire_after_mins, True)
                                          or not 0 <= expire_after_mins <= MAX_EXPIRE_AFTER_MIN):
        problems.append(f"ExpireAfterMin {expire_after_mins!r} must be an integer from 0 to {MAX_EXPIRE_AFTER_MIN}")
    return problems


class RetryPolicy(Entity):
    """Interval, backoff and limits shared by both kinds of policy."""

    def __init__(self, backoff_rate: float = DEFAULT_BACKOFF_RATE, interval_seconds: int = DEFAULT_INTERVAL_SECONDS,
                 max_attempts: int | None = None, expire_after_mins: int | None = None) -> None:
        problems = retry_problems(interval_seconds, backoff_rate, max_attempts, expire_after_mins)
        if problems:
            raise PipelineError(f"{type(self).__name__}: {'; '.join(problems)}.")
        self.backoff_rate = backoff_rate
        self.interval_seconds = interval_seconds
        self.max_attempts = max_attempts
        self.expire_after_mins = expire_after_mins

    def to_request(self) -> dict[str, Any]:
        request: dict[str, Any] = {"BackoffRate": self.backoff_rate, "IntervalSeconds": self.interval_seconds}
        if self.max_attempts is not None:
            request["MaxAttempts"] = self.max_attempts
        if self.expire_after_mins is not None:
            request["ExpireAfterMin"] = self.expire_after_mins
        return request


class StepRetryPolicy(RetryPolicy):
    """Retry a step on ``Step.*`` failures."""

    def __init__(self, exception_types: list[StepExceptionTypeEnum], backoff_rate: float = DEFAULT_BACKOFF_RATE,
                 interval_seconds: int = DEFAULT_INTERVAL_SECONDS, max_attempts: int | None = None,
                 expire_after_mins: int | None = None) -> None:
        if not exception_types or not all(isinstance(e, StepExceptionTypeEnum) for e in exception_types):
            raise PipelineError("StepRetryPolicy needs exception_types from StepExceptionTypeEnum "
                                f"(SERVICE_FAULT, THROTTLING), not {exception_types!r}.")
        super().__init__(backoff_rate, interval_seconds, max_attempts, expire_after_mins)
        self.exception_types = list(exception_types)

    def to_request(self) -> dict[str, Any]:
        return {**super().to_request(), "ExceptionType": [e.value for e in self.exception_types]}


class SageMakerJobStepRetryPolicy(RetryPolicy):
    """Retry a job step on ``SageMaker.*`` failures; ``exception_types`` and ``failure_reason_types`` merge."""

    def __init__(self, exception_types: list[SageMakerJobExceptionTypeEnum] | None = None,
                 failure_reason_types: list[SageMakerJobExceptionTypeEnum] | None = None,
                 backoff_rate: float = DEFAULT_BACKOFF_RATE, interval_seconds: int = DEFAULT_INTERVAL_SECONDS,
                 max_attempts: int | None = None, expire_after_mins: int | None = None) -> None:
        merged = list(dict.fromkeys([*(exception_types or []), *(failure_reason_types or [])]))
        if not merged:
            raise PipelineError("SageMakerJobStepRetryPolicy needs at least one of exception_types and "
                                "failure_reason_types.")
        if not all(isinstance(e, SageMakerJobExceptionTypeEnum) for e in merged):
            raise PipelineError("SageMakerJobStepRetryPolicy takes SageMakerJobExceptionTypeEnum values "
                                f"(INTERNAL_ERROR, CAPACITY_ERROR, RESOURCE_LIMIT), not {merged!r}.")
        super().__init__(backoff_rate, interval_seconds, max_attempts, expire_after_mins)
        self.exception_type_list = merged

    def to_request(self) -> dict[str, Any]:
        return {**super().to_request(), "ExceptionType": [e.value for e in self.exception_type_list]}
