"""Deliver one channel to one instance, whatever its mode: the runtime's single entry into channels.

:meth:`ChannelPlan.for_instance` cuts an :class:`InstanceChannel` — the spec plus this instance's
objects — which travels inside the instance's task. :func:`start_delivery` turns it into bytes at the
instance's channel path: a directory for File mode, a FIFO fed by a thread for Pipe mode. The returned
:class:`Delivery` is closed when the instance's script has exited.
"""

from __future__ import annotations

from pathlib import Path

from sluice.channels.plan import InstanceChannel
from sluice.channels.spec import InputMode
from sluice.channels.staging import PipeFeeder, Progress, stage_file_channel
from sluice.storage.base import ObjectStore

__all__ = ["Delivery", "InstanceChannel", "start_delivery"]


class Delivery:
    """A channel being delivered; :meth:`close` ends any feeding and :attr:`error` reports a failure."""

    def __init__(self, feeders: list[PipeFeeder] | None = None) -> None:
        self._feeders = feeders or []

    @property
    def error(self) -> str | None:
        errors = [f"Pipe feeder for {f.fifo.name}: {f.error}" for f in self._feeders if f.error]
        return "; ".join(errors) or None

    def close(self) -> None:
        for feeder in self._feeders:
            feeder.close()


def start_delivery(
    channel: InstanceChannel, store: ObjectStore, dest: Path, *, link_ok: bool, progress: Progress | None = None
) -> Delivery:
    """Start delivering ``channel`` at ``dest`` (the host path behind the channel's local path).

    File mode returns once every object is in place; Pipe mode returns at once with a feeder running.
    """
    spec = channel.spec
    if spec.input_mode is InputMode.PIPE:
        feeder = PipeFeeder(channel.objects, store, dest, spec.compression, progress)
        return Delivery([feeder.start()])
    stage_file_channel(channel.objects, store, dest, link_ok=link_ok, progress=progress)
    return Delivery()
