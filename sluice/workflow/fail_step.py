"""``sluice.workflow.fail_step``: end the execution as Failed, with a message (contract 5.11).

A FailStep must be terminal: no step may depend on it. Steps already running when it is reached finish
before the execution ends (the service's behaviour, which the executor will follow).
"""

from __future__ import annotations

from typing import Any

from sluice.errors import PipelineError
from sluice.workflow.entities import PipelineVariable, RequestType
from sluice.workflow.graph import StepType
from sluice.workflow.properties import Properties
from sluice.workflow.steps import Step

__all__ = ["FailStep"]


class FailStep(Step):
    """Stop the execution, Failed, with ``error_message`` (a string or a Join of values known at execution)."""

    def __init__(self, name: str, error_message: Any = None, display_name: str | None = None,
                 description: str | None = None, depends_on: list[Any] | None = None) -> None:
        super().__init__(name, display_name, description, StepType.FAIL, depends_on)
        if error_message is not None and not isinstance(error_message, str | PipelineVariable):
            raise PipelineError(f"FailStep {name!r}: error_message is a string or a Join, not {error_message!r}.")
        self.error_message = error_message if error_message is not None else ""
        self._properties = Properties.for_step_type(name, StepType.FAIL.value)

    @property
    def arguments(self) -> RequestType:
        return {"ErrorMessage": self.error_message}

    @property
    def properties(self) -> Properties:
        """A FailStep has no properties; any attribute is refused, naming the step."""
        return self._properties
