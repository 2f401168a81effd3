"""Helpers shared by the benchmark scripts (not a benchmark itself).

Kept free of sluice imports on purpose: every script must point ``SLUICE_HOME`` at a fresh temporary
directory *before* sluice is imported, so its cached configuration never sees the user's real home.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Environment variables that would point sluice at a real S3 endpoint, database or config file.
_FOREIGN_ENV = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "SLUICE_CONFIG", "SLUICE_METADATA_URL")


def fresh_home(prefix: str) -> Path:
    """Create a throw-away sluice home and point this process at it (call before importing sluice)."""
    home = Path(tempfile.mkdtemp(prefix=f"sluice-bench-{prefix}-"))
    os.environ["SLUICE_HOME"] = str(home)
    for var in _FOREIGN_ENV:
        os.environ.pop(var, None)
    os.environ.setdefault("SLUICE_QUIET", "1")
    if str(REPO_ROOT) not in sys.path:  # for tests.s3server
        sys.path.insert(0, str(REPO_ROOT))
    import sluice.config

    sluice.config.reset_config()
    return home


def remove_tree(path: Path) -> None:
    """Delete ``path`` even though the embedded store keeps its objects read-only (0444)."""
    shutil.rmtree(path, ignore_errors=True)


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds for one call of ``fn``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    """``min/median/max`` in milliseconds, for the detail lines."""
    lo, mid, hi = min(values) * 1e3, median(values) * 1e3, max(values) * 1e3
    return f"min {lo:.1f} ms, median {mid:.1f} ms, max {hi:.1f} ms"


def drop_page_cache() -> bool:
    """Flush dirty pages and drop the page cache. Needs root; returns whether it worked."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
    except OSError:
        return False
    return True


def result_line(name: str, ratio: float, op: str, target: float) -> str:
    """The one line run_all.py collects: ``RESULT <name>: ratio=<x.xx> target=<op><value> <PASS|MISS>``."""
    ok = ratio <= target if op == "<=" else ratio >= target
    return f"RESULT {name}: ratio={ratio:.2f} target={op}{target:g} {'PASS' if ok else 'MISS'}"
