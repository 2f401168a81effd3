"""How a pipeline execution's steps look to someone watching: a live table in a terminal, plain lines elsewhere.

``PipelineExecution.wait()`` and ``sluice pipeline run`` draw the live table (:func:`watch_execution`) when
standard output is a terminal; ``sluice pipeline run`` prints one line per step state change
(:func:`follow_execution`) when it is not, so a log or CI output stays readable. ``sluice pipeline steps``
prints :func:`steps_listing`. Everything here reads ``ListPipelineExecutionSteps``-shaped step dicts; nothing
here changes an execution.

Cell text is built as :class:`rich.text.Text`, never as markup, so a step name or failure reason holding
brackets is shown as written.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "follow_execution",
    "progress_line",
    "step_note",
    "step_types",
    "steps_listing",
    "steps_table",
    "watch_execution",
]

_REFRESH_SECONDS = 0.5
_STYLE = {"Succeeded": "green", "Failed": "red", "Stopped": "yellow", "Executing": "cyan", "Starting": "cyan",
          "Stopping": "yellow"}
_NOTE_WIDTH = 100


def step_types(definition_text: str | None) -> dict[str, str]:
    """``{step name: step type}`` from an execution's definition (empty when it cannot be read)."""
    if not definition_text:
        return {}
    from sluice.errors import SluiceError
    from sluice.workflow.graph import parse_definition

    try:
        parsed = parse_definition(definition_text)
    except SluiceError:
        return {}
    return {name: str(spec.type) for name, spec in parsed.graph.items()}


def _kind(step: Mapping[str, Any], types: Mapping[str, str] | None) -> str:
    """The step's type from the definition; else the kind its Metadata names (``ProcessingJob``, ``Condition``)."""
    name = step.get("StepName", "")
    if types and name in types:
        return types[name]
    return next(iter(step.get("Metadata") or {}), "")


def _source_id(result: Any) -> str:
    from sluice.workflow.execution import parse_execution_arn

    arn = result.get("SourcePipelineExecutionArn", "") if isinstance(result, Mapping) else ""
    return parse_execution_arn(str(arn)) if arn else ""


def step_note(step: Mapping[str, Any], width: int | None = _NOTE_WIDTH) -> str:
    """One line on why a step is as it is: the first line of its failure reason (cut at ``width``), or where
    its result was reused from."""
    reason = str(step.get("FailureReason") or "").strip()
    if reason:
        return reason.splitlines()[0][:width]
    if "CacheHitResult" in step:
        return f"cache hit from {_source_id(step['CacheHitResult'])}"
    if "SelectiveExecutionResult" in step:
        return f"reused from {_source_id(step['SelectiveExecutionResult'])}"
    return ""


def _status(status: str) -> Any:
    from rich.text import Text

    return Text(status, style=_STYLE.get(status, ""))


def _seconds(step: Mapping[str, Any]) -> str:
    start, end = step.get("StartTime"), step.get("EndTime")
    if not isinstance(start, dt.datetime):
        return ""
    stop = end if isinstance(end, dt.datetime) else dt.datetime.now(dt.UTC)
    return f"{(stop - start).total_seconds():.1f}s"


def _clock(value: Any, day: dt.date | None = None) -> str:
    """A UTC time: only the time of day when it falls on ``day``, else the date too."""
    if not isinstance(value, dt.datetime):
        return ""
    value = value.astimezone(dt.UTC)
    return value.strftime("%H:%M:%S" if value.date() == day else "%Y-%m-%d %H:%M:%S")


def _label(description: Mapping[str, Any]) -> str:
    """``execution-<id>``, or a display name the user chose with the id after it (ARNs are too wide)."""
    from sluice.workflow.execution import parse_execution_arn

    execution_id = parse_execution_arn(str(description.get("PipelineExecutionArn", "")))
    display = description.get("PipelineExecutionDisplayName")
    if not display or display == f"execution-{execution_id}":
        return f"execution-{execution_id}"
    return f"{display} ({execution_id})"


def steps_table(description: Mapping[str, Any], steps: list[dict[str, Any]],
                types: Mapping[str, str] | None = None) -> Any:
    """The live table: one row per started step (oldest first) with type, status, attempts, time and a note.

    ``steps`` is ``list_steps()`` (newest first); ``types`` maps step names to their definition's types.
    """
    from rich.table import Column, Table
    from rich.text import Text

    status = str(description.get("PipelineExecutionStatus", ""))
    title = Text.assemble(_label(description), "  ", _status(status))
    table = Table(*(Column(c, no_wrap=True) for c in ("Step", "Type", "Status", "Attempts", "Time")), "Note",
                  title=title, title_justify="left")
    for step in reversed(steps):
        table.add_row(Text(str(step.get("StepName", ""))), Text(_kind(step, types)),
                      _status(str(step.get("StepStatus", ""))), str(step.get("AttemptCount", "")),
                      _seconds(step), Text(step_note(step)))
    return table


def steps_listing(steps: list[dict[str, Any]], types: Mapping[str, str] | None = None,
                  day: dt.date | None = None) -> Any:
    """The table ``sluice pipeline steps`` prints: every started step, oldest first, with its UTC times (the
    time of day alone when it falls on ``day``, the execution's start date) and the source of a reused result
    in their own columns. Only the reason wraps."""
    from rich.table import Column, Table
    from rich.text import Text

    table = Table(*(Column(c, no_wrap=True) for c in ("step", "type", "status", "attempts", "started", "ended",
                                                        "cache hit from")), "reason")
    for step in reversed(steps):
        reused = _source_id(step.get("CacheHitResult"))
        if not reused and step.get("SelectiveExecutionResult"):
            reused = f"{_source_id(step['SelectiveExecutionResult'])} (selective)"
        reason = str(step.get("FailureReason") or "").strip()
        table.add_row(Text(str(step.get("StepName", ""))), Text(_kind(step, types)),
                      _status(str(step.get("StepStatus", ""))), str(step.get("AttemptCount", "")),
                      _clock(step.get("StartTime"), day), _clock(step.get("EndTime"), day), reused,
                      Text(reason.splitlines()[0] if reason else ""))
    return table


def progress_line(step: Mapping[str, Any]) -> str:
    """``Train: Failed (2 attempts): <reason>``: one step's state as a plain line."""
    line = f"{step.get('StepName', '')}: {step.get('StepStatus', '')}"
    attempts = step.get("AttemptCount")
    if isinstance(attempts, int) and attempts > 1:
        line += f" ({attempts} attempts)"
    note = step_note(step, width=None)
    return f"{line}: {note}" if note else line


def follow_execution(execution: Any, echo: Callable[[str], None], *, poll: float = _REFRESH_SECONDS) -> None:
    """Wait for ``execution`` to end, calling ``echo`` with a :func:`progress_line` whenever a step's status
    changes (steps in the order they started)."""
    seen: dict[str, str] = {}

    def report() -> None:
        for step in reversed(execution.step_list()):
            name, status = step.get("StepName", ""), step.get("StepStatus", "")
            if seen.get(name) != status:
                seen[name] = status
                echo(progress_line(step))

    while True:
        report()
        if execution.join(poll):
            report()
            return


def watch_execution(execution: Any, *, show: bool | None = None, timeout: float | None = None,
                    console: Any = None, types: Mapping[str, str] | None = None) -> bool:
    """Wait for ``execution`` to end (or ``timeout``); draw the live table when ``show``. Whether it ended.

    ``show`` defaults to whether standard output is a terminal; without it this is a plain join.
    """
    if show is None:
        show = sys.stdout.isatty()
    if not show:
        return bool(execution.join(timeout))
    from rich.console import Console
    from rich.live import Live

    console = console or Console()
    if types is None:
        types = step_types(execution.request.get("PipelineDefinition"))
    deadline = None if timeout is None else time.monotonic() + timeout

    def table() -> Any:
        return steps_table(execution.describe(), execution.step_list(), types)

    with Live(table(), console=console, refresh_per_second=4, transient=False) as live:
        while True:
            wait = _REFRESH_SECONDS if deadline is None else max(0.0, min(_REFRESH_SECONDS,
                                                                            deadline - time.monotonic()))
            ended = execution.join(wait)
            live.update(table())
            if ended:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
