"""Deliver one channel to one instance, whatever its mode: the runtime's single entry into channels.

:meth:`ChannelPlan.for_instance` cuts an :class:`InstanceChannel` — the spec plus this instance's
units — which travels inside the instance's task. :func:`start_delivery` turns it into bytes at
``dest``, the host path behind the channel's local path:

* **File**: a directory holding the objects (hard links where the bytes are already local and
  ``link_ok``, else copies or downloads);
* **FastFile**: the same directory, read-only to the script: :attr:`Delivery.read_only_paths` names it
  for the sandbox to bind read-only, and its files and directories are chmod'ed 0444/0555 as a
  fallback. Objects already on this machine are linked, not copied. Against a remote store there is
  no lazy local view of the objects, so sluice downloads them up front as File mode does (still
  read-only) and warns once per channel;
* **Pipe**: a FIFO fed by a thread — the path itself for processing's single pass, or
  ``<dest>_0``, ``<dest>_1``, … one per epoch for training (``ChannelSpec.pipe_per_epoch``), see
  :mod:`sluice.channels.pipe`.

The returned :class:`Delivery` is closed when the instance's script has exited.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from sluice.channels.plan import InstanceChannel, ObjectRef
from sluice.channels.spec import InputMode
from sluice.channels.staging import PipeFeeder, Progress, make_read_only, make_writable, stage_file_channel
from sluice.storage.base import ObjectStore

__all__ = ["Delivery", "InstanceChannel", "start_delivery"]

log = logging.getLogger("sluice.channels")


class Delivery:
    """A channel being delivered; :meth:`close` ends any feeding and :attr:`error` reports a failure.

    ``read_only_paths`` are host paths the sandbox must bind read-only into the instance (FastFile).
    """

    def __init__(self, feeders: list[PipeFeeder] | None = None, read_only_paths: list[Path] | None = None) -> None:
        self._feeders = feeders or []
        self.read_only_paths: list[Path] = list(read_only_paths or [])

    @property
    def feeders(self) -> list[PipeFeeder]:
        return list(self._feeders)

    @property
    def error(self) -> str | None:
        errors = [f"Pipe feeder for {(f.failed_at or f.fifo).name}: {f.error}" for f in self._feeders if f.error]
        return "; ".join(errors) or None

    def close(self) -> None:
        for feeder in self._feeders:
            feeder.close()


def start_delivery(
    channel: InstanceChannel,
    store: ObjectStore,
    dest: Path,
    *,
    link_ok: bool,
    progress: Progress | None = None,
    on_error: Callable[[BaseException], None] | None = None,
) -> Delivery:
    """Start delivering ``channel`` at ``dest`` (the host path behind the channel's local path).

    File and FastFile mode return once every object is in place (and raise if one cannot be placed);
    Pipe mode returns at once with a feeder running and its first FIFO created. ``on_error`` is called
    from the feeder's thread if feeding fails while the script runs.
    """
    spec = channel.spec
    if spec.input_mode is InputMode.PIPE:
        units = channel.epoch_units if spec.pipe_per_epoch else channel.epoch_units(0)
        feeder = PipeFeeder(
            units, store, dest, spec.compression, progress,
            wrapping=spec.record_wrapping, per_epoch=spec.pipe_per_epoch, on_error=on_error,
        )
        return Delivery([feeder.start()])
    objects = _objects(channel)
    if spec.input_mode is InputMode.FAST_FILE:
        if objects and store.local_path(objects[0].bucket, objects[0].key) is None and channel.instance_index == 0:
            log.warning(
                "channel %r: FastFile streams objects on demand in SageMaker, but the %s store keeps none on this "
                "machine, so sluice downloads them up front as File mode does (still read-only).",
                spec.name, store.kind,
            )
        make_writable(dest)  # a retried instance restages into its own earlier, read-only tree
        stage_file_channel(objects, store, dest, link_ok=link_ok, progress=progress, writable=False)
        make_read_only(dest)
        return Delivery(read_only_paths=[dest])
    stage_file_channel(objects, store, dest, link_ok=link_ok, progress=progress)
    return Delivery()


def _objects(channel: InstanceChannel) -> list[ObjectRef]:
    units = channel.epoch_units(0)
    bad = [u for u in units if not isinstance(u, ObjectRef)]
    if bad:
        raise TypeError(
            f"channel {channel.spec.name!r}: {channel.spec.input_mode.value} mode places objects in a directory, "
            f"but this channel is an augmented manifest ({channel.spec.data_type.value}), which streams only in Pipe "
            "mode."
        )
    return units  # type: ignore[return-value]
