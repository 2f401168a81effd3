"""sluice.io's Pipe reader consuming live per-epoch deliveries, in a thread and in a real script process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from sluice.channels.delivery import start_delivery
from sluice.channels.plan import plan_channel
from sluice.channels.spec import ChannelSpec, DataType, InputMode, RecordWrapping
from sluice.io import channel_fifo, manifest_rows, pipe_epochs, pipe_records
from sluice.storage.local import LocalStore

TIMEOUT = 20.0


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    s = LocalStore(tmp_path / "store")
    s.create_bucket("data")
    for i in range(5):
        s.put("data", f"train/{i}", f"record-{i}".encode())
    return s


def train_spec(**kw: Any) -> ChannelSpec:
    base = dict(name="train", s3_uri="s3://data/train/", local_path="/opt/ml/input/data/train",
                input_mode=InputMode.PIPE, record_wrapping=RecordWrapping.RECORDIO, pipe_per_epoch=True)
    base.update(kw)
    return ChannelSpec(**base)


def run_in_thread(fn: Any) -> Any:
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


EXPECTED = [f"record-{i}".encode() for i in range(5)]


def test_pipe_epochs_reads_one_iterator_per_epoch_from_a_live_delivery(store, tmp_path):
    data = tmp_path / "input" / "data"
    delivery = start_delivery(plan_channel(train_spec(), store, 1).for_instance(0), store, data / "train",
                              link_ok=True)
    try:
        epochs = run_in_thread(lambda: [list(r) for r in pipe_epochs("train", 3, base=data, wait=TIMEOUT)])
    finally:
        delivery.close()
    assert epochs == [EXPECTED] * 3


def test_pipe_epochs_closes_an_epoch_left_half_read(store, tmp_path):
    delivery = start_delivery(plan_channel(train_spec(), store, 1).for_instance(0), store, tmp_path / "train",
                              link_ok=True)

    def script() -> list[list[bytes]]:
        seen = []
        for records in pipe_epochs("train", 3, base=tmp_path, wait=TIMEOUT):
            seen.append([next(records), next(records)])  # two records, then on to the next epoch
        return seen

    try:
        assert run_in_thread(script) == [EXPECTED[:2]] * 3
    finally:
        delivery.close()


def test_pipe_records_without_an_epoch_takes_the_next_one(store, tmp_path):
    channel = plan_channel(train_spec(shuffle_seed=11), store, 1).for_instance(0)
    delivery = start_delivery(channel, store, tmp_path / "train", link_ok=True)
    try:
        got = run_in_thread(lambda: [list(pipe_records("train", base=tmp_path, wait=TIMEOUT)) for _ in range(3)])
    finally:
        delivery.close()
    assert got == [[store.get_bytes(o.bucket, o.key) for o in channel.epoch_units(e)] for e in range(3)]
    assert all(sorted(epoch) == EXPECTED for epoch in got)
    assert got[0] != got[1] != got[2]  # reshuffled per epoch
    assert channel_fifo("train", 2, base=tmp_path) == tmp_path / "train_2"


def test_a_script_consumes_a_channel_through_sm_input_dir(store, tmp_path):
    images = []
    for i in range(3):
        images.append(bytes([i]) * (i + 5))
        store.put("data", f"img/{i}.png", images[-1])
    lines = [{"label": i % 2, "image-ref": f"s3://data/img/{i}.png"} for i in range(3)]
    store.put("data", "m/train.manifest", "\n".join(json.dumps(x) for x in lines).encode())
    spec = train_spec(s3_uri="s3://data/m/train.manifest", data_type=DataType.AUGMENTED_MANIFEST_FILE,
                      attribute_names=("image-ref", "label"))
    input_dir = tmp_path / "opt-ml" / "input"
    delivery = start_delivery(plan_channel(spec, store, 1).for_instance(0), store, input_dir / "data" / "train",
                              link_ok=True)
    script = textwrap.dedent(
        """
        import json, sys
        from sluice.io import manifest_rows
        rows = [[image.hex(), label.decode()] for image, label in manifest_rows("train", 2, epoch=0)]
        again = [label.decode() for _, label in manifest_rows("train", 2, epoch=1)]
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore", "sqlalchemy"))
        print(json.dumps({"rows": rows, "again": again, "heavy": heavy}))
        """
    )
    env = {**os.environ, "SM_INPUT_DIR": str(input_dir)}
    try:
        proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                              timeout=TIMEOUT)
    finally:
        delivery.close()
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["rows"] == [[images[i].hex(), str(i % 2)] for i in range(3)]
    assert out["again"] == ["0", "1", "0"]
    assert out["heavy"] == []
    assert delivery.error is None


def test_manifest_rows_refuses_a_wrong_attribute_count(store, tmp_path):
    delivery = start_delivery(plan_channel(train_spec(), store, 1).for_instance(0), store, tmp_path / "train",
                              link_ok=True)
    try:
        with pytest.raises(ValueError, match=r"ended after 2 full line\(s\) and 1 more record\(s\).*attribute_count=2"):
            run_in_thread(lambda: list(manifest_rows("train", 2, base=tmp_path, wait=TIMEOUT)))
    finally:
        delivery.close()


def test_a_fifo_that_never_appears_is_reported_with_a_hint(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train_0 did not appear within 0.2 s. Is the channel's input mode"):
        list(pipe_records("train", 0, base=tmp_path, wait=0.2))


def test_waiting_on_a_file_mode_channel_says_so(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(FileNotFoundError, match=r"is a directory: the channel is in File or FastFile mode"):
        list(pipe_records("train", 0, base=tmp_path, wait=0.1))
