"""Deliver a channel's objects to one instance: File mode (a directory) or Pipe mode (a FIFO).

File mode hard-links objects that are already on this machine (the embedded store keeps objects as
immutable 0444 files, and the sandbox drops the capability that would let root write them anyway), and
downloads the rest in parallel. When links are not safe (no sandbox) or not possible (another
filesystem), it copies.

Pipe mode creates a FIFO and a feeder thread that streams the objects into it in key order, unpacking
Gzip objects on the way, as SageMaker's Pipe mode does. A reader may stop early: the feeder then stops
quietly.
"""

from __future__ import annotations

import errno
import gzip
import os
import shutil
import stat
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sluice.channels.plan import ObjectRef
from sluice.channels.spec import Compression
from sluice.storage.base import ObjectStore

__all__ = ["PipeFeeder", "Progress", "stage_file_channel"]

#: Called with (objects, bytes) as each object lands.
Progress = Callable[[int, int], None]
_CHUNK = 1 << 20


def _place(obj: ObjectRef, store: ObjectStore, target: Path, link_ok: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if link_ok:
        src = store.local_path(obj.bucket, obj.key)
        if src is not None:
            try:
                os.link(src, target)
                return
            except FileExistsError:
                target.unlink()
                os.link(src, target)
                return
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                    raise
            shutil.copyfile(src, target)
            return
    store.download_file(obj.bucket, obj.key, target)


def stage_file_channel(
    objects: Iterable[ObjectRef],
    store: ObjectStore,
    dest: Path,
    *,
    link_ok: bool,
    progress: Progress | None = None,
    workers: int = 16,
) -> int:
    """Place ``objects`` under ``dest`` at their relative paths. Returns the bytes staged."""
    dest.mkdir(parents=True, exist_ok=True)
    objs = list(objects)
    total = 0
    lock = threading.Lock()

    def one(obj: ObjectRef) -> None:
        nonlocal total
        _place(obj, store, dest / obj.rel_path, link_ok)
        with lock:
            total += obj.size
        if progress is not None:
            progress(1, obj.size)

    local = bool(objs) and link_ok and store.local_path(objs[0].bucket, objs[0].key) is not None
    if local or len(objs) <= 1:
        for obj in objs:
            one(obj)
    else:
        with ThreadPoolExecutor(max_workers=min(workers, len(objs))) as pool:
            for _ in pool.map(one, objs):
                pass
    return total


class PipeFeeder:
    """Streams objects into a FIFO on a thread; the script reads the FIFO like a file."""

    def __init__(
        self,
        objects: Iterable[ObjectRef],
        store: ObjectStore,
        fifo: Path,
        compression: Compression = Compression.NONE,
        progress: Progress | None = None,
    ) -> None:
        self.objects = list(objects)
        self.store = store
        self.fifo = fifo
        self.compression = compression
        self.progress = progress
        self.error: BaseException | None = None
        self.bytes_written = 0
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pipe-{fifo.name}", daemon=True)

    def start(self) -> PipeFeeder:
        self.fifo.parent.mkdir(parents=True, exist_ok=True)
        if (self.fifo.exists() or self.fifo.is_symlink()) and not stat.S_ISFIFO(self.fifo.lstat().st_mode):
            self.fifo.unlink()
        if not self.fifo.exists():
            os.mkfifo(self.fifo, 0o644)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            fd = os.open(self.fifo, os.O_WRONLY)
        except OSError as exc:
            if not self._closing.is_set():
                self.error = exc
            return
        try:
            with os.fdopen(fd, "wb", buffering=0) as out:
                for obj in self.objects:
                    if self._closing.is_set():
                        return
                    with self.store.open(obj.bucket, obj.key) as raw:
                        src = gzip.GzipFile(fileobj=raw) if self.compression is Compression.GZIP else raw
                        while chunk := src.read(_CHUNK):
                            out.write(chunk)
                            self.bytes_written += len(chunk)
                    if self.progress is not None:
                        self.progress(1, obj.size)
        except BrokenPipeError:
            return  # the reader closed the pipe early, which the contract allows
        except BaseException as exc:  # surfaced by close(); the job fails with it
            if not self._closing.is_set():
                self.error = exc

    def close(self, timeout: float = 5.0) -> None:
        """Stop feeding. If no reader ever opened the FIFO, open it briefly so the writer unblocks."""
        self._closing.set()
        if self._thread.is_alive():
            try:
                fd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)
            except OSError:
                fd = None
            self._thread.join(timeout)
            if fd is not None:
                os.close(fd)
            self._thread.join(timeout)
