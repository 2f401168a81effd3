"""Small labelled images and an augmented manifest for them, as SageMaker Ground Truth would write one.

Class 1 images hold a bright square, class 0 images a bright disc, on noise. Each manifest line is
``{"source-ref": "s3://.../img-00042.png", "class": 1}``.
"""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image


def make_image(label: int, rng: np.random.Generator, size: int = 32) -> bytes:
    """A PNG: a square (label 1) or a disc (label 0) of random size and place, on noise."""
    img = rng.normal(40, 12, (size, size)).clip(0, 255)
    r = int(rng.integers(size // 6, size // 3))
    cy, cx = (int(v) for v in rng.integers(r, size - r, 2))
    yy, xx = np.mgrid[:size, :size]
    mask = (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r) if label else (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    img[mask] = rng.normal(220, 10, int(mask.sum())).clip(0, 255)
    buf = io.BytesIO()
    Image.fromarray(img.astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def make_validation(store, bucket: str, prefix: str, count: int, seed: int = 1) -> str:
    """A CSV validation set, ``label,<base64 PNG>`` per line; returns its prefix URI."""
    import base64

    rng = np.random.default_rng(seed)
    rows = [f"{i % 2},{base64.b64encode(make_image(i % 2, rng)).decode()}" for i in range(count)]
    store.put(bucket, f"{prefix}/val/part-0.csv", ("\n".join(rows) + "\n").encode())
    return f"s3://{bucket}/{prefix}/val/"


def make_dataset(store, bucket: str, prefix: str, count: int, seed: int = 0) -> str:
    """Write ``count`` images and their manifest under ``s3://bucket/prefix``; returns the manifest URI."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(count):
        label = int(i % 2)
        key = f"{prefix}/images/img-{i:05d}.png"
        store.put(bucket, key, make_image(label, rng))
        lines.append(json.dumps({"source-ref": f"s3://{bucket}/{key}", "class": label, "annotator": "synthetic"}))
    manifest_key = f"{prefix}/train.manifest"
    store.put(bucket, manifest_key, ("\n".join(lines) + "\n").encode())
    return f"s3://{bucket}/{manifest_key}"
