"""``sluice.workflow.parallelism_config``: how many steps of one execution may run at once (contract 5.10)."""

from __future__ import annotations

from typing import Any

from sluice.errors import PipelineError

__all__ = ["ParallelismConfiguration"]


class ParallelismConfiguration:
    """``{"MaxParallelExecutionSteps": n}``, n >= 1; the pipeline's default, or a start's override."""

    def __init__(self, max_parallel_execution_steps: int) -> None:
        n = max_parallel_execution_steps
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise PipelineError(f"max_parallel_execution_steps must be an integer >= 1, not {n!r}.")
        self.max_parallel_execution_steps = n

    def to_request(self) -> dict[str, Any]:
        return {"MaxParallelExecutionSteps": self.max_parallel_execution_steps}
