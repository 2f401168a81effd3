"""Turn a channel spec into the objects each instance receives.

Resolution lists an ``S3Prefix`` or reads a ``ManifestFile``; assignment splits the result across
instances. Both run before any instance starts, so a missing prefix or a malformed manifest stops the
job before it does any work.

Shard assignment (SageMaker documents only "approximately 1/n of the objects"; this is sluice's
choice): objects are sorted by key, as S3 lists them, and object ``i`` goes to instance ``i mod n``
(host ``algo-(i mod n + 1)``). Every object lands on exactly one instance, counts differ by at most one,
and the same keys give the same assignment on every run and every backend. An instance left without
objects gets an empty directory and a warning.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sluice.channels.spec import ChannelSpec, DataType, Distribution
from sluice.errors import NoSuchKeyError, SluiceError, SpecError
from sluice.storage.base import ObjectStore, relative_key
from sluice.storage.uri import S3Uri, validate_key

__all__ = [
    "ChannelPlan",
    "InstanceChannel",
    "ObjectRef",
    "assign_shards",
    "parse_manifest",
    "plan_channel",
    "resolve_objects",
]

log = logging.getLogger("sluice.channels")


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """One object to deliver: where it is and where it lands relative to the channel directory."""

    bucket: str
    key: str
    size: int
    rel_path: str


@dataclass(frozen=True)
class InstanceChannel:
    """What one instance receives of a channel: the spec and its own objects, in delivery order.

    It travels inside the instance's task, so it carries only this instance's slice.
    """

    spec: ChannelSpec
    objects: tuple[ObjectRef, ...]
    instance_index: int = 0
    instance_count: int = 1


@dataclass(frozen=True)
class ChannelPlan:
    """A channel's objects, split per instance (``shards[i]`` is for ``algo-(i+1)``)."""

    spec: ChannelSpec
    shards: tuple[tuple[ObjectRef, ...], ...]

    @property
    def total_objects(self) -> int:
        return len({(o.bucket, o.key) for shard in self.shards for o in shard})

    def for_instance(self, index: int) -> InstanceChannel:
        """What instance ``index`` (``algo-(index+1)``) receives: the spec and its own objects."""
        return InstanceChannel(self.spec, self.shards[index], index, len(self.shards))

    def bytes_for(self, index: int) -> int:
        return sum(o.size for o in self.shards[index])


def parse_manifest(text: str, manifest_uri: str) -> tuple[S3Uri, list[str]]:
    """Parse a ManifestFile: ``[{"prefix": "s3://b/p/"}, "suffix-1", ...]`` → (prefix, suffixes)."""
    where = f"manifest {manifest_uri}"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(
            f"{where} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}). A manifest is a JSON "
            'array: [{"prefix": "s3://bucket/prefix/"}, "relative/key-1", ...].'
        ) from None
    if not isinstance(data, list) or not data:
        raise SpecError(f'{where} must be a non-empty JSON array whose first element is {{"prefix": "s3://..."}}.')
    head = data[0]
    if not isinstance(head, dict) or not isinstance(head.get("prefix"), str):
        raise SpecError(f'{where}: the first element must be {{"prefix": "s3://bucket/prefix/"}}, not {head!r}.')
    try:
        prefix = S3Uri.parse(head["prefix"])
    except SluiceError as exc:
        raise SpecError(f"{where}: its prefix is not a valid s3:// URI: {exc}") from None
    suffixes: list[str] = []
    for i, item in enumerate(data[1:], start=1):
        if not isinstance(item, str) or not item:
            raise SpecError(f"{where}: element {i} must be a non-empty string key suffix, not {item!r}.")
        try:
            validate_key(prefix.key + item)
        except SluiceError as exc:
            raise SpecError(f"{where}: element {i} ({item!r}): {exc}") from None
        suffixes.append(item)
    if not suffixes:
        raise SpecError(f"{where} lists no objects after its prefix; add at least one key suffix.")
    return prefix, suffixes


def resolve_objects(spec: ChannelSpec, store: ObjectStore) -> list[ObjectRef]:
    """The channel's objects in key order. Raises :class:`SpecError` if there are none or any is missing."""
    uri = S3Uri.parse(spec.s3_uri)
    if spec.data_type is DataType.S3_PREFIX:
        try:
            objs = [
                ObjectRef(o.bucket, o.key, o.size, relative_key(o.key, uri.key))
                for o in store.list(uri.bucket, uri.key)
                if not o.key.endswith("/")
            ]
        except NoSuchKeyError as exc:
            raise SpecError(f"channel {spec.name!r}: {exc}") from None
        if not objs:
            raise SpecError(
                f"channel {spec.name!r}: no objects found under {spec.s3_uri}. Check the prefix, or upload the data "
                "first (Session.upload_data)."
            )
        return objs
    if spec.data_type is DataType.MANIFEST_FILE:
        try:
            text = store.get_bytes(uri.bucket, uri.key).decode("utf-8")
        except NoSuchKeyError:
            raise SpecError(f"channel {spec.name!r}: manifest {spec.s3_uri} does not exist.") from None
        except UnicodeDecodeError:
            raise SpecError(f"channel {spec.name!r}: manifest {spec.s3_uri} is not UTF-8 text.") from None
        prefix, suffixes = parse_manifest(text, spec.s3_uri)

        def stat(suffix: str) -> ObjectRef:
            key = prefix.key + suffix
            try:
                info = store.stat(prefix.bucket, key)
            except NoSuchKeyError:
                raise SpecError(
                    f"channel {spec.name!r}: manifest {spec.s3_uri} lists s3://{prefix.bucket}/{key}, which does not "
                    "exist. Fix the manifest or upload the object."
                ) from None
            return ObjectRef(prefix.bucket, key, info.size, suffix.lstrip("/"))

        workers = 1 if store.local_path(prefix.bucket, prefix.key + suffixes[0]) is not None else 16
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(stat, suffixes))
    raise SpecError(
        f"channel {spec.name!r}: S3DataType {spec.data_type.value} is not available here; use S3Prefix or ManifestFile."
    )


def assign_shards(objects: list[ObjectRef], instance_count: int, distribution: Distribution) -> list[list[ObjectRef]]:
    """Split ``objects`` over ``instance_count`` instances (see the module docstring for the rule)."""
    if distribution is Distribution.FULLY_REPLICATED or instance_count == 1:
        return [list(objects) for _ in range(instance_count)]
    return [objects[i::instance_count] for i in range(instance_count)]


def plan_channel(spec: ChannelSpec, store: ObjectStore, instance_count: int) -> ChannelPlan:
    """Resolve and assign one channel, warning about instances left without objects."""
    objects = resolve_objects(spec, store)
    shards = assign_shards(objects, instance_count, spec.distribution)
    empty = [f"algo-{i + 1}" for i, s in enumerate(shards) if not s]
    if empty:
        log.warning(
            "channel %r has %d object(s) for %d instances, so %s get(s) no data and an empty directory; "
            "use fewer instances or split the data into more objects.",
            spec.name, len(objects), instance_count, ", ".join(empty),
        )
    return ChannelPlan(spec, tuple(tuple(s) for s in shards))
