"""Step runners: one per step type, each handing a resolved request to the layer that owns it.

:data:`RUNNERS` maps a :class:`~sluice.workflow.graph.StepType` to its runner; the scheduler refuses,
before anything runs, a definition with a step type that has none. Condition and Fail steps are decided
by the scheduler itself (they need its expression evaluator) and so have no entry here.
"""

from __future__ import annotations

from sluice.workflow.graph import StepType
from sluice.workflow.runners.base import StepContext, StepFailed, StepOutcome, StepRunner
from sluice.workflow.runners.jobs import run_processing, run_training, run_transform, run_tuning
from sluice.workflow.runners.lambda_ import run_lambda
from sluice.workflow.runners.models import run_create_model, run_register_model

__all__ = ["RUNNERS", "StepContext", "StepFailed", "StepOutcome", "StepRunner"]

RUNNERS: dict[StepType, StepRunner] = {
    StepType.PROCESSING: run_processing,
    StepType.TRAINING: run_training,
    StepType.TUNING: run_tuning,
    StepType.TRANSFORM: run_transform,
    StepType.CREATE_MODEL: run_create_model,
    StepType.REGISTER_MODEL: run_register_model,
    StepType.LAMBDA: run_lambda,
}
