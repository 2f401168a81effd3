"""``python -m sluice.serving.worker`` as batch transform starts it: a real process on a real port, no sandbox,
the model at ``$SAGEMAKER_BASE_DIR/model``, configured by the inference toolkit's environment variables."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Worker:
    """A worker process and a client for it."""

    def __init__(self, base: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = base / "worker.log"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "SLUICE_READY"))}
        full_env.update(SAGEMAKER_BASE_DIR=str(base), SAGEMAKER_BIND_TO_PORT=str(self.port), **env)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "sluice.serving.worker"], env=full_env,
                                         stdout=out, stderr=subprocess.STDOUT)
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def wait_ping(self, want: int = 200, deadline: float = 60) -> httpx.Response:
        """Poll /ping until it answers ``want`` (or the deadline passes, or the process exits)."""
        end = time.monotonic() + deadline
        last: object = None
        while time.monotonic() < end:
            assert self.proc.poll() is None, f"worker exited: {self.log.read_text()}"
            try:
                answer = self.client.get("/ping")
                if answer.status_code == want:
                    return answer
                last = answer.status_code
            except httpx.TransportError as exc:
                last = exc
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(0.05)  # returns at once if the worker exits
        raise AssertionError(f"/ping never answered {want} (last: {last}); log: {self.log.read_text()}")

    def stop(self) -> int:
        self.client.close()
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for w in started:
        if w.proc.poll() is None:
            w.stop()


def sklearn_model_dir(base: Path, inference: str | None = None) -> Path:
    import joblib
    from sklearn.linear_model import LinearRegression

    model = base / "model"
    (model / "code").mkdir(parents=True)
    buf = io.BytesIO()
    joblib.dump(LinearRegression().fit([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]], [1.0, 2.0, 5.0]), buf)
    (model / "model.joblib").write_bytes(buf.getvalue())
    if inference:
        (model / "code" / "inference.py").write_text(textwrap.dedent(inference))
    return model


def test_worker_serves_default_handlers_under_the_toolkit_environment(tmp_path, workers):
    sklearn_model_dir(tmp_path)
    w = Worker(tmp_path, SAGEMAKER_MODEL_SERVER_WORKERS="3", SAGEMAKER_MAX_PAYLOAD_IN_MB="1",
               SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT="text/csv", SLUICE_FRAMEWORK="sklearn")
    workers.append(w)
    ping = w.wait_ping()
    assert ping.content == b""
    assert w.client.get("/execution-parameters").json() == {
        "MaxConcurrentTransforms": 3, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 1}
    as_json = w.client.post("/invocations", content=b"1,1\n2,2", headers={"Content-Type": "text/csv",
                                                                         "Accept": "application/json"})
    assert as_json.status_code == 200 and as_json.headers["content-type"] == "application/json"
    predictions = as_json.json()
    assert len(predictions) == 2
    for accept in (None, "*/*"):  # no Accept, or */*: SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT
        headers = {"Content-Type": "text/csv", **({"Accept": accept} if accept else {})}
        as_csv = w.client.post("/invocations", content=b"1,1\n2,2", headers=headers)
        assert as_csv.headers["content-type"] == "text/csv"
        assert [float(v) for v in as_csv.text.split()] == pytest.approx(predictions)
    unsupported = w.client.post("/invocations", content=b"x", headers={"Content-Type": "image/png"})
    assert unsupported.status_code == 415 and "image/png" in unsupported.text and "input_fn" in unsupported.text
    too_big = w.client.post("/invocations", content=b"1," * (512 * 1024 + 1), headers={"Content-Type": "text/csv"})
    assert too_big.status_code == 413 and "SAGEMAKER_MAX_PAYLOAD_IN_MB is 1" in too_big.text
    assert w.stop() in (0, -signal.SIGTERM)  # uvicorn shuts down gracefully, then re-raises the signal


def test_a_model_it_cannot_load_fails_ping_with_the_reason_and_logs_it(tmp_path, workers):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "notes.txt").write_text("no model here")
    w = Worker(tmp_path)
    workers.append(w)
    answer = w.wait_ping(want=500)
    assert "No model_fn in inference.py and no model file sluice recognises" in answer.text
    assert "notes.txt" in answer.text
    invocation = w.client.post("/invocations", content=b"1", headers={"Content-Type": "text/csv"})
    assert invocation.status_code == 500 and "No model_fn" in invocation.text
    w.stop()
    assert "No model_fn in inference.py" in w.log.read_text()


def test_a_handler_slower_than_the_model_server_timeout_answers_504(tmp_path, workers):
    sklearn_model_dir(tmp_path, """
        import time

        def model_fn(model_dir):
            return None

        def transform_fn(model, data, content_type, accept):
            if data == "slow":
                time.sleep(3)
            return "done"
    """)
    w = Worker(tmp_path, SAGEMAKER_MODEL_SERVER_TIMEOUT="0.5", SAGEMAKER_PROGRAM="inference.py",
               SAGEMAKER_SUBMIT_DIRECTORY=str(tmp_path / "model" / "code"))
    workers.append(w)
    w.wait_ping()
    slow = w.client.post("/invocations", content=b"slow", headers={"Content-Type": "text/csv"})
    assert slow.status_code == 504 and "SAGEMAKER_MODEL_SERVER_TIMEOUT=0.5" in slow.text
    assert w.client.get("/ping").status_code == 200  # the server stays responsive meanwhile
    fast = w.client.post("/invocations", content=b"fast", headers={"Content-Type": "text/csv"})
    assert fast.status_code == 200 and fast.text == "done"


def test_the_runtime_wire_path_answers_as_the_sagemaker_runtime(tmp_path, workers):
    import boto3

    sklearn_model_dir(tmp_path, """
        def transform_fn(model, data, content_type, accept, context):
            if data == "boom":
                raise RuntimeError("the model broke")
            echo = "echo=" + str(context.custom_attributes)
            context.set_response_header(0, "X-Amzn-SageMaker-Custom-Attributes", echo)
            return f"{content_type}:{data}", "text/plain"
    """)
    w = Worker(tmp_path, SLUICE_ENDPOINT_NAME="ep", SLUICE_LOG_PATH="/where/the/log/is")
    workers.append(w)
    w.wait_ping()
    runtime = boto3.client("sagemaker-runtime", endpoint_url=w.url, region_name="us-east-1",
                           aws_access_key_id="x", aws_secret_access_key="x")
    answer = runtime.invoke_endpoint(EndpointName="ep", Body=b"hi", ContentType="text/csv", CustomAttributes="c=1")
    assert answer["Body"].read() == b"text/csv:hi"
    assert answer["ContentType"] == "text/plain"
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    assert answer["CustomAttributes"] == "echo=c=1"
    with pytest.raises(runtime.exceptions.ModelError) as err:
        runtime.invoke_endpoint(EndpointName="ep", Body=b"boom", ContentType="text/csv")
    assert "Received server error (500) from primary" in str(err.value)
    assert "RuntimeError: the model broke" in str(err.value) and "/where/the/log/is" in str(err.value)
    assert err.value.response["OriginalStatusCode"] == 500
    with pytest.raises(runtime.exceptions.ValidationError, match="Endpoint other of account"):
        runtime.invoke_endpoint(EndpointName="other", Body=b"hi", ContentType="text/csv")
    assert json.loads(w.client.get("/execution-parameters").content)["BatchStrategy"] == "MULTI_RECORD"
