"""``CreateTrainingJob`` requests and the script-mode contract of the SageMaker training toolkit.

Two halves. :class:`TrainingJobSpec` validates a request once (botocore's model, then the service's
rules: AugmentedManifestFile and RecordIO need Pipe, FastFile needs S3Prefix, Gzip needs Pipe) and
normalises its channels. Whether a request with no entry point is acceptable depends on its image's
environment, which the runtime resolves (``entry_point_required``). The functions below it reproduce
what the training toolkit does inside a container — decode hyperparameters, build ``SM_*`` variables
and ``--key value`` arguments, choose how to launch the entry point — as pure functions, so the runtime
can launch the user's script directly with no toolkit process in between.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sluice.channels.spec import (
    ChannelSpec,
    Compression,
    DataType,
    Distribution,
    InputMode,
    RecordWrapping,
)
from sluice.config import ACCOUNT_ID, Config
from sluice.errors import SluiceError, SpecError
from sluice.jobs.instance_types import InstanceType, check_quota
from sluice.jobs.schema import validate_request
from sluice.storage.uri import S3Uri

__all__ = [
    "NO_ENTRY_POINT",
    "RESERVED_HYPERPARAMETERS",
    "TrainingJobSpec",
    "decode_hyperparameters",
    "describe_training_job",
    "entry_command",
    "input_data_config",
    "refusal",
    "to_cmd_args",
    "training_env_vars",
]

KIND = "TrainingJob"
DATA_ROOT = "/opt/ml/input/data"
CODE_DIR = "/opt/ml/code"
DEFAULT_CHECKPOINT_PATH = "/opt/ml/checkpoints"

#: Hyperparameters the toolkit consumes itself and leaves out of ``SM_HPS`` and the script's arguments.
RESERVED_HYPERPARAMETERS = frozenset({
    "sagemaker_program", "sagemaker_submit_directory", "sagemaker_enable_cloudwatch_metrics", "sagemaker_region",
    "sagemaker_container_log_level", "sagemaker_job_name", "default_user_module_name",
    "_tuning_objective_metric", "sagemaker_s3_output",
})


NO_ENTRY_POINT = (
    "the job names no entry point: give the estimator an entry_point (script mode: hyperparameter "
    "sagemaker_program) or set AlgorithmSpecification.ContainerEntrypoint. Only an image that maps to the "
    "'xgboost' environment runs without one (SageMaker's built-in XGBoost algorithm), or an image whose "
    "[images] entry in config.toml names its container's train program: train = [\"python3\", \"/path/train.py\"]"
)
"""Why a job with no entry point is refused when its image has no built-in algorithm."""


def refusal(name: str, problems: list[str]) -> SpecError:
    """The one error that lists every problem of a training request."""
    lines = "\n".join(f"  - {p}" for p in problems)
    return SpecError(f"training job {name!r} was not started; fix these first:\n{lines}")


@dataclass(frozen=True)
class MetricDefinition:
    name: str
    regex: str


@dataclass(frozen=True)
class TrainingJobSpec:
    """A validated training job. Build it with :meth:`from_request`."""

    name: str
    request: dict[str, Any]
    channels: tuple[ChannelSpec, ...]
    hyperparameters: dict[str, str]
    instance_count: int
    instance_type: InstanceType
    image_uri: str
    input_mode: InputMode
    output_path: str
    compress_output: bool
    metric_definitions: tuple[MetricDefinition, ...]
    entrypoint: tuple[str, ...] = ()
    arguments: tuple[str, ...] = ()
    env_vars: dict[str, str] = field(default_factory=dict)
    checkpoint_s3_uri: str | None = None
    checkpoint_local_path: str = DEFAULT_CHECKPOINT_PATH
    max_runtime_seconds: int = 86400
    region: str = "us-east-1"

    kind = KIND

    @property
    def arn(self) -> str:
        return f"arn:aws:sagemaker:{self.region}:{ACCOUNT_ID}:training-job/{self.name.lower()}"

    @property
    def program(self) -> str | None:
        """The script-mode entry point (``sagemaker_program``), if the job runs in script mode."""
        return decode_hyperparameters(self.hyperparameters).get("sagemaker_program")

    @property
    def submit_directory(self) -> str | None:
        return decode_hyperparameters(self.hyperparameters).get("sagemaker_submit_directory")

    @property
    def output_prefix(self) -> str:
        """``<S3OutputPath>/<job>/output``: where model.tar.gz and output.tar.gz land."""
        return f"{self.output_path.rstrip('/')}/{self.name}/output"

    @property
    def runs_builtin_algorithm(self) -> bool:
        """Whether the job names no entry point, so it can only run its image's built-in algorithm."""
        return not self.program and not self.entrypoint

    @classmethod
    def from_request(cls, request: dict[str, Any], config: Config, *,
                     entry_point_required: bool = True) -> TrainingJobSpec:
        """Validate ``request`` and normalise it; every problem is reported in one SpecError.

        ``entry_point_required=False`` accepts a request without an entry point: the caller knows the image's
        environment (this layer does not) and refuses it there unless the image has a built-in algorithm.
        """
        validate_request("CreateTrainingJob", request)
        problems: list[str] = []
        algo = request["AlgorithmSpecification"]
        job_mode = InputMode(algo["TrainingInputMode"])
        channels = [_channel(i, c, job_mode, problems) for i, c in enumerate(request.get("InputDataConfig") or [])]
        names = [c.get("ChannelName") for c in request.get("InputDataConfig") or []]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"channel name {dup!r} is used more than once; ChannelName must be unique.")
        hps = dict(request.get("HyperParameters") or {})
        decoded = decode_hyperparameters(hps)
        entrypoint = tuple(algo.get("ContainerEntrypoint") or ())
        if entry_point_required and not decoded.get("sagemaker_program") and not entrypoint:
            problems.append(NO_ENTRY_POINT)
        if decoded.get("sagemaker_program") and not decoded.get("sagemaker_submit_directory"):
            problems.append("hyperparameter sagemaker_program is set but sagemaker_submit_directory (the code's "
                            "s3:// sourcedir.tar.gz) is not; the SDK sets both, so set both.")
        output = request["OutputDataConfig"]
        try:
            S3Uri.parse(output["S3OutputPath"])
        except SluiceError as exc:
            problems.append(f"OutputDataConfig.S3OutputPath: {exc}")
        checkpoint = request.get("CheckpointConfig") or {}
        if checkpoint:
            try:
                S3Uri.parse(checkpoint["S3Uri"])
            except SluiceError as exc:
                problems.append(f"CheckpointConfig.S3Uri: {exc}")
            local = checkpoint.get("LocalPath", DEFAULT_CHECKPOINT_PATH)
            if not local.startswith("/opt/ml/"):
                problems.append(f"CheckpointConfig.LocalPath {local!r} must be under /opt/ml/ "
                                f"(default {DEFAULT_CHECKPOINT_PATH}).")
        if problems:
            raise refusal(request.get("TrainingJobName", "?"), problems)
        resources = request.get("ResourceConfig") or {}
        if "InstanceType" not in resources or "InstanceCount" not in resources:
            raise SpecError("ResourceConfig needs InstanceType and InstanceCount, e.g. "
                            "{'InstanceType': 'ml.m5.xlarge', 'InstanceCount': 1, 'VolumeSizeInGB': 30}.")
        itype = check_quota(resources["InstanceType"], int(resources["InstanceCount"]), config, job_kind="training")
        return cls(
            name=request["TrainingJobName"],
            request=request,
            channels=tuple(channels),
            hyperparameters=hps,
            instance_count=int(resources["InstanceCount"]),
            instance_type=itype,
            image_uri=algo.get("TrainingImage", ""),
            input_mode=job_mode,
            output_path=output["S3OutputPath"],
            compress_output=output.get("CompressionType", "GZIP") != "NONE",
            metric_definitions=tuple(
                MetricDefinition(m["Name"], m["Regex"]) for m in algo.get("MetricDefinitions", [])
            ),
            entrypoint=entrypoint,
            arguments=tuple(algo.get("ContainerArguments") or ()),
            env_vars=dict(request.get("Environment") or {}),
            checkpoint_s3_uri=checkpoint.get("S3Uri"),
            checkpoint_local_path=checkpoint.get("LocalPath", DEFAULT_CHECKPOINT_PATH).rstrip("/") or "/",
            max_runtime_seconds=int((request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds", 86400)),
            region=config.storage.region,
        )


def _channel(i: int, raw: dict[str, Any], job_mode: InputMode, problems: list[str]) -> ChannelSpec:
    name = raw["ChannelName"]
    where = f"InputDataConfig[{i}] ({name!r})"
    source = raw["DataSource"]
    s3 = source.get("S3DataSource")
    if not s3:
        kinds = ", ".join(k for k in source if source.get(k))
        problems.append(f"{where} uses {kinds or 'no data source'}; sluice reads S3DataSource only (EFS and FSx "
                        "file systems are not on this machine): copy the data to a prefix.")
        return ChannelSpec(name, "s3://invalid/", f"{DATA_ROOT}/{name}")
    mode = InputMode(raw.get("InputMode") or job_mode)
    data_type = DataType(s3["S3DataType"]) if s3["S3DataType"] in {d.value for d in DataType} else None
    if data_type is None:
        problems.append(f"{where}: S3DataType {s3['S3DataType']!r} is not supported; use S3Prefix, ManifestFile or "
                        "AugmentedManifestFile.")
        data_type = DataType.S3_PREFIX
    compression = Compression(raw.get("CompressionType", "None"))
    wrapping = RecordWrapping(raw.get("RecordWrapperType", "None"))
    if data_type is DataType.AUGMENTED_MANIFEST_FILE and mode is not InputMode.PIPE:
        problems.append(f"{where}: AugmentedManifestFile can only be used if the Channel's input mode is Pipe "
                        f"(it is {mode.value}); set input_mode='Pipe'.")
    if compression is Compression.GZIP and mode is not InputMode.PIPE:
        problems.append(f"{where}: CompressionType Gzip is used only in Pipe input mode (it is {mode.value}); "
                        "use Pipe, or store the objects uncompressed.")
    if wrapping is RecordWrapping.RECORDIO and mode is not InputMode.PIPE:
        problems.append(f"{where}: RecordWrapperType RecordIO applies to Pipe mode only (it is {mode.value}); "
                        "leave it unset for File and FastFile.")
    if mode is InputMode.FAST_FILE and data_type is not DataType.S3_PREFIX:
        problems.append(f"{where}: FastFile supports S3Prefix only, not {data_type.value}; use File or Pipe.")
    attributes = tuple(s3.get("AttributeNames") or ())
    if data_type is DataType.AUGMENTED_MANIFEST_FILE and not attributes:
        problems.append(f"{where}: an AugmentedManifestFile channel needs AttributeNames (1 to 16), e.g. "
                        "['source-ref', 'class'].")
    try:
        S3Uri.parse(s3["S3Uri"])
    except SluiceError as exc:
        problems.append(f"{where}.DataSource.S3DataSource.S3Uri: {exc}")
    seed = (raw.get("ShuffleConfig") or {}).get("Seed")
    return ChannelSpec(
        name=name,
        s3_uri=s3["S3Uri"],
        local_path=f"{DATA_ROOT}/{name}",
        data_type=data_type,
        input_mode=mode,
        distribution=Distribution(s3.get("S3DataDistributionType", "FullyReplicated")),
        compression=compression,
        record_wrapping=wrapping,
        attribute_names=attributes,
        shuffle_seed=int(seed) if seed is not None else None,
        content_type=raw.get("ContentType"),
        pipe_per_epoch=True,
    )


# ---- the training toolkit's contract -------------------------------------------------------------
def decode_hyperparameters(hps: Mapping[str, str]) -> dict[str, Any]:
    """Each value through ``json.loads``, keeping the raw string where that fails (as the toolkit does)."""
    out: dict[str, Any] = {}
    for key, value in hps.items():
        try:
            out[key] = json.loads(value)
        except (TypeError, ValueError):
            out[key] = value
    return out


def user_hyperparameters(hps: Mapping[str, str]) -> dict[str, Any]:
    decoded = decode_hyperparameters(hps)
    return {k: v for k, v in decoded.items() if k not in RESERVED_HYPERPARAMETERS and not k.startswith("sagemaker_")}


def framework_params(hps: Mapping[str, str]) -> dict[str, Any]:
    decoded = decode_hyperparameters(hps)
    return {k: v for k, v in decoded.items() if k.startswith("sagemaker_") and k not in RESERVED_HYPERPARAMETERS}


def _decode(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin1")
    return str(value)


def to_cmd_args(mapping: Mapping[str, Any]) -> list[str]:
    """``{"lr": 0.1, "k": 3}`` → ``["-k", "3", "--lr", "0.1"]``: keys sorted, one-letter keys get one dash."""
    args: list[str] = []
    for key in sorted(mapping):
        name = _decode(key)
        args.append(f"--{name}" if len(name) > 1 else f"-{name}")
        value = mapping[key]
        if hasattr(value, "items"):
            args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            args.append(_decode(value))
    return args


def _env_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def input_data_config(channels: tuple[ChannelSpec, ...]) -> dict[str, dict[str, str]]:
    """``/opt/ml/input/config/inputdataconfig.json``: each channel's real mode, distribution and wrapping."""
    config: dict[str, dict[str, str]] = {}
    for c in channels:
        entry = {"TrainingInputMode": c.input_mode.value, "S3DistributionType": c.distribution.value,
                 "RecordWrapperType": c.record_wrapping.value}
        if c.content_type:
            entry["ContentType"] = c.content_type
        if c.compression is not Compression.NONE:
            entry["CompressionType"] = c.compression.value
        config[c.name] = entry
    return config


def training_env_vars(
    spec: TrainingJobSpec, host: str, hosts: list[str], resource_config: dict[str, Any], num_cpus: int,
) -> dict[str, str]:
    """Every ``SM_*`` variable the training toolkit sets, for ``host``, with container paths."""
    hps = user_hyperparameters(spec.hyperparameters)
    decoded = decode_hyperparameters(spec.hyperparameters)
    program = decoded.get("sagemaker_program") or ""
    module_name = program[:-3] if program.endswith(".py") else program
    channel_names = sorted(c.name for c in spec.channels)
    channel_dirs = {c: f"{DATA_ROOT}/{c}" for c in channel_names}
    props: dict[str, Any] = {
        "additional_framework_parameters": framework_params(spec.hyperparameters),
        "channel_input_dirs": channel_dirs,
        "current_host": host,
        "current_instance_type": spec.instance_type.name,
        "current_instance_group": "homogeneousCluster",
        "current_instance_group_hosts": hosts,
        "distribution_hosts": hosts,
        "framework_module": None,
        "hosts": hosts,
        "hyperparameters": hps,
        "input_config_dir": "/opt/ml/input/config",
        "input_data_config": input_data_config(spec.channels),
        "input_dir": "/opt/ml/input",
        "instance_groups": ["homogeneousCluster"],
        "is_hetero": False,
        "is_master": host == hosts[0],
        "job_name": spec.name,
        "log_level": int(decoded.get("sagemaker_container_log_level", 20) or 20),
        "master_hostname": hosts[0],
        "model_dir": "/opt/ml/model",
        "module_dir": decoded.get("sagemaker_submit_directory") or "",
        "module_name": module_name,
        "network_interface_name": resource_config.get("network_interface_name", "eth0"),
        "num_cpus": num_cpus,
        "num_gpus": 0,
        "num_neurons": 0,
        "output_data_dir": "/opt/ml/output/data",
        "output_dir": "/opt/ml/output",
        "output_intermediate_dir": "/opt/ml/output/intermediate",
        "resource_config": resource_config,
        "user_entry_point": program,
    }
    env = {
        "SM_HOSTS": _env_value(hosts),
        "SM_NETWORK_INTERFACE_NAME": props["network_interface_name"],
        "SM_HPS": _env_value(hps),
        "SM_USER_ENTRY_POINT": program,
        "SM_FRAMEWORK_PARAMS": _env_value(props["additional_framework_parameters"]),
        "SM_RESOURCE_CONFIG": _env_value(resource_config),
        "SM_INPUT_DATA_CONFIG": _env_value(props["input_data_config"]),
        "SM_OUTPUT_DATA_DIR": props["output_data_dir"],
        "SM_CHANNELS": _env_value(channel_names),
        "SM_CURRENT_HOST": host,
        "SM_CURRENT_INSTANCE_TYPE": spec.instance_type.name,
        "SM_CURRENT_INSTANCE_GROUP": props["current_instance_group"],
        "SM_CURRENT_INSTANCE_GROUP_HOSTS": _env_value(hosts),
        "SM_INSTANCE_GROUPS": _env_value(props["instance_groups"]),
        "SM_IS_HETERO": "false",
        "SM_MODULE_NAME": module_name,
        "SM_LOG_LEVEL": str(props["log_level"]),
        "SM_FRAMEWORK_MODULE": "",
        "SM_INPUT_DIR": props["input_dir"],
        "SM_INPUT_CONFIG_DIR": props["input_config_dir"],
        "SM_OUTPUT_DIR": props["output_dir"],
        "SM_OUTPUT_INTERMEDIATE_DIR": props["output_intermediate_dir"],
        "SM_NUM_CPUS": str(num_cpus),
        "SM_NUM_GPUS": "0",
        "SM_NUM_NEURONS": "0",
        "SM_MODEL_DIR": props["model_dir"],
        "SM_MODULE_DIR": props["module_dir"],
        "SM_TRAINING_ENV": _env_value(props),
        "SM_USER_ARGS": _env_value(to_cmd_args(hps)),
        "CURRENT_HOST": host,
        "SAGEMAKER_JOB_NAME": spec.name,
        "SAGEMAKER_REGION": spec.region,
        "TRAINING_JOB_NAME": spec.name,
        "TRAINING_JOB_ARN": spec.arn,
    }
    for name, path in channel_dirs.items():
        env[f"SM_CHANNEL_{name.upper()}"] = path
    for key, value in hps.items():
        env[f"SM_HP_{key.upper()}"] = _env_value(value)
    return env


@dataclass(frozen=True)
class EntryCommand:
    """How to launch the entry point: the argv, and whether the code directory is a package to install."""

    argv: list[str]
    install_package: bool = False


def entry_command(program: str, code_dir_listing: set[str], args: list[str], python: str = "python") -> EntryCommand:
    """The toolkit's rule: ``*.sh`` runs as a command, a directory with ``setup.py`` is a package run with
    ``python -m``, ``*.py`` runs with python, anything else runs as ``./<entry>``."""
    if program.endswith(".sh"):
        return EntryCommand(["/bin/sh", f"{CODE_DIR}/{program}", *args])
    if "setup.py" in code_dir_listing:
        module = program[:-3] if program.endswith(".py") else program
        return EntryCommand([python, "-m", module, *args], install_package=True)
    if program.endswith(".py"):
        return EntryCommand([python, f"{CODE_DIR}/{program}", *args])
    return EntryCommand([f"{CODE_DIR}/{program}", *args])


def num_cpus_for(itype: InstanceType) -> int:
    """The instance type's vCPUs, capped at this machine's (instances share it)."""
    return max(1, min(itype.vcpus, os.cpu_count() or 1))


def describe_training_job(spec: TrainingJobSpec, status: str, **extra: Any) -> dict[str, Any]:
    """A ``DescribeTrainingJob``-shaped record of ``spec`` in ``status``."""
    req = spec.request
    now = time.time()
    record: dict[str, Any] = {
        "TrainingJobName": spec.name,
        "TrainingJobArn": spec.arn,
        "TrainingJobStatus": status,
        "SecondaryStatus": "Starting",
        "HyperParameters": spec.hyperparameters,
        "AlgorithmSpecification": req["AlgorithmSpecification"],
        "RoleArn": req.get("RoleArn"),
        "InputDataConfig": req.get("InputDataConfig", []),
        "OutputDataConfig": req["OutputDataConfig"],
        "ResourceConfig": req["ResourceConfig"],
        "StoppingCondition": {"MaxRuntimeInSeconds": spec.max_runtime_seconds},
        "CreationTime": now,
        "LastModifiedTime": now,
        "EnableNetworkIsolation": req.get("EnableNetworkIsolation", False),
        "EnableInterContainerTrafficEncryption": req.get("EnableInterContainerTrafficEncryption", False),
        "EnableManagedSpotTraining": req.get("EnableManagedSpotTraining", False),
    }
    for key in ("CheckpointConfig", "Environment", "VpcConfig", "Tags", "ExperimentConfig", "RetryStrategy"):
        if key in req:
            record[key] = req[key]
    record.update(extra)
    return record
