"""Batch transform jobs end to end: a scikit-learn model served by the real model server, instances in the
sandbox, outputs in object storage, and the failures the service reports."""

from __future__ import annotations

import io
import json
import tarfile
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import sluice
from sluice.errors import ExecutionError, SpecError
from sluice.transformer import Transformer

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"

# The model's handlers. With MEET=2 the first two predictions wait for each other (up to 20 s) and log
# whether they met: they can only meet if two requests are in the model at the same time.
INFERENCE = textwrap.dedent(
    """
    import io, json, os, threading, time
    import joblib, numpy as np

    _lock = threading.Lock()
    _count = [0]
    _meet = int(os.environ.get("MEET", "0"))
    _barrier = threading.Barrier(_meet, timeout=20) if _meet else None

    def model_fn(model_dir):
        return joblib.load(os.path.join(model_dir, "model.joblib"))

    def input_fn(body, content_type):
        text = body.decode() if isinstance(body, (bytes, bytearray)) else body
        return np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2)

    def predict_fn(data, model):
        start = time.time()
        with _lock:
            _count[0] += 1
            n = _count[0]
        met = None
        if _barrier is not None and n <= _meet:
            try:
                _barrier.wait()
                met = True
            except threading.BrokenBarrierError:
                met = False
        out = model.predict_proba(data)[:, 1]
        if os.environ.get("REQUEST_LOG"):
            with _lock, open(os.environ["REQUEST_LOG"], "a") as fh:
                fh.write(json.dumps({"pid": os.getpid(), "n": n, "rows": len(data), "start": start,
                                     "end": time.time(), "met": met}) + "\\n")
        return out

    def output_fn(prediction, accept):
        return "".join(f"{p:.6f}\\n" for p in prediction), "text/csv"
    """
)


def model_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def record_model(sess: sluice.Session, name: str, files: dict[str, bytes]) -> None:
    """Put ``model.tar.gz`` in the store and record a DescribeModel-shaped Model for it (as CreateModel would)."""
    bucket = sess.default_bucket()
    sess.store.put(bucket, f"models/{name}/model.tar.gz", model_tar(files))
    sess.metadata.create_resource("Model", name, {
        "ModelName": name,
        "PrimaryContainer": {"Image": SKLEARN_IMAGE, "ModelDataUrl": f"s3://{bucket}/models/{name}/model.tar.gz",
                             "Environment": {"SAGEMAKER_PROGRAM": "inference.py",
                                             "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}},
    })


@pytest.fixture(scope="module")
def classifier() -> LogisticRegression:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 2))
    return LogisticRegression().fit(x, (x[:, 0] + 2 * x[:, 1] > 0).astype(int))


def sklearn_files(model: LogisticRegression) -> dict[str, bytes]:
    buf = io.BytesIO()
    joblib.dump(model, buf)
    return {"model.joblib": buf.getvalue(), "code/inference.py": INFERENCE.encode()}


def csv_rows(seed: int, n: int) -> tuple[list[str], np.ndarray, bytes]:
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=(n, 2)), 5)
    ids = [f"id-{seed}-{i}" for i in range(n)]
    text = "".join(f"{i},{a:.5f},{b:.5f}\n" for i, (a, b) in zip(ids, x, strict=True))
    return ids, x, text.encode()


def outputs(sess: sluice.Session, output_path: str) -> dict[str, bytes]:
    prefix = output_path.split(f"{sess.default_bucket()}/", 1)[1].rstrip("/") + "/"
    return {o.key[len(prefix):]: sess.store.get_bytes(o.bucket, o.key)
            for o in sess.store.list(sess.default_bucket(), prefix)}


def test_filters_join_and_concurrency_over_a_nested_prefix_on_two_instances(s3_home, classifier, tmp_path):
    """The issue's example: drop the id column for the model, join the prediction back, keep id and score."""
    sess = sluice.Session()
    record_model(sess, "clf", sklearn_files(classifier))
    bucket = sess.default_bucket()
    layout = {"a.csv": 1, "nested/b.csv": 2, "nested/deeper/c.csv": 3, "z.csv": 4}
    inputs = {}
    for rel, seed in layout.items():
        ids, x, data = csv_rows(seed, 70_000)  # ~1.2 MB each once filtered: two 1 MB requests
        sess.store.put(bucket, f"batch-in/{rel}", data)
        inputs[rel] = (ids, x)
    log = tmp_path / "requests.jsonl"
    t = Transformer("clf", instance_count=2, instance_type="ml.m5.xlarge", strategy="MultiRecord",
                    assemble_with="Line", accept="text/csv", max_concurrent_transforms=2, max_payload=1,
                    env={"MEET": "2", "REQUEST_LOG": str(log)}, sagemaker_session=sess)
    t.transform(f"s3://{bucket}/batch-in", content_type="text/csv", split_type="Line", input_filter="$[1:]",
                join_source="Input", output_filter="$[0,-1]", logs=False)

    desc = t.latest_transform_job.describe()
    assert desc["TransformJobStatus"] == "Completed"
    assert desc["TransformEndTime"] >= desc["TransformStartTime"]
    assert desc["DataProcessing"] == {"InputFilter": "$[1:]", "OutputFilter": "$[0,-1]", "JoinSource": "Input"}
    assert t.output_path == f"s3://{bucket}/{desc['TransformJobName']}"
    got = outputs(sess, t.output_path)
    assert sorted(got) == sorted(f"{rel}.out" for rel in layout)  # one output per object, same relative path
    for rel, (ids, x) in inputs.items():
        rows = [line.split(",") for line in got[f"{rel}.out"].decode().splitlines()]
        assert [r[0] for r in rows] == ids  # records in input order, the id joined back from the input
        np.testing.assert_allclose([float(r[1]) for r in rows], classifier.predict_proba(x)[:, 1], atol=1e-6)
        assert all(len(r) == 2 for r in rows)

    requests = [json.loads(line) for line in log.read_text().splitlines()]
    by_worker: dict[int, list[dict]] = {}
    for r in requests:
        by_worker.setdefault(r["pid"], []).append(r)
    assert len(by_worker) == 2  # one model server per instance
    assert len(requests) == 8 and all(r["rows"] < 70_000 for r in requests)  # MaxPayloadInMB split every object
    for served in by_worker.values():
        assert [r["met"] for r in served if r["n"] <= 2] == [True, True]  # two requests in the model at once


@pytest.fixture
def sess(sluice_home: Path) -> sluice.Session:
    return sluice.Session()


def test_an_object_the_model_cannot_read_fails_the_job_and_only_that_output_is_missing(sess, classifier):
    record_model(sess, "clf", sklearn_files(classifier))
    bucket = sess.default_bucket()
    for rel, seed in {"a.csv": 1, "c/d.csv": 3}.items():
        sess.store.put(bucket, f"in/{rel}", csv_rows(seed, 50)[2])
    sess.store.put(bucket, "in/b.csv", b"0.1,0.2\n0.3,not-a-number\n")
    t = Transformer("clf", 1, "ml.m5.xlarge", strategy="MultiRecord", assemble_with="Line", accept="text/csv",
                    sagemaker_session=sess)
    with pytest.raises(ExecutionError, match="Failed") as err:
        t.transform(f"s3://{bucket}/in", content_type="text/csv", split_type="Line", input_filter="$[1:]",
                    model_client_config={"InvocationsTimeoutInSeconds": 60, "InvocationsMaxRetries": 0}, logs=False)
    reason = t.latest_transform_job.describe()["FailureReason"]
    assert "b.csv" in reason and "not-a-number" in reason and "1 of 3 input object(s) failed" in reason
    assert str(err.value).endswith(reason)
    assert sorted(outputs(sess, t.output_path)) == ["a.csv.out", "c/d.csv.out"]  # no partial b.csv.out


def test_a_record_larger_than_max_payload_fails_the_job_naming_the_object_and_sizes(sess, classifier):
    record_model(sess, "clf", sklearn_files(classifier))
    bucket = sess.default_bucket()
    sess.store.put(bucket, "in/ok.csv", b"0.1,0.2\n")
    sess.store.put(bucket, "in/huge.csv", b"0.1,0.2\n0.1," + b"1" * (1024 * 1024) + b"\n")
    t = Transformer("clf", 1, "ml.m5.xlarge", strategy="SingleRecord", max_payload=1, accept="text/csv",
                    sagemaker_session=sess)
    with pytest.raises(ExecutionError):
        t.transform(f"s3://{bucket}/in", content_type="text/csv", split_type="Line", logs=False)
    reason = t.latest_transform_job.describe()["FailureReason"]
    assert "huge.csv: record 2 is 1,048,581 bytes, larger than MaxPayloadInMB=1 (1,048,576 bytes)" in reason
    assert sorted(outputs(sess, t.output_path)) == ["ok.csv.out"]


def test_a_filter_outside_the_subset_is_refused_before_anything_starts(sess, classifier):
    record_model(sess, "clf", sklearn_files(classifier))
    sess.store.put(sess.default_bucket(), "in/a.csv", b"1,2\n")
    t = Transformer("clf", 1, "ml.m5.xlarge", sagemaker_session=sess)
    with pytest.raises(SpecError, match=r"outside the JSONPath subset.*Supported operators"):
        t.transform(f"s3://{sess.default_bucket()}/in", content_type="text/csv", input_filter="$..features")
    assert sess.metadata.list_jobs() == []
    assert not sess.config.jobs_root.exists() or list(sess.config.jobs_root.iterdir()) == []


def test_a_model_archive_without_a_model_fails_the_job_with_the_servers_reason(sess):
    record_model(sess, "empty", {"README.txt": b"the model file was forgotten"})
    sess.store.put(sess.default_bucket(), "in/a.csv", b"1,2\n")
    t = Transformer("empty", 1, "ml.m5.xlarge", sagemaker_session=sess)
    with pytest.raises(ExecutionError):
        t.transform(f"s3://{sess.default_bucket()}/in", content_type="text/csv", logs=False)
    desc = t.latest_transform_job.describe()
    assert desc["TransformJobStatus"] == "Failed"
    assert "/ping answered 500" in desc["FailureReason"] and "could not be loaded" in desc["FailureReason"]
    assert outputs(sess, t.output_path) == {}


def test_a_manifest_of_gzip_objects_whole_per_request_with_concurrency_from_the_server(sess, classifier):
    """SplitType None sends each (decompressed) object whole; MaxConcurrentTransforms left unset is taken
    from the server's /execution-parameters; manifest objects land at their suffix paths."""
    import gzip

    record_model(sess, "clf", sklearn_files(classifier))
    bucket = sess.default_bucket()
    expected = {}
    for seed, suffix in enumerate(["x/1.csv.gz", "x/2.csv.gz", "y/3.csv.gz"]):
        _, x, _ = csv_rows(seed, 20)
        plain = "".join(f"{a:.5f},{b:.5f}\n" for a, b in x).encode()
        sess.store.put(bucket, f"raw/{suffix}", gzip.compress(plain))
        expected[suffix] = classifier.predict_proba(x)[:, 1]
    manifest = [{"prefix": f"s3://{bucket}/raw/"}, *expected]
    sess.store.put(bucket, "manifests/m.json", json.dumps(manifest).encode())
    t = Transformer("clf", 2, "ml.m5.xlarge", accept="text/csv", env={"SAGEMAKER_MODEL_SERVER_WORKERS": "3"},
                    sagemaker_session=sess)
    t.transform(f"s3://{bucket}/manifests/m.json", data_type="ManifestFile", content_type="text/csv",
                compression_type="Gzip", logs=False)
    got = outputs(sess, t.output_path)
    assert sorted(got) == sorted(f"{s}.out" for s in expected)
    for suffix, probs in expected.items():
        np.testing.assert_allclose([float(v) for v in got[f"{suffix}.out"].split()], probs, atol=1e-6)
    log = sess.config.jobs_root / t.latest_transform_job.job_name / "algo-1" / "output.log"
    assert "MaxConcurrentTransforms=3, BatchStrategy=MultiRecord, MaxPayloadInMB=6" in log.read_text()


def test_tfrecord_objects_are_split_on_record_boundaries(sess, classifier):
    from sluice.channels.transform_records import encode_tfrecord

    record_model(sess, "clf", sklearn_files(classifier))
    bucket = sess.default_bucket()
    _, x, _ = csv_rows(7, 30)
    sess.store.put(bucket, "tf/part-0.tfrecord",
                   b"".join(encode_tfrecord(f"{a:.5f},{b:.5f}".encode()) for a, b in x))
    t = Transformer("clf", 1, "ml.m5.xlarge", strategy="SingleRecord", assemble_with="Line", accept="text/csv",
                    max_concurrent_transforms=4, sagemaker_session=sess)
    t.transform(f"s3://{bucket}/tf", split_type="TFRecord", content_type="text/csv", logs=False)
    out = outputs(sess, t.output_path)["part-0.tfrecord.out"].decode().splitlines()
    np.testing.assert_allclose([float(v) for v in out], classifier.predict_proba(x)[:, 1], atol=1e-6)


BLOCKING_INFERENCE = textwrap.dedent(
    """
    import os, threading

    def model_fn(model_dir):
        return None

    def transform_fn(model, body, content_type, accept):
        text = body.decode() if isinstance(body, (bytes, bytearray)) else body
        if "block" in text:
            with open(os.environ["SIGNAL_FIFO"], "w") as fifo:  # tells the test this request is in the model
                fifo.write("in the model\\n")
            threading.Event().wait()  # never answers: only a stop ends this job
        return text.upper(), "text/csv"
    """
)


def test_a_stopped_job_keeps_the_outputs_of_objects_that_finished(sess, tmp_path):
    import os

    record_model(sess, "blocker", {"code/inference.py": BLOCKING_INFERENCE.encode()})
    bucket = sess.default_bucket()
    sess.store.put(bucket, "in/a.csv", b"x,y\n")
    sess.store.put(bucket, "in/b.csv", b"block\n")
    fifo = tmp_path / "signal.fifo"
    os.mkfifo(fifo)
    t = Transformer("blocker", 1, "ml.m5.xlarge", max_concurrent_transforms=1, env={"SIGNAL_FIFO": str(fifo)},
                    sagemaker_session=sess)
    t.transform(f"s3://{bucket}/in", content_type="text/csv", wait=False)
    with open(fifo) as signal:  # returns once b.csv's request is inside the model, so a.csv is done
        assert signal.readline() == "in the model\n"
    t.stop_transform_job(wait=True)
    assert t.latest_transform_job.describe()["TransformJobStatus"] == "Stopped"
    assert outputs(sess, t.output_path) == {"a.csv.out": b"X,Y\n"}


def test_the_models_code_requirements_are_installed_for_the_transform(sess, classifier, tmp_path):
    from tests.test_framework_processors import make_wheel

    wheel = make_wheel(tmp_path, "scaler_helper", "1.0", "FACTOR = 1000\n")
    files = sklearn_files(classifier)
    files["code/requirements.txt"] = f"{wheel}\n".encode()
    files["code/inference.py"] = files["code/inference.py"].replace(
        b"def output_fn(prediction, accept):",
        b"import scaler_helper\n\ndef output_fn(prediction, accept):\n"
        b"    prediction = prediction * scaler_helper.FACTOR",
    )
    record_model(sess, "clf-reqs", files)
    bucket = sess.default_bucket()
    sess.store.put(bucket, "req-in/a.csv", b"0.5,0.5\n")
    t = Transformer("clf-reqs", 1, "ml.m5.xlarge", strategy="MultiRecord", assemble_with="Line", accept="text/csv",
                    sagemaker_session=sess)
    t.transform(f"s3://{bucket}/req-in", content_type="text/csv", split_type="Line", logs=False)
    value = float(outputs(sess, t.output_path)["a.csv.out"].decode().split()[0])
    assert value > 1.0  # a probability times scaler_helper.FACTOR: the requirement was importable
