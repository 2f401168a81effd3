"""Where instances run: one small interface, backends registered by name and imported lazily.

A backend starts an :class:`~sluice.runtime.instance.InstanceTask` and hands back an
:class:`InstanceHandle`. The job runner above it never learns which backend it got.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod

from sluice.errors import SpecError
from sluice.runtime.instance import InstanceEvents, InstanceResult, InstanceTask

__all__ = ["BACKENDS", "Backend", "InstanceHandle", "get_backend"]


class InstanceHandle(ABC):
    """A started instance."""

    host: str

    @abstractmethod
    def wait(self, timeout: float | None = None) -> InstanceResult | None:
        """The result once the instance's script has exited, or ``None`` if ``timeout`` passed first."""

    @abstractmethod
    def stop(self) -> None:
        """End the instance (signal, then kill after the grace period)."""

    @abstractmethod
    def upload_outputs(self, success: bool) -> list[str]:
        """Upload outputs once the job's outcome is known. Returns error messages (empty if all went up)."""


class Backend(ABC):
    """Runs instances. Subclasses implement :meth:`start`; :meth:`validate` is an optional pre-flight hook."""

    name: str = "abstract"

    def validate(self, tasks: list[InstanceTask]) -> None:  # noqa: B027 - an optional hook, not abstract
        """Refuse a job this backend cannot run, before anything starts. Default: accept."""

    @abstractmethod
    def start(self, task: InstanceTask, events: InstanceEvents) -> InstanceHandle:
        """Start one instance without waiting for it."""


#: backend name -> "module:Class"; imported on first use so `import sluice` needs no Ray.
BACKENDS: dict[str, str] = {
    "local": "sluice.runtime.local:LocalBackend",
}


def get_backend(name: str = "local") -> Backend:
    try:
        target = BACKENDS[name]
    except KeyError:
        raise SpecError(f"unknown runtime backend {name!r}; choose one of {sorted(BACKENDS)}.") from None
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)()
