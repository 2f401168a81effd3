"""Pipe mode: stream a channel's units into FIFOs on a thread, as SageMaker's Pipe mode does.

Two shapes:

* **one pass** (processing, ``pipe_per_epoch=False``): the FIFO is the channel path itself and is fed
  once;
* **per epoch** (training, ``pipe_per_epoch=True``): FIFO ``<path>_0`` is created at start; when the
  reader has consumed it — read to end of file, or closed it early — ``<path>_1`` is created and fed,
  then ``<path>_2``, and so on until the delivery is closed (the script has exited). Each epoch has
  its own unit order when the channel is shuffled (see :meth:`InstanceChannel.epoch_units`). FIFOs
  are left in place afterwards; they live in the instance's own tree.

What goes into a FIFO: each object's bytes (Gzip objects unpacked on the way), one after another.
With ``RecordWrapperType=RecordIO`` each object — or, for an augmented manifest, each attribute value —
becomes one RecordIO record. A record's length must be written before its bytes, so a Gzip object
is first unpacked into a spooled temporary file (in memory up to 32 MiB), and a plain object's
length is the size the plan listed: if the object changed since planning, feeding fails with a clear
error rather than writing a corrupt stream. An object larger than one record part (2^29-1 bytes) is
written as a multi-part record, which the AWS readers and :func:`sluice.io.read_records` join.

A feeding failure (an object gone, a bad Gzip stream) stops the feeder: the reader sees the epoch end
early and no further epoch appears. The error is kept for :attr:`Delivery.error` and passed to the
``on_error`` callback at once, so the runtime can fail the instance instead of letting the script
wait for a FIFO that will never come.

The feeder never holds an instance up: a writer blocks in ``open`` until a reader arrives, so
:meth:`PipeFeeder.close` opens the FIFO itself (non-blocking) to release it, and discards anything
written after the script has gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import os
import select
import stat
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from sluice.channels.spec import Compression, RecordWrapping
from sluice.channels.units import InlineRecord, ManifestLine, ObjectRef, Progress, Unit
from sluice.errors import StorageError
from sluice.io.recordio import MAX_PART_LENGTH, encode_header, padding
from sluice.storage.base import ObjectStore

__all__ = ["PipeFeeder", "epoch_fifo"]

_CHUNK = 1 << 20
_SPOOL_IN_MEMORY = 32 << 20


def epoch_fifo(path: Path, epoch: int) -> Path:
    """The FIFO of ``epoch`` for a channel whose path is ``path``: ``train`` → ``train_0``, ``train_1``…"""
    return path.with_name(f"{path.name}_{epoch}")


def make_fifo(path: Path) -> None:
    """Create ``path`` as a FIFO, replacing anything else of that name (a stale file from an earlier run)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        st = path.lstat()
    except FileNotFoundError:
        os.mkfifo(path, 0o644)
        return
    if not stat.S_ISFIFO(st.st_mode):
        path.unlink()
        os.mkfifo(path, 0o644)


class _ReaderGone(Exception):
    """The reader closed the FIFO before the end of the epoch, which the contract allows."""


class _Closing(Exception):
    """The delivery is being closed: stop feeding at once."""


class PipeFeeder:
    """Streams units into a FIFO (or one FIFO per epoch) on a thread; the script reads it like a file.

    ``units`` is the units to feed on every pass, or a function giving the units of an epoch.
    """

    #: The largest RecordIO part this feeder writes; longer records become multi-part. Lower only to
    #: exercise multi-part framing without half-gigabyte objects.
    record_part_limit: int = MAX_PART_LENGTH

    def __init__(
        self,
        units: Iterable[Unit] | Callable[[int], Sequence[Unit]],
        store: ObjectStore,
        fifo: Path,
        compression: Compression = Compression.NONE,
        progress: Progress | None = None,
        *,
        wrapping: RecordWrapping = RecordWrapping.NONE,
        per_epoch: bool = False,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        if callable(units):
            self._units_for: Callable[[int], Sequence[Unit]] = units
        else:
            fixed = list(units)
            self._units_for = lambda epoch: fixed
        self.store = store
        self.fifo = fifo
        self.compression = compression
        self.progress = progress
        self.wrapping = wrapping
        self.per_epoch = per_epoch
        self.on_error = on_error
        self.error: BaseException | None = None
        #: The FIFO being fed when feeding failed.
        self.failed_at: Path | None = None
        self.bytes_written = 0
        #: Epochs whose FIFO a reader opened and the feeder finished (to EOF or an early close).
        self.epochs_done = 0
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._current: Path | None = None  # the FIFO the thread is opening or writing
        self._thread = threading.Thread(target=self._run, name=f"pipe-{fifo.name}", daemon=True)

    @property
    def objects(self) -> list[Unit]:
        """The units of the first pass (kept for callers of the one-pass feeder)."""
        return list(self._units_for(0))

    def fifo_for(self, epoch: int) -> Path:
        return epoch_fifo(self.fifo, epoch) if self.per_epoch else self.fifo

    def start(self) -> PipeFeeder:
        """Create the first FIFO (so it exists when the script starts) and start feeding."""
        make_fifo(self.fifo_for(0))
        self._thread.start()
        return self

    # ---- the feeding thread ----------------------------------------------------------------
    def _run(self) -> None:
        epoch = 0
        try:
            while True:
                fifo = self.fifo_for(epoch)
                if epoch:
                    make_fifo(fifo)
                with self._lock:
                    if self._closing.is_set():
                        return
                    self._current = fifo
                fd = os.open(fifo, os.O_WRONLY)  # blocks until a reader opens it (or close() does)
                _grow_pipe(fd)
                try:
                    if self._closing.is_set():
                        return
                    with os.fdopen(fd, "wb", buffering=0) as out:
                        fd = -1
                        with contextlib.suppress(_ReaderGone):
                            self._feed(out, epoch)
                finally:
                    if fd >= 0:
                        os.close(fd)
                self.epochs_done = epoch + 1
                if not self.per_epoch:
                    return
                epoch += 1
        except (_Closing, BrokenPipeError):
            return
        except BaseException as exc:  # surfaced through Delivery.error (and on_error); the job fails with it
            if not self._closing.is_set():
                self.failed_at = self._current
                self.error = exc
                if self.on_error is not None:
                    self.on_error(exc)

    def _feed(self, out: BinaryIO, epoch: int) -> None:
        for unit in self._units_for(epoch):
            if isinstance(unit, ManifestLine):
                for record in unit.records:
                    self._feed_record(out, record)
            else:
                self._feed_record(out, unit)
            if self.progress is not None and epoch == 0:
                self.progress(1, unit.size)

    def _feed_record(self, out: BinaryIO, record: ObjectRef | InlineRecord) -> None:
        recordio = self.wrapping is RecordWrapping.RECORDIO
        if isinstance(record, InlineRecord):
            data = record.data
            if recordio:
                self._write_framed(out, [data], len(data), record_name="an augmented-manifest value")
            else:
                self._write(out, data)
            return
        gzipped = self.compression is Compression.GZIP
        local = None if gzipped else self.store.local_path(record.bucket, record.key)
        if local is not None and (not recordio or record.size <= self.record_part_limit):
            if recordio:
                self._write(out, encode_header(record.size, 0))
            self._splice(out, local, record)
            if recordio and record.size % 4:
                self._write(out, padding(record.size))
            return
        with self.store.open(record.bucket, record.key) as raw:
            chunks = _gunzip(raw, record.uri) if gzipped else _chunks(raw)
            if not recordio:
                for chunk in chunks:
                    self._write(out, chunk)
            elif gzipped:  # the unpacked length is known only at the end: spool first
                with tempfile.SpooledTemporaryFile(_SPOOL_IN_MEMORY) as spool:
                    for chunk in chunks:
                        spool.write(chunk)
                    length = spool.tell()
                    spool.seek(0)
                    self._write_framed(out, _chunks(spool), length, record_name=record.uri)
            else:
                self._write_framed(out, chunks, record.size, record_name=record.uri)

    def _write_framed(self, out: BinaryIO, chunks: Iterable[bytes], length: int, *, record_name: str) -> None:
        """Write ``length`` bytes from ``chunks`` as one RecordIO record (multi-part beyond 2^29-1 bytes)."""
        limit = self.record_part_limit
        nparts = max(1, -(-length // limit))
        buffered = b""
        it = iter(chunks)
        written = 0
        for part in range(nparts):
            part_len = min(limit, length - part * limit)
            cflag = 0 if nparts == 1 else 1 if part == 0 else 3 if part == nparts - 1 else 2
            self._write(out, encode_header(part_len, cflag))
            need = part_len
            while need:
                if not buffered:
                    buffered = next(it, b"")
                    if not buffered:
                        raise StorageError(
                            f"{record_name} is {written} bytes now but was {length} bytes when the job was planned; "
                            "it changed while the job ran. Rerun the job."
                        )
                take, buffered = buffered[:need], buffered[need:]
                self._write(out, take)
                need -= len(take)
                written += len(take)
            if part_len % 4:
                self._write(out, padding(part_len))
        if buffered or next(it, b""):
            raise StorageError(
                f"{record_name} is larger now than the {length} bytes it had when the job was planned; it changed "
                "while the job ran. Rerun the job."
            )

    def _splice(self, out: BinaryIO, path: Path, record: ObjectRef) -> None:
        """Move a local object's bytes into the FIFO inside the kernel (no copy through Python)."""
        with open(path, "rb") as src:
            if os.fstat(src.fileno()).st_size != record.size:
                raise StorageError(f"{record.uri} changed size since the job was planned; rerun the job.")
            offset = 0
            while offset < record.size:
                if self._closing.is_set():
                    raise _Closing
                try:
                    n = os.splice(src.fileno(), out.fileno(), min(_CHUNK, record.size - offset), offset_src=offset)
                except BrokenPipeError:
                    raise _ReaderGone from None
                if n == 0:
                    raise StorageError(f"{record.uri} ended early at {offset} of {record.size} bytes; rerun the job.")
                offset += n
                self.bytes_written += n

    def _write(self, out: BinaryIO, data: bytes) -> None:
        if self._closing.is_set():
            raise _Closing
        view = memoryview(data)
        try:
            while view:  # a raw write may be partial (a signal, a full pipe); finish it
                n = out.write(view)
                view = view[n:] if n else view
        except BrokenPipeError:
            raise _ReaderGone from None
        self.bytes_written += len(data)

    # ---- closing -------------------------------------------------------------------------------
    def close(self, timeout: float = 5.0) -> None:
        """Stop feeding and wait for the thread, which may be waiting for a reader that never comes.

        Opening the current FIFO for reading (non-blocking) releases a writer blocked in ``open``;
        anything it writes meanwhile is read and dropped, so a full pipe cannot block it either.
        """
        with self._lock:
            self._closing.set()
            current = self._current
        if not self._thread.is_alive():
            return
        fd = None
        if current is not None:
            with contextlib.suppress(OSError):
                fd = os.open(current, os.O_RDONLY | os.O_NONBLOCK)
        deadline = time.monotonic() + timeout
        try:
            while self._thread.is_alive() and time.monotonic() < deadline:
                data = None
                if fd is not None and select.select([fd], [], [], 0.05)[0]:
                    with contextlib.suppress(BlockingIOError):
                        data = os.read(fd, _CHUNK)
                if not data:  # nothing to drain (or the writer has closed): just wait for the thread
                    self._thread.join(0.05)
        finally:
            if fd is not None:
                os.close(fd)
        self._thread.join(timeout if self._thread.is_alive() else 0)


def _grow_pipe(fd: int) -> None:
    """A 1 MiB pipe buffer instead of 64 KiB: fewer wake-ups of writer and reader per megabyte."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _CHUNK)


def _chunks(src: BinaryIO) -> Iterator[bytes]:
    while chunk := src.read(_CHUNK):
        yield chunk


def _gunzip(raw: BinaryIO, uri: str) -> Iterator[bytes]:
    """``raw`` unpacked chunk by chunk; a stream that is not (whole) gzip becomes an error naming the object."""
    src = gzip.GzipFile(fileobj=raw)
    while True:
        try:
            chunk = src.read(_CHUNK)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise StorageError(
                f"{uri} could not be unpacked as Gzip ({exc}); the channel's CompressionType is Gzip, so every "
                "object must be gzip-compressed. Recompress it, or set CompressionType to None."
            ) from None
        if not chunk:
            return
        yield chunk
