"""A live table of a pipeline execution's steps while someone waits for it in a terminal.

``PipelineExecution.wait()`` and ``sluice pipeline run`` draw it when standard output is a terminal; in a
pipe or a notebook cell nothing is drawn, and waiting is a plain join.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

__all__ = ["steps_table", "watch_execution"]

_REFRESH_SECONDS = 0.5
_STYLE = {"Succeeded": "green", "Failed": "red", "Stopped": "yellow", "Executing": "cyan", "Starting": "cyan",
          "Stopping": "yellow"}


def _seconds(step: dict[str, Any]) -> str:
    start, end = step.get("StartTime"), step.get("EndTime")
    if not isinstance(start, dt.datetime):
        return ""
    stop = end if isinstance(end, dt.datetime) else dt.datetime.now(dt.UTC)
    return f"{(stop - start).total_seconds():.1f}s"


def steps_table(description: dict[str, Any], steps: list[dict[str, Any]]) -> Any:
    """A rich Table: one row per started step (oldest first) with status, attempts, time, cache and reason."""
    from rich.table import Table

    status = description.get("PipelineExecutionStatus", "")
    title = f"{description.get('PipelineExecutionArn', '')}  [{_STYLE.get(status, 'white')}]{status}[/]"
    table = Table(title=title, title_justify="left")
    for column in ("Step", "Type", "Status", "Attempts", "Time", "Note"):
        table.add_column(column)
    for step in reversed(steps):
        status = step.get("StepStatus", "")
        note = ""
        if "CacheHitResult" in step:
            note = "cache hit"
        elif "SelectiveExecutionResult" in step:
            note = "reused from source execution"
        if step.get("FailureReason"):
            note = str(step["FailureReason"]).splitlines()[0][:100]
        kind = next(iter(step.get("Metadata") or {}), "")
        table.add_row(step.get("StepName", ""), kind, f"[{_STYLE.get(status, 'white')}]{status}[/]",
                      str(step.get("AttemptCount", "")), _seconds(step), note)
    return table


def watch_execution(execution: Any, *, show: bool | None = None, timeout: float | None = None,
                    console: Any = None) -> bool:
    """Wait for ``execution`` to end (or ``timeout``); draw the live table when ``show``. Whether it ended."""
    if show is None:
        show = sys.stdout.isatty()
    if not show:
        return bool(execution.join(timeout))
    from rich.console import Console
    from rich.live import Live

    console = console or Console()
    waited = 0.0
    with Live(steps_table(execution.describe(), execution.list_steps()), console=console,
              refresh_per_second=4, transient=False) as live:
        while True:
            ended = execution.join(_REFRESH_SECONDS)
            live.update(steps_table(execution.describe(), execution.list_steps()))
            waited += _REFRESH_SECONDS
            if ended:
                return True
            if timeout is not None and waited >= timeout:
                return False
