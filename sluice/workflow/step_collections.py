"""``sluice.workflow.step_collections``: several steps made by one call (``ModelStep`` is one).

A collection is flattened into its steps in the definition; ``depends_on=[collection]`` (or its name)
means its last step, and its ``properties`` are its last step's (contract 5.10).
"""

from __future__ import annotations

from typing import Any

from sluice.workflow.steps import Step

__all__ = ["StepCollection"]


class StepCollection:
    """A named, ordered list of steps."""

    def __init__(self, name: str, steps: list[Step] | None = None, depends_on: list[Any] | None = None) -> None:
        self.name = name
        self.steps: list[Step] = list(steps or [])
        self.depends_on = list(depends_on) if depends_on is not None else None

    @property
    def properties(self) -> Any:
        """The last step's properties (what a ModelStep's readers mean)."""
        return self.steps[-1].properties

    def request_dicts(self) -> list[dict[str, Any]]:
        return [s.to_request() for s in self.steps]  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, steps={[s.name for s in self.steps]})"
