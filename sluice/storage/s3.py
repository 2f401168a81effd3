"""The S3-compatible object store: AWS S3, MinIO, Ceph, moto, ... through boto3 with path-style addressing.

boto3 clients hold sockets and thread pools that must not cross ``fork`` or pickling, so the store pickles
as its :class:`~sluice.config.StorageConfig` and each process builds its own client lazily on first use.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn, cast
from urllib.parse import urlparse

import boto3
import boto3.exceptions
import s3transfer.exceptions
import urllib3.exceptions
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError

from sluice.config import StorageConfig
from sluice.errors import NoSuchKeyError, SpecError, StorageError
from sluice.storage.base import ObjectInfo, ObjectStore, atomic_target

if TYPE_CHECKING:
    from botocore.client import BaseClient

__all__ = ["S3Store"]

_MiB = 1 << 20

#: Everything boto3, botocore, s3transfer or urllib3 may raise for a failed request or transfer.
#: (s3transfer's FatalError is a CancelledError raised on interrupt; it is left alone.)
_BOTO_ERRORS: tuple[type[BaseException], ...] = (
    ClientError,
    BotoCoreError,
    boto3.exceptions.Boto3Error,
    s3transfer.exceptions.RetriesExceededError,
    s3transfer.exceptions.S3UploadFailedError,
    s3transfer.exceptions.S3DownloadFailedError,
    urllib3.exceptions.HTTPError,
)
if hasattr(s3transfer.exceptions, "S3CopyFailedError"):  # added in newer s3transfer releases
    _BOTO_ERRORS += (s3transfer.exceptions.S3CopyFailedError,)

_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NotFound", "404"})

# One lock for building clients (boto3 sessions are not thread-safe). A child forked while another
# thread held it would inherit it locked forever, so the child gets a fresh one.
_CLIENT_LOCK = threading.Lock()


def _reset_lock_in_child() -> None:
    global _CLIENT_LOCK
    _CLIENT_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_reset_lock_in_child)


def _client_error(exc: BaseException) -> ClientError | None:
    """The ClientError behind ``exc``, looking through wrappers that s3transfer and boto3 add."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, ClientError):
            return cur
        seen.add(id(cur))
        last = getattr(cur, "last_exception", None)  # s3transfer's RetriesExceededError
        cur = last if isinstance(last, BaseException) else (cur.__cause__ or cur.__context__)
    return None


def _error_code(err: ClientError) -> tuple[str, int]:
    code = str(err.response.get("Error", {}).get("Code", ""))
    status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


_CREDENTIAL_CODES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"}
)
_ARCHIVED_CODES = frozenset({"InvalidObjectState", "ObjectNotInActiveTierError"})


def _hint(code: str, status: int) -> str:
    """What to do about a refused request."""
    if code in _CREDENTIAL_CODES or status == 401:
        return (
            "check the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or [storage] in the config) "
            "and what they are allowed to do"
        )
    if code in _ARCHIVED_CODES:
        return "the object is archived (e.g. Glacier); restore it before reading it"
    if status >= 500:
        return "the storage service failed; try again, and check the service if it keeps failing"
    return "check the endpoint, the bucket and the key"


class _S3Body(io.RawIOBase):
    """A streaming GetObject body as a plain binary stream whose failures are :class:`StorageError`."""

    def __init__(self, body: Any, fail: Callable[[BaseException], NoReturn]) -> None:
        super().__init__()
        self._body = body
        self._fail = fail

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._body.read(len(buffer))  # read(), unlike readinto(), checks Content-Length at EOF
        except _BOTO_ERRORS as exc:
            self._fail(exc)
        n = len(data)
        buffer[:n] = data
        return n

    def readall(self) -> bytes:
        try:
            return cast(bytes, self._body.read())
        except _BOTO_ERRORS as exc:
            self._fail(exc)

    def close(self) -> None:
        if not self.closed:
            try:
                self._body.close()
            finally:
                super().close()


class S3Store(ObjectStore):
    """Objects in an S3-compatible service. Every failure surfaces as a :mod:`sluice.errors` type.

    ``connect_timeout`` and ``read_timeout`` are seconds per HTTP request; ``max_attempts`` is how many
    times a request is tried in all (``None``: botocore's standard-mode default, or ``AWS_MAX_ATTEMPTS``).
    """

    kind = "s3"

    def __init__(
        self,
        config: StorageConfig,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_attempts: int | None = None,
    ) -> None:
        if config.endpoint_url is not None:
            parsed = urlparse(config.endpoint_url)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise SpecError(
                    f"storage endpoint_url {config.endpoint_url!r} is not an http(s) URL; "
                    "write it as e.g. http://127.0.0.1:9000 (AWS_ENDPOINT_URL_S3 or [storage] endpoint_url)."
                )
        self.config = config
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_attempts = max_attempts
        self._client_obj: BaseClient | None = None
        self._client_pid = -1
        self._multipart_threshold = 8 * _MiB
        self._transfer_config = TransferConfig(
            multipart_threshold=self._multipart_threshold,
            multipart_chunksize=8 * _MiB,
            max_concurrency=8,
            use_threads=True,
            preferred_transfer_client="classic",
        )

    def __reduce__(self) -> tuple[Any, ...]:  # ship as constructor args: a worker rebuilds its own client
        return (S3Store, (self.config, self.connect_timeout, self.read_timeout, self.max_attempts))

    def __repr__(self) -> str:
        return f"S3Store({self.endpoint!r})"

    @property
    def endpoint(self) -> str:
        """The endpoint, as messages name it."""
        return self.config.endpoint_url or f"AWS S3 ({self.config.region})"

    # ---- the client ---------------------------------------------------------------------------
    def _client(self) -> BaseClient:
        pid = os.getpid()
        client = self._client_obj
        if client is not None and self._client_pid == pid:
            return client
        with _CLIENT_LOCK:
            if self._client_obj is None or self._client_pid != pid:
                self._client_obj = self._build_client()
                self._client_pid = pid
            return self._client_obj

    def _build_client(self) -> BaseClient:
        retries: dict[str, Any] = {"mode": "standard"}
        if self.max_attempts is not None:
            retries["total_max_attempts"] = self.max_attempts  # counts the first try too
        boto_config = BotoConfig(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            max_pool_connections=64,  # prefix transfers x per-file multipart threads
            retries=retries,  # type: ignore[arg-type]
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            # Newer botocore adds CRC checksums to every upload by default; many S3-compatible servers
            # reject them. Send and check them only where the API requires it.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = boto3.session.Session(
            aws_access_key_id=self.config.access_key_id,
            aws_secret_access_key=self.config.secret_access_key,
            aws_session_token=self.config.session_token,
            region_name=self.config.region,
        )
        try:
            return session.client("s3", endpoint_url=self.config.endpoint_url, config=boto_config)
        except (ValueError, BotoCoreError) as exc:
            raise StorageError(f"cannot create an S3 client for {self.endpoint}: {exc}") from exc

    # ---- errors -------------------------------------------------------------------------------
    def _raise(self, exc: BaseException, op: str, bucket: str, key: str | None = None) -> NoReturn:
        """Re-raise a boto3/botocore/s3transfer failure as a sluice error naming what was being done."""
        where = f"s3://{bucket}/{key}" if key is not None else f"s3://{bucket}"
        client_error = _client_error(exc)
        if client_error is not None:
            code, status = _error_code(client_error)
            if code == "NoSuchBucket":
                missing = client_error.response.get("Error", {}).get("BucketName") or bucket
                raise NoSuchKeyError(
                    f"bucket {missing!r} does not exist at {self.endpoint} ({op} {where}); "
                    "create it first (Session.default_bucket() or `aws s3 mb`) or fix the bucket name."
                ) from exc
            if code in _MISSING_CODES or status == 404:
                raise NoSuchKeyError(
                    f"no object {where} at {self.endpoint} ({op}); check the bucket and key, "
                    "e.g. list the prefix to see what is there."
                ) from exc
            message = str(client_error.response.get("Error", {}).get("Message", "") or client_error)
            raise StorageError(
                f"S3 {op} of {where} failed at {self.endpoint}: {code or status}: {message.rstrip('.')}; "
                f"{_hint(code, status)}."
            ) from exc
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            raise StorageError(
                f"no usable credentials for S3 at {self.endpoint} ({op} {where}): set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or access_key_id / secret_access_key under [storage] in the config."
            ) from exc
        if isinstance(exc, BotoConnectionError | urllib3.exceptions.HTTPError):
            raise StorageError(
                f"cannot reach the S3 endpoint {self.endpoint} ({op} {where}): {exc}. Check that the "
                "server is running and that AWS_ENDPOINT_URL_S3 / [storage] endpoint_url points at it."
            ) from exc
        raise StorageError(f"S3 {op} of {where} failed at {self.endpoint}: {exc}") from exc

    @contextmanager
    def _translating(self, op: str, bucket: str, key: str | None = None) -> Iterator[None]:
        try:
            yield
        except _BOTO_ERRORS as exc:
            self._raise(exc, op, bucket, key)

    @staticmethod
    def _etag(value: Any) -> str:
        return str(value or "").strip('"')

    def _head(self, bucket: str, key: str, op: str = "stat") -> ObjectInfo:
        with self._translating(op, bucket, key):
            resp = self._client().head_object(Bucket=bucket, Key=key)
        modified = resp.get("LastModified")
        return ObjectInfo(
            bucket,
            key,
            int(resp.get("ContentLength", 0)),
            self._etag(resp.get("ETag")),
            modified.timestamp() if modified is not None else 0.0,
        )

    # ---- primitives ---------------------------------------------------------------------------
    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        self._check(bucket, prefix, allow_empty=True)
        return self._list(bucket, prefix)

    def _list(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self._client().get_paginator("list_objects_v2")
        pages = iter(paginator.paginate(Bucket=bucket, Prefix=prefix))
        while True:
            with self._translating("list", bucket, prefix):
                page = next(pages, None)
            if page is None:
                return
            for obj in page.get("Contents", ()):
                modified = obj.get("LastModified")
                yield ObjectInfo(
                    bucket,
                    obj["Key"],
                    int(obj.get("Size", 0)),
                    self._etag(obj.get("ETag")),
                    modified.timestamp() if modified is not None else 0.0,
                )

    def open(self, bucket: str, key: str) -> BinaryIO:
        self._check(bucket, key)
        with self._translating("open", bucket, key):
            resp = self._client().get_object(Bucket=bucket, Key=key)

        def fail(exc: BaseException) -> NoReturn:
            self._raise(exc, "read", bucket, key)

        return cast(BinaryIO, io.BufferedReader(_S3Body(resp["Body"], fail), buffer_size=_MiB))

    def put(self, bucket: str, key: str, data: bytes | BinaryIO) -> ObjectInfo:
        # A PUT (and a completed multipart upload) replaces the object atomically on S3.
        self._check(bucket, key)
        with self._translating("put", bucket, key):
            if isinstance(data, bytes | bytearray | memoryview) and len(data) <= self._multipart_threshold:
                self._client().put_object(Bucket=bucket, Key=key, Body=bytes(data))
            else:  # streams, and bytes big enough for a parallel multipart upload
                if isinstance(data, bytes | bytearray | memoryview):
                    data = cast(BinaryIO, io.BytesIO(data))
                with create_transfer_manager(self._client(), self._transfer_config) as manager:
                    manager.upload(data, bucket, key).result()
        return self._head(bucket, key, "put")

    def stat(self, bucket: str, key: str) -> ObjectInfo:
        self._check(bucket, key)
        return self._head(bucket, key)

    def delete(self, bucket: str, key: str) -> None:
        self._check(bucket, key)
        with self._translating("delete", bucket, key):
            self._client().delete_object(Bucket=bucket, Key=key)

    def presign(self, bucket: str, key: str, expires_in: int = 3600) -> str:
        self._check(bucket, key)
        with self._translating("presign", bucket, key):
            return str(
                self._client().generate_presigned_url(
                    "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in
                )
            )

    def create_bucket(self, bucket: str) -> None:
        self._check(bucket)
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if self.config.region != "us-east-1":  # us-east-1 refuses an explicit LocationConstraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.config.region}
        try:
            self._client().create_bucket(**kwargs)
        except ClientError as exc:
            if _error_code(exc)[0] == "BucketAlreadyOwnedByYou":
                return
            self._raise(exc, "create_bucket", bucket)
        except _BOTO_ERRORS as exc:
            self._raise(exc, "create_bucket", bucket)

    def bucket_exists(self, bucket: str) -> bool:
        """Whether ``bucket`` exists. A bucket we may not inspect (403) exists, just not for us to list."""
        self._check(bucket)
        try:
            self._client().head_bucket(Bucket=bucket)
        except ClientError as exc:
            code, status = _error_code(exc)
            if status == 404 or code in _MISSING_CODES:
                return False
            if status == 403:
                return True
            self._raise(exc, "bucket_exists", bucket)
        except _BOTO_ERRORS as exc:
            self._raise(exc, "bucket_exists", bucket)
        return True

    # ---- faster paths -------------------------------------------------------------------------
    def upload_file(self, path: str | os.PathLike[str], bucket: str, key: str) -> ObjectInfo:
        """Upload with managed transfers: large files go up as parallel multipart uploads."""
        self._check(bucket, key)
        with (
            self._translating("upload", bucket, key),
            create_transfer_manager(self._client(), self._transfer_config) as manager,
        ):
            manager.upload(os.fspath(path), bucket, key).result()
        return self._head(bucket, key, "upload")

    def download_file(self, bucket: str, key: str, path: str | os.PathLike[str], size: int | None = None) -> int:
        """Download into a temp file beside ``path``, then rename it into place.

        An object known (from a listing) to be below the multipart threshold is one streamed GET; anything
        else goes through the managed transfer, which asks for the size and fetches ranges in parallel.
        """
        self._check(bucket, key)
        if size is not None and size < self._transfer_config.multipart_threshold:
            with (
                atomic_target(path) as tmp,
                open(tmp, "wb") as out,
                self._translating("download", bucket, key),
            ):
                body = self._client().get_object(Bucket=bucket, Key=key)["Body"]
                for chunk in body.iter_chunks(1 << 20):
                    out.write(chunk)
                return out.tell()
        with (
            atomic_target(path) as tmp,
            open(tmp, "wb") as out,
            self._translating("download", bucket, key),
            create_transfer_manager(self._client(), self._transfer_config) as manager,
        ):
            manager.download(bucket, key, out).result()
            out.flush()
            return os.fstat(out.fileno()).st_size  # ranged parts may land out of order: ask the file

    def copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> ObjectInfo:
        """Copy inside the service (CopyObject / UploadPartCopy): the bytes never come to this machine."""
        self._check(src_bucket, src_key)
        self._check(dst_bucket, dst_key)
        with (
            self._translating("copy", src_bucket, src_key),
            create_transfer_manager(self._client(), self._transfer_config) as manager,
        ):
            manager.copy({"Bucket": src_bucket, "Key": src_key}, dst_bucket, dst_key).result()
        return self._head(dst_bucket, dst_key, "copy")
