"""sluice's repack job: put a model's inference code into the model archive a training step made.

A ModelStep whose model has ``entry_point`` and a ``model_data`` known only when the pipeline runs gets a
``<name>-RepackModel-<n>`` training step before it, as in the SageMaker SDK. That step runs this script in
the scikit-learn image, with the model archive as its ``training`` channel and, in its code bundle, the
model's inference code under ``model/code/`` (the same files a repack at build time would put under
``code/``). The script:

1. unpacks the archive (``--model_archive``: its last path segment names the file in the channel) into
   the job's model directory, leaving out any ``code/`` it already had: the new code replaces it;
2. lays the bundle's ``model/`` tree over it, so the code lands in ``code/``;
3. checks that ``code/<--inference_script>`` is there, the program the model server will import.

The job's ``model.tar.gz`` is then the repacked model. The script uses the standard library only, so it
runs in any image's Python, and it honours ``SAGEMAKER_BASE_DIR`` (set when the job runs without the
sandbox) the way the SageMaker toolkits do.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tarfile
from pathlib import Path
from typing import NoReturn

HERE = Path(__file__).resolve().parent


def _base() -> Path:
    return Path(os.environ.get("SAGEMAKER_BASE_DIR", "/opt/ml"))


def _fail(message: str) -> NoReturn:
    """Record the reason where SageMaker reads a job's failure, then end the job with it."""
    failure = _base() / "output" / "failure"
    try:
        failure.parent.mkdir(parents=True, exist_ok=True)
        failure.write_text(message)
    except OSError:
        pass
    print(message, file=sys.stderr)
    raise SystemExit(1)


def _archive(channel: Path, model_archive: str) -> Path:
    """The model archive in the channel: the file ``model_archive`` names (a URI or a file name)."""
    name = model_archive.rstrip("/").rsplit("/", 1)[-1] if model_archive else ""
    if name and (channel / name).is_file():
        return channel / name
    found = sorted(p for p in channel.rglob("*") if p.is_file()) if channel.is_dir() else []
    if len(found) == 1:
        return found[0]
    _fail(f"the repack job found no model archive {name or 'model.tar.gz'!r} in its training channel {channel} "
          f"(it holds {[str(p.relative_to(channel)) for p in found][:10]}); model_data must name the "
          "model.tar.gz a training step made (Steps.<name>.ModelArtifacts.S3ModelArtifacts).")


def _unpack(archive: Path, model_dir: Path) -> None:
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            members = [m for m in tar.getmembers() if m.name.lstrip("./").split("/", 1)[0] != "code"]
            tar.extractall(model_dir, members=members, filter="data")
    except (tarfile.TarError, OSError) as exc:
        _fail(f"the model archive {archive.name} cannot be unpacked: {exc}. model_data must be a .tar.gz.")


def repack(inference_script: str, model_archive: str) -> Path:
    """Repack the channel's model archive with the bundle's code into the job's model directory."""
    base = _base()
    channel = base / "input" / "data" / "training"
    model_dir = base / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    _unpack(_archive(channel, model_archive), model_dir)
    shutil.copytree(HERE / "model", model_dir, dirs_exist_ok=True)
    program = model_dir / "code" / inference_script
    if not program.is_file():
        listing = sorted(p.name for p in (model_dir / "code").iterdir()) if (model_dir / "code").is_dir() else []
        _fail(f"the inference script {inference_script!r} is not in the repacked code/ (it holds {listing[:10]}); "
              "entry_point must name a file at the top of source_dir.")
    return model_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--inference_script", default="inference.py")
    parser.add_argument("--model_archive", default="model.tar.gz")
    parser.add_argument("--dependencies", default="")  # already in the bundle's model/code/; kept for the record
    parser.add_argument("--source_dir", default="")
    args, _ = parser.parse_known_args(argv)
    model_dir = repack(args.inference_script or "inference.py", args.model_archive)
    names = sorted(str(p.relative_to(model_dir)) for p in model_dir.rglob("*") if p.is_file())
    print(f"repacked {len(names)} files into {model_dir}: {names[:20]}")


if __name__ == "__main__":
    main()
