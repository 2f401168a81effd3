"""Augmented manifests: attributes become records in AttributeNames order; bad manifests are refused up front."""

from __future__ import annotations

import json
import pickle
import threading
from pathlib import Path
from typing import Any

import pytest

import sluice
from sluice.channels.delivery import start_delivery
from sluice.channels.plan import ManifestLine, plan_channel
from sluice.channels.spec import ChannelSpec, DataType, Distribution, InputMode, RecordWrapping
from sluice.channels.units import InlineRecord, ObjectRef
from sluice.errors import SpecError
from sluice.io import manifest_rows, pipe_records
from sluice.storage.local import LocalStore

BUCKET = "labels"
TIMEOUT = 20.0


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    s = LocalStore(tmp_path / "store")
    s.create_bucket(BUCKET)
    return s


def images(store: Any, count: int) -> list[bytes]:
    out = []
    for i in range(count):
        body = bytes([i]) * (10 + i) + b"\xff\xd8jpeg"  # binary, lengths not multiples of 4
        store.put(BUCKET, f"images/{i}.jpg", body)
        out.append(body)
    return out


def write_manifest(store: Any, lines: list[Any], key: str = "manifests/train.manifest") -> str:
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    store.put(BUCKET, key, text.encode())
    return f"s3://{BUCKET}/{key}"


def spec_for(uri: str, names: tuple[str, ...] = ("source-ref", "class"), **kw: Any) -> ChannelSpec:
    base = dict(name="train", s3_uri=uri, local_path="/opt/ml/input/data/train",
                data_type=DataType.AUGMENTED_MANIFEST_FILE, input_mode=InputMode.PIPE,
                record_wrapping=RecordWrapping.RECORDIO, attribute_names=names, pipe_per_epoch=True)
    base.update(kw)
    return ChannelSpec(**base)


def read_in_thread(fn: Any) -> Any:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(TIMEOUT)
    assert not thread.is_alive(), "the reader hung"
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_each_attribute_is_one_record_in_attribute_names_order(store, tmp_path):
    imgs = images(store, 3)
    # In the file, "class" comes first and other attributes sit around and between the requested ones.
    uri = write_manifest(store, [
        {"class": str(i), "note": "ignored", "source-ref": f"s3://{BUCKET}/images/{i}.jpg", "extra": [1, 2]}
        for i in range(3)
    ])
    plan = plan_channel(spec_for(uri), store, 1)
    channel = pickle.loads(pickle.dumps(plan.for_instance(0)))  # travels to the worker like this
    dest = tmp_path / "train"
    delivery = start_delivery(channel, store, dest, link_ok=True)
    try:
        records = read_in_thread(lambda: list(pipe_records("train", 0, base=tmp_path, wait=TIMEOUT)))
    finally:
        delivery.close()
    assert records == [imgs[0], b"0", imgs[1], b"1", imgs[2], b"2"]
    assert delivery.error is None


def test_manifest_rows_group_records_per_line_and_values_stream_as_text(store, tmp_path):
    imgs = images(store, 3)
    uri = write_manifest(store, [
        {"source-ref": f"s3://{BUCKET}/images/0.jpg", "class": 1, "meta": {"w": 2, "tags": ["a", "b"]}},
        "",  # blank lines are skipped
        {"meta": [1, 2.5, None], "class": True, "source-ref": f"s3://{BUCKET}/images/1.jpg"},
        "   ",
        {"class": "dog é", "source-ref": f"s3://{BUCKET}/images/2.jpg", "meta": 0.25},
    ])
    plan = plan_channel(spec_for(uri, ("class", "source-ref", "meta")), store, 1)
    assert [line.line_no for line in plan.units] == [1, 3, 5]
    delivery = start_delivery(plan.for_instance(0), store, tmp_path / "train", link_ok=True)
    try:
        rows = read_in_thread(lambda: list(manifest_rows("train", 3, base=tmp_path, wait=TIMEOUT)))
    finally:
        delivery.close()
    assert rows == [
        (b"1", imgs[0], b'{"w":2,"tags":["a","b"]}'),
        (b"true", imgs[1], b"[1,2.5,null]"),
        ("dog é".encode(), imgs[2], b"0.25"),
    ]


def test_a_line_is_one_unit_for_sharding_and_shuffling(store):
    images(store, 6)
    uri = write_manifest(store, [
        {"source-ref": f"s3://{BUCKET}/images/{i}.jpg", "class": str(i)} for i in range(6)
    ])
    plan = plan_channel(spec_for(uri, distribution=Distribution.SHARDED_BY_S3_KEY), store, 2)
    assert all(isinstance(u, ManifestLine) for u in plan.units)
    assert [[u.line_no for u in shard] for shard in plan.shards] == [[1, 3, 5], [2, 4, 6]]
    line = plan.shards[0][0]
    assert isinstance(line.records[0], ObjectRef) and line.records[0].key == "images/0.jpg"
    assert line.records[1] == InlineRecord(b"0")
    assert plan.total_objects == 6
    assert plan.bytes_for(0) == sum(u.size for u in plan.shards[0])

    shuffled = plan_channel(spec_for(uri, distribution=Distribution.SHARDED_BY_S3_KEY, shuffle_seed=5), store, 2)
    epoch1 = [shuffled.for_instance(i).epoch_units(1) for i in range(2)]
    assert sorted(u.line_no for share in epoch1 for u in share) == [1, 2, 3, 4, 5, 6]


def test_without_wrapping_a_line_streams_its_values_back_to_back(store, tmp_path):
    imgs = images(store, 2)
    uri = write_manifest(store, [{"source-ref": f"s3://{BUCKET}/images/{i}.jpg", "class": i} for i in range(2)])
    plan = plan_channel(spec_for(uri, record_wrapping=RecordWrapping.NONE), store, 1)
    delivery = start_delivery(plan.for_instance(0), store, tmp_path / "train", link_ok=True)
    try:
        raw = read_in_thread(lambda: b"".join(pipe_records("train", 0, base=tmp_path, wrapped=False, wait=TIMEOUT)))
    finally:
        delivery.close()
    assert raw == imgs[0] + b"0" + imgs[1] + b"1"


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"source-ref": "s3://labels/images/0.jpg", "class": "0"}', '{"source-ref": "s3://labels/images/1.jpg",'],
         r"line 2 is not valid JSON"),
        ([{"source-ref": "s3://labels/images/0.jpg", "class": "0"}, "", {"source-ref": "s3://labels/images/1.jpg"}],
         r"line 3 has no attribute 'class' \(it has 'source-ref'\)"),
        ([{"source-ref": "images/0.jpg", "class": "0"}], r"line 1: attribute 'source-ref' holds 'images/0.jpg'.*s3://"),
        ([{"source-ref": 7, "class": "0"}], r"line 1: attribute 'source-ref' ends in '-ref'.*not 7"),
        ([{"source-ref": "s3://labels/images/", "class": "0"}], r"line 1: .*names a prefix, not an object"),
        ([{"source-ref": "s3://labels/images/0.jpg", "class": "0"}, {"source-ref": "s3://labels/nope/9.jpg",
          "class": "1"}, {"source-ref": "s3://labels/nope/8.jpg", "class": "1"}],
         r"line 2 references s3://labels/nope/9.jpg, which does not exist \(1 more referenced object\(s\) are "),
        (["[1, 2]"], r"line 1 is a JSON array, not an object"),
        (["", "  "], r"has no lines"),
    ],
)
def test_bad_manifests_are_refused_while_planning_with_the_line(store, lines, message):
    images(store, 2)
    uri = write_manifest(store, lines)
    with pytest.raises(SpecError, match=message):
        plan_channel(spec_for(uri), store, 1)


@pytest.mark.parametrize("names", [(), tuple(f"a{i}" for i in range(17)), ("ok", "")])
def test_attribute_names_must_be_one_to_sixteen_names(store, names):
    uri = write_manifest(store, [{"a": 1}])
    with pytest.raises(SpecError, match=r"1 to 16 attributes|1 to 256 characters"):
        plan_channel(spec_for(uri, names), store, 1)


def test_augmented_manifest_needs_pipe_mode_and_an_existing_manifest(store):
    images(store, 1)
    uri = write_manifest(store, [{"source-ref": f"s3://{BUCKET}/images/0.jpg", "class": "0"}])
    with pytest.raises(SpecError, match="can only be used with input mode Pipe, not File"):
        plan_channel(spec_for(uri, input_mode=InputMode.FILE), store, 1)
    with pytest.raises(SpecError, match=r"augmented manifest s3://labels/missing.manifest does not exist"):
        plan_channel(spec_for(f"s3://{BUCKET}/missing.manifest"), store, 1)


def test_missing_ref_objects_are_found_against_a_remote_store(s3_home):
    sess = sluice.Session()
    store = sess.store
    bucket = sess.default_bucket()
    for i in range(20):
        store.put(bucket, f"img/{i}.jpg", b"x" * i)
    lines = [{"source-ref": f"s3://{bucket}/img/{i}.jpg", "class": str(i % 2)} for i in range(20)]
    lines.insert(13, {"source-ref": f"s3://{bucket}/img/missing.jpg", "class": "1"})
    key = "manifests/bad.manifest"
    store.put(bucket, key, "\n".join(json.dumps(x) for x in lines).encode())
    with pytest.raises(SpecError, match=rf"line 14 references s3://{bucket}/img/missing.jpg, which does not exist"):
        plan_channel(spec_for(f"s3://{bucket}/{key}"), store, 1)

    del lines[13]
    store.put(bucket, key, "\n".join(json.dumps(x) for x in lines).encode())
    plan = plan_channel(spec_for(f"s3://{bucket}/{key}"), store, 1)
    assert [u.records[0].size for u in plan.units] == list(range(20))
