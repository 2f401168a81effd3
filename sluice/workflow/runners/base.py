"""What every step runner receives and returns: the contract between the scheduler and one step type.

The scheduler (:mod:`sluice.workflow.executor`) resolves every expression in a step's arguments, then calls
the runner for the step's type with a :class:`StepContext` and the resolved request. A runner hands the
request to the layer that owns it (processing, training, tuning, transform, the model registry, a local
function), waits for it, and returns a :class:`StepOutcome`; it raises :class:`StepFailed` when the step
did not succeed. Runners never schedule, retry or cache: the scheduler does that around them.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sluice.config import ACCOUNT_ID, Config
from sluice.workflow.graph import StepSpec

__all__ = [
    "DEFAULT_ROLE_ARN",
    "FAILURE_TYPES",
    "StepContext",
    "StepFailed",
    "StepOutcome",
    "StepRunner",
    "job_name",
    "stringify_map",
    "wire_text",
]

DEFAULT_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/SluiceLocalExecutionRole"

FAILURE_TYPES = (
    "Step.SERVICE_FAULT",
    "Step.THROTTLING",
    "SageMaker.JOB_INTERNAL_ERROR",
    "SageMaker.CAPACITY_ERROR",
    "SageMaker.RESOURCE_LIMIT",
)
"""The exception types a RetryPolicy can name (contract 5.9); a failure of user code has none."""


def wire_text(value: Any) -> str:
    """A value as the APIs' string fields carry it: booleans as JSON spells them, the rest as ``str``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def stringify_map(holder: Any, key: str) -> None:
    """``holder[key]`` (an Environment or hyperparameter map) with every value a string, as the APIs take them.

    A pipeline parameter resolves to its typed value (``ParameterInteger`` -> ``3``); the service sends it as
    ``"3"``.
    """
    if isinstance(holder, dict) and isinstance(holder.get(key), Mapping):
        holder[key] = {k: wire_text(v) for k, v in holder[key].items()}


def job_name(execution_id: str, step: str) -> str:
    """A unique, valid job name (``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``) that still says which step it ran."""
    clean = re.sub(r"[^A-Za-z0-9]+", "-", step).strip("-")[:30] or "step"
    return f"pipelines-{execution_id}-{clean}-{secrets.token_hex(3)}"[:63].rstrip("-")


@dataclass
class StepContext:
    """What a runner may use while it runs one attempt of one step."""

    session: Any
    """The :class:`sluice.session.Session` the execution runs under (``.store``, ``.config``, region)."""
    config: Config
    pipeline_name: str
    execution_id: str
    execution_arn: str
    spec: StepSpec
    job_name: str
    """The name for the job or resource this attempt creates (already substituted for
    ``Execution.ProcessingJobName`` / ``TrainingJobName`` / ... in the request)."""
    stop: threading.Event = field(default_factory=threading.Event)
    """Set when the execution is being stopped: a runner stops its job and raises ``StepFailed(status="Stopped")``."""
    record_metadata: Callable[[dict[str, Any]], None] = lambda metadata: None
    """Merge ``metadata`` (e.g. ``{"TrainingJob": {"Arn": ...}}``) into the step's ``Metadata`` while it runs,
    so ``list_steps`` shows the job before it ends."""


@dataclass
class StepOutcome:
    """A step that succeeded."""

    properties: Mapping[str, Any]
    """The Describe*-shaped record that ``{"Get": "Steps.<name>.<path>"}`` resolves against
    (``DescribeTrainingJob`` for Training, ``{"OutputParameters": {...}}`` for Lambda, ...)."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """The step's ``Metadata`` in ``ListPipelineExecutionSteps`` (``{"TrainingJob": {"Arn": ...}}``)."""
    untaken: tuple[str, ...] = ()
    """A Condition step's branch not taken (the scheduler skips it and everything downstream of it)."""


class StepFailed(Exception):
    """The step ended without succeeding.

    ``status`` is the step status to record (``Failed`` or ``Stopped``). ``failure_type`` is one of
    :data:`FAILURE_TYPES` when the cause was infrastructure (a RetryPolicy naming it may retry the step),
    and ``None`` when it was the user's code or request, which is never retried.
    """

    def __init__(self, reason: str, status: str = "Failed", failure_type: str | None = None,
                 properties: Mapping[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.failure_type = failure_type
        self.properties = properties


StepRunner = Callable[[StepContext, dict[str, Any]], StepOutcome]
"""``runner(context, resolved_request) -> StepOutcome``; raises :class:`StepFailed`."""
