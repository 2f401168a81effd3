"""``sluice.workflow.selective_execution_config``: run only some steps, the rest taken from an earlier execution.

Which steps may be selected together is :func:`sluice.workflow.validation.validate_selection`'s call (it
needs the graph); this object only carries the request (contract 5.12).
"""

from __future__ import annotations

from typing import Any

from sluice.errors import PipelineError
from sluice.workflow.validation import MAX_SELECTED_STEPS

__all__ = ["SelectiveExecutionConfig"]


class SelectiveExecutionConfig:
    """The steps to run (1-50) and the execution whose outputs the others reuse.

    With ``source_pipeline_execution_arn`` None and ``reference_latest_execution`` True, the latest
    execution is used (it must have ended: Failed, Succeeded or Stopped).
    """

    def __init__(self, selected_steps: list[str], source_pipeline_execution_arn: str | None = None,
                 reference_latest_execution: bool = True) -> None:
        if not isinstance(selected_steps, list | tuple) or not all(isinstance(s, str) for s in selected_steps):
            raise PipelineError(f"selected_steps must be a list of step names, not {selected_steps!r}.")
        if not 1 <= len(selected_steps) <= MAX_SELECTED_STEPS:
            raise PipelineError(f"select 1 to {MAX_SELECTED_STEPS} steps, not {len(selected_steps)}.")
        if source_pipeline_execution_arn is None and not reference_latest_execution:
            raise PipelineError("give source_pipeline_execution_arn, or leave reference_latest_execution=True to "
                                "reuse the latest execution.")
        self.selected_steps = list(selected_steps)
        self.source_pipeline_execution_arn = source_pipeline_execution_arn
        self.reference_latest_execution = reference_latest_execution

    def to_request(self) -> dict[str, Any]:
        request: dict[str, Any] = {}
        if self.source_pipeline_execution_arn is not None:
            request["SourcePipelineExecutionArn"] = self.source_pipeline_execution_arn
        request["SelectedSteps"] = [{"StepName": s} for s in self.selected_steps]
        return request
