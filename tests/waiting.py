"""Waiting on what a test can observe (a file, a status, a record), never on the clock alone."""

from __future__ import annotations

import time
from collections.abc import Callable

DEADLINE = 60.0
"""Seconds after which a wait fails the test: far beyond any healthy run, so reaching it means a hang."""


def wait_until(predicate: Callable[[], object], what: str, timeout: float = DEADLINE) -> None:
    """Poll ``predicate`` until it is true; fail naming ``what`` if it never becomes true within ``timeout``."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
