"""The model server process: ``python -m sluice.serving.worker``.

This is the stable interface that local endpoints and batch transform instances start, inside the
instance's sandbox, with the model already unpacked::

    SAGEMAKER_BIND_TO_PORT=8080 python -m sluice.serving.worker

It serves :mod:`sluice.serving.app` with uvicorn on ``127.0.0.1:$SAGEMAKER_BIND_TO_PORT`` (default 8080),
from a socket opened with ``SO_REUSEPORT``, so several worker processes (an endpoint's instances) can
listen on one port and the kernel spreads connections between them. The socket listens before the model
loads; the model loads in the background, and ``GET /ping`` answers 503 while it loads, 200 once it is
loaded, and 500 with the reason if it could not be loaded (the reason is logged too; the process stays up
so that callers can read it, and never retries). On SIGTERM or SIGINT it stops accepting connections, lets
requests in flight finish, and ends by that signal (uvicorn re-raises it).

Environment (the SageMaker inference toolkit's variables, then sluice's own):

================================== ========================================================================
``SAGEMAKER_BIND_TO_PORT``         port to listen on (default 8080)
``SAGEMAKER_BASE_DIR``             the ``/opt/ml`` tree when there is no sandbox; the model is
                                   ``$SAGEMAKER_BASE_DIR/model``, else ``/opt/ml/model``
``SAGEMAKER_PROGRAM``              handler module (default ``inference.py``; may be absent)
``SAGEMAKER_SUBMIT_DIRECTORY``     directory holding it, if it is a local directory (else ``<model>/code``)
``SAGEMAKER_MODEL_SERVER_WORKERS`` threads running handler calls concurrently (default: CPU count); also
                                   ``MaxConcurrentTransforms`` in ``/execution-parameters``
``SAGEMAKER_MODEL_SERVER_TIMEOUT`` seconds one invocation may take before it answers 504 (default 60)
``SAGEMAKER_MAX_PAYLOAD_IN_MB``    largest request body; larger ones answer 413 (default 6; 0: no limit)
``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` Accept used when a request sends none or ``*/*`` (application/json)
``SAGEMAKER_CONTAINER_LOG_LEVEL``  Python logging level of the server's own log lines (default 20, INFO)
``SAGEMAKER_REGION``               region named in ModelError log-stream ARNs
``SLUICE_FRAMEWORK``               image environment name (sklearn, xgboost, pytorch): which default model
                                   loader to try first
``SLUICE_ENDPOINT_NAME``           the endpoint's name: the Runtime path refuses other names
``SLUICE_READY_FILE``              a host path where the worker writes ``{"status": "ready"|"failed",
                                   "pid", "reason"}`` once loading ends (endpoints wait on it per instance)
``SLUICE_LOG_PATH``                where this process's output goes, quoted in ModelError messages
================================== ========================================================================
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sluice.serving.handlers import InferenceService

__all__ = ["WorkerSettings", "listen_socket", "main"]

log = logging.getLogger("sluice.serving")

DEFAULT_PORT = 8080
CONTAINER_MODEL_DIR = "/opt/ml/model"


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0, integer: bool = False) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(int(raw)) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise SystemExit(f"{name}={raw!r} is not {kind}; set it to {kind} (default {default:g}).") from None
    if value < minimum:
        raise SystemExit(f"{name}={raw!r} must be at least {minimum:g}.")
    return value


@dataclass(frozen=True)
class WorkerSettings:
    """Everything the worker reads from its environment, read once."""

    port: int
    model_dir: Path
    code_dir: Path
    program: str | None
    workers: int
    timeout: float
    max_payload_mb: float
    default_accept: str
    log_level: int
    region: str
    framework: str | None = None
    endpoint_name: str | None = None
    ready_file: Path | None = None
    log_path: str | None = None
    host: str = "127.0.0.1"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WorkerSettings:
        base = env.get("SAGEMAKER_BASE_DIR") or env.get("SLUICE_OPT_ML")
        model_dir = Path(base) / "model" if base else Path(CONTAINER_MODEL_DIR)
        submit = env.get("SAGEMAKER_SUBMIT_DIRECTORY") or ""
        code_dir = Path(submit) if submit and "://" not in submit and Path(submit).is_dir() else model_dir / "code"
        level = env.get("SAGEMAKER_CONTAINER_LOG_LEVEL", "20")
        return cls(
            port=int(_number(env, "SAGEMAKER_BIND_TO_PORT", DEFAULT_PORT, minimum=1)),
            model_dir=model_dir,
            code_dir=code_dir,
            program=env.get("SAGEMAKER_PROGRAM") or None,
            workers=int(_number(env, "SAGEMAKER_MODEL_SERVER_WORKERS", os.cpu_count() or 1, minimum=1)),
            timeout=_number(env, "SAGEMAKER_MODEL_SERVER_TIMEOUT", 60, minimum=0.001),
            max_payload_mb=int(_number(env, "SAGEMAKER_MAX_PAYLOAD_IN_MB", 6, integer=True)),
            default_accept=env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or "application/json",
            log_level=int(level) if level.isdigit() else logging.getLevelName(level.upper()),
            region=env.get("SAGEMAKER_REGION") or env.get("AWS_REGION") or "us-east-1",
            framework=env.get("SLUICE_FRAMEWORK") or None,
            endpoint_name=env.get("SLUICE_ENDPOINT_NAME") or None,
            ready_file=Path(env["SLUICE_READY_FILE"]) if env.get("SLUICE_READY_FILE") else None,
            log_path=env.get("SLUICE_LOG_PATH") or None,
        )


def listen_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket with ``SO_REUSEPORT``: every worker of an endpoint binds the same port.

    ``IPPROTO_TCP`` is explicit because asyncio sets ``TCP_NODELAY`` on accepted connections only when the
    socket says so; without it each response's second write waits out a 40 ms delayed ACK.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def _write_ready(path: Path | None, status: str, reason: str | None) -> None:
    if path is None:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps({"status": status, "pid": os.getpid(), "reason": reason, "time": time.time()}))
    os.replace(tmp, path)


def _load(service: InferenceService, settings: WorkerSettings) -> None:
    """Load the model (on its own thread: /ping answers 503 meanwhile) and report the outcome."""
    from sluice.serving.handlers import HandlerError, ModelLoadError

    start = time.perf_counter()
    try:
        service.load()
    except Exception as exc:
        # a broken contract or a missing model file is said in one line; a failure in user code (or in a
        # loader) gets its traceback
        plain = isinstance(exc, HandlerError | ModelLoadError) and exc.__cause__ is None
        log.error("the model could not be loaded from %s; /ping answers 500 with the reason: %s",
                  settings.model_dir, service.error, exc_info=None if plain else exc)
        _write_ready(settings.ready_file, "failed", service.error)
        return
    handlers = service.handlers
    assert handlers is not None
    log.info("model loaded from %s in %.2f s (handlers from %s: %s); serving on %s:%d",
             settings.model_dir, time.perf_counter() - start, handlers.module_file or "defaults only",
             ", ".join(handlers.user_defined) or "none", settings.host, settings.port)
    _write_ready(settings.ready_file, "ready", None)


def main(env: Mapping[str, str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT."""
    settings = WorkerSettings.from_env(os.environ if env is None else env)
    logging.basicConfig(stream=sys.stdout, level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sock = listen_socket(settings.host, settings.port)

    import uvicorn

    from sluice.serving.app import ServerSettings, create_app
    from sluice.serving.handlers import InferenceService

    service = InferenceService(settings.model_dir, code_dir=settings.code_dir, program=settings.program,
                               default_accept=settings.default_accept, framework=settings.framework)
    if str(settings.code_dir) not in sys.path:
        sys.path.insert(0, str(settings.code_dir))
    threading.Thread(target=_load, args=(service, settings), name="model-loader", daemon=True).start()
    app = create_app(service, ServerSettings(
        workers=settings.workers, timeout=settings.timeout, max_payload_mb=settings.max_payload_mb,
        endpoint_name=settings.endpoint_name, log_hint=settings.log_path, region=settings.region,
    ))
    config = uvicorn.Config(app, log_level=logging.WARNING, access_log=False, lifespan="off", ws="none",
                            # httptools' C parser and uvloop when installed (they are dependencies): the
                            # pure-Python h11 parser alone cost ~120 us a request
                            http="auto", loop="auto", timeout_keep_alive=75, server_header=False,
                            date_header=False, log_config=None, proxy_headers=False)
    log.info("model server pid %d listening on %s:%d (%d handler threads); loading the model from %s",
             os.getpid(), settings.host, settings.port, settings.workers, settings.model_dir)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
