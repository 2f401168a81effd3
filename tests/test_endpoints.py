"""Local endpoints end to end: real model artifacts, real sandboxed worker processes sharing a port, real HTTP
(the Predictor, boto3's sagemaker-runtime client, plain urllib)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from click.testing import CliRunner

import sluice
from sluice.config import reset_config
from sluice.deserializers import JSONDeserializer, StringDeserializer
from sluice.errors import ExecutionError, ResourceLimitExceeded, SpecError
from sluice.predictor import ModelError, Predictor
from sluice.serializers import CSVSerializer, JSONSerializer
from sluice.serving.endpoints import delete_endpoint, deploy_endpoint, describe_endpoint, list_endpoints

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
PYTORCH_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.13.0-cpu-py311"
CODE_ENV = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20", "SAGEMAKER_REGION": "us-east-1"}

SKLEARN_INFERENCE = """
    import json, os
    import joblib

    def model_fn(model_dir):
        return joblib.load(os.path.join(model_dir, "model.joblib"))

    def predict_fn(data, model, context):
        attributes = context.request_processor[0].get_request_properties().get("X-Amzn-SageMaker-Custom-Attributes")
        if attributes == "fail":
            raise ValueError("asked to fail by the custom attributes")
        if attributes:
            context.set_response_header(0, "X-Amzn-SageMaker-Custom-Attributes", "seen=" + attributes)
        return model.predict(data) * (2.0 if attributes == "double" else 1.0)

    def output_fn(prediction, accept):
        return json.dumps({"predictions": prediction.tolist(), "pid": os.getpid()})
"""

# transform_fn with the context argument; reports what it saw (and its pid, and sys.path).
ECHO_INFERENCE = """
    import json, os, sys

    def model_fn(model_dir):
        return sorted(os.listdir(model_dir))

    def transform_fn(model, input_data, content_type, accept, context):
        return json.dumps({"model": model, "input": input_data, "content_type": content_type, "accept": accept,
                           "custom": context.custom_attributes, "pid": os.getpid(), "path": sys.path,
                           "model_dir": context.system_properties["model_dir"]}), "application/json"
"""


# ---- helpers ---------------------------------------------------------------------------------------
def model_tar(files: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            raw = textwrap.dedent(data).encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def record_model(sess: sluice.Session, name: str, image: str, files: dict[str, bytes | str],
                 env: dict[str, str] | None = None) -> str:
    """Upload a model.tar.gz and record a DescribeModel-shaped Model, as sluice.model does."""
    uri = sess.upload_string_as_file_body(model_tar(files), sess.default_bucket(), f"models/{name}/model.tar.gz")
    sess.metadata.create_resource("Model", name, {
        "ModelName": name, "ModelArn": f"arn:aws:sagemaker:us-east-1:000000000000:model/{name}",
        "PrimaryContainer": {"Image": image, "ModelDataUrl": uri, "Environment": dict(env or {})},
        "ExecutionRoleArn": sluice.get_execution_role(), "CreationTime": time.time(),
    })
    return uri


def sklearn_files() -> tuple[dict[str, bytes | str], Any]:
    import joblib
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]]), [1.0, 2.0, 5.0, 6.0])
    buf = io.BytesIO()
    joblib.dump(model, buf)
    return {"model.joblib": buf.getvalue(), "code/inference.py": SKLEARN_INFERENCE}, model


def post(url: str, body: bytes, content_type: str, **headers: str) -> tuple[int, Message, bytes]:
    """One request on a new connection (so the kernel may pick any instance). Headers are looked up
    case-insensitively, as HTTP says they are."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type, **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def runtime_client(url: str) -> Any:
    return boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="x", aws_secret_access_key="x")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def container_path(sess: sluice.Session, tree: Path, path: str) -> str:
    """Where the worker sees ``path``: itself under bubblewrap, else redirected into the instance's tree."""
    from sluice.runtime.sandbox import detect_sandbox

    return path if detect_sandbox(sess.config.sandbox).isolates else str(tree) + path[len("/opt/ml"):]


def wait_for_status(sess: sluice.Session, name: str, status: str, deadline: float = 30) -> dict[str, Any]:
    end = time.monotonic() + deadline
    while True:
        record = describe_endpoint(name, sess.config)
        if record["EndpointStatus"] == status or time.monotonic() > end:
            return record
        time.sleep(0.05)


# ---- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One sluice home for the module, so the two-instance endpoint is deployed once."""
    root = tmp_path_factory.mktemp("endpoints-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLUICE_HOME", str(root))
        for var in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "SLUICE_CONFIG", "SLUICE_METADATA_URL"):
            mp.delenv(var, raising=False)
        reset_config()
        yield root
        for record in list_endpoints(sluice.Session().config):  # never leave a server running
            delete_endpoint(record["EndpointName"], sluice.Session().config)
        reset_config()


@pytest.fixture
def sess(home: Path) -> sluice.Session:
    return sluice.Session()


@pytest.fixture(scope="module")
def sklearn_endpoint(home: Path) -> dict[str, Any]:
    """A scikit-learn model with inference.py (predict_fn takes the context), on two instances."""
    sess = sluice.Session()
    files, model = sklearn_files()
    record_model(sess, "sk-model", SKLEARN_IMAGE, files, CODE_ENV)
    record = deploy_endpoint("sk-model", "sk", 2, "ml.m5.xlarge", sess.config)
    return {"record": record, "model": model}


# ---- the two-instance scikit-learn endpoint ---------------------------------------------------------
def test_deploy_records_an_in_service_endpoint_with_its_local_url(sess, sklearn_endpoint):
    record = sklearn_endpoint["record"]
    assert record["EndpointStatus"] == "InService"
    assert record["EndpointArn"] == "arn:aws:sagemaker:us-east-1:000000000000:endpoint/sk"
    assert record["EndpointConfigName"] == "sk"
    variant = record["ProductionVariants"][0]
    assert variant["VariantName"] == "AllTraffic" and variant["CurrentInstanceCount"] == 2
    assert variant["InstanceType"] == "ml.m5.xlarge" and variant["ModelName"] == "sk-model"
    local = record["Local"]
    assert local["Url"] == f"http://127.0.0.1:{local['Port']}" and len(local["Pids"]) == 2
    assert all(alive(pid) for pid in local["Pids"])
    assert describe_endpoint("sk", sess.config)["EndpointStatus"] == "InService"
    assert [r["EndpointName"] for r in list_endpoints(sess.config)] == ["sk"]
    for host in ("algo-1", "algo-2"):
        base = sess.config.home / "endpoints" / "sk" / host
        assert (base / "ml" / "model" / "model.joblib").is_file()
        assert (base / "ml" / "model" / "code" / "inference.py").is_file()
        loaded_from = container_path(sess, base / "ml", "/opt/ml/model")
        assert f"model loaded from {loaded_from}" in (base / "output.log").read_text()


def test_predictor_with_csv_serializer_and_json_deserializer(sess, sklearn_endpoint):
    predictor = Predictor("sk", sess, serializer=CSVSerializer(), deserializer=JSONDeserializer())
    assert predictor.content_type == "text/csv" and predictor.accept == ("application/json",)
    rows = [[1.0, 1.0], [2.0, 3.0]]
    answer = predictor.predict(rows)
    assert answer["predictions"] == pytest.approx(sklearn_endpoint["model"].predict(rows).tolist())
    assert predictor.predict(np.array(rows), custom_attributes="double")["predictions"] == pytest.approx(
        (2 * sklearn_endpoint["model"].predict(rows)).tolist())
    with pytest.raises(ModelError) as err:
        predictor.predict(rows, custom_attributes="fail")
    assert err.value.original_status_code == 500
    assert "ValueError: asked to fail by the custom attributes" in str(err.value)


def test_boto3_sagemaker_runtime_invokes_the_endpoint(sklearn_endpoint):
    runtime = runtime_client(sklearn_endpoint["record"]["Local"]["Url"])
    answer = runtime.invoke_endpoint(EndpointName="sk", Body=b"1,1\n2,3", ContentType="text/csv",
                                     Accept="application/json", CustomAttributes="double")
    assert answer["ContentType"] == "application/json"
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    assert answer["CustomAttributes"] == "seen=double"
    expected = 2 * sklearn_endpoint["model"].predict([[1.0, 1.0], [2.0, 3.0]])
    assert json.loads(answer["Body"].read())["predictions"] == pytest.approx(expected.tolist())
    with pytest.raises(runtime.exceptions.ModelError) as err:
        runtime.invoke_endpoint(EndpointName="sk", Body=b"1,1", ContentType="text/csv", CustomAttributes="fail")
    assert "Received server error (500) from primary" in str(err.value)
    assert "asked to fail by the custom attributes" in str(err.value)
    assert err.value.response["OriginalStatusCode"] == 500
    with pytest.raises(runtime.exceptions.ModelError) as unsupported:
        runtime.invoke_endpoint(EndpointName="sk", Body=b"\x89PNG", ContentType="image/png")
    assert unsupported.value.response["OriginalStatusCode"] == 415


def test_container_paths_answer_ping_execution_parameters_415_and_413(sklearn_endpoint):
    url = sklearn_endpoint["record"]["Local"]["Url"]
    with urllib.request.urlopen(f"{url}/ping") as ping:
        assert ping.status == 200 and ping.read() == b""
    with urllib.request.urlopen(f"{url}/execution-parameters") as params:
        assert json.loads(params.read()) == {"MaxConcurrentTransforms": min(4, os.cpu_count() or 1),
                                             "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}
    status, _, body = post(f"{url}/invocations", b"\x89PNG", "image/png")
    assert status == 415 and b"not supported by the default input_fn" in body
    status, _, body = post(f"{url}/invocations", b"1,1", "text/csv", **{"X-Amzn-SageMaker-Custom-Attributes": "fail"})
    assert status == 500 and b"ValueError: asked to fail" in body
    status, _, body = post(f"{url}/invocations", b"1" * (6 * 1024 * 1024 + 1), "text/csv")
    assert status == 413 and b"SAGEMAKER_MAX_PAYLOAD_IN_MB is 6" in body
    status, headers, body = post(f"{url}/endpoints/sk/invocations", b"1" * (6 * 1024 * 1024 + 1), "text/csv")
    assert status == 413 and headers["x-amzn-ErrorType"].startswith("ValidationError")


def test_both_instances_serve_on_the_one_port(sklearn_endpoint):
    url = sklearn_endpoint["record"]["Local"]["Url"]
    pids = set()
    for _ in range(200):  # each request on a new connection; the kernel spreads connections over listeners
        status, _, body = post(f"{url}/invocations", b"1,1", "text/csv")
        assert status == 200
        pids.add(json.loads(body)["pid"])
        if len(pids) == 2:
            break
    assert len(pids) == 2


def test_the_cli_lists_and_describes_endpoints(sess, sklearn_endpoint):
    from sluice.cli import main

    runner = CliRunner()
    listed = runner.invoke(main, ["endpoints", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [r["EndpointName"] for r in json.loads(listed.output)] == ["sk"]
    described = runner.invoke(main, ["endpoints", "describe", "sk"])
    assert json.loads(described.output)["Local"]["Url"] == sklearn_endpoint["record"]["Local"]["Url"]


# ---- default handlers -------------------------------------------------------------------------------
def test_xgboost_booster_without_inference_py_uses_the_default_handlers(sess, tmp_path):
    import xgboost as xgb

    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(x, label=[1.0, 2.0, 5.0, 6.0]), num_boost_round=4)
    booster.save_model(str(tmp_path / "xgboost-model"))
    record_model(sess, "xgb-model", XGBOOST_IMAGE, {"xgboost-model": (tmp_path / "xgboost-model").read_bytes()})
    deploy_endpoint("xgb-model", "xgb", 1, "ml.m5.large", sess.config)
    expected = booster.predict(xgb.DMatrix(x)).tolist()
    try:
        # No Accept (the Predictor's default BytesDeserializer sends */*): the XGBoost algorithm container's
        # default, text/csv, on one comma-separated line.
        raw = Predictor("xgb", sess, serializer=CSVSerializer()).predict(x)
        assert [float(v) for v in raw.decode().split(",")] == pytest.approx(expected, rel=1e-5)
        # An Accept the default output_fn writes is still honoured.
        predictor = Predictor("xgb", sess, serializer=CSVSerializer(), deserializer=JSONDeserializer())
        assert predictor.predict(x) == pytest.approx(expected, rel=1e-5)
    finally:
        delete_endpoint("xgb", sess.config)


def test_torchscript_model_without_inference_py_uses_the_default_handlers(sess, tmp_path):
    import torch

    class Doubler(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.sum(dim=1, keepdim=True) * 2

    torch.jit.save(torch.jit.trace(Doubler(), torch.ones(1, 3)), str(tmp_path / "model.pt"))
    record_model(sess, "torch-model", PYTORCH_IMAGE, {"model.pt": (tmp_path / "model.pt").read_bytes()})
    deploy_endpoint("torch-model", "torch", 1, "ml.m5.large", sess.config)
    predictor = Predictor("torch", sess, serializer=JSONSerializer(), deserializer=JSONDeserializer())
    assert predictor.predict([[1, 2, 3], [4, 5, 6]]) == [[12.0], [30.0]]
    predictor.delete_endpoint()


# ---- transform_fn, context, outliving the deployer, requirements.txt --------------------------------
def test_a_transform_fn_endpoint_deployed_by_a_process_that_exits_keeps_serving(sess, home):
    record_model(sess, "echo-model", "local", {"code/inference.py": ECHO_INFERENCE,
                                               "code/requirements.txt": "# nothing to install\n",
                                               "weights.bin": b"\x00"}, CODE_ENV)
    deployer = ("from sluice.serving.endpoints import deploy_endpoint; "
                "print(deploy_endpoint('echo-model', 'echo', 1, 'ml.m5.large')['Local']['Url'])")
    done = subprocess.run([sys.executable, "-c", deployer], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "SLUICE_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    predictor = Predictor("echo", sess, serializer=JSONSerializer(), deserializer=JSONDeserializer())
    seen = predictor.predict({"x": [1, 2]}, custom_attributes="trace-42")
    assert seen["model"] == ["code", "weights.bin"]
    assert seen["input"] == '{"x": [1, 2]}'  # application/json reaches transform_fn decoded
    assert seen["content_type"] == "application/json" and seen["accept"] == "application/json"
    tree = sess.config.home / "endpoints" / "echo" / "algo-1" / "ml"
    assert seen["custom"] == "trace-42" and seen["model_dir"] == container_path(sess, tree, "/opt/ml/model")
    deps = sess.config.home / "deps"
    assert any(p.startswith(str(deps)) for p in seen["path"])  # requirements.txt installed, on PYTHONPATH
    assert container_path(sess, tree, "/opt/ml/model/code") in seen["path"]
    text = Predictor("echo", sess, serializer=CSVSerializer(), deserializer=StringDeserializer())
    assert json.loads(text.predict([1, 2]))["input"] == "1,2"
    text.delete_endpoint()
    text.delete_model()
    assert sess.metadata.get_resource("Model", "echo-model") is None


def test_wait_false_returns_creating_then_describe_reports_in_service(sess):
    # a framework model whose code is a separate sourcedir.tar.gz (SAGEMAKER_SUBMIT_DIRECTORY in the store)
    code = sess.upload_string_as_file_body(model_tar({"inference.py": ECHO_INFERENCE}), sess.default_bucket(),
                                           "code/later/sourcedir.tar.gz")
    env = {**CODE_ENV, "SAGEMAKER_SUBMIT_DIRECTORY": code}
    record_model(sess, "later-model", "local", {"weights.bin": b"\x01"}, env)
    record = deploy_endpoint("later-model", "later", 1, "ml.m5.large", sess.config, wait=False)
    assert record["EndpointStatus"] == "Creating"
    assert wait_for_status(sess, "later", "InService")["EndpointStatus"] == "InService"
    seen = Predictor("later", sess, serializer=JSONSerializer(), deserializer=JSONDeserializer()).predict([1])
    assert seen["model"] == ["code", "weights.bin"] and seen["input"] == "[1]"
    delete_endpoint("later", sess.config)


# ---- failures -----------------------------------------------------------------------------------------
def test_mixing_transform_fn_and_predict_fn_fails_the_deploy_clearly(sess):
    record_model(sess, "mixed-model", "local", {"code/inference.py": """
        def transform_fn(model, data, content_type, accept):
            return data

        def predict_fn(data, model):
            return data
    """}, CODE_ENV)
    with pytest.raises(ExecutionError) as err:
        deploy_endpoint("mixed-model", "mixed", 2, "ml.m5.large", sess.config)
    message = str(err.value)
    assert message.startswith("Error hosting endpoint mixed: Failed. Reason: ")
    assert "defines transform_fn together with predict_fn" in message
    record = describe_endpoint("mixed", sess.config)
    assert record["EndpointStatus"] == "Failed" and "transform_fn together with predict_fn" in record["FailureReason"]
    assert not any(alive(pid) for pid in record["Local"]["Pids"])
    delete_endpoint("mixed", sess.config)


def test_a_model_without_a_model_file_or_model_fn_fails_the_deploy(sess):
    record_model(sess, "empty-model", SKLEARN_IMAGE, {"README.txt": "nothing to serve"})
    with pytest.raises(ExecutionError, match=r"No model_fn in inference\.py and no model file sluice recognises"):
        deploy_endpoint("empty-model", "empty", 1, "ml.m5.large", sess.config)
    assert "README.txt" in describe_endpoint("empty", sess.config)["FailureReason"]
    delete_endpoint("empty", sess.config)


def test_a_worker_that_does_not_load_within_the_startup_timeout_fails_the_deploy(sess):
    record_model(sess, "slow-model", "local", {"code/inference.py": """
        import time

        def model_fn(model_dir):
            time.sleep(30)
    """}, CODE_ENV)
    started = time.monotonic()
    with pytest.raises(ExecutionError, match=r"did not load its model within the startup timeout \(1 s\)"):
        deploy_endpoint("slow-model", "slow", 1, "ml.m5.large", sess.config, startup_timeout=1)
    assert time.monotonic() - started < 15
    record = describe_endpoint("slow", sess.config)
    assert record["EndpointStatus"] == "Failed" and not any(alive(p) for p in record["Local"]["Pids"])
    delete_endpoint("slow", sess.config)


def test_delete_endpoint_stops_the_processes_and_forgets_it(sess):
    record_model(sess, "del-model", "local", {"code/inference.py": ECHO_INFERENCE}, CODE_ENV)
    record = deploy_endpoint("del-model", "del", 2, "ml.m5.large", sess.config)
    predictor = Predictor("del", sess, serializer=JSONSerializer(), deserializer=JSONDeserializer())
    worker = predictor.predict([1])["pid"]
    pids = record["Local"]["Pids"]
    assert all(alive(p) for p in [*pids, worker])
    delete_endpoint("del", sess.config)
    assert not any(alive(p) for p in [*pids, worker])
    assert sess.metadata.get_resource("Endpoint", "del") is None
    assert not (sess.config.home / "endpoints" / "del" / "algo-1" / "ml").exists()
    assert (sess.config.home / "endpoints" / "del" / "algo-1" / "output.log").is_file()  # logs are kept
    with pytest.raises(SpecError, match='Could not find endpoint "del"'):
        delete_endpoint("del", sess.config)
    with pytest.raises(SpecError, match="Endpoint del of account 000000000000 not found"):
        predictor.predict([1])


def test_an_endpoint_whose_worker_was_killed_is_reported_failed(sess):
    record_model(sess, "kill-model", "local", {"code/inference.py": ECHO_INFERENCE}, CODE_ENV)
    deploy_endpoint("kill-model", "kill", 1, "ml.m5.large", sess.config)
    predictor = Predictor("kill", sess, serializer=JSONSerializer(), deserializer=JSONDeserializer())
    os.kill(predictor.predict([1])["pid"], signal.SIGKILL)
    record = wait_for_status(sess, "kill", "Failed")
    assert record["EndpointStatus"] == "Failed"
    assert "algo-1: the model server process" in record["FailureReason"] and "has exited" in record["FailureReason"]
    with pytest.raises(ExecutionError, match="Endpoint kill is Failed, not InService"):
        Predictor("kill", sess).predict(b"[1]")
    delete_endpoint("kill", sess.config)


def test_deploy_refuses_bad_requests_before_starting_anything(sess, sklearn_endpoint):
    with pytest.raises(SpecError, match='Could not find model "nope"'):
        deploy_endpoint("nope", "x", 1, "ml.m5.large", sess.config)
    with pytest.raises(ResourceLimitExceeded, match=r"ml\.p3\.2xlarge for endpoint job usage"):
        deploy_endpoint("sk-model", "x", 3, "ml.p3.2xlarge", sess.config)
    with pytest.raises(SpecError, match=r'Cannot create already existing endpoint ".*endpoint/sk"'):
        deploy_endpoint("sk-model", "sk", 1, "ml.m5.large", sess.config)
    with pytest.raises(SpecError, match="endpoint name 'bad_name' is not valid"):
        deploy_endpoint("sk-model", "bad_name", 1, "ml.m5.large", sess.config)
    with pytest.raises(SpecError, match='Could not find endpoint "nope"'):
        describe_endpoint("nope", sess.config)
    assert [r["EndpointName"] for r in list_endpoints(sess.config)] == ["sk"]
