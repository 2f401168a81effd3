"""``sagemaker.image_uris.retrieve`` for the framework images sluice can run.

Why: SDK code builds processors and estimators from ``image_uris.retrieve(...)``; returning the same URIs
the SDK would keeps that code unchanged, and :func:`sluice.runtime.environments.resolve_image` maps each
URI back to a Python environment. Only the signature subset that shapes the URI is honoured; the SDK's other
keyword arguments are accepted and ignored so SDK-style calls still work.

The account ids come from the SDK's ``image_uri_config/*.json``: SageMaker-built framework images
(scikit-learn, XGBoost) live in a per-region account, AWS Deep Learning Containers (PyTorch, TensorFlow)
in 763104351884.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sluice.config import current_config
from sluice.errors import SpecError

__all__ = ["retrieve", "supported_frameworks"]

# Account that hosts sagemaker-scikit-learn and sagemaker-xgboost in each region.
_SAGEMAKER_FRAMEWORK_ACCOUNTS: dict[str, str] = {
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-west-1": "746614075791",
    "us-west-2": "246618743249",
    "ca-central-1": "341280168497",
    "eu-west-1": "141502667606",
    "eu-west-2": "764974769150",
    "eu-west-3": "659782779980",
    "eu-central-1": "492215442770",
    "eu-north-1": "662702820516",
    "ap-northeast-1": "354813040037",
    "ap-northeast-2": "366743142698",
    "ap-south-1": "720646828776",
    "ap-southeast-1": "121021644041",
    "ap-southeast-2": "783357654285",
    "sa-east-1": "737474898029",
}
_DLC_ACCOUNTS: dict[str, str] = dict.fromkeys(_SAGEMAKER_FRAMEWORK_ACCOUNTS, "763104351884")
_GEOSPATIAL_ACCOUNTS: dict[str, str] = {"us-west-2": "081189585635"}

# The SDK's other retrieve() keyword arguments: accepted, ignored (they do not change a CPU URI here).
_IGNORED_SDK_KWARGS = frozenset({
    "accelerator_type", "container_version", "distribution", "base_framework_version",
    "training_compiler_config", "model_id", "model_version", "hub_arn", "tolerate_vulnerable_model",
    "tolerate_deprecated_model", "sdk_version", "inference_tool", "serverless_inference_config",
    "sagemaker_session", "config_name",
})


@dataclass(frozen=True)
class _Framework:
    """How one framework's URIs are built: repositories per scope, versions and their tag style."""

    repositories: dict[str, str]  # image scope -> ECR repository
    accounts: dict[str, str]  # region -> account id
    versions: dict[str, tuple[str, ...]]  # version -> py versions; () means the tag is the bare version
    processors: tuple[str, ...] = ("cpu",)
    cpu_only_versions: frozenset[str] = frozenset()  # versions built before GPU images existed
    default_version: str | None = None  # used when version=None (only for single-version images)
    fixed_tag: str | None = None  # images published under one tag (geospatial: "latest")
    aliases: dict[str, str] = field(default_factory=dict)  # "2.1.0" -> "2.1"


def _dlc_versions(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Accept the full ``X.Y.Z`` spelling of a DLC ``X.Y`` version, as the SDK's version aliases do."""
    return {f"{v}.{patch}": v for v in table for patch in range(4)}


_PYTORCH_VERSIONS = {
    "1.13": ("py39",), "2.0": ("py310",), "2.1": ("py310",), "2.2": ("py310",),
    "2.3": ("py311",), "2.4": ("py311",), "2.5": ("py311",), "2.6": ("py312",),
}
_TENSORFLOW_VERSIONS = {"2.12": ("py310",), "2.13": ("py310",), "2.14": ("py310",)}

_FRAMEWORKS: dict[str, _Framework] = {
    "sklearn": _Framework(
        repositories={"training": "sagemaker-scikit-learn", "inference": "sagemaker-scikit-learn"},
        accounts=_SAGEMAKER_FRAMEWORK_ACCOUNTS,
        versions={"0.20.0": ("py3",), "0.23-1": ("py3",), "1.0-1": ("py3",), "1.2-1": ("py3",)},
    ),
    "xgboost": _Framework(
        repositories={"training": "sagemaker-xgboost", "inference": "sagemaker-xgboost"},
        accounts=_SAGEMAKER_FRAMEWORK_ACCOUNTS,
        versions={
            "0.90-1": ("py3",), "0.90-2": ("py3",), "1.0-1": ("py3",),
            "1.2-1": (), "1.2-2": (), "1.3-1": (), "1.5-1": (), "1.7-1": (),
        },
        processors=("cpu", "gpu"),
        cpu_only_versions=frozenset({"0.90-1", "0.90-2", "1.0-1"}),
    ),
    "pytorch": _Framework(
        repositories={"training": "pytorch-training", "inference": "pytorch-inference"},
        accounts=_DLC_ACCOUNTS,
        versions=_PYTORCH_VERSIONS,
        processors=("cpu", "gpu"),
        aliases=_dlc_versions(_PYTORCH_VERSIONS),
    ),
    "tensorflow": _Framework(
        repositories={"training": "tensorflow-training", "inference": "tensorflow-inference"},
        accounts=_DLC_ACCOUNTS,
        versions=_TENSORFLOW_VERSIONS,
        processors=("cpu", "gpu"),
        aliases=_dlc_versions(_TENSORFLOW_VERSIONS),
    ),
    "sagemaker-geospatial": _Framework(
        repositories={"processing": "sagemaker-geospatial-v1-0"},
        accounts=_GEOSPATIAL_ACCOUNTS,
        versions={"1.0": ()},
        default_version="1.0",
        fixed_tag="latest",
    ),
}


def supported_frameworks() -> dict[str, tuple[str, ...]]:
    """Framework name -> the versions :func:`retrieve` knows."""
    return {name: tuple(fw.versions) for name, fw in _FRAMEWORKS.items()}


def _processor(instance_type: str | None) -> str:
    """``gpu`` for GPU instance types (``ml.p*``, ``ml.g*``, ``local_gpu``), else ``cpu``, like the SDK."""
    if not instance_type or instance_type == "local":
        return "cpu"
    if instance_type == "local_gpu":
        return "gpu"
    parts = instance_type.split(".")
    family = parts[1] if len(parts) == 3 and parts[0] == "ml" else ""
    return "gpu" if family[:1] in ("p", "g") else "cpu"


def retrieve(
    framework: str,
    region: str | None = None,
    version: str | None = None,
    py_version: str | None = None,
    instance_type: str | None = None,
    image_scope: str | None = None,
    **kwargs: Any,
) -> str:
    """The ECR image URI the SageMaker SDK's ``image_uris.retrieve`` returns for these arguments.

    >>> retrieve("sklearn", region="us-east-1", version="1.2-1")
    '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3'
    """
    unexpected = sorted(set(kwargs) - _IGNORED_SDK_KWARGS)
    if unexpected:
        raise SpecError(
            f"image_uris.retrieve() got unexpected keyword arguments {unexpected}. "
            f"It takes framework, region, version, py_version, instance_type, image_scope and the SDK's "
            f"{', '.join(sorted(_IGNORED_SDK_KWARGS))}."
        )
    fw = _FRAMEWORKS.get(framework)
    if fw is None:
        raise SpecError(
            f"Framework {framework!r} has no image sluice can run. Supported: {', '.join(_FRAMEWORKS)}. "
            "For any other image, pass image_uri and map it in [images] of config.toml."
        )
    region = region or current_config().storage.region
    account = fw.accounts.get(region)
    if account is None:
        raise SpecError(
            f"{framework} images are not known in region {region!r}. Supported regions: "
            f"{', '.join(sorted(fw.accounts))}."
        )
    version = version or fw.default_version
    key = fw.aliases.get(version, version) if version else None
    if key not in fw.versions:
        raise SpecError(
            f"Unsupported {framework} version: {version!r}. Supported versions: {', '.join(fw.versions)}."
        )
    assert key is not None and version is not None
    scope = image_scope or ("training" if "training" in fw.repositories else next(iter(fw.repositories)))
    repository = fw.repositories.get(scope)
    if repository is None:
        raise SpecError(
            f"Unsupported image_scope {image_scope!r} for {framework}. "
            f"Supported: {', '.join(fw.repositories)}."
        )
    processor = _processor(instance_type)
    if processor not in fw.processors or (processor != "cpu" and key in fw.cpu_only_versions):
        raise SpecError(
            f"{framework} {version} images are CPU-only, but instance type "
            f"{instance_type!r} needs a {processor.upper()} image. "
            "Use a CPU instance type such as 'ml.m5.xlarge'."
        )
    py_versions = fw.versions[key]
    if not py_versions and py_version == "py3":
        py_version = None  # the SDK's framework estimators pass "py3"; these tags have no Python suffix
    if py_version is not None and py_version not in py_versions:
        allowed = ", ".join(py_versions) or "none (leave py_version unset)"
        raise SpecError(
            f"Unsupported Python version for {framework} {version}: {py_version!r}. Supported: {allowed}."
        )
    if fw.fixed_tag:
        tag = fw.fixed_tag
    elif not py_versions:
        tag = version
    else:
        tag = f"{version}-{processor}-{py_version or py_versions[-1]}"
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/{repository}:{tag}"
