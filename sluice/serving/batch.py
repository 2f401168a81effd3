"""The batch transform loop that runs inside each transform instance: ``python -m sluice.serving.batch``.

In SageMaker a platform agent beside the container reads the instance's share of the input, sends it
to the model server's ``/invocations`` and writes ``<object>.out``. Here that agent is this module,
started as the instance's entrypoint inside its sandbox, so the model server it talks to runs exactly as
it would in the container (same ``/opt/ml/model``, same environment, same port contract):

1. start the model server (``python -m sluice.serving.worker``) as a child process on a free port, with
   ``SAGEMAKER_BIND_TO_PORT`` set (and ``SLUICE_READY_FILE``, which sluice's server writes once the
   model is loaded, so that pings need not interrupt the loading), and wait until ``GET /ping`` answers 200 (up to
   ``SAGEMAKER_STARTUP_TIMEOUT``, default 600 s; 503 means "still loading"). A server that exits first,
   or answers 500 (it could not load the model and will not retry), fails the instance at once with the
   reason;
2. settle ``MaxConcurrentTransforms``, ``BatchStrategy`` and ``MaxPayloadInMB``: the request's value, else
   (when ``MaxConcurrentTransforms`` is unset or 0) what ``GET /execution-parameters`` answers, else
   1, ``MultiRecord`` and 6 MB;
3. for every input object, in order: split it into records, prepare them (input filter), pack them into
   requests and send those with ``MaxConcurrentTransforms`` requests in flight — across object
   boundaries, so many small objects keep the server as busy as one large one. Responses are joined,
   filtered and assembled in record order into a hidden partial file that becomes ``<object>.out`` only
   when every request of the object succeeded;
4. an object whose request fails (after ``InvocationsMaxRetries`` retries for timeouts, lost connections
   and 5xx answers; a 4xx answer is not retried) or whose data cannot be split or filtered leaves no
   output at all. The other objects go on. At the end, if any object failed, the reasons go to
   ``/opt/ml/output/failure`` and the loop exits 1, which fails the job with that reason.

The loop's settings come from a JSON file (see :class:`BatchConfig`) written by
:mod:`sluice.serving.transform`. Without bubblewrap the instance's ``/opt/ml`` is elsewhere on the host;
container paths are then mapped through ``SLUICE_OPT_ML`` / ``SAGEMAKER_BASE_DIR``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sluice.channels.transform_dataproc import DataProcessing, ProcessingError
from sluice.channels.transform_records import (
    MB,
    BatchStrategy,
    RecordTooLarge,
    SplitType,
    batch_records,
    line_batches,
    open_input,
    split_records,
)

__all__ = ["BatchConfig", "BatchResult", "main", "run_batch"]

CONTAINER_ROOT = "/opt/ml"
DEFAULT_MAX_PAYLOAD_MB = 6
DEFAULT_TIMEOUT_SECONDS = 600
DEFAULT_MAX_RETRIES = 3
DEFAULT_STARTUP_TIMEOUT = 600
_FAILURE_LIMIT = 1024
_PARTIAL_PREFIX = ".sluice-partial-"  # the output uploader skips ".sluice-*" files
_PING_INTERVAL = 0.25  # between pings while the server loads (a ready file cuts the wait short)
_READY_FILE_POLL = 0.01


@dataclass
class BatchConfig:
    """Everything the loop needs, as the runtime writes it (JSON). Paths are container paths."""

    input_dir: str
    output_dir: str
    objects: list[str]
    split_type: str = "None"
    batch_strategy: str | None = None
    max_payload_mb: int | None = None
    max_concurrent_transforms: int | None = None
    content_type: str | None = None
    accept: str | None = None
    assemble_with: str | None = None
    gzip: bool = False
    input_filter: str | None = None
    output_filter: str | None = None
    join_source: str | None = None
    invocations_timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    invocations_max_retries: int = DEFAULT_MAX_RETRIES
    failure_path: str = "/opt/ml/output/failure"
    worker_command: list[str] = field(default_factory=lambda: [sys.executable, "-m", "sluice.serving.worker"])

    @classmethod
    def load(cls, path: str | Path) -> BatchConfig:
        data = json.loads(Path(path).read_text())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def dump(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BatchResult:
    """What one instance did: objects written and objects failed (relative path → reason)."""

    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    settings: dict[str, Any] = field(default_factory=dict)

    def failure_message(self) -> str:
        total = len(self.succeeded) + len(self.failed)
        head = f"{len(self.failed)} of {total} input object(s) failed; their outputs were not written. "
        body = "; ".join(f"{rel}: {why}" for rel, why in self.failed.items())
        return (head + body)[:_FAILURE_LIMIT]


class WorkerError(RuntimeError):
    """The model server could not start, or died: every remaining object would fail the same way."""


class InvocationError(RuntimeError):
    """One request failed for good (after its retries)."""


def host_path(container_path: str) -> Path:
    """Where a container path is for this process: itself under bubblewrap, else under the redirected root."""
    base = os.environ.get("SLUICE_OPT_ML") or os.environ.get("SAGEMAKER_BASE_DIR")
    if base and (container_path == CONTAINER_ROOT or container_path.startswith(CONTAINER_ROOT + "/")):
        return Path(base + container_path[len(CONTAINER_ROOT):])
    return Path(container_path)


# ---- the model server ----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ModelServer:
    """The model server as a child process; its output is passed through to ours and the tail kept."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tail: collections.deque[str] = collections.deque(maxlen=15)
        # sluice's server writes this file when loading ends: watching it costs the server nothing, where
        # pinging it while it imports the model's libraries takes its interpreter lock from the loading.
        self._scratch = Path(tempfile.mkdtemp(prefix="sluice-batch-"))
        self.ready_file = self._scratch / "model-server-ready"
        self.proc = subprocess.Popen(
            command, env={**env, "SAGEMAKER_BIND_TO_PORT": str(self.port), "SLUICE_READY_FILE": str(self.ready_file)},
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self._pump = threading.Thread(target=self._relay, name="model-server-log", daemon=True)
        self._pump.start()

    def _relay(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            self.tail.append(line)
            print(line, flush=True)

    def exited(self) -> int | None:
        return self.proc.poll()

    def last_lines(self) -> str:
        if self.proc.poll() is not None:
            self._pump.join(timeout=2)  # the process is gone; let the relay drain its last lines
        return " | ".join(line.strip() for line in self.tail if line.strip())[-600:]

    def wait_ready(self, client: Any, timeout: float) -> None:
        """Poll ``/ping`` until it answers 200; fail at once if the server exits, or after ``timeout``.

        Between pings the loop watches the server's ready file (every 10 ms) and pings at once when it
        appears; a server that writes no such file is still pinged every 0.25 s.
        """
        import httpx

        deadline = time.monotonic() + timeout
        last = "no answer yet"
        next_ping = 0.0
        while True:
            code = self.exited()
            if code is not None:
                raise WorkerError(f"the model server exited with code {code} before it answered /ping. "
                                  f"Its last lines: {self.last_lines() or '(none)'}")
            now = time.monotonic()
            if now < next_ping and not self.ready_file.exists() and now < deadline:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(_READY_FILE_POLL)  # returns early if the server exits
                continue
            next_ping = now + _PING_INTERVAL
            try:
                answer = client.get(f"{self.url}/ping", timeout=2.0)
                if answer.status_code == 200:
                    return
                if answer.status_code == 500:  # the server could not load the model, and will not retry
                    raise WorkerError(f"the model server failed its health check (/ping answered 500): "
                                      f"{answer.text.strip()[:500]}")
                last = f"/ping answered {answer.status_code} {answer.text.strip()[:200]!r}"
            except httpx.TransportError as exc:
                last = f"/ping: {type(exc).__name__}"
            if time.monotonic() >= deadline:
                raise WorkerError(f"the model server did not pass /ping within {timeout:g} s "
                                  f"(SAGEMAKER_STARTUP_TIMEOUT); last: {last}. Its last lines: {self.last_lines()}")
            if self.ready_file.exists():  # loaded, but not answering 200 yet: do not spin on the file
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(_READY_FILE_POLL)

    def stop(self) -> None:
        """End the server at once. Every response is in (or no longer wanted) by then, and nothing the server
        does while shutting down can change the job's outputs, so a graceful shutdown would only add time."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._pump.join(timeout=2)
        shutil.rmtree(self._scratch, ignore_errors=True)


def execution_parameters(client: Any, url: str) -> dict[str, Any]:
    """``GET /execution-parameters``, or ``{}`` when the server has none (any non-200 answer)."""
    import httpx

    try:
        answer = client.get(f"{url}/execution-parameters", timeout=10.0)
    except httpx.TransportError:
        return {}
    if answer.status_code != 200:
        return {}
    try:
        data = answer.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def settle(config: BatchConfig, params: dict[str, Any]) -> tuple[int, BatchStrategy, int]:
    """(concurrency, strategy, max payload MB): request value > execution parameters > defaults."""
    concurrency = config.max_concurrent_transforms or _positive(params.get("MaxConcurrentTransforms")) or 1
    raw = config.batch_strategy or params.get("BatchStrategy")
    try:
        strategy = BatchStrategy.parse(raw) if raw else BatchStrategy.MULTI_RECORD
    except ValueError:
        strategy = BatchStrategy.MULTI_RECORD
    payload = config.max_payload_mb
    if payload is None:
        from_server = params.get("MaxPayloadInMB")
        payload = from_server if isinstance(from_server, int) and from_server >= 0 else DEFAULT_MAX_PAYLOAD_MB
    return concurrency, strategy, payload


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


# ---- one object's output -------------------------------------------------------------------------
class _ObjectOutput:
    """The output of one object, written in request order to a hidden file, published only when complete."""

    def __init__(self, rel: str, output_root: Path) -> None:
        self.rel = rel
        self.final = output_root / f"{rel}.out"
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.partial = self.final.with_name(f"{_PARTIAL_PREFIX}{self.final.name}")
        self.fh = open(self.partial, "wb")  # noqa: SIM115 - closed in commit/discard
        self.pending = 0
        self.submitted_all = False
        self.error: str | None = None
        self.requests = 0
        self.started = time.monotonic()

    def fail(self, reason: str) -> None:
        if self.error is None:
            self.error = reason

    @property
    def done(self) -> bool:
        return self.submitted_all and self.pending == 0

    def close(self) -> None:
        """Publish the output if every request succeeded, else remove what was written."""
        self.fh.close()
        if self.error is None:
            os.replace(self.partial, self.final)
        else:
            with contextlib.suppress(FileNotFoundError):
                self.partial.unlink()


# ---- the loop ------------------------------------------------------------------------------------
def run_batch(config: BatchConfig, env: dict[str, str] | None = None) -> BatchResult:
    """Run the whole loop for this instance (see the module docstring). Raises :class:`WorkerError`."""
    env = dict(os.environ if env is None else env)
    startup = float(env.get("SAGEMAKER_STARTUP_TIMEOUT") or DEFAULT_STARTUP_TIMEOUT)
    if not config.objects:  # more instances than objects: this one has nothing to send
        print("batch transform: no input objects for this instance; nothing to do", flush=True)
        return BatchResult()
    began = time.monotonic()
    server = ModelServer(config.worker_command, env)  # first: its start-up is the longest wait of the job
    import httpx

    result = BatchResult()
    try:
        with httpx.Client(trust_env=False) as probe:
            server.wait_ready(probe, startup)
            params = (execution_parameters(probe, server.url) if not config.max_concurrent_transforms else {})
        concurrency, strategy, payload_mb = settle(config, params)
        result.settings = {"MaxConcurrentTransforms": concurrency, "BatchStrategy": strategy.value,
                           "MaxPayloadInMB": payload_mb}
        print(f"batch transform: model server ready after {time.monotonic() - began:.2f} s; "
              f"{len(config.objects)} object(s), MaxConcurrentTransforms={concurrency}, "
              f"BatchStrategy={strategy.value}, MaxPayloadInMB={payload_mb}", flush=True)
        processing = DataProcessing.build(
            input_filter=config.input_filter, output_filter=config.output_filter, join_source=config.join_source,
            content_type=config.content_type, accept=config.accept, assemble_with=config.assemble_with,
            strategy=strategy,
        )
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        timeout = httpx.Timeout(float(config.invocations_timeout_seconds), connect=10.0)
        with httpx.Client(trust_env=False, limits=limits, timeout=timeout) as client:
            pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="invoke")
            try:
                _Pipeline(config, server, client, pool, concurrency, strategy, payload_mb * MB, processing,
                          result).run()
            finally:
                # Never wait here for requests still in flight (a stop, a dead server): stopping the server
                # below ends them. After a normal run every request has already been answered.
                pool.shutdown(wait=False, cancel_futures=True)
    finally:
        server.stop()
    return result


class _Pipeline:
    """Sends requests with ``concurrency`` in flight and hands responses to their objects in order."""

    def __init__(self, config: BatchConfig, server: ModelServer, client: Any, pool: ThreadPoolExecutor,
                 concurrency: int, strategy: BatchStrategy, max_bytes: int, processing: DataProcessing,
                 result: BatchResult) -> None:
        self.config, self.server, self.client, self.pool = config, server, client, pool
        self.window = max(2, concurrency * 2)  # enough queued to keep every slot busy, bounded for memory
        self.strategy, self.max_bytes, self.processing, self.result = strategy, max_bytes, processing, result
        self.inflight: collections.deque[tuple[_ObjectOutput, Any, Future[bytes]]] = collections.deque()
        self.headers = {k: v for k, v in (("Content-Type", config.content_type), ("Accept", config.accept)) if v}
        self.url = f"{server.url}/invocations"

    def run(self) -> None:
        input_root = host_path(self.config.input_dir)
        output_root = host_path(self.config.output_dir)
        unfinished: list[_ObjectOutput] = []
        try:
            for rel in self.config.objects:
                out = _ObjectOutput(rel, output_root)
                unfinished.append(out)
                requests = self._requests(input_root / rel, out)
                for request in requests:
                    if out.error is not None:
                        break  # a response already failed: send nothing more for this object
                    out.pending += 1
                    out.requests += 1
                    self.inflight.append((out, request, self.pool.submit(self._invoke, request.body)))
                    while len(self.inflight) >= self.window:
                        self._settle_oldest()
                requests.close()
                out.submitted_all = True
                if out.done:
                    self._finish(out)
                unfinished = [o for o in unfinished if not o.fh.closed]
            while self.inflight:
                self._settle_oldest()
        except WorkerError:
            for _, _, fut in self.inflight:
                fut.cancel()
            for out in unfinished:
                if not out.fh.closed:
                    out.fail("not transformed: the model server died")
                    out.close()
            raise

    def _requests(self, path: Path, out: _ObjectOutput) -> Iterator[Any]:
        """The object's requests; a split, filter or size problem fails the object and ends the iteration."""
        split = SplitType(self.config.split_type)
        try:
            with open(path, "rb") as raw:
                stream = open_input(raw, self.config.gzip)
                if (split is SplitType.LINE and self.strategy is BatchStrategy.MULTI_RECORD
                        and not self.processing.touches_input):
                    for body in line_batches(stream, self.max_bytes):  # no per-line work: the common fast path
                        yield self.processing.lines_request(body)
                    return
                records = (self.processing.prepare(r) for r in split_records(stream, split))
                for batch in batch_records(records, self.strategy, self.max_bytes):
                    yield self.processing.request(batch)
        except RecordTooLarge as exc:
            out.fail(f"{exc}")
        except (ValueError, EOFError, OSError, zlib.error) as exc:
            what = "is not valid gzip" if self.config.gzip and _is_gzip_error(exc) else "could not be read"
            out.fail(f"the object {what}: {exc}")

    def _invoke(self, body: bytes) -> bytes:
        import httpx

        attempts = 1 + max(0, self.config.invocations_max_retries)
        last = ""
        attempt = 0
        while attempt < attempts:
            attempt += 1
            try:
                answer = self.client.post(self.url, content=body, headers=self.headers)
            except httpx.TimeoutException:
                last = (f"no response within InvocationsTimeoutInSeconds={self.config.invocations_timeout_seconds}")
                continue
            except httpx.TransportError as exc:
                if self.server.exited() is not None:
                    raise WorkerError(f"the model server exited with code {self.server.exited()} while "
                                      f"transforming. Its last lines: {self.server.last_lines()}") from None
                last = f"the model server could not be reached ({type(exc).__name__}: {exc})"
                continue
            if 200 <= answer.status_code < 300:
                return answer.content
            detail = answer.text.strip()[:400] or "(empty body)"
            last = f"the model answered HTTP {answer.status_code}: {detail}"
            if 400 <= answer.status_code < 500:
                break  # the request itself is wrong; sending it again cannot help
        tries = f" (after {attempt} attempt{'s' if attempt > 1 else ''})" if attempt > 1 else ""
        raise InvocationError(last + tries)

    def _settle_oldest(self) -> None:
        out, request, fut = self.inflight.popleft()
        try:
            response = fut.result()
            if out.error is None:
                out.fh.write(self.processing.output(request, response))
        except InvocationError as exc:
            out.fail(str(exc))
        except ProcessingError as exc:
            out.fail(str(exc))
        out.pending -= 1
        self.result.requests += 1
        if out.done:
            self._finish(out)

    def _finish(self, out: _ObjectOutput) -> None:
        out.close()
        if out.error is None:
            self.result.succeeded.append(out.rel)
            print(f"transformed {out.rel} -> {out.rel}.out ({out.requests} request(s), "
                  f"{time.monotonic() - out.started:.2f} s)", flush=True)
        else:
            self.result.failed[out.rel] = out.error
            print(f"FAILED {out.rel}: {out.error}", file=sys.stderr, flush=True)


def _is_gzip_error(exc: BaseException) -> bool:
    import gzip

    return isinstance(exc, gzip.BadGzipFile | zlib.error | EOFError)


# ---- entry point ---------------------------------------------------------------------------------
def _write_failure(config: BatchConfig, message: str) -> None:
    path = host_path(config.failure_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(message[:_FAILURE_LIMIT])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sluice.serving.batch", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="the loop's settings (JSON, a container path)")
    args = parser.parse_args(argv)
    config = BatchConfig.load(host_path(args.config))
    # A stop request arrives as SIGTERM: end the model server too (the finally in run_batch), then exit.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        result = run_batch(config)
    except WorkerError as exc:
        _write_failure(config, str(exc))
        print(f"batch transform failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    if result.failed:
        message = result.failure_message()
        _write_failure(config, message)
        print(f"batch transform failed: {message}", file=sys.stderr, flush=True)
        return 1
    print(f"batch transform done: {len(result.succeeded)} object(s), {result.requests} request(s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
