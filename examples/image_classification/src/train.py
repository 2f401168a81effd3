"""Train a tiny shape classifier from a Pipe-mode augmented manifest (source-ref, class) in RecordIO.

It reads the channel with ``sluice.io.manifest_rows``: one (image bytes, label) tuple per manifest line,
a new FIFO per epoch. The model is logistic regression on a few shape features, in NumPy.
"""

import argparse
import base64
import io
import json
import os

import numpy as np
from PIL import Image

from sluice.io import manifest_rows, pipe_records


def features(png: bytes) -> np.ndarray:
    """Shape features: a square fills its bounding box, a disc fills about pi/4 of it."""
    img = np.asarray(Image.open(io.BytesIO(png)), dtype=np.float32) / 255.0
    bright = img > 0.5
    ys, xs = np.nonzero(bright)
    if len(ys) == 0:
        return np.array([0.0, 0.0, 1.0])
    box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
    return np.array([bright.sum() / box, bright.mean(), 1.0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.5)
    args = parser.parse_args()
    host = os.environ.get("SM_CURRENT_HOST", "algo-1")
    weights = np.zeros(3)
    for epoch in range(args.epochs):
        rows = [(features(image), float(label)) for image, label in manifest_rows("train", 2, epoch=epoch)]
        x = np.stack([r[0] for r in rows])
        y = np.array([r[1] for r in rows])
        for _ in range(50):
            p = 1 / (1 + np.exp(-(x @ weights * 8 - 4)))
            weights -= args.lr * x.T @ (p - y) / len(y)
        p = 1 / (1 + np.exp(-(x @ weights * 8 - 4)))
        accuracy = float(((p > 0.5) == (y > 0.5)).mean())
        print(f"epoch={epoch} images={len(y)} train:accuracy={accuracy:.3f}", flush=True)
        # The validation channel is in Pipe mode too (the job's mode), unwrapped: raw CSV bytes.
        text = b"".join(pipe_records("validation", epoch=epoch, wrapped=False)).decode()
        val = [line.split(",", 1) for line in text.splitlines() if line]
        vx = np.stack([features(base64.b64decode(png)) for _, png in val])
        vy = np.array([float(label) for label, _ in val])
        vp = 1 / (1 + np.exp(-(vx @ weights * 8 - 4)))
        print(f"epoch={epoch} val:accuracy={float(((vp > 0.5) == (vy > 0.5)).mean()):.3f}", flush=True)
    with open(os.path.join(os.environ["SM_MODEL_DIR"], f"weights-{host}.json"), "w") as fh:
        json.dump({"weights": weights.tolist(), "host": host}, fh)


if __name__ == "__main__":
    main()
