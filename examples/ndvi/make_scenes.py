"""Synthetic Sentinel-2 L2A-like scenes for the NDVI demo.

Real Sentinel-2 tiles are ~800 MB each and need an account to fetch, so the demo makes its own: multi-band
uint16 GeoTIFFs with the 12 L2A bands in Sentinel-2 order, a UTM CRS and a 10 m grid, showing a landscape of
vegetation patches, water and bare soil. Everything derives from the seed, so a test can ask
`scene_classes` where the vegetation and the water are and check the NDVI script's answer there.

    python make_scenes.py OUT_DIR [--count N] [--size S] [--seed K]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS

BANDS: tuple[str, ...] = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
"""The Sentinel-2 L2A bands, in product order (B10 is a cirrus band that L2A drops)."""

SOIL, VEGETATION, WATER = 0, 1, 2
"""Land-cover class codes returned by `scene_classes`."""

CRS_EPSG = 32633  # UTM zone 33N, where tile T33UUP lies
PIXEL_SIZE = 10.0  # metres, the 10 m bands' ground sampling distance
ORIGIN = (399960.0, 5900040.0)  # upper-left corner of the first scene, on the MGRS tile's grid
SCENE_NAME = "S2A_MSIL2A_20230601T100031_T33UUP_{index:02d}.tif"

# Typical surface reflectance x 10000 per band (B01..B12, no B10): textbook spectral signatures.
_SPECTRA: dict[int, np.ndarray] = {
    VEGETATION: np.array([300, 400, 700, 400, 1200, 3000, 3800, 4000, 4100, 1500, 2000, 1000], np.float32),
    SOIL: np.array([1000, 1200, 1600, 2000, 2300, 2500, 2700, 2800, 2900, 1200, 3500, 3000], np.float32),
    WATER: np.array([900, 800, 600, 400, 300, 200, 150, 120, 100, 50, 30, 20], np.float32),
}
_FULL_COVER = 0.75  # vegetation cover fraction from which a pixel counts as the VEGETATION class
_NOISE = 0.02  # relative per-pixel, per-band sensor/texture noise


def _blobs(rng: np.random.Generator, size: int, count: int, radius: tuple[float, float]) -> np.ndarray:
    """A smooth random field: a sum of separable Gaussian blobs (outer products, so it stays cheap)."""
    axis = np.arange(size, dtype=np.float32)
    field = np.zeros((size, size), np.float32)
    for _ in range(count):
        cy, cx = rng.uniform(0, size, 2)
        r = rng.uniform(*radius) * size
        gy = np.exp(-0.5 * ((axis - cy) / r) ** 2)
        gx = np.exp(-0.5 * ((axis - cx) / r) ** 2)
        field += rng.uniform(0.5, 1.0) * np.outer(gy, gx)
    return field


def _scene_rng(seed: int, index: int) -> np.random.Generator:
    """One independent stream per scene, so scene i is the same whatever `count` was asked for."""
    return np.random.default_rng([seed, index])


def synthesize(size: int, seed: int = 0, index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scene `index` of `seed`: (reflectance uint16 of shape (12, size, size), classes uint8 (size, size)).

    Classes come from quantiles of smooth fields, so every scene has some water (5-15 %) and a good share
    of vegetation whatever the seed; VEGETATION pixels are mostly-covered (NDVI well above 0.5) and WATER
    pixels have NIR below red (NDVI below 0).
    """
    rng = _scene_rng(seed, index)
    greenness = _blobs(rng, size, count=12, radius=(0.04, 0.15))
    wetness = _blobs(rng, size, count=3, radius=(0.05, 0.12))
    soil_brightness = 0.85 + 0.3 * _blobs(rng, size, count=4, radius=(0.2, 0.4)) / 4.0

    lo, hi = np.quantile(greenness, [rng.uniform(0.35, 0.5), rng.uniform(0.6, 0.75)])
    cover = np.clip((greenness - lo) / (hi - lo), 0.0, 1.0)[None]  # vegetation cover fraction, 0..1
    water = wetness > np.quantile(wetness, 1.0 - rng.uniform(0.05, 0.15))

    veg = _SPECTRA[VEGETATION][:, None, None]
    soil = _SPECTRA[SOIL][:, None, None] * np.clip(soil_brightness, 0.85, 1.15)[None]
    refl = cover * veg + (1.0 - cover) * soil
    refl = np.where(water[None], _SPECTRA[WATER][:, None, None], refl)
    refl *= 1.0 + _NOISE * rng.standard_normal(refl.shape, dtype=np.float32)
    refl *= rng.uniform(0.9, 1.1)  # scene-wide illumination: changes brightness, not NDVI

    classes = np.full((size, size), SOIL, np.uint8)
    classes[cover[0] >= _FULL_COVER] = VEGETATION
    classes[water] = WATER
    # 0 is the L2A nodata value, so real pixels stay >= 1.
    return np.clip(np.rint(refl), 1, 10000).astype(np.uint16), classes


def scene_classes(size: int, seed: int = 0, index: int = 0) -> np.ndarray:
    """The land-cover map (SOIL/VEGETATION/WATER) of scene `index` as `make_scenes` wrote it."""
    return synthesize(size, seed, index)[1]


def make_scenes(out_dir: Path, count: int = 8, size: int = 256, seed: int = 0) -> list[Path]:
    """Write `count` Sentinel-2 L2A-like GeoTIFFs into `out_dir`; return their paths in index order.

    Scenes sit side by side on one 10 m UTM grid, four per row, so each has its own origin.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    block = 256 if size >= 256 else max(16, size // 16 * 16)  # GeoTIFF tiles are multiples of 16
    paths: list[Path] = []
    for index in range(count):
        data, _ = synthesize(size, seed, index)
        x0 = ORIGIN[0] + (index % 4) * size * PIXEL_SIZE
        y0 = ORIGIN[1] - (index // 4) * size * PIXEL_SIZE
        path = out_dir / SCENE_NAME.format(index=index)
        profile = {
            "driver": "GTiff",
            "width": size,
            "height": size,
            "count": len(BANDS),
            "dtype": "uint16",
            "crs": CRS.from_epsg(CRS_EPSG),
            "transform": Affine(PIXEL_SIZE, 0.0, x0, 0.0, -PIXEL_SIZE, y0),  # north-up, origin at top-left
            "nodata": 0,
            "compress": "deflate",
            "predictor": 2,
            "tiled": True,
            "blockxsize": block,
            "blockysize": block,
            "interleave": "band",
        }
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
            for band, name in enumerate(BANDS, start=1):
                dst.set_band_description(band, name)
            dst.update_tags(
                SPACECRAFT_NAME="Sentinel-2A",
                PRODUCT_TYPE="S2MSI2A",
                QUANTIFICATION_VALUE="10000",
                SYNTHETIC="true",
            )
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: make the scenes and list them."""
    parser = argparse.ArgumentParser(description="Write synthetic Sentinel-2 L2A-like GeoTIFF scenes.")
    parser.add_argument("out_dir", type=Path, help="directory to write the scenes into")
    parser.add_argument("--count", type=int, default=8, help="number of scenes (default 8)")
    parser.add_argument("--size", type=int, default=256, help="scene width and height in pixels (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    if args.count < 0 or args.size < 16:
        parser.error("--count must be >= 0 and --size >= 16")
    for path in make_scenes(args.out_dir, count=args.count, size=args.size, seed=args.seed):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
