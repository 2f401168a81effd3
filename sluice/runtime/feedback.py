"""What a user watching a job sees: host-prefixed log lines and a live display of staging and instances."""

from __future__ import annotations

import threading

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from sluice.runtime.instance import InstanceEvents

__all__ = ["ConsoleFeedback", "quiet_events"]

_COLOURS = ["cyan", "magenta", "green", "yellow", "blue", "red"]


def quiet_events() -> InstanceEvents:
    return InstanceEvents()


class ConsoleFeedback:
    """Prints each instance's log lines as ``[algo-N] line`` above a live progress display.

    The display has one bar for staging (objects, with bytes) and one line per instance state.
    """

    def __init__(self, job_name: str, hosts: list[str], total_objects: int, total_bytes: int,
                 show_logs: bool = True, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.show_logs = show_logs
        self._lock = threading.Lock()
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
            TimeElapsedColumn(), console=self.console, transient=True,
        )
        self._job = job_name
        self._objects = 0
        self._total_objects = total_objects
        self._staging = self._progress.add_task(self._staging_text(), total=total_bytes)
        self._states = {h: "pending" for h in hosts}
        self._instances = self._progress.add_task(self._state_text(), total=None)
        self._colour = {h: _COLOURS[i % len(_COLOURS)] for i, h in enumerate(hosts)}

    def _staging_text(self) -> str:
        return f"{self._job}: staged {self._objects}/{self._total_objects} objects"

    def _state_text(self) -> str:
        return "instances: " + "  ".join(f"{h}={s}" for h, s in self._states.items())

    def __enter__(self) -> ConsoleFeedback:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def events(self) -> InstanceEvents:
        return InstanceEvents(on_staged=self._staged, on_line=self._line, on_state=self._state)

    def _staged(self, host: str, objs: int, nbytes: int) -> None:
        with self._lock:
            self._objects += objs
            self._progress.update(self._staging, advance=nbytes, description=self._staging_text())

    def _line(self, host: str, line: str) -> None:
        if self.show_logs:
            self._progress.console.print(Text.assemble((f"[{host}] ", self._colour[host]), line), soft_wrap=True)

    def _state(self, host: str, state: str) -> None:
        with self._lock:
            self._states[host] = state
            self._progress.update(self._instances, description=self._state_text())
