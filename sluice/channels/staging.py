"""Place a channel's objects in a directory: File mode, and FastFile mode's read-only variant.

File mode hard-links objects that are already on this machine, and downloads the rest in parallel. A
link shares the store's inode, so it is made only where the script cannot change it: under the sandbox
(no capabilities) and for objects the script's user does not own (the embedded store, run as root,
gives its objects to ``nobody``), or into a channel bound read-only (FastFile). Otherwise it copies,
as it does across file systems.

FastFile mode places objects the same way and then makes the tree read-only (files 0444, directories
0555) as a fallback for the read-only mount the sandbox gives it (see :mod:`sluice.channels.delivery`).

Pipe mode lives in :mod:`sluice.channels.pipe`; :class:`PipeFeeder` is re-exported here for callers
that import it from this module.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sluice.channels.pipe import PipeFeeder
from sluice.channels.units import ObjectRef, Progress
from sluice.storage.base import ObjectStore

__all__ = ["PipeFeeder", "Progress", "make_read_only", "make_writable", "stage_file_channel"]

_READ_ONLY_FILE = 0o444
_READ_ONLY_DIR = 0o555


def _place(obj: ObjectRef, store: ObjectStore, target: Path, link_ok: bool, writable: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if link_ok:
        src = store.local_path(obj.bucket, obj.key)
        if src is not None and writable and os.stat(src).st_uid == os.geteuid():
            shutil.copyfile(src, target)  # the script would own the inode: chmod would let it write the store
            return
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
    store.download_file(obj.bucket, obj.key, target, size=obj.size)


def stage_file_channel(
    objects: Iterable[ObjectRef],
    store: ObjectStore,
    dest: Path,
    *,
    link_ok: bool,
    progress: Progress | None = None,
    workers: int = 16,
    writable: bool = True,
) -> int:
    """Place ``objects`` under ``dest`` at their relative paths. Returns the bytes staged.

    ``writable`` is false when ``dest`` will be bound read-only (FastFile): links are then always safe.
    """
    dest.mkdir(parents=True, exist_ok=True)
    objs = list(objects)
    total = 0
    lock = threading.Lock()

    def one(obj: ObjectRef) -> None:
        nonlocal total
        _place(obj, store, dest / obj.rel_path, link_ok, writable)
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


def make_read_only(root: Path) -> None:
    """Files below ``root`` 0444, directories (``root`` included) 0555; symlinks are left alone.

    Hard-linked store objects are already 0444, so their shared inode is not touched.
    """
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) != _READ_ONLY_FILE:
                os.chmod(path, _READ_ONLY_FILE)
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, _READ_ONLY_DIR)
    os.chmod(root, _READ_ONLY_DIR)


def make_writable(root: Path) -> None:
    """Give the owner write access to ``root``'s directories again (before restaging or removing it)."""
    if not root.is_dir() or root.is_symlink():
        return
    for dirpath, dirnames, _ in os.walk(root):
        os.chmod(dirpath, stat.S_IMODE(os.stat(dirpath).st_mode) | stat.S_IWUSR | stat.S_IXUSR)
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
