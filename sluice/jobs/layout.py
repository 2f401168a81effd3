"""Each instance's own ``/opt/ml`` tree on the host, and the config files SageMaker puts in it.

An instance's tree is a directory on the host (``<home>/jobs/<job>/<host>/ml``) that the sandbox binds
at ``/opt/ml``, so a script's hard-coded paths land in its own tree and concurrent instances never
collide. :meth:`InstanceLayout.host_path` maps a container path to the host.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice.errors import SpecError

__all__ = ["CONTAINER_ROOT", "PROCESSING_DIRS", "TRAINING_DIRS", "InstanceLayout", "host_names", "job_dir"]

#: Directories that exist when a processing container starts.
PROCESSING_DIRS = ("/opt/ml/config", "/opt/ml/output", "/opt/ml/processing")
#: Directories that exist when a training container starts.
TRAINING_DIRS = ("/opt/ml/input/config", "/opt/ml/input/data", "/opt/ml/model", "/opt/ml/output/data",
                 "/opt/ml/output/intermediate", "/opt/ml/code")

CONTAINER_ROOT = "/opt/ml"


def host_names(count: int) -> list[str]:
    """``algo-1`` … ``algo-N``, sorted as SageMaker sorts them in ``resourceconfig.json``."""
    return sorted((f"algo-{i}" for i in range(1, count + 1)), key=lambda h: int(h.split("-")[1]))


def job_dir(jobs_root: Path, job_name: str) -> Path:
    return jobs_root / job_name


@dataclass(frozen=True)
class InstanceLayout:
    """Where one instance's ``/opt/ml`` lives on the host."""

    host: str
    index: int
    base: Path  # <home>/jobs/<job>/<host>

    @property
    def root(self) -> Path:
        """The directory bound at ``/opt/ml``."""
        return self.base / "ml"

    @property
    def log_path(self) -> Path:
        return self.base / "output.log"

    def host_path(self, container_path: str) -> Path:
        """The host path behind ``container_path`` (which must be under ``/opt/ml``)."""
        if container_path == CONTAINER_ROOT:
            return self.root
        if not container_path.startswith(CONTAINER_ROOT + "/") or ".." in container_path.split("/"):
            raise SpecError(f"{container_path!r} is not a path under {CONTAINER_ROOT}/.")
        return self.root / container_path[len(CONTAINER_ROOT) + 1:].rstrip("/")

    def rewrite(self, value: str) -> str:
        """Map a container path inside an argument to the host path (used when there is no sandbox)."""
        if value == CONTAINER_ROOT or value.startswith(CONTAINER_ROOT + "/"):
            suffix = "/" if value.endswith("/") and value != CONTAINER_ROOT else ""
            return str(self.host_path(value)) + suffix
        return value

    def create(self, dirs: tuple[str, ...] = ()) -> None:
        """Create the tree and the container directories ``dirs`` (the job type's contract)."""
        self.root.mkdir(parents=True, exist_ok=True)
        for path in dirs:
            os.makedirs(self.host_path(path), exist_ok=True)

    def write_json(self, container_path: str, data: Any) -> Path:
        path = self.host_path(container_path)
        try:
            path.write_text(json.dumps(data, indent=2, default=str))
        except FileNotFoundError:  # its directory is not one the job type creates up front
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data, indent=2, default=str))
        return path

    def read_message(self, limit: int = 1024) -> str | None:
        """The first ``limit`` bytes of ``/opt/ml/output/message`` (SageMaker's ExitMessage), if any."""
        for name in ("message", "failure"):
            path = self.root / "output" / name
            if path.is_file():
                text = path.read_bytes()[:limit].decode("utf-8", errors="replace").strip()
                if text:
                    return text
        return None


def processing_job_config(record: dict[str, Any]) -> dict[str, Any]:
    """``/opt/ml/config/processingjobconfig.json``: the job description plus ``S3DownloadMode``."""
    inputs = []
    for item in record.get("ProcessingInputs", []):
        item = json.loads(json.dumps(item))
        if "S3Input" in item:
            item["S3Input"].setdefault("S3DownloadMode", "StartOfJob")
        inputs.append(item)
    return {
        "ProcessingJobArn": record["ProcessingJobArn"],
        "ProcessingJobName": record["ProcessingJobName"],
        "AppSpecification": {
            "ImageUri": record["AppSpecification"]["ImageUri"],
            "ContainerEntrypoint": record["AppSpecification"].get("ContainerEntrypoint"),
            "ContainerArguments": record["AppSpecification"].get("ContainerArguments"),
        },
        "Environment": record.get("Environment", {}),
        "NetworkConfig": record.get("NetworkConfig"),
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {
            "Outputs": record.get("ProcessingOutputConfig", {}).get("Outputs", []),
            "KmsKeyId": record.get("ProcessingOutputConfig", {}).get("KmsKeyId"),
        },
        "ProcessingResources": record["ProcessingResources"],
        "RoleArn": record.get("RoleArn"),
        "StoppingCondition": record["StoppingCondition"],
    }
