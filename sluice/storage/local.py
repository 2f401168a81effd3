"""The embedded object store: ``s3://bucket/key`` is the file ``<root>/bucket/key``.

Objects are immutable files (mode 0444) written to a scratch file and renamed into place, so a reader
never sees half an object and a put never changes bytes another holder of the old file still reads.
When sluice runs as root, objects are also owned by ``nobody``: a sandboxed script (root without
capabilities) is then not their owner, so it can neither write nor ``chmod`` a hard link to one. That
is what makes zero-copy staging by hard link safe (see :mod:`sluice.channels.staging`).

The etag is a version tag (size, modification time and inode), not an MD5: it changes whenever an
object is replaced, which is what callers compare it for.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from sluice.errors import NoSuchKeyError, StorageError
from sluice.storage.base import ObjectInfo, ObjectStore, atomic_target

__all__ = ["LocalStore"]

_TMP = ".sluice-tmp"
_NOBODY = 65534
_AS_ROOT = os.geteuid() == 0


class LocalStore(ObjectStore):
    """Buckets are directories under ``root``; keys are relative paths inside them."""

    kind = "local"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __reduce__(self):  # ship as constructor args: a worker rebuilds its own store
        return (LocalStore, (str(self.root),))

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    # ---- paths --------------------------------------------------------------------------------
    def _bucket_dir(self, bucket: str) -> Path:
        return self.root / bucket

    def _path(self, bucket: str, key: str) -> Path:
        self._check(bucket, key)
        return self.root / bucket / key

    def _info(self, bucket: str, key: str, st: os.stat_result) -> ObjectInfo:
        etag = f"{st.st_size:x}-{st.st_mtime_ns:x}-{st.st_ino:x}"
        return ObjectInfo(bucket, key, st.st_size, etag, st.st_mtime)

    # ---- primitives ---------------------------------------------------------------------------
    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        self._check(bucket, prefix, allow_empty=True)
        base = self._bucket_dir(bucket)
        if not base.is_dir():
            raise NoSuchKeyError(f"bucket {bucket!r} does not exist in the local store at {self.root}.")
        # Start the walk at the deepest directory the prefix names, then filter by the full prefix.
        start_rel = prefix.rpartition("/")[0]
        start = base / start_rel if start_rel else base
        found: list[tuple[str, os.stat_result]] = []
        stack = [(start, start_rel)]
        while stack:
            directory, rel = stack.pop()
            try:
                entries = list(os.scandir(directory))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:  # the scratch dir is <root>/.sluice-tmp, beside the buckets, not in one
                key = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_dir(follow_symlinks=False):
                    if key.startswith(prefix) or prefix.startswith(key + "/"):
                        stack.append((Path(entry.path), key))
                elif entry.is_file(follow_symlinks=False) and key.startswith(prefix):
                    found.append((key, entry.stat(follow_symlinks=False)))
        found.sort(key=lambda ks: ks[0])
        for key, st in found:
            yield self._info(bucket, key, st)

    def open(self, bucket: str, key: str) -> BinaryIO:
        path = self._path(bucket, key)
        try:
            return open(path, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NoSuchKeyError(f"no object s3://{bucket}/{key} in the local store.") from None

    def put(self, bucket: str, key: str, data: bytes | BinaryIO) -> ObjectInfo:
        path = self._path(bucket, key)
        if not self._bucket_dir(bucket).is_dir():  # before the marker case, which would create the bucket
            raise NoSuchKeyError(
                f"bucket {bucket!r} does not exist; create it first (Session.default_bucket())."
            )
        if key.endswith("/"):  # a "folder" marker: the directory is the marker
            path.mkdir(parents=True, exist_ok=True)
            return ObjectInfo(bucket, key, 0)
        tmpdir = self.root / _TMP
        tmpdir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=tmpdir, prefix="put-")
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(data, bytes | bytearray | memoryview):
                    out.write(data)
                else:
                    shutil.copyfileobj(data, out, 1 << 20)
            os.chmod(tmp, 0o444)
            if _AS_ROOT:
                with contextlib.suppress(OSError):
                    os.chown(tmp, _NOBODY, _NOBODY)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise StorageError(
                    f"cannot store s3://{bucket}/{key}: a parent of it is already an object. The local store "
                    "maps keys to files, so 'a' and 'a/b' cannot both exist; rename one of them."
                ) from None
            if path.is_dir():
                raise StorageError(
                    f"cannot store s3://{bucket}/{key}: objects already exist below it "
                    f"(s3://{bucket}/{key}/...); rename one of them."
                )
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self._info(bucket, key, path.stat())

    def stat(self, bucket: str, key: str) -> ObjectInfo:
        path = self._path(bucket, key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise NoSuchKeyError(f"no object s3://{bucket}/{key} in the local store.") from None
        if not path.is_file():
            raise NoSuchKeyError(f"s3://{bucket}/{key} is a prefix, not an object.")
        return self._info(bucket, key, st)

    def delete(self, bucket: str, key: str) -> None:
        path = self._path(bucket, key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return
        except IsADirectoryError:
            return
        # Remove directories the object leaves empty, up to the bucket, as S3 has no directories.
        parent, base = path.parent, self._bucket_dir(bucket)
        while parent != base:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def presign(self, bucket: str, key: str, expires_in: int = 3600) -> str:
        return self._path(bucket, key).resolve().as_uri()

    def create_bucket(self, bucket: str) -> None:
        self._check(bucket)
        self._bucket_dir(bucket).mkdir(parents=True, exist_ok=True)

    def bucket_exists(self, bucket: str) -> bool:
        self._check(bucket)
        return self._bucket_dir(bucket).is_dir()

    # ---- faster paths -------------------------------------------------------------------------
    def local_path(self, bucket: str, key: str) -> Path | None:
        path = self._path(bucket, key)
        return path if path.is_file() else None

    def upload_file(self, path: str | os.PathLike[str], bucket: str, key: str) -> ObjectInfo:
        with open(path, "rb") as fh:
            return self.put(bucket, key, fh)

    def download_file(self, bucket: str, key: str, path: str | os.PathLike[str], size: int | None = None) -> int:
        src = self._path(bucket, key)
        if not src.is_file():
            raise NoSuchKeyError(f"no object s3://{bucket}/{key} in the local store.")
        with atomic_target(path) as tmp:
            shutil.copyfile(src, tmp)
            return tmp.stat().st_size
