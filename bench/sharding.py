"""Planning a ShardedByS3Key channel of 1,000,000 objects over 64 instances.

Why: the issue's target is that planning (resolve the prefix, sort, split) a million-object channel for
64 instances takes under 2 s, since it runs before any instance starts and every job waits for it. The
listing comes from an in-memory store (creating a million files would dominate the run), so the time
is the real ``plan_channel``: building the ObjectRefs, assigning shards and freezing them.

The script also checks what the plan must guarantee: every key in exactly one shard, shard sizes that
differ by at most one, and keys in S3 list order within each shard.

Usage: ``python bench/sharding.py [--keys 1000000] [--instances 64] [--reps 3]``.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

from _benchutil import fresh_home, median, remove_tree, result_line, timed

NAME = "sharding"
LIMIT_SECONDS = 2.0  # plan_channel time must stay under this; ratio = time / limit
BUCKET = "sluice-bench"
PREFIX = "train/"


def make_store(keys: int) -> Any:
    """An ObjectStore whose listing is a pre-built list, so only sluice's planning is timed."""
    from sluice.storage.base import ObjectInfo, ObjectStore

    class ListedStore(ObjectStore):
        kind = "memory"

        def __init__(self, infos: list[ObjectInfo]) -> None:
            self.infos = infos

        def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
            self._check(bucket, prefix, allow_empty=True)
            return iter(self.infos)  # every generated key is under the prefix, already in key order

        def open(self, bucket: str, key: str) -> BinaryIO:
            raise NotImplementedError

        def put(self, bucket: str, key: str, data: bytes | BinaryIO) -> ObjectInfo:
            raise NotImplementedError

        def stat(self, bucket: str, key: str) -> ObjectInfo:
            raise NotImplementedError

        def delete(self, bucket: str, key: str) -> None:
            raise NotImplementedError

        def presign(self, bucket: str, key: str, expires_in: int = 3600) -> str:
            raise NotImplementedError

        def create_bucket(self, bucket: str) -> None:
            raise NotImplementedError

        def bucket_exists(self, bucket: str) -> bool:
            return bucket == BUCKET

    # Zero-padded keys in two levels, as a large training prefix often is; generated sorted.
    infos = [ObjectInfo(BUCKET, f"{PREFIX}shard-{i // 10_000:03d}/part-{i:07d}.tfrecord", 1024 + i % 4096,
                        f"etag-{i}", 1.7e9)
             for i in range(keys)]
    return ListedStore(infos)


def check_plan(plan: Any, store: Any, instances: int) -> None:
    """The guarantees of ShardedByS3Key planning, asserted."""
    shards = plan.shards
    assert len(shards) == instances
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1, (min(sizes), max(sizes))
    expected = [o.key for o in store.infos]
    seen = [o.key for shard in shards for o in shard]
    assert len(seen) == len(expected), (len(seen), len(expected))
    assert len(set(seen)) == len(seen), "a key landed in more than one shard"
    assert set(seen) == set(expected), "a key is missing from every shard"
    for shard in shards:
        keys = [o.key for o in shard]
        assert keys == sorted(keys), "a shard is not in key order"
    first = shards[0][0]
    assert first.rel_path == first.key[len(PREFIX):], first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--instances", type=int, default=64)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    home = fresh_home(NAME)
    try:
        from sluice.channels.plan import plan_channel
        from sluice.channels.spec import ChannelSpec, Distribution

        store = make_store(args.keys)
        spec = ChannelSpec(name="train", s3_uri=f"s3://{BUCKET}/{PREFIX}",
                           local_path="/opt/ml/processing/input/train",
                           distribution=Distribution.SHARDED_BY_S3_KEY)
        box: list[Any] = []
        gc.collect()  # the store's ObjectInfos are set-up, not planning: age them out of young generations
        warm = timed(lambda: box.append(plan_channel(spec, store, args.instances)))
        check_plan(box.pop(), store, args.instances)

        times: list[float] = []
        for _ in range(args.reps):
            gc.collect()  # start each run from the same heap; the previous plan is garbage now
            times.append(timed(lambda: box.append(plan_channel(spec, store, args.instances))))
            box.clear()

        # Context: the floor for any plan that materialises one record per object and slices it.
        def floor() -> None:
            refs = [(o.bucket, o.key, o.size, o.key[len(PREFIX):]) for o in store.list(BUCKET, PREFIX)]
            box.append(tuple(tuple(refs[i::args.instances]) for i in range(args.instances)))

        gc.collect()
        t_floor = timed(floor)
        box.clear()

        # Diagnosis: how much of plan_channel is the cyclic GC, triggered by a million new objects.
        gc.collect()
        gc.disable()
        try:
            t_nogc = timed(lambda: box.append(plan_channel(spec, store, args.instances)))
        finally:
            gc.enable()
        box.clear()

        t = median(times)
        print(f"{args.keys:,} keys over {args.instances} instances (ShardedByS3Key), median of {args.reps}")
        print(f"  plan_channel: {t * 1e3:.0f} ms (runs: {', '.join(f'{x * 1e3:.0f}' for x in times)} ms; "
              f"first run {warm * 1e3:.0f} ms), {t / args.keys * 1e9:.0f} ns per key")
        print(f"  plan_channel with the cyclic GC disabled (diagnosis only): {t_nogc * 1e3:.0f} ms")
        print(f"  floor (tuples + slicing, no sluice): {t_floor * 1e3:.0f} ms")
        print("  checks: every key in exactly one shard, sizes differ by <= 1, shards in key order: ok")
        print(result_line(NAME, t / LIMIT_SECONDS, "<=", 1.0))
    finally:
        remove_tree(home)
    return 0


if __name__ == "__main__":
    sys.exit(main())
