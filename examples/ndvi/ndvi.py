"""NDVI for every Sentinel-2 scene in this instance's input: a SageMaker Processing script.

Written as for a real processing container (no sluice import): the input and output paths are the
`/opt/ml/processing/...` directories the job's ProcessingInput/ProcessingOutput map, and
`/opt/ml/config/resourceconfig.json` says which host of the job this is. With ShardedByS3Key each host sees
only its share of the scenes, possibly none.

For each `*.tif` under INPUT it writes `<stem>_ndvi.tif` (float32, same grid, NaN nodata) and a
`<stem>_ndvi.png` preview to OUTPUT, and prints one summary line.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image

INPUT = "/opt/ml/processing/input_data"
OUTPUT = "/opt/ml/processing/output_data"
RESOURCE_CONFIG = "/opt/ml/config/resourceconfig.json"
FAILURE_MESSAGE = "/opt/ml/output/message"  # SageMaker shows this file's text as the job's FailureReason

RED, NIR = "B04", "B08"
S2_POSITIONS = {RED: 4, NIR: 8}  # 1-based band positions in a Sentinel-2 product (B01, B02, ...)
VEGETATION_THRESHOLD = 0.4  # NDVI above which a pixel counts as vegetated
PREVIEW_MAX_PX = 256


class SceneError(Exception):
    """A scene this script cannot process (the job should fail with this message)."""


def describe_host() -> None:
    """Print which host of the job this is; a missing config just means a plain single-host run."""
    try:
        config = json.loads(Path(RESOURCE_CONFIG).read_text())
    except FileNotFoundError:
        print("resourceconfig.json not found; running as a single host", flush=True)
        return
    host, hosts = config.get("current_host"), config.get("hosts", [])
    position = f"{hosts.index(host) + 1} of {len(hosts)}" if host in hosts else f"? of {len(hosts)}"
    print(f"current_host={host} ({position}) hosts={hosts}", flush=True)


def _normalise(description: str | None) -> str:
    """'B4', 'b04' and 'B04' all name Sentinel-2 band 4."""
    name = (description or "").strip().upper()
    if len(name) == 2 and name[0] == "B" and name[1].isdigit():
        name = f"B0{name[1]}"
    return name


def band_indexes(src: rasterio.DatasetReader) -> tuple[int, int]:
    """1-based (red, nir) band indexes: by band description, else by Sentinel-2 position if unnamed."""
    names = [_normalise(d) for d in src.descriptions]
    if any(names):
        missing = [b for b in (RED, NIR) if b not in names]
        if missing:
            raise SceneError(
                f"{Path(src.name).name}: no band described as {' or '.join(missing)} "
                f"(band descriptions: {', '.join(n or '?' for n in names)}); NDVI needs {RED} (red) and {NIR} (NIR)"
            )
        return names.index(RED) + 1, names.index(NIR) + 1
    if src.count < S2_POSITIONS[NIR]:
        raise SceneError(
            f"{Path(src.name).name}: {src.count} unnamed band(s); NDVI needs {RED} (red) and {NIR} (NIR), "
            f"named by band description or at Sentinel-2 positions {S2_POSITIONS[RED]} and {S2_POSITIONS[NIR]}"
        )
    return S2_POSITIONS[RED], S2_POSITIONS[NIR]


def compute_ndvi(red: np.ndarray, nir: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(NIR - red) / (NIR + red) as float32; NaN where a band is nodata or the sum is zero."""
    red = red.astype(np.float32)
    nir = nir.astype(np.float32)
    total = nir + red
    ok = valid & (total != 0)
    ndvi = np.full(red.shape, np.nan, np.float32)
    np.divide(nir - red, total, out=ndvi, where=ok)
    return np.clip(ndvi, -1.0, 1.0, out=ndvi)  # negative (offset) reflectances could overshoot


def colorize(ndvi: np.ndarray) -> np.ndarray:
    """RGBA uint8: red at -1, yellow at 0, green at +1; NaN is transparent."""
    t = (np.nan_to_num(ndvi, nan=0.0) + 1.0) / 2.0
    rgba = np.zeros((*ndvi.shape, 4), np.uint8)
    rgba[..., 0] = np.rint(255 * np.clip(2.0 * (1.0 - t), 0.0, 1.0))
    rgba[..., 1] = np.rint(255 * np.clip(2.0 * t, 0.0, 1.0))
    rgba[..., 3] = np.where(np.isnan(ndvi), 0, 255)
    return rgba


def write_preview(ndvi: np.ndarray, path: Path) -> None:
    """A PNG quick-look, decimated so its longer side is at most PREVIEW_MAX_PX."""
    step = max(1, math.ceil(max(ndvi.shape) / PREVIEW_MAX_PX))
    Image.fromarray(colorize(ndvi[::step, ::step])).save(path, optimize=True)


def process_scene(scene: Path, output: Path) -> str:
    """Write the scene's NDVI GeoTIFF and PNG; return its summary line."""
    with rasterio.open(scene) as src:
        red_band, nir_band = band_indexes(src)
        red, nir = src.read(red_band), src.read(nir_band)
        valid = (src.read_masks(red_band) > 0) & (src.read_masks(nir_band) > 0)
        profile = src.profile
    ndvi = compute_ndvi(red, nir, valid)

    profile.update(
        driver="GTiff", count=1, dtype="float32", nodata=float("nan"),
        compress="deflate", predictor=3, interleave="band",
    )  # fmt: skip
    if profile.get("tiled") and (profile["width"] < 16 or profile["height"] < 16):
        profile["tiled"] = False
    if not profile.get("tiled"):
        for key in ("blockxsize", "blockysize"):
            profile.pop(key, None)
    with rasterio.open(output / f"{scene.stem}_ndvi.tif", "w", **profile) as dst:
        dst.write(ndvi, 1)
        dst.set_band_description(1, "NDVI")
    write_preview(ndvi, output / f"{scene.stem}_ndvi.png")

    finite = ndvi[np.isfinite(ndvi)]
    mean = float(finite.mean()) if finite.size else float("nan")
    vegetated = float((finite > VEGETATION_THRESHOLD).mean()) if finite.size else 0.0
    return f"scene={scene.stem} mean_ndvi={mean:.3f} vegetation_fraction={vegetated:.2f}"


def report_failure(message: str, message_file: Path) -> None:
    """Print the failure and, inside a SageMaker container, hand it to SageMaker as the FailureReason."""
    print(f"ERROR: {message}", file=sys.stderr, flush=True)
    if message_file.parent.is_dir():
        message_file.write_text(message)


def main(argv: list[str] | None = None) -> int:
    """Process every scene of this host's shard."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=INPUT, help=f"scenes directory (default {INPUT})")
    parser.add_argument("--output", default=OUTPUT, help=f"results directory (default {OUTPUT})")
    parser.add_argument("--failure-message", default=FAILURE_MESSAGE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    input_dir, output_dir = Path(args.input), Path(args.output)

    describe_host()
    scenes = sorted(p for p in input_dir.rglob("*") if p.suffix.lower() in (".tif", ".tiff") and p.is_file())
    if not scenes:
        print(f"no .tif files under {input_dir}; nothing to do on this host", flush=True)
        return 0
    print(f"{len(scenes)} scene(s) under {input_dir}", flush=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        for scene in scenes:
            print(process_scene(scene, output_dir), flush=True)
    except SceneError as exc:
        report_failure(str(exc), Path(args.failure_message))
        return 1
    except Exception as exc:
        report_failure(f"{type(exc).__name__}: {exc}", Path(args.failure_message))
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
