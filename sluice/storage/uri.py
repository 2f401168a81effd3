"""``s3://bucket/key`` URIs and the rules that keep a key inside its bucket."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sluice.errors import InvalidKeyError, SpecError

__all__ = ["S3Uri", "validate_bucket", "validate_key"]

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


def validate_bucket(bucket: str) -> str:
    """Return ``bucket`` if it is a valid S3 bucket name, else raise :class:`SpecError`."""
    if not _BUCKET.match(bucket or "") or ".." in bucket:
        raise SpecError(
            f"invalid bucket name {bucket!r}: use 3-63 lower-case letters, digits, '.' or '-', "
            "starting and ending with a letter or digit."
        )
    return bucket


def validate_key(key: str, *, allow_empty: bool = False, allow_trailing_slash: bool = True) -> str:
    """Return ``key`` if it stays inside its bucket, else raise :class:`InvalidKeyError`.

    Refused: NUL bytes, a leading ``/``, and ``.`` or ``..`` segments, which would let a key name a
    file outside the bucket's directory in the local store (and mean something different on S3).
    """
    if not key:
        if allow_empty:
            return key
        raise InvalidKeyError("an object key must not be empty: name the object, e.g. 'data/part-0.csv'.")
    if "\x00" in key:
        raise InvalidKeyError(f"object key {key!r} contains a NUL byte; remove it.")
    if key.startswith("/"):
        raise InvalidKeyError(f"object key {key!r} is absolute; keys are relative to their bucket: drop the '/'.")
    parts = key.split("/")
    body = parts[:-1] if (allow_trailing_slash and parts[-1] == "") else parts
    for seg in body:
        if seg in (".", ".."):
            raise InvalidKeyError(
                f"object key {key!r} has a {seg!r} segment, which would leave its bucket; "
                "use a plain relative key."
            )
        if seg == "":
            raise InvalidKeyError(f"object key {key!r} has an empty segment ('//'); remove it.")
    if len(key.encode()) > 1024:
        raise InvalidKeyError(f"object key {key[:40]!r}... is {len(key.encode())} bytes; S3 allows 1024.")
    return key


@dataclass(frozen=True)
class S3Uri:
    """A parsed ``s3://bucket/key`` URI. ``key`` may be a prefix (possibly empty)."""

    bucket: str
    key: str = ""

    @classmethod
    def parse(cls, uri: str) -> S3Uri:
        if not isinstance(uri, str) or not uri.startswith("s3://"):
            raise SpecError(f"{uri!r} is not an s3:// URI; write it as s3://bucket/key.")
        rest = uri[len("s3://"):]
        bucket, _, key = rest.partition("/")
        validate_bucket(bucket)
        validate_key(key, allow_empty=True)
        return cls(bucket, key)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def join(self, *parts: str) -> S3Uri:
        """Append path parts with single slashes, as ``os.path.join`` would for keys."""
        key = self.key
        for part in parts:
            part = part.strip("/")
            if not part:
                continue
            key = f"{key.rstrip('/')}/{part}" if key else part
        validate_key(key, allow_empty=True)
        return S3Uri(self.bucket, key)
