"""Training jobs through the public API: the script-mode contract, artifacts, metrics, checkpoints, failures."""

from __future__ import annotations

import io
import json
import os
import tarfile
import textwrap
import time
from pathlib import Path

import pytest

import sluice
from sluice.errors import ExecutionError, SpecError
from sluice.estimator import Estimator
from sluice.inputs import TrainingInput
from sluice.s3 import S3Downloader
from sluice.sklearn import SKLearn

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"

# A training script as the SageMaker docs write one: SM_* variables, argparse, /opt/ml paths.
CONTRACT_SCRIPT = textwrap.dedent(
    """
    import argparse, json, os, sys
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--name")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k.startswith("SM_") or k in ("TRAINING_JOB_NAME",)}
    seen = {
        "argv": sys.argv[1:],
        "args": vars(args),
        "env": env,
        "hyperparameters.json": json.load(open("/opt/ml/input/config/hyperparameters.json")),
        "inputdataconfig.json": json.load(open("/opt/ml/input/config/inputdataconfig.json")),
        "resourceconfig.json": json.load(open("/opt/ml/input/config/resourceconfig.json")),
        "train": sorted(os.listdir("/opt/ml/input/data/train")),
        "cwd_code": os.path.exists("/opt/ml/code/train.py"),
    }
    host = os.environ["SM_CURRENT_HOST"]
    json.dump(seen, open(os.path.join(os.environ["SM_MODEL_DIR"], f"seen-{host}.json"), "w"))
    os.makedirs(os.environ["SM_OUTPUT_DATA_DIR"], exist_ok=True)
    open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], f"report-{host}.txt"), "w").write("done")
    for epoch in range(args.epochs):
        print(f"epoch={epoch} val_rmse={1.0 / (epoch + 1):.3f}")
    """
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def sess(sluice_home: Path) -> sluice.Session:
    return sluice.Session()


@pytest.fixture
def train_data(sess: sluice.Session, tmp_path: Path) -> str:
    for i in range(4):
        write(tmp_path / "data" / f"part-{i}.csv", f"{i},{2 * i}\n")
    return sess.upload_data(str(tmp_path / "data"), bucket=sess.default_bucket(), key_prefix="train")


def model_files(sess: sluice.Session, uri: str) -> dict[str, bytes]:
    data = S3Downloader.read_bytes(uri, sagemaker_session=sess)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def estimator(sess: sluice.Session, src: Path, **kw) -> Estimator:
    defaults = dict(image_uri=SKLEARN_IMAGE, entry_point="train.py", source_dir=str(src),
                    role=sluice.get_execution_role(), instance_count=1, instance_type="ml.m5.xlarge",
                    output_path=f"s3://{sess.default_bucket()}/models", sagemaker_session=sess)
    defaults.update(kw)
    return Estimator(**defaults)


def test_script_mode_contract_hyperparameters_env_args_and_configs(sess, tmp_path, train_data):
    src = tmp_path / "src"
    write(src / "train.py", CONTRACT_SCRIPT)
    est = estimator(sess, src, instance_count=2, hyperparameters={"epochs": 2, "lr": 0.1, "name": "abc"},
                    metric_definitions=[{"Name": "val:rmse", "Regex": "val_rmse=([0-9.]+)"}])
    est.fit({"train": TrainingInput(train_data, distribution="ShardedByS3Key", content_type="text/csv")},
            logs=False)
    files = model_files(sess, est.model_data)
    assert sorted(files) == ["seen-algo-1.json", "seen-algo-2.json"]  # /opt/ml/model merged across hosts
    seen = json.loads(files["seen-algo-1.json"])
    # hyperparameters.json holds strings, as the plain Estimator encodes them (str(v)).
    hps = seen["hyperparameters.json"]
    assert hps["epochs"] == "2" and hps["lr"] == "0.1" and hps["name"] == "abc"
    assert hps["sagemaker_program"] == "train.py"
    assert hps["sagemaker_submit_directory"].endswith("/source/sourcedir.tar.gz")
    # Arguments: user hyperparameters only, sorted, --key value.
    assert seen["argv"] == ["--epochs", "2", "--lr", "0.1", "--name", "abc"]
    assert seen["args"] == {"epochs": 2, "lr": 0.1, "name": "abc"}
    assert seen["inputdataconfig.json"] == {"train": {"ContentType": "text/csv", "TrainingInputMode": "File",
                                                      "S3DistributionType": "ShardedByS3Key",
                                                      "RecordWrapperType": "None"}}
    rc = seen["resourceconfig.json"]
    assert rc["current_host"] == "algo-1" and rc["hosts"] == ["algo-1", "algo-2"]
    env = seen["env"]
    assert env["SM_CHANNEL_TRAIN"] == "/opt/ml/input/data/train"
    assert env["SM_MODEL_DIR"] == "/opt/ml/model"
    assert json.loads(env["SM_HPS"]) == {"epochs": 2, "lr": 0.1, "name": "abc"}
    assert env["SM_HP_EPOCHS"] == "2" and env["SM_HP_NAME"] == "abc"
    assert json.loads(env["SM_HOSTS"]) == ["algo-1", "algo-2"] and env["SM_CURRENT_HOST"] == "algo-1"
    assert json.loads(env["SM_CHANNELS"]) == ["train"]
    assert int(env["SM_NUM_CPUS"]) == min(4, os.cpu_count())
    assert json.loads(env["SM_USER_ARGS"]) == seen["argv"]
    assert json.loads(env["SM_TRAINING_ENV"])["job_name"] == est.latest_training_job.job_name
    assert seen["train"] == ["part-0.csv", "part-2.csv"]  # its shard only
    assert json.loads(files["seen-algo-2.json"])["train"] == ["part-1.csv", "part-3.csv"]
    desc = est.latest_training_job.describe()
    name = desc["TrainingJobName"]
    assert desc["TrainingJobStatus"] == "Completed" and desc["SecondaryStatus"] == "Completed"
    assert est.model_data == f"s3://{sess.default_bucket()}/models/{name}/output/model.tar.gz"
    assert sess.store.exists(sess.default_bucket(), f"models/{name}/output/output.tar.gz")
    assert desc["FinalMetricDataList"][0]["MetricName"] == "val:rmse"
    assert desc["FinalMetricDataList"][0]["Value"] == pytest.approx(0.5)
    series = sess.training_job_metrics(name, "val:rmse")
    assert sorted(p["Value"] for p in series) == [0.5, 0.5, 1.0, 1.0]  # two hosts, two epochs each


def test_scripts_start_in_the_code_directory_as_the_training_toolkit_starts_them(sess, tmp_path, train_data):
    """The toolkit runs the entry point from /opt/ml/code, so a script may open its source_dir's files by a
    relative path (with and without the sandbox)."""
    src = tmp_path / "src"
    write(src / "labels.txt", "cat,dog\n")
    write(src / "train.py", """\
        import os, pathlib
        labels = open("labels.txt").read().strip()
        pathlib.Path(os.environ["SM_MODEL_DIR"], "seen.txt").write_text(os.getcwd() + " " + labels)
    """)
    est = estimator(sess, src)
    est.fit({"train": train_data}, logs=False)
    seen = model_files(sess, est.model_data)["seen.txt"].decode()
    labels = seen.rsplit(" ", 1)[1]
    assert labels == "cat,dog"
    if sess.config.sandbox != "none":
        assert seen.startswith("/opt/ml/code ")


def test_framework_estimators_json_encode_hyperparameters(sess, tmp_path, train_data):
    src = tmp_path / "src"
    write(src / "train.py", CONTRACT_SCRIPT)
    est = SKLearn(entry_point="train.py", source_dir=str(src), framework_version="1.2-1",
                  role=sluice.get_execution_role(), instance_count=1, instance_type="ml.m5.large",
                  hyperparameters={"epochs": 1, "lr": 0.5, "name": "abc"}, sagemaker_session=sess)
    est.fit({"train": train_data}, logs=False)
    seen = json.loads(model_files(sess, est.model_data)["seen-algo-1.json"])
    assert seen["hyperparameters.json"]["name"] == '"abc"'  # json.dumps, as the SDK's Framework does
    assert seen["hyperparameters.json"]["sagemaker_program"] == '"train.py"'
    assert seen["argv"] == ["--epochs", "1", "--lr", "0.5", "--name", "abc"]  # decoded before use
    assert est.latest_training_job.describe()["AlgorithmSpecification"]["TrainingImage"] == SKLEARN_IMAGE


def test_failure_file_becomes_the_reason_and_no_model_is_uploaded(sess, tmp_path, train_data):
    src = tmp_path / "src"
    write(src / "train.py", """
        import sys
        print("epoch=0 loss=0.9")
        open("/opt/ml/output/failure", "w").write("NaN loss at epoch 1")
        sys.exit(1)
    """)
    est = estimator(sess, src)
    with pytest.raises(ExecutionError, match="NaN loss at epoch 1"):
        est.fit({"train": train_data}, logs=False)
    desc = est.latest_training_job.describe()
    assert desc["TrainingJobStatus"] == "Failed" and desc["SecondaryStatus"] == "Failed"
    assert desc["FailureReason"] == "AlgorithmError: NaN loss at epoch 1"
    assert "ModelArtifacts" not in desc
    assert [o.key for o in sess.store.list(sess.default_bucket(), "models/")] == []


def test_a_script_killed_mid_epoch_fails_with_a_reason_and_no_model(sess, tmp_path, train_data):
    src = tmp_path / "src"
    write(src / "train.py", """
        import os, signal
        open(os.path.join(os.environ["SM_MODEL_DIR"], "partial.bin"), "w").write("half a model")
        print("epoch=0 started")
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    est = estimator(sess, src)
    with pytest.raises(ExecutionError, match=r"exited with code 137 \(killed by SIGKILL\)"):
        est.fit({"train": train_data}, logs=False)
    assert "epoch=0 started" in est.latest_training_job.describe()["FailureReason"]
    assert [o.key for o in sess.store.list(sess.default_bucket(), "models/")] == []


def test_max_run_stops_the_job_as_max_runtime_exceeded(sess, tmp_path, train_data):
    src = tmp_path / "src"
    write(src / "train.py", "import time\ntime.sleep(600)\n")
    est = estimator(sess, src, max_run=1)
    est.fit({"train": train_data}, logs=False)
    desc = est.latest_training_job.describe()
    assert desc["TrainingJobStatus"] == "Stopped"
    assert desc["SecondaryStatus"] == "MaxRuntimeExceeded"


def test_checkpoints_are_restored_at_start_and_synced_while_training(sess, tmp_path, train_data):
    bucket = sess.default_bucket()
    sess.store.put(bucket, "ckpt/run1/epoch-0.pt", b"weights-0")
    go = tmp_path / "go"
    src = tmp_path / "src"
    write(src / "train.py", f"""
        import os, time
        restored = sorted(os.listdir("/opt/ml/checkpoints"))
        open("/opt/ml/checkpoints/epoch-1.pt", "w").write("weights-1 after " + ",".join(restored))
        while not os.path.exists("{go}"):
            time.sleep(0.02)
    """)
    est = estimator(sess, src, checkpoint_s3_uri=f"s3://{bucket}/ckpt/run1")
    est.fit({"train": train_data}, wait=False, logs=False)
    deadline = time.monotonic() + 60
    while not sess.store.exists(bucket, "ckpt/run1/epoch-1.pt"):
        assert time.monotonic() < deadline, "the checkpoint was not synced while training"
        time.sleep(0.02)
    assert est.latest_training_job.describe()["TrainingJobStatus"] == "InProgress"
    go.touch()
    est.latest_training_job.wait()
    assert sess.store.get_bytes(bucket, "ckpt/run1/epoch-1.pt") == b"weights-1 after epoch-0.pt"


def test_shell_and_package_entry_points(sess, tmp_path, train_data):
    src = tmp_path / "sh"
    write(src / "train.sh", """
        echo "args: $@"
        echo "shell model" > "$SM_MODEL_DIR/model.txt"
    """)
    est = estimator(sess, src, entry_point="train.sh", hyperparameters={"alpha": 1})
    est.fit({"train": train_data}, logs=False)
    assert model_files(sess, est.model_data)["model.txt"] == b"shell model\n"

    pkg = tmp_path / "pkg"
    write(pkg / "setup.py", """
        from setuptools import setup
        setup(name="trainer", version="0.1", py_modules=["trainer"])
    """)
    write(pkg / "trainer.py", """
        import os, sys
        open(os.path.join(os.environ["SM_MODEL_DIR"], "pkg.txt"), "w").write(" ".join(sys.argv[1:]))
    """)
    est = estimator(sess, pkg, entry_point="trainer.py", hyperparameters={"depth": 3})
    est.fit({"train": train_data}, logs=False)
    assert model_files(sess, est.model_data)["pkg.txt"] == b"--depth 3"


def test_attach_rebuilds_an_estimator_from_a_finished_job(sess, tmp_path, train_data):
    src = tmp_path / "src"
    write(src / "train.py", "import os\nopen(os.environ['SM_MODEL_DIR'] + '/m', 'w').write('m')\n")
    est = estimator(sess, src, hyperparameters={"epochs": 4})
    est.fit(train_data, logs=False)
    attached = Estimator.attach(est.latest_training_job.job_name, sagemaker_session=sess)
    assert attached.model_data == est.model_data
    assert attached.hyperparameters()["epochs"] == "4"
    assert attached.instance_type == "ml.m5.xlarge"


@pytest.mark.parametrize(
    ("channel", "message"),
    [
        (dict(s3_data_type="AugmentedManifestFile", attribute_names=["source-ref"]),
         "can only be used if the Channel's input mode is Pipe"),
        (dict(s3_data_type="ManifestFile", input_mode="FastFile"), "FastFile supports S3Prefix only"),
        (dict(record_wrapping="RecordIO"), "RecordIO applies to Pipe mode only"),
        (dict(compression="Gzip"), "Gzip is used only in Pipe input mode"),
    ],
)
def test_channel_combinations_the_service_refuses_are_refused_before_start(sess, tmp_path, train_data, channel,
                                                                           message):
    src = tmp_path / "src"
    write(src / "train.py", "print('never')\n")
    with pytest.raises(SpecError, match=message):
        estimator(sess, src).fit({"train": TrainingInput(train_data, **channel)}, logs=False)
    assert sess.metadata.list_jobs() == []


def test_an_entry_point_missing_from_the_bundle_is_refused(sess, tmp_path, train_data):
    src = tmp_path / "src"
    write(src / "other.py", "print('x')\n")
    with pytest.raises(SpecError, match=r"entry_point 'train\.py' was not found"):
        estimator(sess, src).fit({"train": train_data}, logs=False)
    with pytest.raises(SpecError, match="names no entry point"):
        Estimator(image_uri=SKLEARN_IMAGE, role=sluice.get_execution_role(), instance_count=1,
                  instance_type="ml.m5.xlarge", sagemaker_session=sess).fit(train_data, logs=False)
    assert sess.metadata.list_jobs() == []


def test_arguments_with_no_local_meaning_are_accepted_with_a_notice(sess, tmp_path, train_data, caplog):
    src = tmp_path / "src"
    write(src / "train.py", "print('ok')\n")
    est = estimator(sess, src, subnets=["subnet-1"], security_group_ids=["sg-1"], use_spot_instances=True,
                    max_wait=7200)
    assert "subnets (VPC subnets) has no local equivalent" in caplog.text
    assert "use_spot_instances (managed spot training) has no local equivalent" in caplog.text
    est.fit(train_data, logs=False)
    desc = est.latest_training_job.describe()
    assert desc["VpcConfig"] == {"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}
    assert desc["EnableManagedSpotTraining"] is True


def test_training_against_an_s3_endpoint(s3_home, tmp_path):
    sess = sluice.Session()
    for i in range(2):
        write(tmp_path / "data" / f"p{i}.csv", f"{i}\n")
    data = sess.upload_data(str(tmp_path / "data"), bucket=sess.default_bucket(), key_prefix="train")
    src = tmp_path / "src"
    write(src / "train.py", CONTRACT_SCRIPT)
    est = estimator(sess, src, hyperparameters={"epochs": 1, "lr": 0.1, "name": "s3"})
    est.fit({"train": data}, logs=False)
    assert json.loads(model_files(sess, est.model_data)["seen-algo-1.json"])["train"] == ["p0.csv", "p1.csv"]


def test_network_isolation_leaves_the_script_without_a_network(sess, tmp_path, train_data):
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    src = tmp_path / "src"
    write(src / "train.py", f"""
        import os, socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=5).close()
            result = "connected"
        except OSError as exc:
            result = "refused"
        open(os.environ["SM_MODEL_DIR"] + "/net.txt", "w").write(result)
    """)
    try:
        results = {}
        for isolated in (False, True):
            est = estimator(sess, src, enable_network_isolation=isolated)
            est.fit({"train": train_data}, logs=False)
            results[isolated] = model_files(sess, est.model_data)["net.txt"]
    finally:
        server.close()
    assert results == {False: b"connected", True: b"refused"}
