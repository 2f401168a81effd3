"""Runners for the steps that are jobs: each hands its resolved request to the layer that runs that job kind.

A job step records ``{<Kind>: {"Arn": ...}}`` as soon as the job exists, waits for it (stopping it when the
execution is stopped), and returns the job's Describe record, which is what ``Steps.<name>.<path>``
resolves against. A job that ended Failed raises :class:`StepFailed` with the job's FailureReason and the
retry type its cause maps to (:func:`failure_type`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sluice.errors import ResourceLimitExceeded, StorageError
from sluice.workflow.runners.base import DEFAULT_ROLE_ARN, StepContext, StepFailed, StepOutcome

__all__ = ["failure_type", "run_job", "run_processing", "run_training"]

_STOP_POLL_SECONDS = 0.5


def failure_type(reason: str) -> str | None:
    """The RetryPolicy exception type a job's FailureReason maps to; ``None`` for the user's own error.

    sluice's failure reasons start with the service's error kind: ``InternalServerError`` (sluice itself
    broke) is ``SageMaker.JOB_INTERNAL_ERROR``; ``ResourceLimitExceeded`` is ``SageMaker.RESOURCE_LIMIT``;
    ``CapacityError`` is ``SageMaker.CAPACITY_ERROR``; ``AlgorithmError`` and ``ClientError`` are the
    script's or the request's fault and are not retried (contract 5.9: "failures in user code are not
    retried").
    """
    head = reason.split(":", 1)[0].strip()
    return {
        "InternalServerError": "SageMaker.JOB_INTERNAL_ERROR",
        "ResourceLimitExceeded": "SageMaker.RESOURCE_LIMIT",
        "CapacityError": "SageMaker.CAPACITY_ERROR",
        "ServiceUnavailable": "Step.SERVICE_FAULT",
        "ThrottlingException": "Step.THROTTLING",
    }.get(head)


def run_job(ctx: StepContext, request: dict[str, Any], kind: str, starter: Callable[..., Any]) -> StepOutcome:
    """Start a job of ``kind`` (``ProcessingJob``, ``TrainingJob``, ...) from ``request`` and wait for it.

    ``starter(request, config)`` is the runtime's ``start_*_job``; it must record the job in the metadata
    store under ``request[f"{kind}Name"]`` and return an object with ``wait(timeout) -> bool``.
    """
    from sluice.metadata import open_metadata

    name = ctx.job_name
    request[f"{kind}Name"] = name
    request.setdefault("RoleArn", DEFAULT_ROLE_ARN)
    try:
        running = starter(request, ctx.config)
    except ResourceLimitExceeded as exc:
        text = str(exc)
        reason = text if text.startswith("ResourceLimitExceeded") else f"ResourceLimitExceeded: {text}"
        raise StepFailed(reason, failure_type="SageMaker.RESOURCE_LIMIT") from None
    except StorageError as exc:
        raise StepFailed(f"ServiceUnavailable: {exc}", failure_type="Step.SERVICE_FAULT") from None
    metadata = open_metadata(ctx.config.database_url)
    row = metadata.get_job(kind, name)
    arn = (row.record.get(f"{kind}Arn") if row else None) or name
    ctx.record_metadata({kind: {"Arn": arn}})
    stop_sent = False
    while not running.wait(_STOP_POLL_SECONDS):
        if ctx.stop.is_set() and not stop_sent:
            metadata.request_stop(kind, name)
            stop_sent = True
    row = metadata.get_job(kind, name)
    if row is None:
        raise StepFailed(f"InternalServerError: {kind} {name} has no record",
                         failure_type="SageMaker.JOB_INTERNAL_ERROR")
    record = dict(row.record)
    status = record.get(f"{kind}Status")
    if status == "Stopped":
        raise StepFailed(f"{kind} {name} was stopped", status="Stopped", properties=record)
    if status != "Completed":
        reason = str(record.get("FailureReason") or "(no reason recorded)")
        raise StepFailed(f"{kind} {name} ended {status}: {reason}", failure_type=failure_type(reason),
                         properties=record)
    return StepOutcome(properties=record, metadata={kind: {"Arn": arn}})


def run_processing(ctx: StepContext, request: dict[str, Any]) -> StepOutcome:
    from sluice.runtime.processing import start_processing_job

    return run_job(ctx, request, "ProcessingJob", start_processing_job)


def run_training(ctx: StepContext, request: dict[str, Any]) -> StepOutcome:
    from sluice.runtime.training import start_training_job

    return run_job(ctx, request, "TrainingJob", start_training_job)
