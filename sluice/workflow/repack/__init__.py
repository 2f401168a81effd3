"""The repack step's code: what a model's ``code/`` holds, and the bundle the repack training job runs.

Why a package of its own: a model with ``entry_point`` is repacked in two places that must agree. When its
``model_data`` is a fixed URI, :class:`sluice.model.Model` repacks at once; when it is known only when the
pipeline runs (``step_train.properties.ModelArtifacts.S3ModelArtifacts``), the ModelStep adds a
``<name>-RepackModel-<n>`` training step (the SDK's ``_RepackModelStep``) that runs
:mod:`sluice.workflow.repack._repack_model`. Both take the code from :func:`code_members`, so a model's
``code/`` is the same either way.

The repack job's ``sourcedir.tar.gz`` (:func:`repack_bundle`) holds, at its top, the SDK's program name
``_repack_script_launcher.sh`` (which passes the step's hyperparameters on) and sluice's ``_repack_model.py``;
the model's code sits under ``model/code/``, out of the way of the training toolkit (a ``requirements.txt``
of the inference code is for the model server, not for the repack job to install). The bundle is
reproducible, so the step's arguments are the same on every build while the code is the same.
"""

from __future__ import annotations

from pathlib import Path

from sluice.errors import SpecError

__all__ = [
    "FRAMEWORK_VERSION",
    "INSTANCE_TYPE",
    "REPACK_SCRIPT",
    "REPACK_SCRIPT_LAUNCHER",
    "code_members",
    "repack_bundle",
]

FRAMEWORK_VERSION = "0.23-1"
"""The scikit-learn image the SDK's repack job runs in (SDK v2 ``workflow/_utils.py``)."""
INSTANCE_TYPE = "ml.m5.large"
REPACK_SCRIPT = "_repack_model.py"
REPACK_SCRIPT_LAUNCHER = "_repack_script_launcher.sh"

#: The launcher the SDK writes beside its repack script, reading the hyperparameters from ``SM_HP_*``.
LAUNCHER = """#!/bin/sh
# The repack step's program (the SDK's name): run sluice's repack script with the step's hyperparameters.
exec python "$(dirname "$0")/_repack_model.py" \\
    --inference_script "${SM_HP_INFERENCE_SCRIPT}" \\
    --model_archive "${SM_HP_MODEL_ARCHIVE}" \\
    --dependencies "${SM_HP_DEPENDENCIES}" \\
    --source_dir "${SM_HP_SOURCE_DIR}"
"""


def code_members(entry_point: str, source_dir: str | None, dependencies: list[str] | None) -> list[tuple[Path, str]]:
    """``(local path, name under code/)`` for a model's inference code, as the SDK lays it out.

    With ``source_dir``, every file below it (``__pycache__`` left out) keeps its relative path and
    ``entry_point`` must be one of them; without, ``entry_point`` alone goes in by its file name. Each
    of ``dependencies`` (a file or a directory) goes in by its name. Refuses what is missing, naming it.
    """
    if source_dir and source_dir.startswith("s3://"):
        raise SpecError(f"source_dir {source_dir!r} is on S3; a model's inference code must be a local directory "
                        "here (download it first).")
    root = Path(source_dir) if source_dir else Path(entry_point).parent
    entry = root / entry_point if source_dir else Path(entry_point)
    if source_dir and not root.is_dir():
        raise SpecError(f"source_dir {source_dir!r} is not a directory.")
    if not entry.is_file():
        raise SpecError(f"entry_point {entry_point!r} was not found"
                        f"{' in source_dir ' + repr(source_dir) if source_dir else ''}.")
    files = sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.relative_to(root).parts) \
        if source_dir else [entry]
    members = [(path, path.relative_to(root).as_posix()) for path in files]
    for dep in dependencies or []:
        path = Path(dep)
        if not path.exists():
            raise SpecError(f"dependency {dep!r} does not exist.")
        members.append((path, path.name))
    return members


def repack_bundle(entry_point: str, source_dir: str | None, dependencies: list[str] | None) -> bytes:
    """The repack job's ``sourcedir.tar.gz``: the launcher, the repack script, and the model's code under
    ``model/code/``; the same bytes for the same files."""
    from sluice.workflow.pipeline_context import reproducible_tar_gz

    script = Path(__file__).with_name(REPACK_SCRIPT)
    return reproducible_tar_gz([
        (LAUNCHER.encode(), REPACK_SCRIPT_LAUNCHER),
        (script.read_bytes(), REPACK_SCRIPT),
        *((path, f"model/code/{name}") for path, name in code_members(entry_point, source_dir, dependencies)),
    ])
