"""SageMaker ML instance types: their sizes, and the account-level instance quotas sluice enforces.

Why a table: an instance type names a size (vCPUs, memory), the resource request a cluster backend places,
and SageMaker refuses a job whose instances, added to those the account's running jobs of that kind
already use, would exceed the account's quota. On one machine the instances share it: sizes are not
enforced as limits here (``SM_NUM_CPUS`` reports the type's vCPUs, capped at the machine's); quotas are,
so a job that runs here also fits the managed service. Quotas default to a conservative copy of the
service's defaults and are raised per type in ``[quotas]`` of ``$SLUICE_HOME/config.toml``.

Utilisation is read from the metadata store: the instances of the type that unfinished jobs of the same
kind (``InProgress`` or ``Stopping``, with a live driver) hold. :func:`check_quota` refuses early, before a
job's inputs are planned; :func:`create_job_within_quota` checks again and records the job under one
lock, so two jobs racing for the last instance cannot both start. The lock (:func:`quota_lock`) is a
thread lock, then one every process that records in the same database shares: on PostgreSQL an advisory
lock held in the database (every process on every host, whatever its sluice home); on SQLite an ``flock``
on a file beside the database file (every process on this host); otherwise a file in the sluice home.
Jobs recorded from other hosts always count as live (a driver's liveness is only knowable on its own host).

GPU instance types are accepted for scheduling (their vCPU and memory sizes apply). Whether a GPU is
actually visible to the job is the runtime's concern, not this table's; this module never refuses a GPU
type because the machine has no GPU. Only ``local_gpu`` is refused, because it explicitly means "this
machine's GPUs".
"""

from __future__ import annotations

import difflib
import fcntl
import os
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice.config import Config
from sluice.errors import ResourceLimitExceeded, SpecError
from sluice.jobs.status import JobStatus
from sluice.metadata import MetadataStore, open_metadata

__all__ = [
    "DEFAULT_QUOTAS",
    "INSTANCE_TYPES",
    "InstanceType",
    "check_quota",
    "create_job_within_quota",
    "default_quota",
    "instances_in_use",
    "lookup",
    "quota_lock",
    "requested_instances",
]


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
"""Instances of one type the running jobs of one kind may use together unless ``[quotas]`` says otherwise."""


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


#: The job kinds whose instances count against a quota, by the name the service's message uses.
_JOB_KINDS = {"processing": "ProcessingJob", "training": "TrainingJob", "transform": "TransformJob"}
_USAGE = {kind: usage for usage, kind in _JOB_KINDS.items()}
#: The statuses in which a job holds its instances (every status that is not terminal).
_HOLDING = tuple(str(s) for s in JobStatus if not s.is_terminal)


def requested_instances(kind: str, request: Mapping[str, Any]) -> Counter[str]:
    """Instances per type that a ``Create<kind>`` request asks for (a training job may name instance groups)."""
    if kind == "ProcessingJob":
        groups = [request["ProcessingResources"]["ClusterConfig"]]
    elif kind == "TrainingJob":
        resources = request["ResourceConfig"]
        groups = resources.get("InstanceGroups") or [resources]
    elif kind == "TransformJob":
        groups = [request["TransformResources"]]
    else:
        raise ValueError(f"{kind!r} holds no instances; the job kinds that do are {sorted(_USAGE)}.")
    wanted: Counter[str] = Counter()
    for group in groups:
        wanted[str(group["InstanceType"])] += int(group["InstanceCount"])
    return wanted


def instances_in_use(
    instance_type: str, job_kind: str, config: Config, metadata: MetadataStore | None = None
) -> dict[str, int]:
    """Instances of ``instance_type`` that unfinished ``job_kind`` jobs hold now, by job name.

    A job counts while it is ``InProgress`` or ``Stopping`` and its driver lives: a job whose driving
    process died holds nothing, even before anyone marks it ``Failed``.
    """
    kind = _JOB_KINDS.get(job_kind)
    if kind is None:
        raise ValueError(f"job_kind {job_kind!r} is not recorded as jobs ({sorted(_JOB_KINDS)}); pass in_use to "
                         "check_quota for it.")
    metadata = metadata if metadata is not None else open_metadata(config.database_url)
    held: dict[str, int] = {}
    for row in metadata.jobs_in_status(kind, _HOLDING):
        try:
            count = requested_instances(kind, row.request)[instance_type]
        except (KeyError, TypeError, ValueError):  # a row sluice did not write; it cannot hold what it never named
            continue
        if count and row.driver_is_alive():
            held[row.name] = int(count)
    return held


def check_quota(
    instance_type: str, count: int, config: Config, *, job_kind: str = "processing",
    in_use: Mapping[str, int] | None = None,
) -> InstanceType:
    """Refuse a job whose instances, added to those in use, exceed the type's quota; return the type's size.

    ``job_kind`` ("processing", "training", "transform", "endpoint") names the limit in the message, as the
    service does ("ml.m5.xlarge for training job usage"), and picks whose usage counts. ``in_use`` maps the
    holders of this type to their instance counts; by default it is read from the metadata store
    (:func:`instances_in_use`), which only knows job kinds, so endpoints pass their own.
    """
    spec = lookup(instance_type)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise SpecError(
            f"Instance count must be a positive integer, not {count!r} (instance type {instance_type!r}). "
            "Ask for at least 1 instance."
        )
    quota = config.quotas.get(instance_type, default_quota(instance_type))
    if in_use is None:
        in_use = instances_in_use(instance_type, job_kind, config)
    used = sum(in_use.values())
    if used + count > quota:
        holders = ", ".join(repr(name) for name in sorted(in_use)[:5]) + (", ..." if len(in_use) > 5 else "")
        free = "delete an endpoint that uses them" if job_kind == "endpoint" else \
            f"wait for a {job_kind} job that uses them to end"
        wait = f", or {free} ({holders})" if used else ""
        raise ResourceLimitExceeded(
            "ResourceLimitExceeded: The account-level service limit "
            f"'{instance_type} for {job_kind} job usage' is {quota} Instances, with current utilization "
            f"of {used} Instances and a request delta of {count} Instances. "
            f"Raise it with [quotas] \"{instance_type}\" = {used + count} in {_config_file(config)}{wait}."
        )
    return spec


_LOCK = threading.Lock()


def _lock_file(config: Config) -> Path:
    """Beside the SQLite database the jobs are recorded in, so every process recording there shares it."""
    url = config.database_url
    if url.startswith("sqlite:///") and url[len("sqlite:///"):] not in ("", ":memory:"):
        return Path(url[len("sqlite:///"):] + ".quota-lock")
    return config.home / "quota.lock"


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def quota_lock(config: Config) -> Iterator[None]:
    """Hold the one lock under which quotas are checked and jobs recorded: the threads of this process, and
    every process that records in the same database, take it in turn.

    On PostgreSQL that is an advisory lock in the database (:meth:`MetadataStore.database_lock`), so processes
    on other hosts, or with another sluice home, are serialised too; a file lock would only reach this host's.
    On SQLite it is a file lock beside the database file.
    """
    with _LOCK:
        metadata = open_metadata(config.database_url)
        lock = metadata.database_lock("quota") if metadata.has_database_locks else _file_lock(_lock_file(config))
        with lock:
            yield


def create_job_within_quota(
    metadata: MetadataStore, kind: str, request: dict[str, Any], record: dict[str, Any], config: Config
) -> None:
    """Record ``request`` as a new ``InProgress`` job of ``kind``, if its instances fit the quota counting
    every job that holds instances of its type now. Check and record happen under :func:`quota_lock`, so of
    two jobs racing for the last instance exactly one is recorded; the other gets ResourceLimitExceeded. The
    record is committed before the lock is released, so the next holder counts it."""
    with quota_lock(config):
        for instance_type, count in requested_instances(kind, request).items():
            check_quota(instance_type, count, config, job_kind=_USAGE[kind],
                        in_use=instances_in_use(instance_type, _USAGE[kind], config, metadata))
        metadata.create_job(kind, request[f"{kind}Name"], str(JobStatus.IN_PROGRESS), request, record)
