"""``sluice.s3``: the SDK's ``S3Uploader`` and ``S3Downloader``, over sluice's configured store."""

from __future__ import annotations

from pathlib import Path

from sluice.errors import SpecError
from sluice.session import Session
from sluice.storage import S3Uri, join_key, relative_key

__all__ = ["S3Downloader", "S3Uploader", "parse_s3_url", "s3_path_join"]


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` → ``(bucket, key)``."""
    uri = S3Uri.parse(url)
    return uri.bucket, uri.key


def s3_path_join(*args: str, with_end_slash: bool = False) -> str:
    """Join S3 path parts with single slashes, keeping a leading ``s3://``."""
    parts = [a for a in args if a]
    if not parts:
        return ""
    head = parts[0]
    prefix = "s3://" if head.startswith("s3://") else ""
    body = "/".join(p.removeprefix("s3://").strip("/") for p in parts if p.removeprefix("s3://").strip("/"))
    return prefix + body + ("/" if with_end_slash else "")


def _session(sagemaker_session: Session | None) -> Session:
    return sagemaker_session or Session()


class S3Uploader:
    """Upload local files and strings to an S3 URI."""

    @staticmethod
    def upload(local_path: str, desired_s3_uri: str, kms_key: str | None = None,
               sagemaker_session: Session | None = None, callback=None) -> str:
        """Upload a file or a directory below ``desired_s3_uri``; returns the URI of what was uploaded."""
        sess = _session(sagemaker_session)
        target = S3Uri.parse(desired_s3_uri)
        src = Path(local_path)
        if not src.exists():
            raise SpecError(f"S3Uploader.upload: {local_path!r} does not exist.")
        if not sess.store.bucket_exists(target.bucket):
            sess.store.create_bucket(target.bucket)
        if src.is_dir():
            sess.store.upload_dir(src, target.bucket, target.key)
            return str(target)
        key = join_key(target.key, src.name)
        sess.store.upload_file(src, target.bucket, key)
        return f"s3://{target.bucket}/{key}"

    @staticmethod
    def upload_string_as_file_body(body: str, desired_s3_uri: str, kms_key: str | None = None,
                                   sagemaker_session: Session | None = None) -> str:
        sess = _session(sagemaker_session)
        target = S3Uri.parse(desired_s3_uri)
        if not sess.store.bucket_exists(target.bucket):
            sess.store.create_bucket(target.bucket)
        return sess.upload_string_as_file_body(body, target.bucket, target.key)

    @staticmethod
    def upload_bytes(b: bytes, s3_uri: str, kms_key: str | None = None,
                     sagemaker_session: Session | None = None) -> str:
        return S3Uploader.upload_string_as_file_body(b, s3_uri, kms_key, sagemaker_session)  # type: ignore[arg-type]


class S3Downloader:
    """List, read and download objects by S3 URI."""

    @staticmethod
    def download(s3_uri: str, local_path: str, kms_key: str | None = None,
                 sagemaker_session: Session | None = None) -> list[str]:
        """Download the object, or every object under the prefix, into ``local_path``."""
        sess = _session(sagemaker_session)
        uri = S3Uri.parse(s3_uri)
        dest = Path(local_path)
        out = []
        for o in sess.store.list(uri.bucket, uri.key):
            if o.key.endswith("/"):
                continue
            rel = Path(o.key).name if o.key == uri.key else relative_key(o.key, uri.key)
            sess.store.download_file(uri.bucket, o.key, dest / rel)
            out.append(str(dest / rel))
        return out

    @staticmethod
    def list(s3_uri: str, sagemaker_session: Session | None = None) -> list[str]:
        sess = _session(sagemaker_session)
        uri = S3Uri.parse(s3_uri)
        return [f"s3://{uri.bucket}/{o.key}" for o in sess.store.list(uri.bucket, uri.key) if not o.key.endswith("/")]

    @staticmethod
    def read_file(s3_uri: str, sagemaker_session: Session | None = None) -> str:
        return S3Downloader.read_bytes(s3_uri, sagemaker_session).decode("utf-8")

    @staticmethod
    def read_bytes(s3_uri: str, sagemaker_session: Session | None = None) -> bytes:
        sess = _session(sagemaker_session)
        uri = S3Uri.parse(s3_uri)
        return sess.store.get_bytes(uri.bucket, uri.key)
