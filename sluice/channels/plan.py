"""Turn a channel spec into the objects each instance receives.

Resolution lists an ``S3Prefix`` or reads a ``ManifestFile``; assignment splits the result across
instances. Both run before any instance starts, so a missing prefix or a malformed manifest stops the
job before it does any work.

Shard assignment (SageMaker documents only "approximately 1/n of the objects"; this is sluice's
choice): objects are taken in listing order — key order for an ``S3Prefix`` (as S3 lists them), the
manifest's own order for a ``ManifestFile`` — and object ``i`` goes to instance ``i mod n``
(host ``algo-(i mod n + 1)``). Every object lands on exactly one instance, counts differ by at most one,
and the same keys give the same assignment on every run and every backend. An instance left without
objects gets an empty directory and a warning.

Units: an ``S3Prefix`` or ``ManifestFile`` channel is a sequence of objects (:class:`ObjectRef`); an
``AugmentedManifestFile`` channel is a sequence of manifest lines (:class:`ManifestLine`, see
:mod:`sluice.channels.augmented`). The rule above applies to units either way.

Shuffling (``ShuffleConfig``, :attr:`ChannelSpec.shuffle_seed`): each epoch has its own order, made by
:func:`sluice.channels.units.epoch_order` from the seed and the epoch. For a ``ShardedByS3Key``
channel the assignment moves with it, as in SageMaker ("the content sent to a particular node on the
first epoch might be sent to a different node on the second epoch"): in epoch ``e`` all units are
permuted with epoch ``e``'s seed, then unit ``i`` of that permutation goes to instance ``i mod n``. An
instance can only cut its own share of a later epoch from all the units, so the
:class:`InstanceChannel` of a shuffled sharded channel carries every unit plus its index and count
(``all_units=True``); every other channel's carries only its own units. File and FastFile mode, and
processing's single Pipe pass, use epoch 0.
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from sluice.channels.augmented import resolve_augmented_manifest
from sluice.channels.spec import ChannelSpec, DataType, Distribution, InputMode
from sluice.channels.units import ManifestLine, ObjectRef, Unit, epoch_order
from sluice.errors import NoSuchKeyError, SluiceError, SpecError
from sluice.storage.base import ObjectStore, relative_key
from sluice.storage.uri import S3Uri, validate_key

__all__ = [
    "ChannelPlan",
    "InstanceChannel",
    "ManifestLine",
    "ObjectRef",
    "Unit",
    "assign_shards",
    "parse_manifest",
    "plan_channel",
    "resolve_objects",
]

log = logging.getLogger("sluice.channels")


@dataclass(frozen=True)
class InstanceChannel:
    """What one instance receives of a channel: the spec and its units, in plan order.

    It travels inside the instance's task (it pickles), so it normally carries only this instance's
    units. The exception is a shuffled ``ShardedByS3Key`` channel, whose share changes every epoch:
    then ``objects`` is every unit of the channel, ``all_units`` is true, and :meth:`epoch_units`
    cuts this instance's share of each epoch using ``instance_index`` and ``instance_count``.
    """

    spec: ChannelSpec
    objects: tuple[Unit, ...]
    instance_index: int = 0
    instance_count: int = 1
    all_units: bool = False

    def epoch_units(self, epoch: int = 0) -> list[Unit]:
        """The units this instance receives in ``epoch``, in delivery order (see the module docstring)."""
        seed = self.spec.shuffle_seed
        if seed is None:
            return list(self.objects)
        order = epoch_order(self.objects, seed, epoch)
        return order[self.instance_index :: self.instance_count] if self.all_units else order


@dataclass(frozen=True)
class ChannelPlan:
    """A channel's units, split per instance (``shards[i]`` is for ``algo-(i+1)``, in epoch 0's order).

    ``units`` is every unit in resolution order (key order, manifest order); shuffled sharded channels
    hand it to each instance so that it can find its share of later epochs.
    """

    spec: ChannelSpec
    shards: tuple[tuple[Unit, ...], ...]
    units: tuple[Unit, ...] = ()

    @property
    def total_objects(self) -> int:
        """Distinct objects for object channels; lines for an augmented manifest."""
        units = self.units or tuple(u for shard in self.shards for u in shard)
        if units and isinstance(units[0], ManifestLine):
            return len(units)
        return len({(o.bucket, o.key) for o in units if isinstance(o, ObjectRef)})

    @property
    def shuffled_sharding(self) -> bool:
        """Whether the assignment of units to instances changes per epoch."""
        return self.spec.shuffle_seed is not None and self.spec.distribution is Distribution.SHARDED_BY_S3_KEY

    def for_instance(self, index: int) -> InstanceChannel:
        """What instance ``index`` (``algo-(index+1)``) receives (see :class:`InstanceChannel`)."""
        count = len(self.shards)
        if self.shuffled_sharding:
            return InstanceChannel(self.spec, self.units, index, count, all_units=True)
        if self.spec.shuffle_seed is not None:  # replicated: every instance reshuffles all units itself
            return InstanceChannel(self.spec, self.units, index, count)
        return InstanceChannel(self.spec, self.shards[index], index, count)

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


def resolve_objects(spec: ChannelSpec, store: ObjectStore) -> list[Unit]:
    """The channel's units in key (or manifest) order. Raises :class:`SpecError` if there are none or any is
    missing."""
    uri = S3Uri.parse(spec.s3_uri)
    if spec.data_type is DataType.AUGMENTED_MANIFEST_FILE:
        if spec.input_mode is not InputMode.PIPE:
            raise SpecError(
                f"channel {spec.name!r}: S3DataType AugmentedManifestFile can only be used with input mode Pipe, "
                f"not {spec.input_mode.value}; set the channel's InputMode to 'Pipe'."
            )
        return list(resolve_augmented_manifest(spec, store))
    if spec.data_type is DataType.S3_PREFIX:
        try:
            with _no_cyclic_gc():  # a million small acyclic objects would trigger a GC pass every 700
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
        _refuse_collisions(spec, objs)
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
        f"channel {spec.name!r}: S3DataType {spec.data_type.value} is not available here; use S3Prefix, "
        "ManifestFile or AugmentedManifestFile."
    )


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _refuse_collisions(spec: ChannelSpec, objs: list[ObjectRef]) -> None:
    """Two keys that would land on one path (``data/part-1.csv`` and ``data/part/part-1.csv`` under the prefix
    ``data/part``) are refused: one would silently replace the other."""
    seen: dict[str, str] = {}
    for o in objs:
        other = seen.setdefault(o.rel_path, o.key)
        if other != o.key:
            raise SpecError(
                f"channel {spec.name!r}: s3://{o.bucket}/{other} and s3://{o.bucket}/{o.key} would both land at "
                f"{o.rel_path!r} under {spec.local_path}; end the prefix {spec.s3_uri} with '/' (or make it name "
                "one folder) so every object has its own path."
            )


def assign_shards(
    objects: list[Unit], instance_count: int, distribution: Distribution, shuffle_seed: int | None = None,
    epoch: int = 0,
) -> list[list[Unit]]:
    """Split ``objects`` over ``instance_count`` instances for ``epoch`` (see the module docstring for the rule)."""
    if shuffle_seed is not None:
        objects = epoch_order(objects, shuffle_seed, epoch)
    if distribution is Distribution.FULLY_REPLICATED or instance_count == 1:
        return [list(objects) for _ in range(instance_count)]
    return [objects[i::instance_count] for i in range(instance_count)]


def plan_channel(spec: ChannelSpec, store: ObjectStore, instance_count: int) -> ChannelPlan:
    """Resolve and assign one channel, warning about instances left without objects."""
    objects = resolve_objects(spec, store)
    shards = assign_shards(objects, instance_count, spec.distribution, spec.shuffle_seed)
    empty = [f"algo-{i + 1}" for i, s in enumerate(shards) if not s]
    if empty:
        log.warning(
            "channel %r has %d object(s) for %d instances, so %s get(s) no data and an empty directory; "
            "use fewer instances or split the data into more objects.",
            spec.name, len(objects), instance_count, ", ".join(empty),
        )
    return ChannelPlan(spec, tuple(tuple(s) for s in shards), tuple(objects))
