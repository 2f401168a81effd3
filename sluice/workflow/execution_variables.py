"""``sluice.workflow.execution_variables``: values the service knows about the running execution.

``ExecutionVariables.PIPELINE_EXECUTION_ID`` compiles to ``{"Get": "Execution.PipelineExecutionId"}``.
"""

from __future__ import annotations

from sluice.errors import PipelineError
from sluice.workflow.entities import PipelineVariable
from sluice.workflow.expressions import EXECUTION_VARIABLE_NAMES

__all__ = ["ExecutionVariable", "ExecutionVariables"]


class ExecutionVariable(PipelineVariable):
    """One execution variable, by its definition name (``PipelineExecutionId``)."""

    def __init__(self, name: str) -> None:
        if name not in EXECUTION_VARIABLE_NAMES:
            raise PipelineError(f"{name!r} is not an execution variable; they are: "
                                f"{', '.join(EXECUTION_VARIABLE_NAMES)}.")
        self.name = name

    @property
    def expr(self) -> dict[str, str]:
        return {"Get": f"Execution.{self.name}"}


class ExecutionVariables:
    """The execution variables, as the SDK names them."""

    START_DATETIME = ExecutionVariable("StartDateTime")
    CURRENT_DATETIME = ExecutionVariable("CurrentDateTime")
    PIPELINE_NAME = ExecutionVariable("PipelineName")
    PIPELINE_ARN = ExecutionVariable("PipelineArn")
    PIPELINE_EXECUTION_ID = ExecutionVariable("PipelineExecutionId")
    PIPELINE_EXECUTION_ARN = ExecutionVariable("PipelineExecutionArn")
    TRAINING_JOB_NAME = ExecutionVariable("TrainingJobName")
    PROCESSING_JOB_NAME = ExecutionVariable("ProcessingJobName")
