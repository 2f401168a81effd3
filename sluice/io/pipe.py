"""Read a Pipe-mode channel from a training script, in a few lines.

SageMaker (and sluice) feed a Pipe channel ``train`` through one FIFO per epoch,
``/opt/ml/input/data/train_0``, ``train_1``, …; each appears after the previous one has been read to
the end or closed, so a reader retries briefly when the next one is not there yet (as the DevGuide
says readers must)::

    from sluice.io import pipe_records, manifest_rows

    for record in pipe_records("train"):                      # RecordIO payloads of the next epoch
        ...
    for image, label in manifest_rows("train", 2, epoch=1):   # an augmented manifest, one line at a time
        ...

The directory holding the FIFOs is ``base`` if given, else ``$SM_INPUT_DIR/data``, else
``$SAGEMAKER_BASE_DIR/input/data`` (sluice's redirected tree without a sandbox), else
``/opt/ml/input/data``. Standard library only: this runs inside user scripts.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Generator, Iterator
from pathlib import Path

from sluice.io.recordio import read_records

__all__ = ["channel_fifo", "manifest_rows", "pipe_epochs", "pipe_records"]

#: How long to wait for an epoch's FIFO to appear before giving up.
DEFAULT_WAIT_SECONDS = 60.0
_RAW_CHUNK = 1 << 20

_next_epoch: dict[str, int] = {}
_next_lock = threading.Lock()


def _data_dir(base: str | os.PathLike[str] | None) -> Path:
    if base is not None:
        return Path(base)
    if os.environ.get("SM_INPUT_DIR"):
        return Path(os.environ["SM_INPUT_DIR"]) / "data"
    if os.environ.get("SAGEMAKER_BASE_DIR"):
        return Path(os.environ["SAGEMAKER_BASE_DIR"]) / "input" / "data"
    return Path("/opt/ml/input/data")


def channel_fifo(channel: str, epoch: int, *, base: str | os.PathLike[str] | None = None) -> Path:
    """The FIFO of ``channel`` for ``epoch``: ``<data dir>/<channel>_<epoch>``."""
    return _data_dir(base) / f"{channel}_{epoch}"


def _claim_epoch(path_key: str, epoch: int | None) -> int:
    """``epoch`` if given, else the next epoch this process has not yet opened for that channel."""
    with _next_lock:
        if epoch is None:
            epoch = _next_epoch.get(path_key, 0)
        _next_epoch[path_key] = max(_next_epoch.get(path_key, 0), epoch + 1)
        return epoch


def _wait_for(path: Path, wait: float) -> None:
    deadline = time.monotonic() + wait
    delay = 0.005
    while not path.exists():
        if time.monotonic() >= deadline:
            channel = path.with_name(path.name.rpartition("_")[0])
            if channel.is_dir():
                raise FileNotFoundError(
                    f"Pipe-mode FIFO {path} did not appear within {wait:g} s, and {channel} is a directory: the "
                    "channel is in File or FastFile mode, so read the files in it (or set its input mode to Pipe)."
                )
            raise FileNotFoundError(
                f"Pipe-mode FIFO {path} did not appear within {wait:g} s. Is the channel's input mode Pipe, and the "
                "channel name right? (Each epoch's FIFO appears only after the previous one was read or closed.)"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _read(path: Path, wrapped: bool) -> Iterator[bytes]:
    with open(path, "rb", buffering=_RAW_CHUNK) as fh:  # blocks until the feeder opens its end
        if wrapped:
            yield from read_records(fh)
        else:
            while chunk := fh.read1(_RAW_CHUNK):
                yield chunk


def pipe_records(
    channel: str,
    epoch: int | None = None,
    *,
    base: str | os.PathLike[str] | None = None,
    wrapped: bool = True,
    wait: float = DEFAULT_WAIT_SECONDS,
) -> Generator[bytes, None, None]:
    """The records of one epoch of ``channel``: RecordIO payloads, or raw byte chunks if ``wrapped`` is false.

    ``epoch=None`` takes the next epoch this process has not opened yet (0, then 1, …), so calling
    it once per epoch just works. Closing the iterator early (``break``) closes the FIFO, which
    moves the feeder on to the next epoch. The epoch is claimed when this is called, not when the
    iterator is first advanced.
    """
    path = channel_fifo(channel, 0, base=base)
    claimed = _claim_epoch(str(path.parent / channel), epoch)
    fifo = channel_fifo(channel, claimed, base=base)

    def records() -> Generator[bytes, None, None]:
        _wait_for(fifo, wait)
        yield from _read(fifo, wrapped)

    return records()


def pipe_epochs(
    channel: str,
    epochs: int | None = None,
    *,
    start: int = 0,
    base: str | os.PathLike[str] | None = None,
    wrapped: bool = True,
    wait: float = DEFAULT_WAIT_SECONDS,
) -> Iterator[Generator[bytes, None, None]]:
    """One record iterator per epoch, from ``start``; ``epochs`` of them, or without end if ``None``.

    Asking for the next epoch closes the previous epoch's iterator (and so its FIFO) if it was not
    read to the end, since the feeder opens the next FIFO only after that.
    """
    epoch = start
    previous: Generator[bytes, None, None] | None = None
    try:
        while epochs is None or epoch < start + epochs:
            previous = pipe_records(channel, epoch, base=base, wrapped=wrapped, wait=wait)
            yield previous
            previous.close()
            epoch += 1
    finally:
        if previous is not None:
            previous.close()


def manifest_rows(
    channel: str,
    attribute_count: int,
    epoch: int | None = 0,
    *,
    base: str | os.PathLike[str] | None = None,
    wait: float = DEFAULT_WAIT_SECONDS,
) -> Iterator[tuple[bytes, ...]]:
    """One tuple per augmented-manifest line: its ``attribute_count`` records, in ``AttributeNames`` order.

    The channel must be RecordIO-wrapped (one record per attribute value). Raises :class:`ValueError`
    if the epoch ends part-way through a line, which means ``attribute_count`` does not match.
    """
    if attribute_count < 1:
        raise ValueError(f"attribute_count must be at least 1 (the number of AttributeNames), not {attribute_count}.")
    row: list[bytes] = []
    rows = 0
    for record in pipe_records(channel, epoch, base=base, wrapped=True, wait=wait):
        row.append(record)
        if len(row) == attribute_count:
            yield tuple(row)
            row = []
            rows += 1
    if row:
        raise ValueError(
            f"channel {channel!r} ended after {rows} full line(s) and {len(row)} more record(s), which is not a "
            f"multiple of attribute_count={attribute_count}. Pass the number of AttributeNames the channel has."
        )
