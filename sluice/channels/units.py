"""The vocabulary planning and delivery share: the units a channel is made of, and the epoch shuffle.

A channel is a sequence of *units* — the things sharding and shuffling move around:

* :class:`ObjectRef`, one S3 object (``S3Prefix`` and ``ManifestFile`` channels);
* :class:`ManifestLine`, one line of an augmented manifest: an ordered tuple of records, each an
  :class:`ObjectRef` (a ``-ref`` attribute: the object's bytes) or an :class:`InlineRecord` (any
  other attribute: its text).

Shuffling (``ShuffleConfig.Seed``; SageMaker documents what is shuffled, not how — this is sluice's
choice): the order for epoch ``e`` is ``random.Random(epoch_seed(seed, e)).shuffle(units)``, where
:func:`epoch_seed` is the first 8 bytes (little-endian) of ``sha256(f"{seed}:{e}")``. It depends only
on the seed, the epoch and the unit order the plan resolved (key order, manifest order), so every
run, process and backend sees the same order.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["InlineRecord", "ManifestLine", "ObjectRef", "Progress", "Unit", "epoch_order", "epoch_seed"]

#: Called with (units, bytes) as each unit lands (File mode) or is first fed (Pipe mode).
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """One object to deliver: where it is and where it lands relative to the channel directory."""

    bucket: str
    key: str
    size: int
    rel_path: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True, slots=True)
class InlineRecord:
    """A record whose bytes are in the plan itself (a non-``-ref`` augmented-manifest attribute)."""

    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True, slots=True)
class ManifestLine:
    """One augmented-manifest line: its records in ``AttributeNames`` order. ``line_no`` is 1-based."""

    line_no: int
    records: tuple[ObjectRef | InlineRecord, ...]

    @property
    def size(self) -> int:
        return sum(r.size for r in self.records)


#: What a channel is a sequence of.
Unit = ObjectRef | ManifestLine

T = TypeVar("T")


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch``'s shuffle: stable across runs and processes (no ``hash()``)."""
    digest = hashlib.sha256(f"{seed}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def epoch_order(units: Sequence[T], seed: int | None, epoch: int) -> list[T]:
    """``units`` in epoch ``epoch``'s order: as given without a seed, else a seeded permutation."""
    order = list(units)
    if seed is not None:
        random.Random(epoch_seed(seed, epoch)).shuffle(order)
    return order
