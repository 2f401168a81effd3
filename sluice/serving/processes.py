"""Detached, sandboxed model-server processes, and how to find out later whether they still run.

Why its own module: an endpoint outlives the process that deployed it, so everything about its processes
must work from any process on the host — from the record alone. A process is identified by its pid *and*
its start time (``/proc/<pid>/stat``), so a pid reused after the server died is never mistaken for it.

Each instance runs as ``/bin/sh -c '"$@"; exit $?' <sandboxed worker command>`` in a new session: the
small shell is the parent that bubblewrap's ``--die-with-parent`` watches, and it lives exactly as long as
the worker, so the worker survives the deploying process but not its own shell. Signalling the session's
process group reaches the shell, bubblewrap and the worker together.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcessRef", "read_tail", "reserve_port", "spawn_detached"]

#: Processes this process started, so it can reap them (a zombie would look alive) and read exit codes.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _start_ticks(pid: int) -> int | None:
    """Field 22 of ``/proc/<pid>/stat`` (start time in clock ticks); None if the process is gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2:].split()  # after "pid (comm) "
    if not fields or fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


@dataclass(frozen=True)
class ProcessRef:
    """A process (and the group it leads) by pid and start time."""

    pid: int
    start_ticks: int | None

    @classmethod
    def of(cls, pid: int) -> ProcessRef:
        return cls(pid, _start_ticks(pid))

    def alive(self) -> bool:
        child = _CHILDREN.get(self.pid)
        if child is not None and child.poll() is not None:
            return False
        ticks = _start_ticks(self.pid)
        if ticks is None:
            return False
        return self.start_ticks is None or ticks == self.start_ticks

    def exit_code(self) -> int | None:
        """The exit status, when this process started it and it has ended."""
        child = _CHILDREN.get(self.pid)
        return child.poll() if child is not None else None

    def signal_group(self, sig: int) -> bool:
        """Send ``sig`` to the process group this process leads; False if it is gone."""
        if not self.alive():
            return False
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def group_alive(self) -> bool:
        """Whether any process of the group is left. The leader (a keeper shell) dies on SIGTERM at once;
        the model server behind it may still be shutting down, so the leader alone says too little."""
        child = _CHILDREN.get(self.pid)
        if child is not None:
            child.poll()  # reap our own leader, so its zombie does not count
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the group, then SIGKILL it if any of it is still there after ``grace`` seconds; return once
        the whole group is gone (or, at worst, ``grace`` after the SIGKILL)."""
        if self.signal_group(signal.SIGTERM):
            self._wait_group(grace)
            if self.group_alive():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.pid, signal.SIGKILL)
                self._wait_group(grace)
        child = _CHILDREN.pop(self.pid, None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(grace)

    def _wait_group(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        interval = 0.01
        while self.group_alive() and time.monotonic() < deadline:
            time.sleep(interval)
            interval = min(interval * 2, 0.2)


def spawn_detached(argv: list[str], env: dict[str, str], cwd: Path, log_path: Path) -> ProcessRef:
    """Start ``argv`` in a new session behind a keeper shell, its output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", '"$@"; exit $?', "sluice-endpoint", *argv],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(cwd),
            start_new_session=True, close_fds=True,
        )
    _CHILDREN[proc.pid] = proc
    return ProcessRef(proc.pid, _start_ticks(proc.pid))


def reserve_port(host: str = "127.0.0.1") -> socket.socket:
    """A bound (not listening) ``SO_REUSEPORT`` socket on a free port: holding it keeps other programs off
    the port until the workers, which bind it with ``SO_REUSEPORT`` too, are listening. Close it then."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, 0))
    return sock


def read_tail(path: Path, lines: int = 15, max_bytes: int = 64 * 1024) -> list[str]:
    """The last ``lines`` non-empty lines of a log file (reading at most its last ``max_bytes``)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return []
    tail: collections.deque[str] = collections.deque(maxlen=lines)
    for raw in data.splitlines():
        text = raw.decode("utf-8", errors="replace").rstrip()
        if text:
            tail.append(text)
    return list(tail)
