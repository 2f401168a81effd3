"""Runners for the steps that are jobs: each hands its resolved request to the layer that runs that job kind.

A job step records ``{<Kind>: {"Arn": ...}}`` as soon as the job exists, waits for it (stopping it when the
execution is stopped), and returns the job's Describe record, which is what ``Steps.<name>.<path>``
resolves against. A job that ended Failed raises :class:`StepFailed` with the job's FailureReason and the
retry type its cause maps to (:func:`failure_type`).

Processing and Training run through :mod:`sluice.runtime`, Tuning through :mod:`sluice.runtime.tuning`
(its trials are ordinary training jobs) and Transform through :mod:`sluice.serving.transform`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sluice.errors import ResourceLimitExceeded, SpecError, StorageError
from sluice.workflow.runners.base import (
    DEFAULT_ROLE_ARN,
    StepContext,
    StepFailed,
    StepOutcome,
    stringify_map,
    wire_text,
)

if TYPE_CHECKING:
    from sluice.metadata import MetadataStore

__all__ = [
    "TOP_TRAINING_JOBS",
    "failure_type",
    "ranked_training_jobs",
    "run_job",
    "run_processing",
    "run_training",
    "run_transform",
    "run_tuning",
    "tuning_job_name",
]

_STOP_POLL_SECONDS = 0.5
_ROLE_KINDS = ("ProcessingJob", "TrainingJob")
"""The job kinds whose request takes a top-level ``RoleArn`` (tuning has it per training definition,
transform not at all)."""
_TUNING_NAME_MAX = 32
TOP_TRAINING_JOBS = 50
"""A Tuning step's ``TrainingJobSummaries`` keeps the best 50 trials (SDK ``TuningStep.get_top_model_s3_uri``:
"tuning step stores up to 50 top performing training jobs ... the best training job model is at index 0")."""

Describe = Callable[["MetadataStore", dict[str, Any]], dict[str, Any]]


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


def run_job(ctx: StepContext, request: dict[str, Any], kind: str, starter: Callable[..., Any], *,
            name: str | None = None, metadata_key: str | None = None, describe: Describe | None = None) -> StepOutcome:
    """Start a job of ``kind`` (``ProcessingJob``, ``TrainingJob``, ...) from ``request`` and wait for it.

    ``starter(request, config)`` is the runtime's ``start_*_job``; it must record the job in the metadata
    store under ``request[f"{kind}Name"]`` and return an object with ``wait(timeout) -> bool``.

    ``name`` replaces ``ctx.job_name`` where the API allows fewer characters (a tuning job: 32);
    ``metadata_key`` is the step Metadata's key when it is not ``kind`` (``TuningJob``); ``describe`` turns
    the job's stored record into the step's properties (a tuning step adds its ranked trials).
    """
    from sluice.metadata import open_metadata

    name = name or ctx.job_name
    key = metadata_key or kind
    request[f"{kind}Name"] = name
    if kind in _ROLE_KINDS:
        request.setdefault("RoleArn", DEFAULT_ROLE_ARN)
    try:
        running = starter(request, ctx.config)
    except ResourceLimitExceeded as exc:
        text = str(exc)
        reason = text if text.startswith("ResourceLimitExceeded") else f"ResourceLimitExceeded: {text}"
        raise StepFailed(reason, failure_type="SageMaker.RESOURCE_LIMIT") from None
    except StorageError as exc:
        if isinstance(exc, SpecError):  # a key that would leave its bucket: the request's fault, not storage's
            raise
        raise StepFailed(f"ServiceUnavailable: {exc}", failure_type="Step.SERVICE_FAULT") from None
    metadata = open_metadata(ctx.config.database_url)
    row = metadata.get_job(kind, name)
    arn = (row.record.get(f"{kind}Arn") if row else None) or name
    ctx.record_metadata({key: {"Arn": arn}})
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
    if describe is not None:
        record = describe(metadata, record)
    status = record.get(f"{kind}Status")
    if status == "Stopped":
        raise StepFailed(f"{kind} {name} was stopped", status="Stopped", properties=record)
    if status != "Completed":
        reason = str(record.get("FailureReason") or "(no reason recorded)")
        raise StepFailed(f"{kind} {name} ended {status}: {reason}", failure_type=failure_type(reason),
                         properties=record)
    return StepOutcome(properties=record, metadata={key: {"Arn": arn}})


def run_processing(ctx: StepContext, request: dict[str, Any]) -> StepOutcome:
    from sluice.runtime.processing import start_processing_job

    return run_job(ctx, request, "ProcessingJob", start_processing_job)


def run_training(ctx: StepContext, request: dict[str, Any]) -> StepOutcome:
    from sluice.runtime.training import start_training_job

    return run_job(ctx, request, "TrainingJob", start_training_job)


# ---- tuning ------------------------------------------------------------------------------------------------

def tuning_job_name(ctx: StepContext) -> str:
    """A name for this attempt's tuning job within the API's 32 characters (``ctx.job_name`` allows 63).

    ``<execution id>-<step>-<6 hex of ctx.job_name>``: it still says which execution and step ran it, and each
    attempt (each ``ctx.job_name``) gets its own.
    """
    if len(ctx.job_name) <= _TUNING_NAME_MAX:
        return ctx.job_name
    digest = hashlib.sha256(ctx.job_name.encode()).hexdigest()[:6]
    step = re.sub(r"[^A-Za-z0-9]+", "-", ctx.spec.name).strip("-")
    head = f"{ctx.execution_id}-{step}"[: _TUNING_NAME_MAX - len(digest) - 1].rstrip("-")
    return f"{head}-{digest}"


def ranked_training_jobs(summaries: list[dict[str, Any]], objective_type: str,
                         limit: int = TOP_TRAINING_JOBS) -> list[dict[str, Any]]:
    """The trials as ``ListTrainingJobsForHyperParameterTuningJob(SortBy="FinalObjectiveMetricValue")`` lists them.

    The API: "any training jobs that did not return an objective metric are not listed"; the rest are best
    first (highest value for ``Maximize``, lowest for ``Minimize``). Equal values keep launch order, so index 0
    is ``BestTrainingJob`` (which also prefers the earliest trial on a tie).
    """
    scored = [s for s in summaries if s.get("ObjectiveStatus") == "Succeeded"
              and isinstance((s.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get("Value"), int | float)]
    sign = -1.0 if objective_type == "Maximize" else 1.0
    scored.sort(key=lambda s: (sign * s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"], s["TrainingJobName"]))
    return scored[:limit]


def _stringify_tuning(request: dict[str, Any]) -> None:
    """Static hyperparameters, environments and range bounds as strings, as CreateHyperParameterTuningJob takes
    them (a pipeline parameter in any of them resolved to its typed value)."""
    definitions = [request.get("TrainingJobDefinition"), *(request.get("TrainingJobDefinitions") or [])]
    for definition in definitions:
        stringify_map(definition, "StaticHyperParameters")
        stringify_map(definition, "Environment")
    config = request.get("HyperParameterTuningJobConfig")
    ranges = config.get("ParameterRanges") if isinstance(config, dict) else None
    if not isinstance(ranges, dict):
        return
    for kind in ("IntegerParameterRanges", "ContinuousParameterRanges", "CategoricalParameterRanges"):
        for item in ranges.get(kind) or []:
            if not isinstance(item, dict):
                continue
            for bound in ("MinValue", "MaxValue"):
                if bound in item:
                    item[bound] = wire_text(item[bound])
            if isinstance(item.get("Values"), list):
                item["Values"] = [wire_text(v) for v in item["Values"]]


def run_tuning(ctx: StepContext, request: dict[str, Any]) -> StepOutcome:
    """A Tuning step: a hyperparameter tuning job whose trials are training jobs.

    Its properties are the ``DescribeHyperParameterTuningJob`` record plus ``TrainingJobSummaries`` ranked as
    :func:`ranked_training_jobs` says, which is what the SDK's properties (both responses merged) and
    ``TuningStep.get_top_model_s3_uri(top_k, ...)`` (``TrainingJobSummaries[top_k].TrainingJobName``) read.
    """
    from sluice.jobs.tuning import KIND
    from sluice.runtime.tuning import list_training_jobs_for_tuning_job, start_tuning_job

    _stringify_tuning(request)

    def describe(metadata: MetadataStore, record: dict[str, Any]) -> dict[str, Any]:
        objective = record["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
        summaries = list_training_jobs_for_tuning_job(metadata, record["HyperParameterTuningJobName"])
        return {**record, "TrainingJobSummaries": ranked_training_jobs(summaries, objective["Type"])}

    return run_job(ctx, request, KIND, start_tuning_job, name=tuning_job_name(ctx), metadata_key="TuningJob",
                   describe=describe)


# ---- transform ---------------------------------------------------------------------------------------------

def run_transform(ctx: StepContext, request: dict[str, Any]) -> StepOutcome:
    """A Transform step: a batch transform job of a model that must already be recorded.

    The model is usually created by an earlier ``ModelStep`` (``ModelName`` reads
    ``Steps.<name>-CreateModel.ModelName``) or before the pipeline started (``Model.create()``).
    """
    from sluice.jobs.transform import KIND
    from sluice.metadata import open_metadata
    from sluice.serving.transform import start_transform_job

    model = request.get("ModelName")
    if not isinstance(model, str) or not model:
        raise StepFailed(f"ClientError: Transform step {ctx.spec.name!r} has no ModelName (got {model!r}); give the "
                         "transformer the name of a model, e.g. the ModelName property of a ModelStep.")
    if open_metadata(ctx.config.database_url).get_resource("Model", model) is None:
        raise StepFailed(f"ClientError: Transform step {ctx.spec.name!r}: there is no model named {model!r}. Create "
                         "it in an earlier step (ModelStep(step_args=model.create(...)) and read its "
                         "properties.ModelName) or with Model.create() before the pipeline starts.")
    stringify_map(request, "Environment")
    return run_job(ctx, request, KIND, start_transform_job)
