"""The issue's training example end to end: an augmented manifest in Pipe mode with RecordIO, sharded,
reshuffled per epoch, on two instances — and the example under examples/image_classification."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

import sluice
from sluice.estimator import Estimator
from sluice.inputs import ShuffleConfig, TrainingInput
from sluice.s3 import S3Downloader

REPO = Path(__file__).resolve().parent.parent

# Records what each instance received per epoch, through the sluice.io reader.
RECORDING_SCRIPT = textwrap.dedent(
    """
    import json, os
    from sluice.io import manifest_rows
    host = os.environ["SM_CURRENT_HOST"]
    seen = {"config": json.load(open("/opt/ml/input/config/inputdataconfig.json")), "epochs": []}
    for epoch in range(int(os.environ["SM_HP_EPOCHS"])):
        rows = manifest_rows("train", 2, epoch=epoch)
        seen["epochs"].append([[image.decode(), label.decode()] for image, label in rows])
    json.dump(seen, open(os.path.join(os.environ["SM_MODEL_DIR"], f"seen-{host}.json"), "w"))
    """
)


@pytest.fixture
def sess(sluice_home: Path) -> sluice.Session:
    return sluice.Session()


def manifest(sess: sluice.Session, lines: int) -> str:
    bucket = sess.default_bucket()
    rows = []
    for i in range(lines):
        sess.store.put(bucket, f"img/{i:03d}.bin", f"image-{i:03d}".encode())
        rows.append(json.dumps({"class": i % 3, "ignored": "x", "source-ref": f"s3://{bucket}/img/{i:03d}.bin"}))
    sess.store.put(bucket, "m/train.manifest", ("\n".join(rows) + "\n").encode())
    return f"s3://{bucket}/m/train.manifest"


def test_augmented_manifest_pipe_recordio_sharded_and_reshuffled(sess, tmp_path):
    uri = manifest(sess, 12)
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text(RECORDING_SCRIPT)
    est = Estimator(image_uri=None, entry_point="train.py", source_dir=str(src), role=sluice.get_execution_role(),
                    instance_count=2, instance_type="ml.m5.xlarge", hyperparameters={"epochs": 3},
                    input_mode="Pipe", sagemaker_session=sess)
    est.fit({"train": TrainingInput(uri, s3_data_type="AugmentedManifestFile",
                                    attribute_names=["source-ref", "class"], record_wrapping="RecordIO",
                                    distribution="ShardedByS3Key", shuffle_config=ShuffleConfig(7))}, logs=False)
    data = S3Downloader.read_bytes(est.model_data, sagemaker_session=sess)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        seen = {m.name: json.loads(tar.extractfile(m).read()) for m in tar.getmembers()}
    one, two = seen["seen-algo-1.json"], seen["seen-algo-2.json"]
    assert one["config"]["train"] == {"TrainingInputMode": "Pipe", "S3DistributionType": "ShardedByS3Key",
                                      "RecordWrapperType": "RecordIO"}
    everything = sorted([f"image-{i:03d}", str(i % 3)] for i in range(12))
    orders = []
    for epoch in range(3):
        a, b = one["epochs"][epoch], two["epochs"][epoch]
        assert sorted(a + b) == everything  # every line once per epoch, across the two instances
        assert not {tuple(r) for r in a} & {tuple(r) for r in b}
        assert len(a) == len(b) == 6
        orders.append(a)
    # Attribute order follows AttributeNames (source-ref, then class), whatever the file's order.
    assert all(row[0].startswith("image-") for row in one["epochs"][0])
    assert orders[0] != orders[1] or orders[1] != orders[2]  # reshuffled (and re-dealt) between epochs


def test_the_same_seed_gives_the_same_epochs(sess, tmp_path):
    uri = manifest(sess, 8)
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text(RECORDING_SCRIPT)
    runs = []
    for _ in range(2):
        est = Estimator(image_uri=None, entry_point="train.py", source_dir=str(src),
                        role=sluice.get_execution_role(), instance_count=1, instance_type="ml.m5.xlarge",
                        hyperparameters={"epochs": 2}, input_mode="Pipe", sagemaker_session=sess)
        est.fit({"train": TrainingInput(uri, s3_data_type="AugmentedManifestFile",
                                        attribute_names=["source-ref", "class"], record_wrapping="RecordIO",
                                        shuffle_config=ShuffleConfig(11))}, logs=False)
        with tarfile.open(fileobj=io.BytesIO(S3Downloader.read_bytes(est.model_data, sagemaker_session=sess))) as t:
            runs.append(json.loads(t.extractfile("seen-algo-1.json").read())["epochs"])
    assert runs[0] == runs[1]


def test_a_manifest_line_missing_an_attribute_is_refused_with_its_line_number(sess, tmp_path):
    bucket = sess.default_bucket()
    sess.store.put(bucket, "img/a.bin", b"a")
    lines = [json.dumps({"source-ref": f"s3://{bucket}/img/a.bin", "class": 0}), json.dumps({"source-ref": "x"})]
    sess.store.put(bucket, "bad.manifest", "\n".join(lines).encode())
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text("print('never')\n")
    est = Estimator(image_uri=None, entry_point="train.py", source_dir=str(src), role=sluice.get_execution_role(),
                    instance_count=1, instance_type="ml.m5.xlarge", input_mode="Pipe", sagemaker_session=sess)
    with pytest.raises(sluice.errors.SpecError, match="line 2"):
        est.fit({"train": TrainingInput(f"s3://{bucket}/bad.manifest", s3_data_type="AugmentedManifestFile",
                                        attribute_names=["source-ref", "class"], record_wrapping="RecordIO")},
                logs=False)
    assert sess.metadata.list_jobs() == []


def test_the_image_classification_example_trains_and_reports_its_metrics(tmp_path):
    out = subprocess.run(
        [sys.executable, str(REPO / "examples/image_classification/demo.py"), "--images", "40", "--epochs", "2",
         "--home", str(tmp_path / "home")],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Completed" in out.stdout
    assert "'MetricName': 'val:accuracy'" in out.stdout
    assert "[algo-2] epoch=1 images=20 train:accuracy=" in out.stderr


def test_pipe_and_fastfile_against_an_s3_endpoint(s3_home, tmp_path, caplog):
    sess = sluice.Session()
    assert sess.store.kind == "s3"
    uri = manifest(sess, 6)
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text(RECORDING_SCRIPT)
    est = Estimator(image_uri=None, entry_point="train.py", source_dir=str(src), role=sluice.get_execution_role(),
                    instance_count=2, instance_type="ml.m5.xlarge", hyperparameters={"epochs": 1},
                    input_mode="Pipe", sagemaker_session=sess)
    est.fit({"train": TrainingInput(uri, s3_data_type="AugmentedManifestFile",
                                    attribute_names=["source-ref", "class"], record_wrapping="RecordIO",
                                    distribution="ShardedByS3Key")}, logs=False)
    with tarfile.open(fileobj=io.BytesIO(S3Downloader.read_bytes(est.model_data, sagemaker_session=sess))) as tar:
        seen = [json.loads(tar.extractfile(m).read()) for m in tar.getmembers()]
    assert sorted(r[0] for s in seen for r in s["epochs"][0]) == [f"image-{i:03d}" for i in range(6)]

    (src / "train.py").write_text(textwrap.dedent("""
        import os
        files = sorted(os.listdir("/opt/ml/input/data/train"))
        open(os.environ["SM_MODEL_DIR"] + "/files.txt", "w").write(",".join(files))
    """))
    est = Estimator(image_uri=None, entry_point="train.py", source_dir=str(src), role=sluice.get_execution_role(),
                    instance_count=1, instance_type="ml.m5.xlarge", input_mode="FastFile", sagemaker_session=sess)
    est.fit({"train": f"s3://{sess.default_bucket()}/img/"}, logs=False)
    with tarfile.open(fileobj=io.BytesIO(S3Downloader.read_bytes(est.model_data, sagemaker_session=sess))) as tar:
        assert tar.extractfile("files.txt").read().decode().split(",") == [f"{i:03d}.bin" for i in range(6)]
    assert "FastFile" in caplog.text and "File mode" in caplog.text  # the one-line notice of the fallback


def test_fastfile_channel_is_read_only_to_the_script(sess, tmp_path):
    bucket = sess.default_bucket()
    sess.store.put(bucket, "ff/a.txt", b"alpha")
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text(textwrap.dedent("""
        import os
        path = "/opt/ml/input/data/train/a.txt"
        outcome = []
        for attempt in (lambda: open(path, "a").write("x"), lambda: open(path + ".new", "w").write("x")):
            try:
                attempt()
                outcome.append("wrote")
            except OSError as exc:
                outcome.append(type(exc).__name__)
        cfg = open("/opt/ml/input/config/inputdataconfig.json").read()
        open(os.environ["SM_MODEL_DIR"] + "/r.txt", "w").write(open(path).read() + "|" + ",".join(outcome) + "|" + cfg)
    """))
    est = Estimator(image_uri=None, entry_point="train.py", source_dir=str(src), role=sluice.get_execution_role(),
                    instance_count=1, instance_type="ml.m5.xlarge", input_mode="FastFile", sagemaker_session=sess)
    est.fit({"train": f"s3://{bucket}/ff/"}, logs=False)
    with tarfile.open(fileobj=io.BytesIO(S3Downloader.read_bytes(est.model_data, sagemaker_session=sess))) as tar:
        content, outcome, config = tar.extractfile("r.txt").read().decode().split("|")
    assert content == "alpha"
    assert "wrote" not in outcome.split(",")  # neither changing an object nor adding a file is allowed
    assert json.loads(config)["train"]["TrainingInputMode"] == "FastFile"
    assert sess.store.get_bytes(bucket, "ff/a.txt") == b"alpha"
