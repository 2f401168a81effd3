"""The NDVI demo's processing script, run as SageMaker would run it: a plain subprocess, no sluice.

It is the demo's user code, so it is tested on its own here with --input/--output; running it inside the
sandboxed /opt/ml layout is the engine's business.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import rasterio
from affine import Affine
from PIL import Image

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ndvi"
SCRIPT = EXAMPLE / "ndvi.py"
SIZE = 64


def _load_make_scenes() -> ModuleType:
    """examples/ is not a package, so load the generator from its file."""
    spec = importlib.util.spec_from_file_location("ndvi_make_scenes", EXAMPLE / "make_scenes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ms = _load_make_scenes()


def run_script(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run ndvi.py as a processing container's `python3 ndvi.py` would."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def read_ndvi(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as src:
        return src.read(1), dict(src.profile)


def test_ndvi_per_scene(tmp_path: Path) -> None:
    scenes = ms.make_scenes(tmp_path / "in", count=2, size=SIZE, seed=7)
    out = tmp_path / "out"
    result = run_script("--input", tmp_path / "in", "--output", out)
    assert result.returncode == 0, result.stderr
    assert "resourceconfig.json not found; running as a single host" in result.stdout

    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{s.stem}_ndvi{ext}" for s in scenes for ext in (".png", ".tif")
    )
    for index, scene in enumerate(scenes):
        ndvi, profile = read_ndvi(out / f"{scene.stem}_ndvi.tif")
        with rasterio.open(scene) as src:
            assert profile["crs"] == src.crs
            assert profile["transform"] == src.transform
            assert (profile["width"], profile["height"]) == (src.width, src.height)
        assert profile["dtype"] == "float32"
        assert profile["count"] == 1
        assert np.isnan(profile["nodata"])
        assert profile["compress"] == "deflate"

        assert np.isfinite(ndvi).all()  # no zero denominators or nodata in the synthetic scenes
        assert ndvi.min() >= -1.0 and ndvi.max() <= 1.0
        classes = ms.scene_classes(SIZE, seed=7, index=index)
        vegetation, water = classes == ms.VEGETATION, classes == ms.WATER
        assert vegetation.any() and water.any()
        assert (ndvi[vegetation] > 0.5).all()
        assert (ndvi[water] < 0).all()
        assert ndvi[classes == ms.SOIL].mean() > 0 > ndvi[water].mean()

        line = re.search(rf"scene={scene.stem} mean_ndvi=(\S+) vegetation_fraction=(\S+)", result.stdout)
        assert line, result.stdout
        assert float(line.group(1)) == round(float(ndvi.mean()), 3)
        assert float(line.group(2)) >= round(float(vegetation.mean()), 2)

        with Image.open(out / f"{scene.stem}_ndvi.png") as png:
            png.load()
            assert png.format == "PNG"
            assert png.size == (SIZE, SIZE)
            assert png.mode == "RGBA"


def test_preview_is_downsampled(tmp_path: Path) -> None:
    ms.make_scenes(tmp_path / "in", count=1, size=600)
    result = run_script("--input", tmp_path / "in", "--output", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    (png_path,) = (tmp_path / "out").glob("*.png")
    with Image.open(png_path) as png:
        assert max(png.size) <= 256
    ndvi, _ = read_ndvi(png_path.with_suffix(".tif"))
    assert ndvi.shape == (600, 600)  # only the preview is reduced


def test_scene_without_band_descriptions_uses_positions(tmp_path: Path) -> None:
    (scene,) = ms.make_scenes(tmp_path / "named", count=1, size=SIZE, seed=3)
    unnamed = tmp_path / "unnamed" / "nested" / "scene.tif"
    unnamed.parent.mkdir(parents=True)
    with rasterio.open(scene) as src:
        data, profile = src.read(), src.profile
    with rasterio.open(unnamed, "w", **profile) as dst:
        dst.write(data)
    with rasterio.open(unnamed) as src:
        assert not any(src.descriptions)

    for name in ("named", "unnamed"):
        result = run_script("--input", tmp_path / name, "--output", tmp_path / f"out-{name}")
        assert result.returncode == 0, result.stderr
    named_ndvi, _ = read_ndvi(tmp_path / "out-named" / f"{scene.stem}_ndvi.tif")
    unnamed_ndvi, _ = read_ndvi(tmp_path / "out-unnamed" / "scene_ndvi.tif")
    np.testing.assert_array_equal(named_ndvi, unnamed_ndvi)


def test_zero_denominator_and_nodata_become_nan(tmp_path: Path) -> None:
    (scene,) = ms.make_scenes(tmp_path / "in", count=1, size=SIZE)
    with rasterio.open(scene, "r+") as dst:
        data = dst.read()
        data[:, 0, 0] = 0  # L2A nodata in every band
        data[3, 1, 1] = data[7, 1, 1] = 0  # red + NIR == 0
        dst.write(data)
    result = run_script("--input", tmp_path / "in", "--output", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    ndvi, _ = read_ndvi(tmp_path / "out" / f"{scene.stem}_ndvi.tif")
    assert np.isnan(ndvi[0, 0]) and np.isnan(ndvi[1, 1])
    assert np.isfinite(ndvi).sum() == ndvi.size - 2
    assert "mean_ndvi=nan" not in result.stdout


def test_empty_input_exits_zero(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    result = run_script("--input", tmp_path / "in", "--output", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "no .tif files" in result.stdout


def test_scene_without_needed_bands_fails_with_message(tmp_path: Path) -> None:
    scene = tmp_path / "in" / "rgb.tif"
    scene.parent.mkdir()
    profile = {"driver": "GTiff", "width": 16, "height": 16, "count": 3, "dtype": "uint16"}
    grid = {"crs": "EPSG:32633", "transform": Affine(10.0, 0.0, 399960.0, 0.0, -10.0, 5900040.0)}
    with rasterio.open(scene, "w", **profile, **grid) as dst:
        dst.write(np.full((3, 16, 16), 1000, np.uint16))
        for band, name in enumerate(("B02", "B03", "B04"), start=1):
            dst.set_band_description(band, name)
    (tmp_path / "output").mkdir()  # stands in for /opt/ml/output
    message = tmp_path / "output" / "message"

    result = run_script("--input", tmp_path / "in", "--output", tmp_path / "out", "--failure-message", message)
    assert result.returncode != 0
    assert "rgb.tif" in result.stderr and "B08" in result.stderr
    assert "Traceback" not in result.stderr
    assert "B08" in message.read_text()
