"""Read a job's logs from its instances' log files, host-prefixed, optionally following them."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from sluice.jobs.layout import job_dir
from sluice.jobs.status import JobStatus

if TYPE_CHECKING:
    from sluice.session import Session

__all__ = ["follow_logs", "log_files"]


def log_files(jobs_root: Path, name: str) -> list[tuple[str, Path]]:
    """(host, log path) for each instance of the job, in host order."""
    root = job_dir(jobs_root, name)
    hosts = sorted((p for p in root.glob("algo-*") if p.is_dir()), key=lambda p: int(p.name.split("-")[1]))
    return [(p.name, p / "output.log") for p in hosts]


def follow_logs(session: Session, kind: str, name: str, *, wait: bool = False, poll: float = 0.5,
                out: TextIO | None = None) -> None:
    """Print ``[host] line`` for every log line; with ``wait``, keep printing until the job ends."""
    out = out or sys.stdout
    offsets: dict[str, int] = {}
    while True:
        status = JobStatus(session._describe(kind, name)[f"{kind}Status"])
        for host, path in log_files(session.config.jobs_root, name):
            if not path.exists():
                continue
            with open(path, "rb") as fh:
                fh.seek(offsets.get(host, 0))
                data = fh.read()
            complete, _, _rest = data.rpartition(b"\n")
            if complete or (status.is_terminal and data):
                chunk = data if status.is_terminal else complete + b"\n"
                offsets[host] = offsets.get(host, 0) + len(chunk)
                for line in chunk.decode("utf-8", errors="replace").splitlines():
                    out.write(f"[{host}] {line}\n")
        out.flush()
        if not wait or status.is_terminal:
            return
        time.sleep(poll)
