"""One instance of a job, self-contained: stage its shard, run the entrypoint in the sandbox, upload.

An :class:`InstanceTask` carries everything an instance needs — its layout, its own slice of every
channel, the store (which pickles as its configuration), the command and environment — so any backend
can run it where it likes: the local backend in a thread of the driver, a cluster backend on a worker
that reads its shard straight from object storage. :class:`InstanceRun` is the execution of a task.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice.channels.delivery import Delivery, InstanceChannel, start_delivery
from sluice.channels.outputs import ContinuousUploader, upload_output
from sluice.channels.spec import OutputSpec, UploadMode
from sluice.jobs.layout import InstanceLayout
from sluice.runtime.environments import Environment
from sluice.runtime.sandbox import Sandbox
from sluice.storage.base import ObjectStore
from sluice.storage.uri import S3Uri

__all__ = ["InstanceEvents", "InstanceResult", "InstanceRun", "InstanceTask"]


@dataclass
class InstanceEvents:
    """Callbacks through which an instance reports progress; each defaults to doing nothing."""

    on_staged: Callable[[str, int, int], None] = lambda host, objs, nbytes: None
    on_line: Callable[[str, str], None] = lambda host, line: None
    on_state: Callable[[str, str], None] = lambda host, state: None


@dataclass(frozen=True)
class CodeBundle:
    """A ``sourcedir.tar.gz`` to unpack at ``container_dir`` before the script starts.

    Its ``requirements.txt`` (or, with ``install_package``, the directory itself as a package) is
    installed with pip into ``deps_root/<digest>``, once per distinct content, and put on
    ``PYTHONPATH``: the interpreter itself is never modified.
    """

    s3_uri: str
    container_dir: str
    deps_root: str
    python: str
    install_package: bool = False
    #: Where the bundle keeps its requirements: ``requirements.txt`` for training code, ``code/requirements.txt``
    #: in a model archive (the inference toolkit's place).
    requirements: str = "requirements.txt"


@dataclass(frozen=True)
class CheckpointSync:
    """Restore ``s3_uri`` into ``local_path`` at start; upload what the script writes there while it runs."""

    s3_uri: str
    local_path: str


@dataclass
class InstanceTask:
    """Everything one instance needs. Picklable, so a cluster backend can ship it to a worker."""

    job_name: str
    layout: InstanceLayout
    store: ObjectStore
    channels: list[InstanceChannel]
    outputs: list[OutputSpec]
    argv: list[str]
    env: dict[str, str]
    config_files: dict[str, Any]
    sandbox: Sandbox
    stop_signal: int = signal.SIGTERM
    stop_grace_seconds: float = 5.0
    continuous_interval: float = 1.0
    code: CodeBundle | None = None
    checkpoint: CheckpointSync | None = None
    dirs: tuple[str, ...] = ()  # container directories that must exist when the script starts
    isolate_network: bool = False  # EnableNetworkIsolation: no network inside the instance
    workdir: str = "/opt/ml"  # the container directory the command starts in (script mode: /opt/ml/code)

    @property
    def host(self) -> str:
        return self.layout.host


@dataclass
class InstanceResult:
    host: str
    exit_code: int | None
    message: str | None = None
    log_tail: list[str] = field(default_factory=list)
    error: str | None = None  # a platform error (staging, pipe feeding), as opposed to the script's

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and self.error is None


class InstanceRun:
    """Runs an :class:`InstanceTask`: :meth:`run` blocks until the script exits; :meth:`stop` ends it."""

    def __init__(self, task: InstanceTask, events: InstanceEvents | None = None) -> None:
        self.task = task
        self.events = _guarded(events or InstanceEvents())
        self._proc: subprocess.Popen[bytes] | None = None
        self._deliveries: list[Delivery] = []
        self._continuous: list[ContinuousUploader] = []
        self._checkpoints: ContinuousUploader | None = None
        self._extra_env: dict[str, str] = {}
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self.result: InstanceResult | None = None

    # ---- phases -----------------------------------------------------------------------------
    def prepare(self) -> None:
        """Lay out ``/opt/ml``, write the config files, stage File channels, open Pipe FIFOs."""
        t = self.task
        t.layout.create(t.dirs)
        for path, data in t.config_files.items():
            t.layout.write_json(path, data)
        if t.code is not None:
            self._unpack_code(t.code)
        if t.checkpoint is not None:
            self._restore_checkpoints(t.checkpoint)
        for channel in t.channels:
            dest = t.layout.host_path(channel.spec.local_path)
            self._deliveries.append(
                start_delivery(channel, t.store, dest, link_ok=t.sandbox.isolates, progress=self._staged,
                               on_error=self._delivery_failed)
            )
        for out in t.outputs:
            local = t.layout.host_path(out.local_path)
            local.mkdir(parents=True, exist_ok=True)
            if out.upload_mode is UploadMode.CONTINUOUS:
                self._continuous.append(
                    ContinuousUploader(out, local, t.store, t.continuous_interval).start()
                )

    def _unpack_code(self, code: CodeBundle) -> None:
        uri = S3Uri.parse(code.s3_uri)
        dest = self.task.layout.host_path(code.container_dir)
        dest.mkdir(parents=True, exist_ok=True)
        with self.task.store.open(uri.bucket, uri.key) as fh, tarfile.open(fileobj=fh, mode="r|gz") as tar:
            tar.extractall(dest, filter="data")
        paths = [code.container_dir]
        target = None
        if code.install_package:
            target = install_deps(code.python, [str(dest)], Path(code.deps_root),
                                  _tree_digest(dest, salt=code.python))
        elif (dest / code.requirements).is_file():
            reqs = dest / code.requirements
            target = install_deps(code.python, ["-r", str(reqs)], Path(code.deps_root),
                                  hashlib.sha256(code.python.encode() + b"\0" + reqs.read_bytes()).hexdigest()[:16])
        if target is not None:
            paths.append(str(target))
        existing = self.task.env.get("PYTHONPATH")
        self._extra_env["PYTHONPATH"] = os.pathsep.join(paths + ([existing] if existing else []))

    def _restore_checkpoints(self, cp: CheckpointSync) -> None:
        uri = S3Uri.parse(cp.s3_uri)
        local = self.task.layout.host_path(cp.local_path)
        local.mkdir(parents=True, exist_ok=True)
        if self.task.store.bucket_exists(uri.bucket):
            prefix = uri.key if uri.key.endswith("/") or not uri.key else uri.key + "/"
            self.task.store.download_prefix(uri.bucket, prefix, local)
        spec = OutputSpec("checkpoints", cp.s3_uri, cp.local_path, UploadMode.CONTINUOUS)
        self._checkpoints = ContinuousUploader(spec, local, self.task.store, self.task.continuous_interval).start()

    def _delivery_failed(self, exc: BaseException) -> None:
        """A Pipe feeder failed mid-stream: end the script now rather than let it wait for data that will
        not come. The feeder's error becomes the instance's (see :attr:`Delivery.error`)."""
        threading.Thread(target=self.stop, name=f"stop-{self.task.host}", daemon=True).start()

    def _staged(self, objs: int, nbytes: int) -> None:
        self.events.on_staged(self.task.host, objs, nbytes)

    def run(self) -> InstanceResult:
        """Prepare, run the entrypoint to its end, and return what happened. Never raises."""
        t = self.task
        tail: collections.deque[str] = collections.deque(maxlen=20)
        try:
            self.events.on_state(t.host, "staging")
            self.prepare()
            if self._stopped.is_set():
                return self._finish(InstanceResult(t.host, None, error="stopped before start"))
            read_only = tuple(
                c.spec.local_path for c, d in zip(t.channels, self._deliveries, strict=True)
                if getattr(d, "read_only_paths", None)
            )
            argv, env = t.sandbox.wrap(list(t.argv), t.layout, {**t.env, **self._extra_env},
                                       read_only=read_only, isolate_network=t.isolate_network, workdir=t.workdir)
            self.events.on_state(t.host, "running")
            with open(t.layout.log_path, "ab", buffering=0) as log:  # unbuffered: `logs --follow` sees lines live
                with self._lock:
                    if self._stopped.is_set():
                        return self._finish(InstanceResult(t.host, None, error="stopped before start"))
                    self._proc = subprocess.Popen(
                        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                        env=env, cwd=str(t.layout.root if t.sandbox.isolates else t.layout.host_path(t.workdir)),
                        start_new_session=True,
                        preexec_fn=_default_sigint if signal.getsignal(signal.SIGINT) is signal.SIG_IGN else None,
                    )
                assert self._proc.stdout is not None
                for raw in self._proc.stdout:
                    log.write(raw)
                    line = raw.decode("utf-8", errors="replace").rstrip("\n")
                    tail.append(line)
                    self.events.on_line(t.host, line)
                code = self._proc.wait()
            errors = [d.error for d in self._deliveries if d.error]
            return self._finish(
                InstanceResult(t.host, code, t.layout.read_message(), list(tail), "; ".join(errors) or None)
            )
        except BaseException as exc:  # staging or launch failed: a platform error, reported on the job
            self.stop()
            return self._finish(InstanceResult(t.host, None, t.layout.read_message(), list(tail), f"{exc!r}"))

    def _finish(self, result: InstanceResult) -> InstanceResult:
        for delivery in self._deliveries:
            delivery.close()
        self.result = result
        self.events.on_state(self.task.host, "exited" if result.exit_code is not None else "failed")
        return result

    def stop(self) -> None:
        """Signal the instance's processes, then kill the whole group after the grace period.

        The stop signal skips the sandbox process itself: bwrap would exit on it, and its
        ``--die-with-parent`` would then SIGKILL the script before the script could handle the signal.
        """
        with self._lock:
            self._stopped.set()
            proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        wrapper = proc.pid if self.task.sandbox.isolates else None
        if not _signal_group(proc.pid, self.task.stop_signal, except_pid=wrapper):
            return  # already gone
        deadline = time.monotonic() + self.task.stop_grace_seconds
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def upload_outputs(self, success: bool) -> None:
        """After the job's outcome is known: EndOfJob outputs go up only on success (or, with
        ``upload_on_failure``, whatever the outcome); Continuous ones flush."""
        t = self.task
        if self._checkpoints is not None:
            self._checkpoints.finish()  # checkpoints are kept whatever the outcome: that is their point
        for uploader in self._continuous:
            if success:
                uploader.finish()
            else:
                uploader.cancel()
        for out in t.outputs:
            if out.upload_mode is UploadMode.END_OF_JOB and (success or out.upload_on_failure):
                upload_output(out, t.layout.host_path(out.local_path), t.store)

    def continuous_errors(self) -> list[str]:
        uploaders = [*self._continuous, *([self._checkpoints] if self._checkpoints else [])]
        return [f"Continuous upload of {u.spec.name!r}: {u.error}" for u in uploaders if u.error]


def _signal_group(pgid: int, sig: int, except_pid: int | None = None) -> bool:
    """Send ``sig`` to every process in group ``pgid`` but ``except_pid``. Returns whether any was found."""
    if except_pid is None:
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return False
        return True
    found = False
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == except_pid:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # state, ppid, pgrp follow the command name
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry), sig)
                found = True
    return found or _alive(except_pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _guarded(events: InstanceEvents) -> InstanceEvents:
    """The same observers, except that one which fails (rich raising SystemExit on a closed terminal) is
    silenced instead of killing the instance: watching a job must never break it."""
    broken = threading.Event()

    def guard(fn: Callable[..., None]) -> Callable[..., None]:
        def call(*args: Any) -> None:
            if broken.is_set():
                return
            try:
                fn(*args)
            except BaseException:
                broken.set()
        return call

    return InstanceEvents(on_staged=guard(events.on_staged), on_line=guard(events.on_line),
                          on_state=guard(events.on_state))


def _default_sigint() -> None:
    """In the child: restore SIGINT, which a driver started in the background (``cmd &``) inherits as ignored,
    so stop and timeout can interrupt the script as the contract says. Runs only in that case."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _tree_digest(root: Path, salt: str = "") -> str:
    h = hashlib.sha256(salt.encode() + b"\0")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


_install_lock = threading.Lock()


def install_deps(python: str, pip_args: list[str], deps_root: Path, digest: str) -> Path:
    """``pip install --target deps_root/digest`` once per digest; concurrent instances wait for the first."""
    target = deps_root / digest
    with _install_lock:
        if target.is_dir():
            return target
        deps_root.mkdir(parents=True, exist_ok=True)
        tmp = deps_root / f".{digest}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        proc = subprocess.run(
            [python, "-m", "pip", "install", "--disable-pip-version-check", "--quiet", "--no-input",
             "--target", str(tmp), *pip_args],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(f"pip install {' '.join(pip_args)} failed (exit {proc.returncode}): "
                               f"{(proc.stderr or proc.stdout).strip()[-800:]}")
        try:
            os.replace(tmp, target)
        except OSError:  # another process installed the same digest first
            shutil.rmtree(tmp, ignore_errors=True)
    return target


IMAGE_PACKAGES = Path(__file__).with_name("images")
"""``<environment name>/``: the packages an image ships for the user code run in it (:mod:`sluice.runtime.images`)."""


def base_environment(home: Path, environment: Environment, *, drop: tuple[str, ...] = ()) -> dict[str, str]:
    """What every instance's environment starts from: this process's variables (less ``drop``), the image's
    interpreter first on ``PATH`` as ``python``/``python3``, unbuffered Python output (so logs stream), the
    shared requirements cache (``SLUICE_DEPS_ROOT``, which FrameworkProcessor's runproc.sh uses), and on
    ``PYTHONPATH`` what the image ships for user code (the XGBoost image: ``sagemaker_xgboost_container``)."""
    shims = make_python_shims(home / "envs", environment.name, environment.python)
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PATH"] = f"{shims}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["SLUICE_DEPS_ROOT"] = str(home / "deps")
    packages = IMAGE_PACKAGES / environment.name
    if packages.is_dir():
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(packages), env.get("PYTHONPATH")]))
    return env


def make_python_shims(envs_root: Path, env_name: str, python: str) -> Path:
    """A directory with ``python`` and ``python3`` pointing at ``python``, put first on the PATH.

    Keyed by the environment's name *and* interpreter, so remapping an image to another interpreter (or
    two images sharing a name) never runs on a stale link.
    """
    bin_dir = envs_root / f"{env_name}-{hashlib.sha256(python.encode()).hexdigest()[:12]}" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        link = bin_dir / name
        if not link.is_symlink():
            with contextlib.suppress(FileExistsError):  # another job made it first
                link.symlink_to(python)
    return bin_dir
