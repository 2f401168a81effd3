"""The one small object-store interface every backend implements, and what is derived from it.

A backend supplies six primitives — :meth:`list`, :meth:`open`, :meth:`put`, :meth:`stat`,
:meth:`delete`, :meth:`presign` — plus bucket creation. Everything else (exists, bytes, file
transfers, copy, prefix sync) is built here once; a backend overrides a derived method only for a
faster path (the local store copies files kernel-side and offers :meth:`ObjectStore.local_path` for
zero-copy staging; the S3 store uses parallel multipart transfers and server-side copy).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sluice.errors import NoSuchKeyError
from sluice.storage.uri import validate_bucket, validate_key

__all__ = ["ObjectInfo", "ObjectStore"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing or stat says of one object."""

    bucket: str
    key: str
    size: int
    etag: str = ""
    last_modified: float = 0.0

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class ObjectStore(ABC):
    """A bucket/key object store. Keys are validated on every call, so none escapes its bucket."""

    #: A short name for messages ("local", "s3").
    kind: str = "abstract"

    # ---- primitives -------------------------------------------------------------------------
    @abstractmethod
    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, in lexicographic key order (S3's list order)."""

    @abstractmethod
    def open(self, bucket: str, key: str) -> BinaryIO:
        """A readable binary stream of the object; raises :class:`NoSuchKeyError` if it is missing."""

    @abstractmethod
    def put(self, bucket: str, key: str, data: bytes | BinaryIO) -> ObjectInfo:
        """Store an object atomically: readers see the old object or the whole new one, never a part."""

    @abstractmethod
    def stat(self, bucket: str, key: str) -> ObjectInfo:
        """Size and etag of one object; raises :class:`NoSuchKeyError` if it is missing."""

    @abstractmethod
    def delete(self, bucket: str, key: str) -> None:
        """Remove an object. Removing a missing object is not an error (as in S3)."""

    @abstractmethod
    def presign(self, bucket: str, key: str, expires_in: int = 3600) -> str:
        """A URL that reads the object without credentials until it expires."""

    @abstractmethod
    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` if it does not exist."""

    @abstractmethod
    def bucket_exists(self, bucket: str) -> bool:
        """Whether ``bucket`` exists."""

    # ---- derived ----------------------------------------------------------------------------
    def exists(self, bucket: str, key: str) -> bool:
        try:
            self.stat(bucket, key)
        except NoSuchKeyError:
            return False
        return True

    def get_bytes(self, bucket: str, key: str) -> bytes:
        with self.open(bucket, key) as fh:
            return fh.read()

    def local_path(self, bucket: str, key: str) -> Path | None:
        """The file holding the object's bytes when they are already on this machine, else ``None``.

        Callers use it for zero-copy staging; the file must be treated as read-only.
        """
        return None

    def upload_file(self, path: str | os.PathLike[str], bucket: str, key: str) -> ObjectInfo:
        with open(path, "rb") as fh:
            return self.put(bucket, key, fh)

    def download_file(self, bucket: str, key: str, path: str | os.PathLike[str], size: int | None = None) -> int:
        """Write the object to ``path`` (atomically: a temp file renamed into place). Returns bytes.

        ``size``, when the caller already knows it (from a listing), lets a backend skip asking.
        """
        with atomic_target(path) as tmp, open(tmp, "wb") as out, self.open(bucket, key) as src:
            shutil.copyfileobj(src, out, _CHUNK)
            return out.tell()

    def copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> ObjectInfo:
        self._check(src_bucket, src_key)
        self._check(dst_bucket, dst_key)  # refuse a bad destination before reading the source
        with self.open(src_bucket, src_key) as fh:
            return self.put(dst_bucket, dst_key, fh)

    def download_prefix(
        self, bucket: str, prefix: str, dest: str | os.PathLike[str], *, workers: int = 8
    ) -> list[Path]:
        """Download every object under ``prefix`` into ``dest`` at its path relative to the prefix."""
        dest = Path(dest)
        objs = [o for o in self.list(bucket, prefix) if not o.key.endswith("/")]
        targets = [dest / relative_key(o.key, prefix) for o in objs]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda ot: self.download_file(bucket, ot[0].key, ot[1], size=ot[0].size),
                          zip(objs, targets, strict=True)))
        return targets

    def upload_dir(
        self, src: str | os.PathLike[str], bucket: str, prefix: str, *, workers: int = 8
    ) -> list[ObjectInfo]:
        """Upload every regular file under ``src`` (symlinks are not followed, as in SageMaker)."""
        src = Path(src)
        files = sorted(p for p in src.rglob("*") if p.is_file() and not p.is_symlink())
        keys = [join_key(prefix, p.relative_to(src).as_posix()) for p in files]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda fk: self.upload_file(fk[0], bucket, fk[1]), zip(files, keys, strict=True)))

    # ---- helpers for subclasses --------------------------------------------------------------
    @staticmethod
    def _check(bucket: str, key: str | None = None, *, allow_empty: bool = False) -> None:
        validate_bucket(bucket)
        if key is not None:
            validate_key(key, allow_empty=allow_empty)


@contextmanager
def atomic_target(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temp file beside ``path`` to write into; renamed onto ``path`` on success, removed on failure.

    Readers of ``path`` never see a partial file, and the file gets ordinary permissions (0644), not
    the 0600 of a temp file.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def join_key(prefix: str, rel: str) -> str:
    """``prefix`` + ``rel`` with exactly one ``/`` between them (an empty prefix adds none)."""
    if not prefix:
        return rel
    return f"{prefix.rstrip('/')}/{rel.lstrip('/')}"


def relative_key(key: str, prefix: str) -> str:
    """Where ``key`` lands below a channel directory when the channel's URI is ``prefix``.

    ``s3://b/raw`` and ``s3://b/raw/`` both place ``raw/a/f.csv`` at ``a/f.csv``; a URI naming one object
    places it under its base name; a prefix ending inside a name (``data/part`` matching
    ``data/part-1.csv``) keeps that whole name.
    """
    if not prefix or prefix.endswith("/"):
        return key[len(prefix):]
    if key.startswith(prefix + "/"):
        return key[len(prefix) + 1:]
    head, _, _ = prefix.rpartition("/")
    return key[len(head) + 1:] if head else key
