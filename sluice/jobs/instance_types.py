"""SageMaker ML instance types: their sizes, and the per-job instance quotas sluice enforces.

Why a table: an instance type names a size (vCPUs, memory), the resource request a cluster backend places,
and SageMaker refuses a job that asks for more instances than the account's quota. On one machine the
instances share it: sizes are not enforced as limits here (``SM_NUM_CPUS`` reports the type's vCPUs,
capped at the machine's); quotas are, so a job that runs here also fits the managed service. Quotas
default to a conservative copy of the service's defaults and are raised per type in ``[quotas]`` of
``$SLUICE_HOME/config.toml``.

GPU instance types are accepted for scheduling (their vCPU and memory sizes apply). Whether a GPU is
actually visible to the job is the runtime's concern, not this table's; this module never refuses a GPU
type because the machine has no GPU. Only ``local_gpu`` is refused, because it explicitly means "this
machine's GPUs".
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from sluice.config import Config
from sluice.errors import ResourceLimitExceeded, SpecError

__all__ = ["DEFAULT_QUOTAS", "INSTANCE_TYPES", "InstanceType", "check_quota", "default_quota", "lookup"]


@dataclass(frozen=True)
class InstanceType:
    """One instance type's size. ``gpus`` counts GPUs the type has on the managed service."""

    name: str
    vcpus: int
    memory_gib: float
    gpus: int = 0


_VCPUS = {
    "medium": 2, "large": 2, "xlarge": 4, "2xlarge": 8, "4xlarge": 16, "8xlarge": 32, "9xlarge": 36,
    "10xlarge": 40, "12xlarge": 48, "16xlarge": 64, "18xlarge": 72, "24xlarge": 96, "32xlarge": 128,
    "48xlarge": 192,
}


def _family(family: str, gib_per_vcpu: float, sizes: str) -> dict[str, InstanceType]:
    """A CPU family whose memory is a fixed multiple of its vCPUs (true of m5/c5/r5 and their successors)."""
    out = {}
    for size in sizes.split():
        name = f"ml.{family}.{size}"
        out[name] = InstanceType(name, _VCPUS[size], _VCPUS[size] * gib_per_vcpu)
    return out


def _listed(family: str, rows: list[tuple[str, int, float, int]]) -> dict[str, InstanceType]:
    """A family with irregular sizes: (size, vCPUs, GiB, GPUs) rows."""
    return {f"ml.{family}.{s}": InstanceType(f"ml.{family}.{s}", v, m, g) for s, v, m, g in rows}


_GPU_G5_SHAPE = [  # g5 and g6 share vCPU / memory / GPU counts per size
    ("xlarge", 4, 16, 1), ("2xlarge", 8, 32, 1), ("4xlarge", 16, 64, 1), ("8xlarge", 32, 128, 1),
    ("12xlarge", 48, 192, 4), ("16xlarge", 64, 256, 1), ("24xlarge", 96, 384, 4), ("48xlarge", 192, 768, 8),
]

INSTANCE_TYPES: dict[str, InstanceType] = {
    **_listed("t3", [("medium", 2, 4, 0), ("large", 2, 8, 0), ("xlarge", 4, 16, 0), ("2xlarge", 8, 32, 0)]),
    **_listed("m4", [("xlarge", 4, 16, 0), ("2xlarge", 8, 32, 0), ("4xlarge", 16, 64, 0),
                     ("10xlarge", 40, 160, 0), ("16xlarge", 64, 256, 0)]),
    **_family("m5", 4, "large xlarge 2xlarge 4xlarge 12xlarge 24xlarge"),
    **_family("m5d", 4, "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge"),
    **_family("m6i", 4, "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge"),
    **_family("m7i", 4, "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge"),
    **_listed("c4", [("xlarge", 4, 7.5, 0), ("2xlarge", 8, 15, 0), ("4xlarge", 16, 30, 0),
                     ("8xlarge", 36, 60, 0)]),
    **_family("c5", 2, "large xlarge 2xlarge 4xlarge 9xlarge 18xlarge"),
    **_family("c5d", 2, "large xlarge 2xlarge 4xlarge 9xlarge 18xlarge"),
    **_listed("c5n", [("xlarge", 4, 10.5, 0), ("2xlarge", 8, 21, 0), ("4xlarge", 16, 42, 0),
                      ("9xlarge", 36, 96, 0), ("18xlarge", 72, 192, 0)]),
    **_family("c6i", 2, "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge"),
    **_family("c7i", 2, "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge"),
    **_family("r5", 8, "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge"),
    **_family("r5d", 8, "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge"),
    **_family("r6i", 8, "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge"),
    **_family("r7i", 8, "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge"),
    **_listed("g4dn", [("xlarge", 4, 16, 1), ("2xlarge", 8, 32, 1), ("4xlarge", 16, 64, 1),
                       ("8xlarge", 32, 128, 1), ("12xlarge", 48, 192, 4), ("16xlarge", 64, 256, 1)]),
    **_listed("g5", _GPU_G5_SHAPE),
    **_listed("g6", _GPU_G5_SHAPE),
    **_listed("p2", [("xlarge", 4, 61, 1), ("8xlarge", 32, 488, 8), ("16xlarge", 64, 732, 16)]),
    **_listed("p3", [("2xlarge", 8, 61, 1), ("8xlarge", 32, 244, 4), ("16xlarge", 64, 488, 8)]),
    **_listed("p3dn", [("24xlarge", 96, 768, 8)]),
    **_listed("p4d", [("24xlarge", 96, 1152, 8)]),
    **_listed("p5", [("48xlarge", 192, 2048, 8)]),
}
"""Every ``ml.*`` type sluice knows, by name. ``"local"`` is resolved separately from this machine."""

LOCAL = "local"
LOCAL_GPU = "local_gpu"
LOCAL_QUOTA = 100

# Conservative copies of the managed service's default per-account quotas for job usage.
_FAMILY_QUOTAS = {"p2": 2, "p3": 2, "p3dn": 1, "p4d": 1, "p5": 1, "g4dn": 4, "g5": 4, "g6": 4}
_CPU_QUOTA = 20

DEFAULT_QUOTAS: dict[str, int] = {
    name: _FAMILY_QUOTAS.get(name.split(".")[1], _CPU_QUOTA) for name in INSTANCE_TYPES
} | {LOCAL: LOCAL_QUOTA}
"""Instances of one type a single job may use unless ``[quotas]`` in config.toml says otherwise."""


def _local_machine() -> InstanceType:
    """``local`` is the whole machine, as in SageMaker local mode: all CPUs and all memory."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        memory = 0.0
    return InstanceType(LOCAL, os.cpu_count() or 1, round(memory, 1), 0)


def lookup(name: str) -> InstanceType:
    """The size of instance type ``name``; unknown names are refused with close matches."""
    if name == LOCAL:
        return _local_machine()
    found = INSTANCE_TYPES.get(name)
    if found is not None:
        return found
    if name == LOCAL_GPU:
        raise ResourceLimitExceeded(
            "Instance type 'local_gpu' asks for this machine's GPUs, and sluice does not schedule local "
            "GPUs. Use instance_type='local' (all CPUs of this machine), or an ml.* GPU type such as "
            "'ml.g4dn.xlarge' to size the job like the managed service."
        )
    candidates = [*INSTANCE_TYPES, LOCAL]
    close = difflib.get_close_matches(str(name), candidates, n=4, cutoff=0.6)
    if isinstance(name, str) and not name.startswith("ml.") and f"ml.{name}" in INSTANCE_TYPES:
        close = [f"ml.{name}", *[c for c in close if c != f"ml.{name}"]]
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ResourceLimitExceeded(
        f"Unknown instance type {name!r}.{hint} Use an ml.* type SageMaker offers (e.g. 'ml.m5.xlarge'), "
        "or 'local' to run on this machine's CPUs the way SageMaker local mode does."
    )


def default_quota(instance_type: str) -> int:
    """The built-in quota for ``instance_type`` (before any ``[quotas]`` override)."""
    return DEFAULT_QUOTAS.get(instance_type, _CPU_QUOTA)


def _config_file(config: Config) -> Path:
    """The config file ``load_config`` read, so messages can point at the file to edit."""
    return config.config_file or config.home / "config.toml"


def check_quota(
    instance_type: str, count: int, config: Config, *, job_kind: str = "processing"
) -> InstanceType:
    """Refuse a job that asks for more instances of a type than its quota; return the type's size.

    ``job_kind`` ("processing", "training", "transform") only names the limit in the message, as the
    service does ("ml.m5.xlarge for training job usage").
    """
    spec = lookup(instance_type)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise SpecError(
            f"Instance count must be a positive integer, not {count!r} (instance type {instance_type!r}). "
            "Ask for at least 1 instance."
        )
    quota = config.quotas.get(instance_type, default_quota(instance_type))
    if count > quota:
        raise ResourceLimitExceeded(
            "ResourceLimitExceeded: The account-level service limit "
            f"'{instance_type} for {job_kind} job usage' is {quota} Instances, with current utilization "
            f"of 0 Instances and a request delta of {count} Instances. "
            f"Raise it with [quotas] \"{instance_type}\" = {count} in {_config_file(config)}."
        )
    return spec
