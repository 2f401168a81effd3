"""The in-instance batch loop against a stand-in model server that speaks the container contract
(``/ping``, ``/invocations``, ``/execution-parameters`` on ``$SAGEMAKER_BIND_TO_PORT``): requests, order,
concurrency, retries, per-object failure, and the output files."""

from __future__ import annotations

import gzip
import json
import sys
import textwrap
from pathlib import Path

import pytest

from sluice.serving.batch import BatchConfig, WorkerError, main, run_batch

# The stand-in model: each CSV line "a,b,..." becomes the sum of its numbers; a line holding "bad" is a
# model error (HTTP 500). Every request is logged (start/end, body size) to $FAKE_LOG as JSON lines.
# FAKE_BARRIER=2 holds the first two requests until both are in flight (it breaks after 10 s if they are
# never concurrent). FAKE_FLAKY=1 answers 503 to the first attempt of every distinct body.
FAKE_SERVER = textwrap.dedent(
    """
    import hashlib, json, os, sys, threading, time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    if os.environ.get("FAKE_EXIT"):
        print("model_fn: no model file in /opt/ml/model", flush=True)
        sys.exit(int(os.environ["FAKE_EXIT"]))
    LOG = os.environ["FAKE_LOG"]
    lock = threading.Lock()
    barrier_n = int(os.environ.get("FAKE_BARRIER", "0"))
    barrier = threading.Barrier(barrier_n, timeout=10) if barrier_n else None
    count = [0]
    seen = set()

    def log(entry):
        with lock, open(LOG, "a") as fh:
            fh.write(json.dumps(entry) + "\\n")

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def log_message(self, *a):
            pass
        def reply(self, status, body, ctype="text/plain"):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def do_GET(self):
            if self.path == "/ping":
                if os.environ.get("FAKE_PING_500"):
                    return self.reply(500, b"the model could not be loaded: no model.joblib")
                if os.environ.get("FAKE_PING_503"):
                    return self.reply(503, b"the model is loading")
                return self.reply(200, b"")
            if self.path == "/execution-parameters" and os.environ.get("FAKE_EXEC"):
                return self.reply(200, os.environ["FAKE_EXEC"].encode(), "application/json")
            self.reply(404, b"not found")
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            start = time.monotonic()
            with lock:
                count[0] += 1
                n = count[0]
                digest = hashlib.sha256(body).hexdigest()
                first_attempt = digest not in seen
                seen.add(digest)
            together = None
            if barrier is not None and n <= barrier_n:
                try:
                    barrier.wait()
                    together = True
                except threading.BrokenBarrierError:
                    together = False
            log({"n": n, "start": start, "end": time.monotonic(), "bytes": len(body), "together": together,
                 "content_type": self.headers.get("Content-Type"), "accept": self.headers.get("Accept")})
            if os.environ.get("FAKE_FLAKY") and first_attempt:
                return self.reply(503, b"warming up")
            lines = [l for l in body.decode().splitlines() if l.strip()]
            if any("bad" in l for l in lines):
                return self.reply(500, b"ValueError: could not convert string to float: 'bad'")
            out = "".join(f"{sum(float(x) for x in l.split(','))}\\n" for l in lines)
            self.reply(200, out.encode(), "text/csv")

    ThreadingHTTPServer(("127.0.0.1", int(os.environ["SAGEMAKER_BIND_TO_PORT"])), H).serve_forever()
    """
)


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    path = tmp_path / "fake_server.py"
    path.write_text(FAKE_SERVER)
    return path


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for var in ("SLUICE_OPT_ML", "SAGEMAKER_BASE_DIR"):
        monkeypatch.delenv(var, raising=False)
    return {"FAKE_LOG": str(tmp_path / "requests.jsonl"), "PATH": "/usr/bin:/bin"}


def make_input(root: Path, files: dict[str, bytes]) -> list[str]:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return sorted(files)


def config(tmp_path: Path, fake: Path, objects: list[str], **kw) -> BatchConfig:
    return BatchConfig(input_dir=str(tmp_path / "in"), output_dir=str(tmp_path / "out"), objects=objects,
                       worker_command=[sys.executable, str(fake)], failure_path=str(tmp_path / "failure"), **kw)


def requests_made(env: dict[str, str]) -> list[dict]:
    path = Path(env["FAKE_LOG"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def csv_lines(n: int, start: int = 0) -> bytes:
    return "".join(f"{i},{i}\n" for i in range(start, start + n)).encode()


def test_multi_record_sends_several_requests_and_keeps_record_order(tmp_path, fake, env):
    objects = make_input(tmp_path / "in", {"a.csv": csv_lines(400), "nested/deeper/b.csv": csv_lines(50, 1000)})
    result = run_batch(config(tmp_path, fake, objects, split_type="Line", batch_strategy="MultiRecord",
                              max_payload_mb=0, assemble_with="Line", content_type="text/csv", accept="text/csv"),
                       env)
    assert result.failed == {} and result.succeeded == ["a.csv", "nested/deeper/b.csv"]
    out_a = (tmp_path / "out" / "a.csv.out").read_text().splitlines()
    assert out_a == [f"{2.0 * i}" for i in range(400)]
    assert (tmp_path / "out" / "nested/deeper/b.csv.out").read_text().splitlines()[0] == "2000.0"
    made = requests_made(env)
    assert {(r["content_type"], r["accept"]) for r in made} == {("text/csv", "text/csv")}


def test_max_payload_splits_an_object_into_many_requests(tmp_path, fake, env, monkeypatch):
    monkeypatch.setattr("sluice.serving.batch.MB", 1000)  # a 1 "MB" limit of 1,000 bytes keeps the test small
    objects = make_input(tmp_path / "in", {"a.csv": csv_lines(1000)})
    result = run_batch(config(tmp_path, fake, objects, split_type="Line", batch_strategy="MultiRecord",
                              max_payload_mb=1, assemble_with="Line"), env)
    made = requests_made(env)
    assert len(made) > 5 and all(r["bytes"] <= 1000 for r in made)
    assert result.requests == len(made)
    assert (tmp_path / "out" / "a.csv.out").read_text().splitlines() == [f"{2.0 * i}" for i in range(1000)]


def test_max_concurrent_transforms_keeps_that_many_requests_in_flight(tmp_path, fake, env):
    objects = make_input(tmp_path / "in", {"a.csv": csv_lines(8)})
    env["FAKE_BARRIER"] = "2"
    run_batch(config(tmp_path, fake, objects, split_type="Line", batch_strategy="SingleRecord",
                     max_concurrent_transforms=2, assemble_with="Line"), env)
    first_two = [r for r in requests_made(env) if r["n"] <= 2]
    assert [r["together"] for r in first_two] == [True, True]
    assert (tmp_path / "out" / "a.csv.out").read_text().splitlines() == [f"{2.0 * i}" for i in range(8)]


def test_concurrency_comes_from_execution_parameters_when_the_request_leaves_it_unset(tmp_path, fake, env):
    objects = make_input(tmp_path / "in", {"a.csv": csv_lines(4)})
    env["FAKE_BARRIER"] = "2"
    env["FAKE_EXEC"] = json.dumps({"MaxConcurrentTransforms": 2, "BatchStrategy": "SINGLE_RECORD",
                                   "MaxPayloadInMB": 3})
    result = run_batch(config(tmp_path, fake, objects, split_type="Line"), env)
    assert result.settings == {"MaxConcurrentTransforms": 2, "BatchStrategy": "SingleRecord", "MaxPayloadInMB": 3}
    assert [r["together"] for r in requests_made(env) if r["n"] <= 2] == [True, True]


def test_the_request_wins_over_execution_parameters_and_defaults_apply_last(tmp_path, fake, env):
    objects = make_input(tmp_path / "in", {"a.csv": csv_lines(2)})
    env["FAKE_EXEC"] = json.dumps({"MaxConcurrentTransforms": 8, "BatchStrategy": "SINGLE_RECORD"})
    result = run_batch(config(tmp_path, fake, objects, split_type="Line", max_concurrent_transforms=1,
                              batch_strategy="MultiRecord"), env)
    assert result.settings == {"MaxConcurrentTransforms": 1, "BatchStrategy": "MultiRecord", "MaxPayloadInMB": 6}
    env.pop("FAKE_EXEC")
    assert run_batch(config(tmp_path, fake, objects, split_type="Line"), env).settings == {
        "MaxConcurrentTransforms": 1, "BatchStrategy": "MultiRecord", "MaxPayloadInMB": 6}


def test_a_failed_object_leaves_no_output_and_the_others_complete(tmp_path, fake, env):
    objects = make_input(tmp_path / "in", {"a.csv": csv_lines(30), "b.csv": b"1,2\nbad,3\n4,5\n",
                                           "c/d.csv": csv_lines(30)})
    result = run_batch(config(tmp_path, fake, objects, split_type="Line", batch_strategy="SingleRecord",
                              max_concurrent_transforms=2, assemble_with="Line", invocations_max_retries=1), env)
    assert result.succeeded == ["a.csv", "c/d.csv"]
    assert list(result.failed) == ["b.csv"]
    assert "HTTP 500" in result.failed["b.csv"] and "could not convert string to float: 'bad'" in result.failed["b.csv"]
    assert "after 2 attempts" in result.failed["b.csv"]  # a 5xx answer is retried InvocationsMaxRetries times
    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == ["a.csv.out", "c/d.csv.out"]
    assert "b.csv" in result.failure_message() and "1 of 3 input object(s) failed" in result.failure_message()


def test_retries_recover_from_transient_errors(tmp_path, fake, env):
    objects = make_input(tmp_path / "in", {"a.csv": csv_lines(3)})
    env["FAKE_FLAKY"] = "1"
    ok = run_batch(config(tmp_path, fake, objects, split_type="Line", batch_strategy="SingleRecord",
                          invocations_max_retries=1), env)
    assert ok.failed == {}
    env["FAKE_LOG"] = str(tmp_path / "second.jsonl")
    (tmp_path / "out" / "a.csv.out").unlink()
    no_retry = run_batch(config(tmp_path, fake, objects, split_type="Line", batch_strategy="SingleRecord",
                                invocations_max_retries=0), env)
    assert "HTTP 503" in no_retry.failed["a.csv"]


def test_a_record_larger_than_max_payload_fails_its_object_naming_the_sizes(tmp_path, fake, env):
    big = b"1," + b"0" * (1024 * 1024) + b"\n"
    objects = make_input(tmp_path / "in", {"big.csv": b"1,1\n" + big, "small.csv": b"1,1\n"})
    result = run_batch(config(tmp_path, fake, objects, split_type="Line", batch_strategy="SingleRecord",
                              max_payload_mb=1), env)
    assert result.succeeded == ["small.csv"]
    assert "record 2 is 1,048,579 bytes, larger than MaxPayloadInMB=1 (1,048,576 bytes)" in result.failed["big.csv"]
    assert not (tmp_path / "out" / "big.csv.out").exists()


def test_gzip_objects_are_decompressed_and_corrupt_ones_fail(tmp_path, fake, env):
    objects = make_input(tmp_path / "in", {"a.csv.gz": gzip.compress(csv_lines(5)), "b.csv.gz": b"not gzip"})
    result = run_batch(config(tmp_path, fake, objects, split_type="Line", gzip=True, assemble_with="Line"), env)
    assert (tmp_path / "out" / "a.csv.gz.out").read_text().splitlines() == [f"{2.0 * i}" for i in range(5)]
    assert "is not valid gzip" in result.failed["b.csv.gz"]


def test_an_empty_object_gets_an_empty_output(tmp_path, fake, env):
    objects = make_input(tmp_path / "in", {"empty.csv": b""})
    assert run_batch(config(tmp_path, fake, objects, split_type="Line"), env).succeeded == ["empty.csv"]
    assert (tmp_path / "out" / "empty.csv.out").read_bytes() == b""


def test_join_and_filters_are_applied_per_request(tmp_path, fake, env):
    objects = make_input(tmp_path / "in", {"a.csv": b"id1,1,2\nid2,3,4\n"})
    run_batch(config(tmp_path, fake, objects, split_type="Line", batch_strategy="MultiRecord",
                     content_type="text/csv", accept="text/csv", assemble_with="Line", input_filter="$[1:]",
                     join_source="Input", output_filter="$[0,-1]"), env)
    assert (tmp_path / "out" / "a.csv.out").read_text() == "id1,3.0\nid2,7.0\n"


def test_a_server_that_exits_before_ping_fails_with_its_last_lines(tmp_path, fake, env):
    env["FAKE_EXIT"] = "3"
    with pytest.raises(WorkerError, match=r"exited with code 3 before it answered /ping.*no model file"):
        run_batch(config(tmp_path, fake, ["a.csv"]), env)


def test_a_server_whose_ping_answers_500_fails_at_once_with_the_reason(tmp_path, fake, env):
    env["FAKE_PING_500"] = "1"
    with pytest.raises(WorkerError, match=r"health check.*no model\.joblib"):
        run_batch(config(tmp_path, fake, ["a.csv"]), env)


def test_main_writes_the_failure_file_and_exits_non_zero(tmp_path, fake, env, monkeypatch):
    objects = make_input(tmp_path / "in", {"bad.csv": b"bad\n"})
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(config(tmp_path, fake, objects, split_type="Line", invocations_max_retries=0).dump()))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["--config", str(path)]) == 1
    assert (tmp_path / "failure").read_text().startswith("1 of 1 input object(s) failed")


def test_an_instance_without_objects_does_not_start_the_server(tmp_path, fake, env):
    env["FAKE_EXIT"] = "3"  # would fail if it were started
    assert run_batch(config(tmp_path, fake, []), env).failed == {}


def test_a_server_that_never_gets_ready_fails_after_the_startup_timeout(tmp_path, fake, env):
    env.update(FAKE_PING_503="1", SAGEMAKER_STARTUP_TIMEOUT="0.6")
    with pytest.raises(WorkerError, match=r"did not pass /ping within 0.6 s.*503 'the model is loading'"):
        run_batch(config(tmp_path, fake, ["a.csv"]), env)
