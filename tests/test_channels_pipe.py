"""Training's Pipe mode: one FIFO per epoch, shuffling, shuffled sharding, RecordIO and Gzip, early close.

Readers run on their own threads and open real FIFOs; the feeder runs as it does inside an instance.
"""

from __future__ import annotations

import gzip
import io
import pickle
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sluice.channels.delivery import Delivery, start_delivery
from sluice.channels.plan import ObjectRef, plan_channel
from sluice.channels.spec import ChannelSpec, Compression, Distribution, InputMode, RecordWrapping
from sluice.io import pipe_records, read_records
from sluice.storage.local import LocalStore

BUCKET = "data"
TIMEOUT = 20.0


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    s = LocalStore(tmp_path / "store")
    s.create_bucket(BUCKET)
    return s


def put_objects(store: LocalStore, count: int, prefix: str = "train/", size: int = 0) -> list[bytes]:
    """Objects whose bytes name them (padded to ``size``), so a record says which object it came from."""
    bodies = []
    for i in range(count):
        body = f"obj-{i:02d}".encode().ljust(size, b".")
        store.put(BUCKET, f"{prefix}part-{i:02d}", body)
        bodies.append(body)
    return bodies


def pipe_spec(**kw: Any) -> ChannelSpec:
    base = dict(name="train", s3_uri=f"s3://{BUCKET}/train/", local_path="/opt/ml/input/data/train",
                input_mode=InputMode.PIPE, record_wrapping=RecordWrapping.RECORDIO, pipe_per_epoch=True)
    base.update(kw)
    return ChannelSpec(**base)


def in_thread(fn: Callable[..., Any], *args: Any, **kw: Any) -> Callable[[], Any]:
    """Run ``fn`` on a daemon thread; the returned function joins it (failing if it hangs) and returns its value."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn(*args, **kw)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def result() -> Any:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "the reader hung"
        if "error" in box:
            raise box["error"]
        return box["value"]

    return result


def read_epochs(base: Path, epochs: int, channel: str = "train", wrapped: bool = True) -> list[list[bytes]]:
    """What a script does: read each epoch's FIFO to EOF, in order."""
    return [list(pipe_records(channel, e, base=base, wrapped=wrapped, wait=TIMEOUT)) for e in range(epochs)]


def deliver(plan_or_channel: Any, store: LocalStore, dest: Path, index: int = 0) -> Delivery:
    channel = plan_or_channel.for_instance(index) if hasattr(plan_or_channel, "for_instance") else plan_or_channel
    return start_delivery(channel, store, dest, link_ok=True)


def test_each_epoch_has_its_own_fifo_and_the_same_objects_in_key_order(store, tmp_path):
    bodies = put_objects(store, 5)
    dest = tmp_path / "algo-1" / "data" / "train"
    delivery = deliver(plan_channel(pipe_spec(), store, 1), store, dest)
    assert (dest.parent / "train_0").exists() and not dest.exists()  # the channel path itself is no FIFO
    try:
        got = in_thread(read_epochs, dest.parent, 3)()
    finally:
        delivery.close()
    assert got == [bodies, bodies, bodies]
    assert delivery.error is None
    fifos = sorted(p.name for p in dest.parent.iterdir())
    assert fifos[:3] == ["train_0", "train_1", "train_2"]  # train_3 waits for a reader that never came


def test_shuffle_seed_reorders_every_epoch_deterministically(store, tmp_path):
    bodies = put_objects(store, 8)
    runs = []
    for run in range(2):
        dest = tmp_path / f"run-{run}" / "train"
        delivery = deliver(plan_channel(pipe_spec(shuffle_seed=1234), store, 1), store, dest)
        try:
            runs.append(in_thread(read_epochs, dest.parent, 3)())
        finally:
            delivery.close()
    first, second = runs
    assert first == second  # same seed, same orders, run after run
    assert all(sorted(epoch) == bodies for epoch in first)  # every epoch is every object once
    assert first[0] != bodies and first[1] != first[0] and first[2] != first[1]

    dest = tmp_path / "other-seed" / "train"
    delivery = deliver(plan_channel(pipe_spec(shuffle_seed=99), store, 1), store, dest)
    try:
        other = in_thread(read_epochs, dest.parent, 1)()
    finally:
        delivery.close()
    assert other[0] != first[0]


def test_sharded_and_shuffled_reassigns_objects_to_instances_every_epoch(store, tmp_path):
    bodies = put_objects(store, 12)
    n, epochs = 3, 4
    plan = plan_channel(pipe_spec(distribution=Distribution.SHARDED_BY_S3_KEY, shuffle_seed=7), store, n)

    channels = [pickle.loads(pickle.dumps(plan.for_instance(i))) for i in range(n)]  # as shipped to a worker
    assert all(c.all_units and len(c.objects) == 12 and c.instance_count == n for c in channels)
    assert [c.instance_index for c in channels] == [0, 1, 2]

    dests = [tmp_path / f"algo-{i + 1}" / "train" for i in range(n)]
    deliveries = [deliver(channels[i], store, dests[i]) for i in range(n)]
    try:
        readers = [in_thread(read_epochs, d.parent, epochs) for d in dests]
        per_instance = [r() for r in readers]
    finally:
        for d in deliveries:
            d.close()
    assignments = []
    for e in range(epochs):
        shares = [per_instance[i][e] for i in range(n)]
        every = [b for share in shares for b in share]
        assert sorted(every) == bodies and len(set(every)) == len(every)  # all units, disjoint
        assert [len(s) for s in shares] == [4, 4, 4]
        assignments.append([frozenset(s) for s in shares])
    assert any(a != assignments[0] for a in assignments[1:])  # content moves between nodes
    # Epoch 0 is what the plan reports (and what File mode would place).
    assert [[store.get_bytes(o.bucket, o.key) for o in shard] for shard in plan.shards] == [
        per_instance[i][0] for i in range(n)
    ]


def test_unshuffled_sharded_channel_ships_only_its_own_slice(store):
    put_objects(store, 7)
    plan = plan_channel(pipe_spec(distribution=Distribution.SHARDED_BY_S3_KEY), store, 3)
    first = plan.for_instance(0)
    assert not first.all_units
    assert [o.key for o in first.objects] == ["train/part-00", "train/part-03", "train/part-06"]
    assert first.epoch_units(5) == list(first.objects)


def test_closing_the_fifo_early_moves_the_feeder_to_the_next_epoch(store, tmp_path):
    bodies = put_objects(store, 8, size=96 * 1024)  # 768 KiB: far more than a pipe buffer holds

    def read_one_then_everything(base: Path) -> tuple[bytes, list[bytes]]:
        records = pipe_records("train", 0, base=base, wait=TIMEOUT)
        first = next(records)
        records.close()  # the script stops early, as the contract allows
        return first, list(pipe_records("train", 1, base=base, wait=TIMEOUT))

    dest = tmp_path / "train"
    delivery = deliver(plan_channel(pipe_spec(), store, 1), store, dest)
    try:
        first, second_epoch = in_thread(read_one_then_everything, tmp_path)()
    finally:
        delivery.close()
    assert first == bodies[0]
    assert second_epoch == bodies
    assert delivery.error is None


def test_closing_a_delivery_nobody_read_returns_promptly(store, tmp_path):
    put_objects(store, 3, size=200 * 1024)
    for per_epoch in (True, False):
        dest = tmp_path / f"per-epoch-{per_epoch}" / "train"
        delivery = deliver(plan_channel(pipe_spec(pipe_per_epoch=per_epoch), store, 1), store, dest)
        delivery.close()  # returns: a hang here is the failure (the suite's timeout ends it)
        assert delivery.error is None
        (feeder,) = delivery.feeders
        assert not feeder._thread.is_alive()


def test_closing_while_the_feeder_waits_for_the_next_epoch_returns_promptly(store, tmp_path):
    bodies = put_objects(store, 2)
    dest = tmp_path / "train"
    delivery = deliver(plan_channel(pipe_spec(), store, 1), store, dest)
    assert in_thread(read_epochs, tmp_path, 1)() == [bodies]
    delivery.close()  # the feeder is blocked opening train_1 for a reader that will not come
    assert not delivery.feeders[0]._thread.is_alive()


def test_gzip_objects_are_unpacked_into_one_record_each(store, tmp_path):
    payloads = [b"", b"x", b"abc" * 1001, bytes(range(256)) * 50]
    for i, p in enumerate(payloads):
        store.put(BUCKET, f"train/{i}.gz", gzip.compress(p))
    dest = tmp_path / "train"
    delivery = deliver(plan_channel(pipe_spec(compression=Compression.GZIP), store, 1), store, dest)
    try:
        got = in_thread(read_epochs, tmp_path, 2)()
    finally:
        delivery.close()
    assert got == [payloads, payloads]


def test_an_object_that_is_not_gzip_in_a_gzip_channel_fails_the_feed_clearly(store, tmp_path):
    store.put(BUCKET, "train/0.gz", gzip.compress(b"fine"))
    store.put(BUCKET, "train/1.gz", b"plain text, not gzip")
    failed = threading.Event()
    channel = plan_channel(pipe_spec(compression=Compression.GZIP), store, 1).for_instance(0)
    delivery = start_delivery(channel, store, tmp_path / "train", link_ok=True, on_error=lambda exc: failed.set())
    try:
        assert in_thread(read_epochs, tmp_path, 1)() == [[b"fine"]]
        assert failed.wait(TIMEOUT)
    finally:
        delivery.close()
    assert "s3://data/train/1.gz could not be unpacked as Gzip" in (delivery.error or "")


def test_without_wrapping_objects_are_concatenated(store, tmp_path):
    bodies = put_objects(store, 4)
    for i in range(4):  # gzip too: unpacked while streaming
        store.put(BUCKET, f"zipped/{i}.gz", gzip.compress(bodies[i]))
    for prefix, compression in (("train/", Compression.NONE), ("zipped/", Compression.GZIP)):
        dest = tmp_path / prefix.strip("/") / "train"
        spec = pipe_spec(s3_uri=f"s3://{BUCKET}/{prefix}", record_wrapping=RecordWrapping.NONE, compression=compression)
        delivery = deliver(plan_channel(spec, store, 1), store, dest)
        try:
            chunks = in_thread(read_epochs, dest.parent, 2, wrapped=False)()
        finally:
            delivery.close()
        assert [b"".join(c) for c in chunks] == [b"".join(bodies)] * 2


def test_processing_pipe_is_one_pass_through_the_channel_path_itself(store, tmp_path):
    bodies = put_objects(store, 3)
    dest = tmp_path / "input" / "data"
    spec = ChannelSpec(name="data", s3_uri=f"s3://{BUCKET}/train/", local_path="/opt/ml/processing/input/data",
                       input_mode=InputMode.PIPE)
    delivery = deliver(plan_channel(spec, store, 1), store, dest)

    def read_all() -> bytes:
        with open(dest, "rb") as fh:
            return fh.read()

    try:
        assert in_thread(read_all)() == b"".join(bodies)
    finally:
        delivery.close()
    assert not (dest.parent / "data_0").exists()


def test_a_large_record_is_split_into_parts_that_read_back_whole(store, tmp_path):
    body = bytes(range(251)) * 9  # 2259 bytes: parts of 1000, 1000 and 259
    store.put(BUCKET, "train/big", body)
    dest = tmp_path / "train"
    delivery = deliver(plan_channel(pipe_spec(), store, 1), store, dest)
    delivery.feeders[0].record_part_limit = 1000  # set before any reader opens the FIFO, so before any write

    def raw_epoch() -> bytes:
        return b"".join(pipe_records("train", 0, base=tmp_path, wrapped=False, wait=TIMEOUT))

    try:
        raw = in_thread(raw_epoch)()
    finally:
        delivery.close()
    assert list(read_records(io.BytesIO(raw))) == [body]
    flags = [int.from_bytes(raw[4:8], "little") >> 29, int.from_bytes(raw[1012:1016], "little") >> 29,
             int.from_bytes(raw[2020:2024], "little") >> 29]
    assert flags == [1, 2, 3]


def test_a_vanished_object_ends_the_feed_and_is_reported_at_once(store, tmp_path):
    bodies = put_objects(store, 2)
    plan = plan_channel(pipe_spec(), store, 1)
    store.delete(BUCKET, "train/part-01")
    failed = threading.Event()
    errors: list[BaseException] = []

    def on_error(exc: BaseException) -> None:
        errors.append(exc)
        failed.set()

    delivery = start_delivery(plan.for_instance(0), store, tmp_path / "train", link_ok=True, on_error=on_error)
    try:
        assert in_thread(read_epochs, tmp_path, 1)() == [bodies[:1]]  # the epoch ends early
        assert failed.wait(TIMEOUT)
    finally:
        delivery.close()
    assert "part-01" in str(errors[0])
    assert delivery.error is not None and "train_0" in delivery.error and "part-01" in delivery.error
    assert not (tmp_path / "train_1").exists()  # no further epoch: the runtime fails the instance


def test_instance_channel_epoch_units_match_the_plan(store):
    put_objects(store, 5)
    plan = plan_channel(pipe_spec(shuffle_seed=3), store, 2)  # replicated and shuffled
    for i in range(2):
        channel = plan.for_instance(i)
        assert channel.epoch_units(0) == list(plan.shards[i])
        assert sorted(o.key for o in channel.epoch_units(1)) == sorted(o.key for o in plan.units)
        assert all(isinstance(o, ObjectRef) for o in channel.objects)
