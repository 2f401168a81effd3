"""``sluice.workflow.condition_step``: branch on conditions (SDK ``sagemaker.workflow.condition_step``).

``Arguments: {"Conditions": [...], "IfSteps": [full step dicts], "ElseSteps": [...]}``: the branches are
nested inline, not listed at the top level (contract 5.1). The conditions' AND picks the branch; the steps
of the branch not taken, and everything that depends on them, do not run.
"""

from __future__ import annotations

from typing import Any

from sluice.errors import PipelineError
from sluice.workflow.conditions import Condition
from sluice.workflow.entities import RequestType
from sluice.workflow.graph import StepType
from sluice.workflow.properties import Properties
from sluice.workflow.step_collections import StepCollection
from sluice.workflow.step_outputs import StepOutput
from sluice.workflow.steps import Step, compile_step

__all__ = ["ConditionStep"]


def _branch(steps: list[Any] | None, what: str, name: str) -> list[Any]:
    out = []
    for s in steps or []:
        if isinstance(s, StepOutput):
            s = s._step
        if not isinstance(s, Step | StepCollection):
            raise PipelineError(f"ConditionStep {name!r}: {what} takes steps and step collections, not {s!r}.")
        out.append(s)
    return out


class ConditionStep(Step):
    """Run ``if_steps`` when every condition holds, ``else_steps`` otherwise."""

    def __init__(self, name: str, depends_on: list[Any] | None = None, display_name: str | None = None,
                 description: str | None = None, conditions: list[Condition] | None = None,
                 if_steps: list[Any] | None = None, else_steps: list[Any] | None = None) -> None:
        super().__init__(name, display_name, description, StepType.CONDITION, depends_on)
        self.conditions = list(conditions or [])
        if not all(isinstance(c, Condition) for c in self.conditions):
            raise PipelineError(f"ConditionStep {name!r}: conditions takes Condition objects (ConditionEquals, ...), "
                                f"not {conditions!r}.")
        self.if_steps = _branch(if_steps, "if_steps", name)
        self.else_steps = _branch(else_steps, "else_steps", name)
        self._properties = Properties.for_step_type(name, StepType.CONDITION.value)

    @property
    def step_only_arguments(self) -> RequestType:
        return {"Conditions": [c.to_request() for c in self.conditions]}

    @property
    def arguments(self) -> RequestType:
        return {
            "Conditions": [c.to_request() for c in self.conditions],
            "IfSteps": [d for s in self.if_steps for d in compile_step(s)],
            "ElseSteps": [d for s in self.else_steps for d in compile_step(s)],
        }

    def _implicit_depends_on(self, arguments: Any) -> list[str]:
        return super()._implicit_depends_on(self.conditions)

    @property
    def properties(self) -> Properties:
        """``Outcome``: whether the conditions held."""
        return self._properties
