"""Which Python environment runs a job's code, chosen from the job's image URI.

Why: SageMaker picks a container image; sluice runs the job's code in a Python interpreter instead. A
SageMaker framework image URI (``<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>``) is mapped by its
repository to a named environment that declares the distributions the image would have provided, so a
missing one is reported before the job starts ("image X maps to environment 'sklearn', which needs
scikit-learn; pip install scikit-learn") instead of as an ``ImportError`` halfway through.

Any other image is mapped by the user in ``[images]`` of ``$SLUICE_HOME/config.toml``::

    [images]
    "my-registry/my-image:1.0" = { python = "/path/to/python", requirements = ["numpy"] }

Optional keys there: ``name``, ``description`` and ``train`` (the command a custom image runs for a training
job that names no entry point, as ``docker run IMAGE train`` would; a relative ``.py`` path is read from the
config file's folder). For now every framework environment runs on the
interpreter sluice itself runs in.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from sluice.config import Config, current_config
from sluice.errors import SpecError

__all__ = [
    "DEFAULT_ENVIRONMENT_NAME",
    "FRAMEWORK_ENVIRONMENTS",
    "FRAMEWORK_REPOSITORIES",
    "Environment",
    "parse_ecr_image_uri",
    "resolve_image",
]

DEFAULT_ENVIRONMENT_NAME = "sluice-python"

# name -> (declared requirements, description)
FRAMEWORK_ENVIRONMENTS: dict[str, tuple[tuple[str, ...], str]] = {
    "sklearn": (("scikit-learn", "pandas", "numpy"), "SageMaker scikit-learn framework image"),
    "xgboost": (("xgboost | xgboost-cpu", "pandas", "numpy", "scikit-learn"), "SageMaker XGBoost framework image"),
    "pytorch": (("torch", "numpy"), "AWS Deep Learning Container for PyTorch (CPU)"),
    "geospatial": (("rasterio", "numpy", "pillow"), "SageMaker geospatial processing image"),
    "tensorflow": (("tensorflow",), "AWS Deep Learning Container for TensorFlow"),
}
"""The named environments framework images map to, with the distributions each image ships."""

FRAMEWORK_REPOSITORIES: dict[str, str] = {
    "sagemaker-scikit-learn": "sklearn",
    "sagemaker-xgboost": "xgboost",
    "pytorch-training": "pytorch",
    "pytorch-inference": "pytorch",
    "sagemaker-geospatial-v1-0": "geospatial",
    "tensorflow-*": "tensorflow",
}
"""ECR repository name -> environment name. A trailing ``*`` matches any repository with that prefix."""

_ECR_URI = re.compile(
    r"(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
    r"/(?P<repository>[a-z0-9][a-z0-9._/-]*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?"
)
_MAPPING_KEYS = ("python", "requirements", "name", "description", "train")

# Run by a foreign interpreter to report installed versions; stdlib only, since that interpreter may lack
# packaging.
_PROBE = (
    "import json, sys\n"
    "from importlib import metadata\n"
    "out = {}\n"
    "for name in sys.argv[1:]:\n"
    "    try:\n"
    "        out[name] = metadata.version(name)\n"
    "    except metadata.PackageNotFoundError:\n"
    "        out[name] = None\n"
    "print(json.dumps(out))\n"
)


@dataclass(frozen=True)
class Environment:
    """A Python interpreter plus the distributions a job run in it expects (what the image would ship)."""

    name: str
    python: str
    requirements: tuple[str, ...] = ()
    description: str = ""
    image_uri: str | None = None
    train: tuple[str, ...] = ()
    """A custom image's own ``train`` program (what the container runs for a training job with no entry point)."""

    def missing_requirements(self) -> tuple[str, ...]:
        """Declared requirements :attr:`python` lacks: absent, or at a version the specifier refuses.

        Each entry is the requirement string, followed by ``(installed: X)`` when a wrong version is present.
        A requirement may list alternatives, ``"xgboost | xgboost-cpu"``: any one of them satisfies it.
        """
        choices = [[(alt.strip(), _parse_requirement(alt.strip(), self)) for alt in text.split("|")]
                   for text in self.requirements]
        installed = self._installed_versions([r.name for alts in choices for _, r in alts])
        missing = []
        for alts in choices:
            problems: list[str] = []
            for text, req in alts:
                version = installed.get(req.name)
                if req.marker is not None and not req.marker.evaluate():
                    problems = []
                    break
                if version is None:
                    problems.append(text)
                elif req.specifier and not req.specifier.contains(version, prereleases=True):
                    problems.append(f"{text} (installed: {version})")
                else:
                    problems = []
                    break
            if problems:
                missing.append(" or ".join(problems))
        return tuple(missing)

    def check(self) -> None:
        """Raise SpecError if the interpreter is missing or a declared requirement is not installed in it."""
        if not _is_executable(self.python):
            raise SpecError(
                f"{self._origin()}, whose Python {self.python!r} does not exist or is not "
                "executable. Fix 'python' for this image in [images] of your config.toml, or install "
                "that interpreter."
            )
        missing = self.missing_requirements()
        if not missing:
            return
        wanted = " ".join(shlex.quote(m.split(" or ", 1)[0].split(" (installed:", 1)[0]) for m in missing)
        raise SpecError(
            f"{self._origin()}, which needs {', '.join(missing)}, not installed for {self.python}. "
            f"Install with: {shlex.quote(self.python)} -m pip install {wanted}"
        )

    def _origin(self) -> str:
        if self.image_uri:
            return f"Image {self.image_uri!r} maps to environment {self.name!r}"
        return f"Environment {self.name!r}"

    def _installed_versions(self, names: list[str]) -> dict[str, str | None]:
        if not names:
            return {}
        if _same_interpreter(self.python):
            out: dict[str, str | None] = {}
            for name in names:
                if name in _FOUND:
                    out[name] = _FOUND[name]
                    continue
                try:
                    out[name] = _FOUND[name] = metadata.version(name)
                except metadata.PackageNotFoundError:
                    out[name] = None  # not cached: a user may install it and try again in this process
            return out
        try:
            done = subprocess.run(
                [self.python, "-c", _PROBE, *names], capture_output=True, text=True, timeout=60, check=True
            )
            return dict(json.loads(done.stdout))
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            raise SpecError(
                f"Could not ask {self.python!r} ({self._origin().lower()}) which packages it has: {exc}. "
                "Check that the interpreter runs, or fix 'python' for this image in [images] of config.toml."
            ) from exc


#: Versions found installed in this interpreter (looked up once per process; absences are not cached).
_FOUND: dict[str, str] = {}


def _is_executable(python: str) -> bool:
    return os.path.isfile(python) and os.access(python, os.X_OK)


def _same_interpreter(python: str) -> bool:
    if python == sys.executable:
        return True
    try:
        return os.path.samefile(python, sys.executable)
    except OSError:
        return False


def _parse_requirement(text: str, env: Environment) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise SpecError(
            f"{env._origin()} declares requirement {text!r}, which is not a valid pip requirement ({exc}). "
            "Write it as pip would accept it, e.g. 'numpy' or 'numpy>=1.24'."
        ) from exc


def parse_ecr_image_uri(image_uri: str) -> dict[str, str | None] | None:
    """``account``, ``region``, ``repository``, ``tag`` and ``digest`` of an ECR image URI, or None."""
    match = _ECR_URI.fullmatch(image_uri)
    return match.groupdict() if match else None


def _framework_for(repository: str) -> str | None:
    for pattern, env_name in FRAMEWORK_REPOSITORIES.items():
        if repository == pattern or (pattern.endswith("*") and repository.startswith(pattern[:-1])):
            return env_name
    return None


def _config_file(config: Config) -> Path:
    """The config file ``load_config`` read, so messages can point at the file to edit."""
    return config.config_file or config.home / "config.toml"


def _toml_hint(image_uri: str, config: Config) -> str:
    key = json.dumps(image_uri)  # a JSON string is a valid TOML basic string
    python = json.dumps(sys.executable)
    return (
        f"Map it to a Python environment in {_config_file(config)}:\n\n"
        f"[images]\n{key} = {{ python = {python}, requirements = [] }}"
    )


def _from_mapping(image_uri: str, spec: Any, config: Config) -> Environment:
    where = f"[images] entry {json.dumps(image_uri)} in {_config_file(config)}"
    if not isinstance(spec, dict):
        raise SpecError(f'{where} must be a table like {{ python = "/path/to/python", requirements = [] }}.')
    unknown = sorted(set(spec) - set(_MAPPING_KEYS))
    if unknown:
        raise SpecError(f"{where} has unknown keys {unknown}; allowed keys: {', '.join(_MAPPING_KEYS)}.")
    python = spec.get("python", sys.executable)
    requirements = spec.get("requirements", [])
    if not isinstance(python, str) or not python:
        raise SpecError(f"{where}: 'python' must be the path of an interpreter, not {python!r}.")
    if not isinstance(requirements, list) or not all(isinstance(r, str) for r in requirements):
        raise SpecError(f"{where}: 'requirements' must be a list of pip requirements, not {requirements!r}.")
    train = spec.get("train", [])
    if isinstance(train, str):
        train = shlex.split(train)
    if not isinstance(train, list) or not all(isinstance(a, str) and a for a in train):
        raise SpecError(f'{where}: \'train\' must be the command the image runs to train, e.g. '
                        f'["python3", "/path/train.py"], not {train!r}.')
    base = _config_file(config).parent
    train = [str(base / a) if a.endswith(".py") and not os.path.isabs(a) else a for a in train]
    default_name = image_uri.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0] or image_uri
    env = Environment(
        name=str(spec.get("name") or default_name),
        python=os.path.expanduser(python),
        requirements=tuple(requirements),
        description=str(spec.get("description") or f"user-mapped image {image_uri}"),
        image_uri=image_uri,
        train=tuple(train),
    )
    for text in env.requirements:
        _parse_requirement(text, env)  # refuse a malformed requirement now, not when the job starts
    return env


def resolve_image(image_uri: str | None, config: Config | None = None) -> Environment:
    """The environment a job with ``image_uri`` runs in.

    ``None``, ``""`` and ``"local"`` mean the interpreter sluice runs in. A ``[images]`` mapping in
    config.toml wins over the built-in framework table, so users can repoint any image.
    """
    if not image_uri or image_uri == "local":
        return Environment(
            name=DEFAULT_ENVIRONMENT_NAME,
            python=sys.executable,
            description="the interpreter sluice runs in",
            image_uri=image_uri or None,
        )
    config = config if config is not None else current_config()
    mapped = config.images.get(image_uri)
    if mapped is not None:
        return _from_mapping(image_uri, mapped, config)
    parts = parse_ecr_image_uri(image_uri)
    env_name = _framework_for(str(parts["repository"])) if parts else None
    if env_name is not None:
        requirements, description = FRAMEWORK_ENVIRONMENTS[env_name]
        return Environment(env_name, sys.executable, requirements, description, image_uri)
    known = ", ".join(FRAMEWORK_REPOSITORIES)
    what = (
        f"ECR repository {parts['repository']!r} is not a SageMaker framework image sluice knows"
        if parts
        else "it is not a SageMaker framework image sluice knows"
    )
    raise SpecError(
        f"Cannot run image {image_uri!r}: {what} (known repositories: {known}). "
        f"{_toml_hint(image_uri, config)}"
    )
