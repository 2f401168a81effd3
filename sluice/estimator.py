"""``sluice.estimator``: the SDK v2 ``Estimator`` and ``Framework``, running training jobs locally.

``fit()`` builds a ``CreateTrainingJob`` request exactly as the SDK does: the job name, the code bundle
(``source_dir`` and ``dependencies`` packed into ``<code_location>/<job>/source/sourcedir.tar.gz``),
the script-mode hyperparameters (``sagemaker_program``, ``sagemaker_submit_directory``, ...), the
channels, the output and checkpoint configuration. The engine does the rest. Arguments with no local
meaning (VPC, KMS, spot, debugger) are accepted and recorded, with a one-line notice.

While a pipeline step compiles, the bundle goes to ``<code_location>/<pipeline>/code/<sha256>/sourcedir.tar.gz``
instead and ``sagemaker_job_name`` is left out (the SDK's TrainingStep drops it too), so building the pipeline
again gives the same step arguments, and the same cache key, unless the code changed (contract 5.15, #2736).
"""

from __future__ import annotations

import copy
import json
import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from sluice.errors import SpecError
from sluice.inputs import TrainingInput
from sluice.jobs.naming import base_name_from_image, name_from_base
from sluice.session import Session, _check_status
from sluice.storage import S3Uri
from sluice.workflow import is_pipeline_variable
from sluice.workflow.pipeline_context import (
    building_step,
    reproducible_tar_gz,
    runnable_by_pipeline,
    stage_pipeline_code,
)

__all__ = ["Estimator", "EstimatorBase", "Framework"]

log = logging.getLogger("sluice")

_NOTICES = {
    "subnets": "VPC subnets", "security_group_ids": "VPC security groups", "volume_kms_key": "volume KMS key",
    "output_kms_key": "output KMS key", "use_spot_instances": "managed spot training", "max_wait": "spot max_wait",
    "rules": "Debugger rules", "debugger_hook_config": "Debugger hook", "profiler_config": "the profiler",
    "tensorboard_output_config": "TensorBoard output", "encrypt_inter_container_traffic": "inter-container encryption",
    "keep_alive_period_in_seconds": "warm pools", "training_plan": "training plans",
}


class _TrainingJob:
    """A started training job: ``describe()``, ``wait()``, ``stop()``, ``logs()``."""

    def __init__(self, sagemaker_session: Session, job_name: str) -> None:
        self.sagemaker_session = sagemaker_session
        self.job_name = job_name
        self.name = job_name

    def describe(self) -> dict[str, Any]:
        return self.sagemaker_session.describe_training_job(self.job_name)

    def wait(self, logs: bool | str = True) -> None:
        self.sagemaker_session.wait_for_job(self.job_name)

    def stop(self) -> None:
        self.sagemaker_session.stop_training_job(self.job_name)

    def logs(self, wait: bool = False) -> None:
        self.sagemaker_session.logs_for_job(self.job_name, wait=wait)


class EstimatorBase(ABC):
    """What every estimator shares: resources, channels, code, output, and the job it started last."""

    #: How hyperparameter values are encoded into the request's strings (Framework: JSON; Estimator: str).
    _json_hyperparameters = False

    def __init__(
        self, role: str | None = None, instance_count: int | None = None, instance_type: str | None = None,
        keep_alive_period_in_seconds: int | None = None, volume_size: int = 30, volume_kms_key: str | None = None,
        max_run: int = 24 * 60 * 60, input_mode: str = "File", output_path: str | None = None,
        output_kms_key: str | None = None, base_job_name: str | None = None, sagemaker_session: Session | None = None,
        tags: list[dict[str, str]] | None = None, subnets: list[str] | None = None,
        security_group_ids: list[str] | None = None, model_uri: str | None = None, model_channel_name: str = "model",
        metric_definitions: list[dict[str, str]] | None = None, encrypt_inter_container_traffic: bool | None = None,
        use_spot_instances: bool = False, max_wait: int | None = None, checkpoint_s3_uri: str | None = None,
        checkpoint_local_path: str | None = None, rules: Any = None, debugger_hook_config: Any = None,
        tensorboard_output_config: Any = None, enable_sagemaker_metrics: bool | None = None,
        enable_network_isolation: bool | None = None, profiler_config: Any = None, disable_profiler: bool | None = None,
        environment: dict[str, str] | None = None, max_retry_attempts: int | None = None, source_dir: str | None = None,
        git_config: dict | None = None, hyperparameters: dict[str, Any] | None = None,
        container_log_level: int = logging.INFO, code_location: str | None = None, entry_point: str | None = None,
        dependencies: list[str] | None = None, instance_groups: Any = None,
        training_repository_access_mode: str | None = None,
        training_repository_credentials_provider_arn: str | None = None, enable_infra_check: bool | None = None,
        container_entry_point: list[str] | None = None, container_arguments: list[str] | None = None,
        disable_output_compression: bool = False, enable_remote_debug: bool | None = None,
        enable_session_tag_chaining: bool | None = None, training_plan: str | None = None, **kwargs: Any,
    ) -> None:
        if instance_count is None or instance_type is None:
            raise SpecError("instance_count and instance_type are required, e.g. instance_count=1, "
                            "instance_type='ml.m5.xlarge' (or 'local').")
        if git_config:
            raise SpecError("git_config needs network access to a Git host, which sluice does not use; clone the "
                            "repository and pass source_dir instead.")
        self.role = role
        self.instance_count, self.instance_type = instance_count, instance_type
        self.volume_size, self.max_run, self.input_mode = volume_size, max_run, input_mode
        self.output_path, self.base_job_name = output_path, base_job_name
        self.sagemaker_session = sagemaker_session or Session()
        self.tags, self.model_uri, self.model_channel_name = tags, model_uri, model_channel_name
        self.metric_definitions = metric_definitions or []
        self.checkpoint_s3_uri, self.checkpoint_local_path = checkpoint_s3_uri, checkpoint_local_path
        self.enable_network_isolation = bool(enable_network_isolation)
        self.environment = environment or {}
        self.max_retry_attempts = max_retry_attempts
        self.source_dir, self.entry_point, self.dependencies = source_dir, entry_point, dependencies or []
        self.code_location = code_location.rstrip("/") if code_location else None
        self.container_log_level = container_log_level
        self.container_entry_point, self.container_arguments = container_entry_point, container_arguments
        self.disable_output_compression = disable_output_compression
        self.subnets, self.security_group_ids = subnets, security_group_ids
        self.use_spot_instances, self.max_wait = use_spot_instances, max_wait
        self.volume_kms_key, self.output_kms_key = volume_kms_key, output_kms_key
        self._hyperparameters: dict[str, Any] = dict(hyperparameters or {})
        self.latest_training_job: _TrainingJob | None = None
        self._current_job_name: str | None = None
        self.jobs: list[_TrainingJob] = []
        given = {"subnets": subnets, "security_group_ids": security_group_ids, "volume_kms_key": volume_kms_key,
                 "output_kms_key": output_kms_key, "use_spot_instances": use_spot_instances or None,
                 "max_wait": max_wait, "rules": rules, "debugger_hook_config": debugger_hook_config,
                 "profiler_config": profiler_config, "tensorboard_output_config": tensorboard_output_config,
                 "encrypt_inter_container_traffic": encrypt_inter_container_traffic,
                 "keep_alive_period_in_seconds": keep_alive_period_in_seconds, "training_plan": training_plan}
        for name, value in given.items():
            if value:
                log.warning("%s (%s) has no local equivalent: sluice records it on the job and runs without it.",
                            name, _NOTICES[name])

    # ---- the SDK's surface ------------------------------------------------------------------
    @abstractmethod
    def training_image_uri(self) -> str:
        """The image the job runs in (it maps to an environment, see :mod:`sluice.runtime.environments`)."""

    def hyperparameters(self) -> dict[str, Any]:
        return dict(self._hyperparameters)

    def set_hyperparameters(self, **kwargs: Any) -> None:
        self._hyperparameters.update(kwargs)

    @property
    def model_data(self) -> str:
        """The S3 URI of the last job's ``model.tar.gz``."""
        if self.latest_training_job is None:
            raise SpecError("this estimator has not trained yet: call fit() first, or attach() to a job.")
        desc = self.latest_training_job.describe()
        artifacts = desc.get("ModelArtifacts", {}).get("S3ModelArtifacts")
        if not artifacts:
            raise SpecError(f"training job {desc['TrainingJobName']} has no model yet ({desc['TrainingJobStatus']}).")
        return artifacts

    @runnable_by_pipeline
    def fit(self, inputs: Any = None, wait: bool = True, logs: bool | str = "All", job_name: str | None = None,
            experiment_config: dict | None = None) -> None:
        """Start a training job on ``inputs`` (a URI, a ``TrainingInput``, or a dict of channel name → either)."""
        self._current_job_name = job_name or name_from_base(
            self.base_job_name or base_name_from_image(self.training_image_uri(), default="training-job"))
        request = self._build_request(inputs, experiment_config)
        show = wait and logs not in (False, "None", None)
        self.sagemaker_session.train(request, show_logs=show)
        job = _TrainingJob(self.sagemaker_session, self._current_job_name)
        self.latest_training_job = job
        self.jobs.append(job)
        if wait:
            desc = self.sagemaker_session._wait("TrainingJob", job.job_name, 0.5)
            _check_status(desc, "TrainingJobStatus", job.job_name)

    def logs(self) -> None:
        if self.latest_training_job is not None:
            self.latest_training_job.logs(wait=True)

    # ---- what comes after training: models, endpoints, batch transform --------------------------
    @abstractmethod
    def create_model(self, **kwargs: Any) -> Any:
        """A model of the last job's ``model.tar.gz``, served in this estimator's (inference) image."""

    def deploy(self, initial_instance_count: int | None = None, instance_type: str | None = None,
               serializer: Any = None, deserializer: Any = None, endpoint_name: str | None = None,
               wait: bool = True, model_name: str | None = None, **kwargs: Any) -> Any:
        """Create a model from the last job and start a local endpoint for it; returns a predictor."""
        model = self.create_model(name=model_name) if model_name else self.create_model()
        return model.deploy(initial_instance_count, instance_type, serializer=serializer, deserializer=deserializer,
                            endpoint_name=endpoint_name, wait=wait, **kwargs)

    def transformer(self, instance_count: int, instance_type: str, strategy: str | None = None,
                    assemble_with: str | None = None, output_path: str | None = None, output_kms_key: str | None = None,
                    accept: str | None = None, env: dict[str, str] | None = None,
                    max_concurrent_transforms: int | None = None, max_payload: int | None = None,
                    tags: list | None = None, model_name: str | None = None, **kwargs: Any) -> Any:
        """A batch ``Transformer`` for a model of the last job."""
        model = self.create_model(name=model_name) if model_name else self.create_model()
        return model.transformer(instance_count, instance_type, strategy=strategy, assemble_with=assemble_with,
                                 output_path=output_path, output_kms_key=output_kms_key, accept=accept, env=env,
                                 max_concurrent_transforms=max_concurrent_transforms, max_payload=max_payload,
                                 tags=tags)

    @classmethod
    def attach(cls, training_job_name: str, sagemaker_session: Session | None = None,
               model_channel_name: str = "model") -> EstimatorBase:
        """An estimator for an existing job, as the SDK's ``attach``: its settings come from the job's record."""
        sess = sagemaker_session or Session()
        desc = sess.describe_training_job(training_job_name)
        algo, res = desc["AlgorithmSpecification"], desc["ResourceConfig"]
        hps = {k: v for k, v in desc.get("HyperParameters", {}).items() if not k.startswith("sagemaker_")}
        est = Estimator(image_uri=algo.get("TrainingImage", ""), role=desc.get("RoleArn"),
                        instance_count=res["InstanceCount"], instance_type=res["InstanceType"],
                        volume_size=res.get("VolumeSizeInGB", 30), input_mode=algo["TrainingInputMode"],
                        output_path=desc["OutputDataConfig"]["S3OutputPath"],
                        max_run=desc["StoppingCondition"]["MaxRuntimeInSeconds"],
                        metric_definitions=algo.get("MetricDefinitions"), hyperparameters=hps,
                        sagemaker_session=sess)
        est.latest_training_job = _TrainingJob(sess, training_job_name)
        est._current_job_name = training_job_name
        return est

    # ---- building the request ---------------------------------------------------------------
    def _encode(self, value: Any) -> Any:
        if is_pipeline_variable(value):  # stays an expression; the pipeline resolves it at run time
            return value.to_string()
        return json.dumps(value) if self._json_hyperparameters else str(value)

    def _channels(self, inputs: Any) -> list[dict[str, Any]]:
        if inputs is None:
            return []
        if isinstance(inputs, str | TrainingInput):
            inputs = {"training": inputs}
        if not isinstance(inputs, dict):
            raise SpecError(f"fit(inputs=...) takes an s3:// URI, a TrainingInput or a dict of them, "
                            f"not {type(inputs).__name__}.")
        channels = []
        for name, value in inputs.items():
            if isinstance(value, str):
                value = TrainingInput(value)
            if not isinstance(value, TrainingInput):
                raise SpecError(f"channel {name!r}: give an s3:// URI or a TrainingInput, not {type(value).__name__}.")
            channels.append({"ChannelName": name, **copy.deepcopy(value.config)})  # may hold pipeline variables
        if self.model_uri:
            channels.append({"ChannelName": self.model_channel_name, "InputMode": "File", "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": self.model_uri,
                                 "S3DataDistributionType": "FullyReplicated"}}})
        return channels

    def _code_prefix(self) -> str:
        base = self.code_location or f"s3://{self.sagemaker_session.default_bucket()}"
        return f"{base}/{self._current_job_name}/source"

    def _upload_code(self) -> tuple[str, str]:
        """Pack ``source_dir`` and ``dependencies``; returns (entry point name, S3 URI of sourcedir.tar.gz)."""
        assert self.entry_point is not None
        if self.source_dir and self.source_dir.startswith("s3://"):
            return self.entry_point, self.source_dir
        root = Path(self.source_dir) if self.source_dir else Path(self.entry_point).parent
        entry = root / self.entry_point if self.source_dir else Path(self.entry_point)
        if not root.is_dir():
            raise SpecError(f"source_dir {str(root)!r} is not a directory.")
        if not entry.is_file():
            raise SpecError(f"entry_point {self.entry_point!r} was not found"
                            f"{' in source_dir ' + repr(self.source_dir) if self.source_dir else ''}.")
        if self.source_dir:
            members = [(path, path.relative_to(root).as_posix()) for path in sorted(root.rglob("*"))
                       if path.is_file() and "__pycache__" not in path.parts]
        else:
            members = [(entry, entry.name)]
        for dep in self.dependencies:
            dep_path = Path(dep)
            if not dep_path.exists():
                raise SpecError(f"dependency {dep!r} does not exist.")
            members.append((dep_path, dep_path.name))
        bundle = reproducible_tar_gz(members)
        program = Path(self.entry_point).name if not self.source_dir else self.entry_point
        staged = stage_pipeline_code(self.sagemaker_session, bundle, "sourcedir.tar.gz", base=self.code_location)
        if staged is not None:
            return program, staged
        uri = S3Uri.parse(f"{self._code_prefix()}/sourcedir.tar.gz")
        store = self.sagemaker_session.store
        if not store.bucket_exists(uri.bucket):
            store.create_bucket(uri.bucket)
        store.put(uri.bucket, uri.key, bundle)
        return program, str(uri)

    def _build_request(self, inputs: Any, experiment_config: dict | None) -> dict[str, Any]:
        sess = self.sagemaker_session
        hps = {str(k): self._encode(v) for k, v in self._hyperparameters.items()}
        if self.entry_point:
            program, submit = self._upload_code()
            script_mode = {"sagemaker_program": program, "sagemaker_submit_directory": submit,
                           "sagemaker_container_log_level": self.container_log_level,
                           "sagemaker_job_name": self._current_job_name, "sagemaker_region": sess.boto_region_name}
            if building_step(sess) is not None:  # a per-build name would change the step's cache key every time
                del script_mode["sagemaker_job_name"]
            hps.update({k: self._encode(v) for k, v in script_mode.items()})
        output_path = self.output_path or f"s3://{sess.default_bucket()}/"
        algo: dict[str, Any] = {"TrainingImage": self.training_image_uri(), "TrainingInputMode": self.input_mode,
                                "EnableSageMakerMetricsTimeSeries": True}
        if self.metric_definitions:
            algo["MetricDefinitions"] = self.metric_definitions
        if self.container_entry_point:
            algo["ContainerEntrypoint"] = self.container_entry_point
        if self.container_arguments:
            algo["ContainerArguments"] = self.container_arguments
        request: dict[str, Any] = {
            "TrainingJobName": self._current_job_name,
            "AlgorithmSpecification": algo,
            "RoleArn": self.role or "",
            "OutputDataConfig": {"S3OutputPath": output_path,
                                 **({"CompressionType": "NONE"} if self.disable_output_compression else {})},
            "ResourceConfig": {"InstanceType": self.instance_type, "InstanceCount": self.instance_count,
                               "VolumeSizeInGB": self.volume_size},
            "StoppingCondition": {"MaxRuntimeInSeconds": self.max_run},
            "EnableNetworkIsolation": self.enable_network_isolation,
            "EnableManagedSpotTraining": bool(self.use_spot_instances),
        }
        if not request["RoleArn"]:
            from sluice.session import get_execution_role

            request["RoleArn"] = get_execution_role()
        if hps:
            request["HyperParameters"] = hps
        channels = self._channels(inputs)
        if channels:
            request["InputDataConfig"] = channels
        if self.environment:
            request["Environment"] = self.environment
        if self.tags:
            request["Tags"] = self.tags
        if self.checkpoint_s3_uri:
            request["CheckpointConfig"] = {"S3Uri": self.checkpoint_s3_uri,
                                           **({"LocalPath": self.checkpoint_local_path}
                                              if self.checkpoint_local_path else {})}
        if self.subnets or self.security_group_ids:
            request["VpcConfig"] = {"Subnets": self.subnets or [], "SecurityGroupIds": self.security_group_ids or []}
        if self.max_retry_attempts:
            request["RetryStrategy"] = {"MaximumRetryAttempts": self.max_retry_attempts}
        if experiment_config:
            request["ExperimentConfig"] = experiment_config
        return request


class Estimator(EstimatorBase):
    """A training job in any image; with ``entry_point``, the script runs in script mode."""

    def __init__(self, image_uri: str | None = None, role: str | None = None, instance_count: int | None = None,
                 instance_type: str | None = None, hyperparameters: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        self.image_uri = image_uri or ""
        super().__init__(role=role, instance_count=instance_count, instance_type=instance_type,
                         hyperparameters=hyperparameters, **kwargs)

    def training_image_uri(self) -> str:
        return self.image_uri

    def create_model(self, role: str | None = None, image_uri: str | None = None, predictor_cls: Any = None,
                     env: dict[str, str] | None = None, name: str | None = None, **kwargs: Any) -> Any:
        from sluice.model import Model

        return Model(image_uri=image_uri or self.image_uri, model_data=self.model_data, role=role or self.role,
                     predictor_cls=predictor_cls, env=env, name=name, sagemaker_session=self.sagemaker_session,
                     **kwargs)


class Framework(EstimatorBase):
    """A framework estimator (scikit-learn, XGBoost, PyTorch): script mode, JSON-encoded hyperparameters."""

    _framework_name: str = ""
    _json_hyperparameters = True

    def __init__(self, entry_point: str, source_dir: str | None = None, hyperparameters: dict[str, Any] | None = None,
                 framework_version: str | None = None, py_version: str | None = None, image_uri: str | None = None,
                 **kwargs: Any) -> None:
        self.framework_version, self.py_version = framework_version, py_version
        self.image_uri = image_uri
        if image_uri is None and framework_version is None:
            raise SpecError(f"{type(self).__name__} needs framework_version (e.g. "
                            f"{type(self).__name__}(framework_version=...)) or image_uri.")
        super().__init__(entry_point=entry_point, source_dir=source_dir, hyperparameters=hyperparameters, **kwargs)

    def training_image_uri(self) -> str:
        if self.image_uri:
            return self.image_uri
        from sluice import image_uris

        return image_uris.retrieve(self._framework_name, region=self.sagemaker_session.boto_region_name,
                                   version=self.framework_version, py_version=self.py_version,
                                   instance_type=self.instance_type, image_scope="training")

    def create_model(self, role: str | None = None, entry_point: str | None = None, source_dir: str | None = None,
                     env: dict[str, str] | None = None, name: str | None = None, image_uri: str | None = None,
                     predictor_cls: Any = None, dependencies: list[str] | None = None, **kwargs: Any) -> Any:
        """The framework's model class, serving the last job's model with this estimator's code."""
        from sluice.pytorch.model import PyTorchModel  # imported here: the model modules import this one
        from sluice.sklearn.model import SKLearnModel
        from sluice.xgboost.model import XGBoostModel

        model_cls = {"sklearn": SKLearnModel, "xgboost": XGBoostModel, "pytorch": PyTorchModel}[self._framework_name]
        return model_cls(model_data=self.model_data, role=role or self.role,
                         entry_point=entry_point or self.entry_point, source_dir=source_dir or self.source_dir,
                         framework_version=self.framework_version, py_version=self.py_version,
                         image_uri=image_uri or self.image_uri, predictor_cls=predictor_cls, env=env, name=name,
                         dependencies=dependencies or self.dependencies, sagemaker_session=self.sagemaker_session,
                         **kwargs)
