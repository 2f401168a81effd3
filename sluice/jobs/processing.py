"""``CreateProcessingJob`` requests: validated once at the edge, then an immutable spec.

Validation runs in two passes and reports every problem of a pass together: first the request's shape
against the SageMaker service model in botocore (names, enums, patterns, ranges), then the rules the
service enforces beyond the shape (``LocalPath`` under ``/opt/ml/processing/``, Gzip only with Pipe,
unique names) and what sluice needs locally (an entrypoint, an instance type within its quota). The
runtime then checks that the image maps to an environment, before anything is recorded.
"""

from __future__ import annotations

import posixpath
import time
from dataclasses import dataclass, field
from typing import Any

from sluice.channels.spec import (
    ChannelSpec,
    Compression,
    DataType,
    Distribution,
    InputMode,
    OutputSpec,
    UploadMode,
)
from sluice.config import ACCOUNT_ID, Config
from sluice.errors import SluiceError, SpecError
from sluice.jobs.instance_types import InstanceType, check_quota
from sluice.jobs.schema import validate_request
from sluice.storage.uri import S3Uri

__all__ = ["PROCESSING_ROOT", "ProcessingJobSpec", "describe_processing_job"]

PROCESSING_ROOT = "/opt/ml/processing/"
KIND = "ProcessingJob"


@dataclass(frozen=True)
class ProcessingJobSpec:
    """A validated processing job. Build it with :meth:`from_request`."""

    name: str
    request: dict[str, Any]
    inputs: tuple[ChannelSpec, ...]
    app_managed_inputs: tuple[str, ...]
    outputs: tuple[OutputSpec, ...]
    instance_count: int
    instance_type: InstanceType
    entrypoint: tuple[str, ...]
    arguments: tuple[str, ...]
    image_uri: str
    env_vars: dict[str, str] = field(default_factory=dict)
    max_runtime_seconds: int = 86400
    region: str = "us-east-1"

    kind = KIND

    @property
    def arn(self) -> str:
        return f"arn:aws:sagemaker:{self.region}:{ACCOUNT_ID}:processing-job/{self.name.lower()}"

    @classmethod
    def from_request(cls, request: dict[str, Any], config: Config) -> ProcessingJobSpec:
        validate_request("CreateProcessingJob", request)
        problems: list[str] = []
        inputs, managed = _inputs(request.get("ProcessingInputs") or [], problems)
        outputs = _outputs((request.get("ProcessingOutputConfig") or {}).get("Outputs") or [], problems)
        _check_paths(inputs, outputs, problems)
        app = request["AppSpecification"]
        entrypoint = tuple(app.get("ContainerEntrypoint") or ())
        if not entrypoint:
            problems.append(
                "AppSpecification.ContainerEntrypoint is empty: sluice runs no container image, so it "
                "needs the command to run, e.g. ['python3', '/opt/ml/processing/input/code/script.py'] "
                "(ScriptProcessor and FrameworkProcessor set it for you)."
            )
        if problems:
            raise SpecError(_report(request.get("ProcessingJobName", "?"), problems))
        cluster = request["ProcessingResources"]["ClusterConfig"]
        itype = check_quota(cluster["InstanceType"], int(cluster["InstanceCount"]), config)
        return cls(
            name=request["ProcessingJobName"],
            request=request,
            inputs=tuple(inputs),
            app_managed_inputs=tuple(managed),
            outputs=tuple(outputs),
            instance_count=int(cluster["InstanceCount"]),
            instance_type=itype,
            entrypoint=entrypoint,
            arguments=tuple(app.get("ContainerArguments") or ()),
            image_uri=app["ImageUri"],
            env_vars=dict(request.get("Environment") or {}),
            max_runtime_seconds=int((request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds", 86400)),
            region=config.storage.region,
        )


def _report(name: str, problems: list[str]) -> str:
    lines = "\n".join(f"  - {p}" for p in problems)
    return f"processing job {name!r} was not started; fix these first:\n{lines}"


def _under_processing_root(path: str) -> bool:
    norm = posixpath.normpath(path)
    return path.startswith(PROCESSING_ROOT) and norm.startswith(PROCESSING_ROOT.rstrip("/")) and ".." not in path


def _inputs(raw: list[dict[str, Any]], problems: list[str]) -> tuple[list[ChannelSpec], list[str]]:
    specs: list[ChannelSpec] = []
    managed: list[str] = []
    for i, item in enumerate(raw):
        where = f"ProcessingInputs[{i}] ({item.get('InputName')!r})"
        if item.get("DatasetDefinition"):
            problems.append(
                f"{where} uses DatasetDefinition (an Athena or Redshift query); sluice has no query engine to "
                "run it. Export the query result to a prefix and use an S3Input instead."
            )
            continue
        s3 = item.get("S3Input")
        if not s3:
            if item.get("AppManaged"):
                managed.append(item["InputName"])
                continue
            problems.append(f"{where} has no S3Input; give S3Input (S3Uri, LocalPath, S3DataType, S3InputMode).")
            continue
        local = s3.get("LocalPath")
        if not local and not item.get("AppManaged"):
            problems.append(f"{where}.S3Input.LocalPath is required unless AppManaged is true.")
            continue
        if local and not _under_processing_root(local):
            problems.append(
                f"{where}.S3Input.LocalPath {local!r} must be an absolute path under {PROCESSING_ROOT} "
                f"(e.g. {PROCESSING_ROOT}input)."
            )
            continue
        mode = InputMode(s3.get("S3InputMode", "File"))
        compression = Compression(s3.get("S3CompressionType", "None"))
        if compression is Compression.GZIP and mode is not InputMode.PIPE:
            problems.append(
                f"{where}: Data can only be gzipped when the input mode is Pipe "
                "(S3CompressionType='Gzip' needs S3InputMode='Pipe'); use Pipe, or store the objects uncompressed."
            )
            continue
        try:
            S3Uri.parse(s3["S3Uri"])
        except SluiceError as exc:
            problems.append(f"{where}.S3Input.S3Uri: {exc}")
            continue
        if item.get("AppManaged"):
            managed.append(item["InputName"])
            continue
        specs.append(
            ChannelSpec(
                name=item["InputName"],
                s3_uri=s3["S3Uri"],
                local_path=local,
                data_type=DataType(s3.get("S3DataType", "S3Prefix")),
                input_mode=mode,
                distribution=Distribution(s3.get("S3DataDistributionType", "FullyReplicated")),
                compression=compression,
            )
        )
    names = [x.get("InputName") for x in raw]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"input name {dup!r} is used more than once; InputName must be unique.")
    return specs, managed


def _outputs(raw: list[dict[str, Any]], problems: list[str]) -> list[OutputSpec]:
    specs: list[OutputSpec] = []
    for i, item in enumerate(raw):
        where = f"ProcessingOutputConfig.Outputs[{i}] ({item.get('OutputName')!r})"
        if item.get("FeatureStoreOutput"):
            problems.append(f"{where} uses FeatureStoreOutput; sluice has no feature store. Use an S3Output.")
            continue
        s3 = item.get("S3Output")
        if not s3:
            if not item.get("AppManaged"):
                problems.append(f"{where} has no S3Output; give S3Output (S3Uri, LocalPath, S3UploadMode).")
            continue
        local = s3.get("LocalPath", "")
        if not _under_processing_root(local):
            problems.append(
                f"{where}.S3Output.LocalPath {local!r} must be an absolute path under {PROCESSING_ROOT}."
            )
            continue
        try:
            S3Uri.parse(s3["S3Uri"])
        except SluiceError as exc:
            problems.append(f"{where}.S3Output.S3Uri: {exc}")
            continue
        specs.append(OutputSpec(item["OutputName"], s3["S3Uri"], local, UploadMode(s3["S3UploadMode"])))
    names = [x.get("OutputName") for x in raw]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"output name {dup!r} is used more than once; OutputName must be unique.")
    return specs


def _check_paths(inputs: list[ChannelSpec], outputs: list[OutputSpec], problems: list[str]) -> None:
    """Two channels may not share a directory, and an output may not overlap anything.

    One File-mode input inside another is allowed, as the service allows it: SageMaker's own Abalone example
    stages data at ``/opt/ml/processing/input`` and the SDK puts the code at ``/opt/ml/processing/input/code``.
    Nothing may sit inside a Pipe-mode input (its path is a FIFO, not a directory).
    """
    pipes = {c.local_path.rstrip("/") for c in inputs if c.input_mode is InputMode.PIPE}
    paths = [(f"input {c.name!r}", c.local_path.rstrip("/"), True) for c in inputs]
    paths += [(f"output {o.name!r}", o.local_path.rstrip("/"), False) for o in outputs]
    for i, (a_name, a, a_input) in enumerate(paths):
        for b_name, b, b_input in paths[i + 1:]:
            nested = a.startswith(b + "/") or b.startswith(a + "/")
            outer = b if a.startswith(b + "/") else a
            if a == b or (nested and not (a_input and b_input and outer not in pipes)):
                problems.append(
                    f"{a_name} ({a}) and {b_name} ({b}) overlap; give each input and output its own directory."
                )


def describe_processing_job(spec: ProcessingJobSpec, status: str, **extra: Any) -> dict[str, Any]:
    """A ``DescribeProcessingJob``-shaped record of ``spec`` in ``status``."""
    req = spec.request
    now = time.time()
    record: dict[str, Any] = {
        "ProcessingInputs": req.get("ProcessingInputs", []),
        "ProcessingOutputConfig": req.get("ProcessingOutputConfig", {"Outputs": []}),
        "ProcessingJobName": spec.name,
        "ProcessingResources": req["ProcessingResources"],
        "StoppingCondition": {"MaxRuntimeInSeconds": spec.max_runtime_seconds},
        "AppSpecification": req["AppSpecification"],
        "Environment": req.get("Environment", {}),
        "RoleArn": req.get("RoleArn"),
        "ProcessingJobArn": spec.arn,
        "ProcessingJobStatus": status,
        "CreationTime": now,
        "LastModifiedTime": now,
    }
    for key in ("NetworkConfig", "ExperimentConfig", "Tags"):
        if key in req:
            record[key] = req[key]
    record.update(extra)
    return record
