"""The local-process backend: each instance is a sandboxed process on this machine.

Staging and log pumping run on a thread per instance; instances share the machine's cores, as
instances of one job share nothing else.
"""

from __future__ import annotations

import threading

from sluice.runtime.backend import Backend, InstanceHandle
from sluice.runtime.instance import InstanceEvents, InstanceResult, InstanceRun, InstanceTask

__all__ = ["LocalBackend"]


class _LocalHandle(InstanceHandle):
    def __init__(self, task: InstanceTask, events: InstanceEvents) -> None:
        self.host = task.host
        self.run = InstanceRun(task, events)
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"instance-{task.host}", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        try:
            self.run.run()
        finally:
            self.done.set()

    def wait(self, timeout: float | None = None) -> InstanceResult | None:
        if not self.done.wait(timeout):
            return None
        return self.run.result or InstanceResult(self.host, None, error="the instance's thread ended without a result")

    def stop(self) -> None:
        self.run.stop()

    def upload_outputs(self, success: bool) -> list[str]:
        errors = self.run.continuous_errors()
        try:
            self.run.upload_outputs(success)
        except Exception as exc:
            errors.append(f"uploading outputs of {self.host}: {exc}")
        return errors


class LocalBackend(Backend):
    name = "local"

    def start(self, task: InstanceTask, events: InstanceEvents) -> InstanceHandle:
        return _LocalHandle(task, events)
