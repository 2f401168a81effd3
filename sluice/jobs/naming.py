"""Job names the way the SageMaker SDK makes them: ``<base>-<YYYY-mm-dd-HH-MM-SS-mmm>``."""

from __future__ import annotations

import re
import threading
import time

__all__ = ["base_name_from_image", "name_from_base"]

_lock = threading.Lock()
_last_ms = 0


def name_from_base(base: str, max_length: int = 63) -> str:
    """``base`` plus a millisecond timestamp, unique within this process even when called in a burst."""
    global _last_ms
    with _lock:
        ms = max(int(time.time() * 1000), _last_ms + 1)
        _last_ms = ms
    stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(ms / 1000)) + f"-{ms % 1000:03d}"
    trimmed = base[: max_length - len(stamp) - 1].rstrip("-")
    return f"{trimmed}-{stamp}"


def base_name_from_image(image_uri: str | None, default: str = "processing-job") -> str:
    """The repository part of an image URI (``sagemaker-scikit-learn``), as the SDK uses for names."""
    if not image_uri:
        return default
    repo = image_uri.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
    repo = re.sub(r"[^a-zA-Z0-9-]", "-", repo).strip("-")
    return repo or default
