"""``sluice.workflow.step_outputs``: a value a step produces, usable before the step exists (``@step`` results)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluice.workflow.entities import PipelineVariable

__all__ = ["StepOutput", "find_step_outputs", "get_step"]


class StepOutput(PipelineVariable):
    """An output of ``step``; reading it makes the reader depend on that step."""

    def __init__(self, step: Any = None) -> None:
        self._step = step

    @property
    def _referenced_steps(self) -> list[str]:
        return [self._step.name]


def get_step(step_output: StepOutput) -> Any:
    """The step that produces ``step_output``."""
    return step_output._step


def find_step_outputs(obj: Any, _seen: set[int] | None = None) -> list[StepOutput]:
    """Every StepOutput inside ``obj``: request dicts, lists, conditions, Join values."""
    from sluice.workflow.conditions import Condition
    from sluice.workflow.functions import Join

    seen = _seen if _seen is not None else set()
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, StepOutput):
        return [obj]
    if isinstance(obj, Mapping):
        return [o for v in obj.values() for o in find_step_outputs(v, seen)]
    if isinstance(obj, list | tuple):
        return [o for v in obj for o in find_step_outputs(v, seen)]
    if isinstance(obj, Condition):
        return [o for v in vars(obj).values() for o in find_step_outputs(v, seen)]
    if isinstance(obj, Join):
        return find_step_outputs(obj.values, seen)
    return []
