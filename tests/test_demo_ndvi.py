"""The README's main demo runs as documented: NDVI on four instances with ShardedByS3Key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image

REPO = Path(__file__).resolve().parent.parent


def test_ndvi_demo_processes_every_scene_once_across_four_instances(tmp_path):
    home = tmp_path / "home"
    out = subprocess.run([sys.executable, str(REPO / "examples/ndvi/demo.py"), "--scenes", "6", "--size", "64",
                          "--home", str(home)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Completed" in out.stdout
    # Six scenes over four instances: 2, 2, 1, 1 — each scene processed by exactly one host.
    processed = [line for line in out.stderr.splitlines() if "mean_ndvi=" in line]
    assert len(processed) == 6
    hosts = sorted(line.split("]")[0].lstrip("[") for line in processed)
    assert hosts == ["algo-1", "algo-1", "algo-2", "algo-2", "algo-3", "algo-4"]
    results = home / "storage" / "sagemaker-us-east-1-000000000000" / "geospatial" / "ndvi"
    tifs, pngs = sorted(results.glob("*_ndvi.tif")), sorted(results.glob("*_ndvi.png"))
    assert len(tifs) == len(pngs) == 6
    with rasterio.open(tifs[0]) as src:
        ndvi = src.read(1)
        assert src.crs.to_epsg() == 32633
    assert np.nanmin(ndvi) >= -1.0 and np.nanmax(ndvi) <= 1.0
    assert np.nanmax(ndvi) > 0.5 and np.nanmin(ndvi) < 0.0  # vegetation and water both present
    with Image.open(pngs[0]) as img:
        assert img.size[0] > 0
