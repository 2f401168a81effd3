"""FastFile: objects appear without being copied where they are already local, and the channel is read-only."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import sluice
from sluice.channels.delivery import start_delivery
from sluice.channels.plan import plan_channel
from sluice.channels.spec import ChannelSpec, Distribution, InputMode
from sluice.storage.local import LocalStore


def fast_file_spec(uri: str, **kw) -> ChannelSpec:
    return ChannelSpec(name="train", s3_uri=uri, local_path="/opt/ml/input/data/train",
                       input_mode=InputMode.FAST_FILE, pipe_per_epoch=True, **kw)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_fast_file_links_local_objects_and_marks_the_channel_read_only(tmp_path):
    store = LocalStore(tmp_path / "store")
    store.create_bucket("data")
    for key in ("train/a.csv", "train/sub/b.csv", "train/sub/deep/c.csv"):
        store.put("data", key, key.encode())
    dest = tmp_path / "algo-1" / "input" / "data" / "train"
    delivery = start_delivery(plan_channel(fast_file_spec("s3://data/train/"), store, 1).for_instance(0),
                              store, dest, link_ok=True)
    assert delivery.read_only_paths == [dest]
    for rel in ("a.csv", "sub/b.csv", "sub/deep/c.csv"):
        staged = dest / rel
        assert staged.read_bytes() == f"train/{rel}".encode()
        original = store.local_path("data", f"train/{rel}")
        assert original is not None and staged.stat().st_ino == original.stat().st_ino  # a link, not a copy
        assert mode(staged) == 0o444
    assert [mode(d) for d in (dest, dest / "sub", dest / "sub" / "deep")] == [0o555, 0o555, 0o555]
    assert delivery.error is None
    delivery.close()

    # An instance that is staged again (a retry) restages into its own read-only tree.
    again = start_delivery(plan_channel(fast_file_spec("s3://data/train/"), store, 1).for_instance(0),
                           store, dest, link_ok=True)
    assert again.read_only_paths == [dest] and (dest / "sub" / "b.csv").read_bytes() == b"train/sub/b.csv"


def test_file_mode_is_not_read_only(tmp_path):
    store = LocalStore(tmp_path / "store")
    store.create_bucket("data")
    store.put("data", "train/a.csv", b"a")
    spec = ChannelSpec(name="train", s3_uri="s3://data/train/", local_path="/opt/ml/input/data/train")
    dest = tmp_path / "train"
    delivery = start_delivery(plan_channel(spec, store, 1).for_instance(0), store, dest, link_ok=True)
    assert delivery.read_only_paths == []
    assert mode(dest) & stat.S_IWUSR


def test_fast_file_against_a_remote_store_falls_back_to_file_mode_with_one_warning(s3_home, tmp_path, caplog):
    sess = sluice.Session()
    bucket = sess.default_bucket()
    for i in range(4):
        sess.store.put(bucket, f"fast/part-{i}.csv", f"{i}\n".encode())
    plan = plan_channel(fast_file_spec(f"s3://{bucket}/fast/", distribution=Distribution.SHARDED_BY_S3_KEY),
                        sess.store, 2)
    caplog.set_level(logging.WARNING, logger="sluice.channels")
    staged = {}
    for i in range(2):
        dest = tmp_path / f"algo-{i + 1}" / "train"
        delivery = start_delivery(plan.for_instance(i), sess.store, dest, link_ok=True)
        assert delivery.read_only_paths == [dest]
        staged[i] = sorted(p.name for p in dest.iterdir())
        assert all(mode(p) == 0o444 for p in dest.iterdir()) and mode(dest) == 0o555
    assert staged == {0: ["part-0.csv", "part-2.csv"], 1: ["part-1.csv", "part-3.csv"]}
    warnings = [r for r in caplog.records if "FastFile" in r.getMessage()]
    assert len(warnings) == 1  # once per channel, not once per instance
    assert "downloads them up front as File mode does" in warnings[0].getMessage()
    assert "\n" not in warnings[0].getMessage()


def test_fast_file_copies_when_links_are_not_safe(tmp_path):
    store = LocalStore(tmp_path / "store")
    store.create_bucket("data")
    store.put("data", "train/a.csv", b"a")
    dest = tmp_path / "train"
    delivery = start_delivery(plan_channel(fast_file_spec("s3://data/train/"), store, 1).for_instance(0),
                              store, dest, link_ok=False)
    original = store.local_path("data", "train/a.csv")
    assert original is not None and (dest / "a.csv").stat().st_ino != original.stat().st_ino
    assert delivery.read_only_paths == [dest] and mode(dest / "a.csv") == 0o444
