"""Object storage: URIs, the small store interface, and the backends (embedded local, S3-compatible).

Backends are chosen by configuration (:mod:`sluice.config`) and imported lazily, so ``import sluice``
does not pay for boto3 when the embedded store is in use.
"""

from __future__ import annotations

from sluice.config import Config, StorageConfig, current_config
from sluice.storage.base import ObjectInfo, ObjectStore, join_key, relative_key
from sluice.storage.uri import S3Uri, validate_bucket, validate_key

__all__ = [
    "ObjectInfo",
    "ObjectStore",
    "S3Uri",
    "join_key",
    "open_store",
    "relative_key",
    "store_for",
    "validate_bucket",
    "validate_key",
]


def store_for(config: Config) -> ObjectStore:
    """The store ``config`` names: an S3-compatible endpoint if one is configured, else the local store."""
    return open_store(config.storage, config.store_root)


def open_store(storage: StorageConfig, local_root=None) -> ObjectStore:
    if storage.is_local:
        from sluice.storage.local import LocalStore

        return LocalStore(local_root if local_root is not None else current_config().store_root)
    from sluice.storage.s3 import S3Store

    return S3Store(storage)
