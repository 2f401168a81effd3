"""Upload an instance's output directory: at the end of the job, or continuously while it runs.

Each object becomes visible whole (stores put atomically). EndOfJob outputs are uploaded only after
the job has succeeded, so a failed job leaves nothing behind; Continuous outputs are uploaded as files
settle (unchanged between two scans), which is the point of that mode, with a last sweep at the end.
Symbolic links are not followed, as in SageMaker.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sluice.channels.spec import OutputSpec
from sluice.storage.base import ObjectInfo, ObjectStore, join_key
from sluice.storage.uri import S3Uri

__all__ = ["ContinuousUploader", "list_output_files", "upload_output"]


def list_output_files(local_dir: Path) -> list[Path]:
    """Regular files below ``local_dir``, symlinks skipped, in path order."""
    if not local_dir.is_dir():
        return []
    found: list[Path] = []
    for root, dirs, files in os.walk(local_dir, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            p = Path(root) / name
            if p.is_file() and not p.is_symlink() and not name.startswith(".sluice-"):
                found.append(p)
    return found


def _key_for(spec: OutputSpec, local_dir: Path, path: Path) -> tuple[str, str]:
    uri = S3Uri.parse(spec.s3_uri)
    return uri.bucket, join_key(uri.key, path.relative_to(local_dir).as_posix())


def upload_output(
    spec: OutputSpec, local_dir: Path, store: ObjectStore, *, workers: int = 8, skip: set[Path] | None = None
) -> list[ObjectInfo]:
    """Upload every file under ``local_dir`` to the output's S3 URI at its relative path."""
    files = [p for p in list_output_files(local_dir) if not skip or p not in skip]

    def one(path: Path) -> ObjectInfo:
        bucket, key = _key_for(spec, local_dir, path)
        return store.upload_file(path, bucket, key)

    if len(files) <= 1:
        return [one(p) for p in files]
    with ThreadPoolExecutor(max_workers=min(workers, len(files))) as pool:
        return list(pool.map(one, files))


class ContinuousUploader:
    """Uploads files under ``local_dir`` once they stop changing, every ``interval`` seconds."""

    def __init__(self, spec: OutputSpec, local_dir: Path, store: ObjectStore, interval: float = 1.0) -> None:
        self.spec, self.local_dir, self.store, self.interval = spec, local_dir, store, interval
        self._seen: dict[Path, tuple[int, int]] = {}
        self._uploaded: dict[Path, tuple[int, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"continuous-{spec.name}", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> ContinuousUploader:
        self._thread.start()
        return self

    def scan(self, final: bool = False) -> int:
        """Upload settled files (all changed files when ``final``). Returns how many were uploaded."""
        count = 0
        for path in list_output_files(self.local_dir):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            sig = (st.st_size, st.st_mtime_ns)
            settled = final or self._seen.get(path) == sig
            self._seen[path] = sig
            if settled and self._uploaded.get(path) != sig:
                bucket, key = _key_for(self.spec, self.local_dir, path)
                self.store.upload_file(path, bucket, key)
                self._uploaded[path] = sig
                count += 1
        return count

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.scan()
            except BaseException as exc:
                self.error = exc
                return

    def cancel(self) -> None:
        """Stop scanning; what was uploaded stays (the job failed or was stopped)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def finish(self) -> None:
        """Stop scanning and upload whatever is left."""
        self._stop.set()
        self._thread.join()
        self.scan(final=True)
