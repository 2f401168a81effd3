"""``sluice.session.Session``: the SageMaker SDK's Session, backed by sluice's store and metadata.

The names, arguments and return values follow ``sagemaker.session.Session`` so code ports by changing
imports. Storage is the embedded local store unless an S3-compatible endpoint is configured
(:mod:`sluice.config`); no AWS account or credentials are needed.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.config import ACCOUNT_ID, Config, current_config, load_config
from sluice.errors import ExecutionError, SpecError
from sluice.jobs.status import JobStatus, allowed_from
from sluice.storage import ObjectStore, join_key, relative_key, store_for

if TYPE_CHECKING:
    from sluice.metadata import MetadataStore

__all__ = ["ACCOUNT_ID", "Session", "get_execution_role"]

log = logging.getLogger("sluice")

_TIME_FIELDS = (
    "CreationTime", "LastModifiedTime", "ProcessingStartTime", "ProcessingEndTime", "TrainingStartTime",
    "TrainingEndTime", "TransformStartTime", "TransformEndTime",
)


def get_execution_role(sagemaker_session: Session | None = None, use_default: bool = False) -> str:
    """A role ARN to pass where the SDK wants one. Locally no role is assumed; the ARN is recorded only."""
    return f"arn:aws:iam::{ACCOUNT_ID}:role/SluiceLocalExecutionRole"


class Session:
    """Access to storage and the record of jobs, shaped like ``sagemaker.session.Session``."""

    def __init__(
        self,
        boto_session: Any = None,
        sagemaker_client: Any = None,
        sagemaker_runtime_client: Any = None,
        sagemaker_featurestore_runtime_client: Any = None,
        default_bucket: str | None = None,
        settings: Any = None,
        sagemaker_metrics_client: Any = None,
        sagemaker_config: dict | None = None,
        default_bucket_prefix: str | None = None,
        *,
        home: str | os.PathLike[str] | None = None,
    ) -> None:
        self._config = load_config(home) if home is not None else current_config()
        self._default_bucket_name = default_bucket
        self._default_bucket: str | None = None
        self.default_bucket_prefix = default_bucket_prefix.strip("/") if default_bucket_prefix else None
        self._store: ObjectStore | None = None
        self.local_mode = False

    # ---- configuration ----------------------------------------------------------------------
    @property
    def config(self) -> Config:
        return self._config

    @property
    def boto_region_name(self) -> str:
        return self._config.storage.region

    @property
    def store(self) -> ObjectStore:
        if self._store is None:
            self._store = store_for(self._config)
        return self._store

    @property
    def metadata(self) -> MetadataStore:
        from sluice.metadata import open_metadata  # SQLAlchemy loads on first use, not on `import sluice`

        return open_metadata(self._config.database_url)

    def account_id(self) -> str:
        return ACCOUNT_ID

    @property
    def sagemaker_client(self) -> Any:
        """The boto3-shaped SageMaker calls examples make directly (the model registry above all)."""
        from sluice.client import LocalSageMakerClient

        return LocalSageMakerClient(self)

    # ---- models and the model registry (SDK-named) --------------------------------------------
    def describe_model(self, name: str) -> dict[str, Any]:
        return self.sagemaker_client.describe_model(ModelName=name)

    def delete_model(self, model_name: str) -> None:
        self.sagemaker_client.delete_model(ModelName=model_name)

    def create_model_package_group(self, model_package_group_name: str, description: str | None = None) -> dict:
        from sluice.model_registry import create_model_package_group

        return create_model_package_group(self, model_package_group_name, description)

    def describe_model_package(self, model_package_name: str) -> dict[str, Any]:
        from sluice.model_registry import describe_model_package

        return describe_model_package(self, model_package_name)

    def list_model_packages(self, model_package_group_name: str, approval_status: str | None = None) -> list[dict]:
        from sluice.model_registry import list_model_packages

        return list_model_packages(self, model_package_group_name, approval_status)

    def update_model_package_approval(self, model_package_arn: str, approval_status: str,
                                      approval_description: str | None = None) -> dict[str, Any]:
        from sluice.model_registry import update_approval_status

        return update_approval_status(self, model_package_arn, approval_status, approval_description)

    # ---- buckets and data -------------------------------------------------------------------
    def default_bucket(self) -> str:
        """``sagemaker-<region>-<account>`` (or the name given), created on first use."""
        if self._default_bucket is None:
            name = self._default_bucket_name or f"sagemaker-{self.boto_region_name}-{ACCOUNT_ID}"
            self.store.create_bucket(name)
            self._default_bucket = name
        return self._default_bucket

    def _prefixed(self, key_prefix: str) -> str:
        return join_key(self.default_bucket_prefix, key_prefix) if self.default_bucket_prefix else key_prefix

    def upload_data(self, path: str, bucket: str | None = None, key_prefix: str = "data",
                    extra_args: dict | None = None) -> str:
        """Upload a file or a directory; returns its S3 URI (the prefix, for a directory), as the SDK does."""
        src = Path(path)
        if not src.exists():
            raise SpecError(f"upload_data: {path!r} does not exist; give an existing file or directory.")
        if bucket is None:
            bucket = self.default_bucket()
            key_prefix = self._prefixed(key_prefix)
        elif not self.store.bucket_exists(bucket):
            self.store.create_bucket(bucket)
        key_prefix = key_prefix.strip("/")
        if src.is_dir():
            self.store.upload_dir(src, bucket, key_prefix)
            return f"s3://{bucket}/{key_prefix}"
        key = join_key(key_prefix, src.name)
        self.store.upload_file(src, bucket, key)
        return f"s3://{bucket}/{key}"

    def upload_string_as_file_body(self, body: str | bytes, bucket: str, key: str, kms_key: str | None = None) -> str:
        data = body.encode() if isinstance(body, str) else body
        self.store.put(bucket, key, data)
        return f"s3://{bucket}/{key}"

    def download_data(self, path: str, bucket: str, key_prefix: str = "", extra_args: dict | None = None) -> list[str]:
        """Download every object under ``key_prefix`` into ``path``; returns the local paths."""
        dest = Path(path)
        objs = [o for o in self.store.list(bucket, key_prefix) if not o.key.endswith("/")]
        out = []
        for o in objs:
            rel = relative_key(o.key, key_prefix) if key_prefix and o.key != key_prefix else Path(o.key).name
            target = dest / rel
            self.store.download_file(bucket, o.key, target)
            out.append(str(target))
        return out

    def read_s3_file(self, bucket: str, key_prefix: str) -> str:
        return self.store.get_bytes(bucket, key_prefix).decode("utf-8")

    def list_s3_files(self, bucket: str, key_prefix: str) -> list[str]:
        return [o.key for o in self.store.list(bucket, key_prefix)]

    # ---- processing jobs --------------------------------------------------------------------
    def process(
        self, inputs: list[dict] | None, output_config: dict | None, job_name: str, resources: dict,
        stopping_condition: dict | None, app_specification: dict, environment: dict | None = None,
        network_config: dict | None = None, role_arn: str | None = None, tags: list | None = None,
        experiment_config: dict | None = None, *, show_logs: bool = False,
    ) -> None:
        """Create and start a processing job from ``CreateProcessingJob`` fields, as the SDK's ``process``:
        it returns once the job has started (``wait_for_processing_job`` waits). ``show_logs`` streams the
        instances' logs and a live display to the terminal while it runs."""
        from sluice.runtime.processing import start_processing_job

        request: dict[str, Any] = {
            "ProcessingJobName": job_name,
            "ProcessingResources": resources,
            "AppSpecification": app_specification,
            "RoleArn": role_arn or get_execution_role(),
        }
        if inputs:
            request["ProcessingInputs"] = inputs
        if output_config and output_config.get("Outputs"):
            request["ProcessingOutputConfig"] = output_config
        if stopping_condition:
            request["StoppingCondition"] = stopping_condition
        if environment:
            request["Environment"] = environment
        if network_config:
            request["NetworkConfig"] = network_config
        if tags:
            request["Tags"] = tags
        if experiment_config:
            request["ExperimentConfig"] = experiment_config
        if self._intercept_create_request(request, "process"):
            return
        running = start_processing_job(request, self._config, show_progress=show_logs, show_logs=show_logs)
        _RUNNING[job_name] = running

    def describe_processing_job(self, job_name: str) -> dict[str, Any]:
        return self._describe("ProcessingJob", job_name)

    def stop_processing_job(self, job_name: str) -> None:
        self._stop("ProcessingJob", job_name)

    def wait_for_processing_job(self, job: str, poll: float = 0.5) -> dict[str, Any]:
        desc = self._wait("ProcessingJob", job, poll)
        _check_status(desc, "ProcessingJobStatus", job)
        return desc

    def logs_for_processing_job(self, job_name: str, wait: bool = False, poll: float = 0.5) -> None:
        """Print the job's logs, host-prefixed; with ``wait``, follow them until the job ends."""
        from sluice.runtime.logs import follow_logs

        follow_logs(self, "ProcessingJob", job_name, wait=wait, poll=poll)

    # ---- training jobs ----------------------------------------------------------------------
    def train(self, request: dict[str, Any], *, show_logs: bool = False) -> None:
        """Create and start a training job from a complete ``CreateTrainingJob`` request; returns once it has
        started (``wait_for_job`` waits). ``show_logs`` streams logs and a live display while it runs."""
        from sluice.runtime.training import start_training_job

        request.setdefault("RoleArn", get_execution_role())
        if self._intercept_create_request(request, "train"):
            return
        running = start_training_job(request, self._config, show_progress=show_logs, show_logs=show_logs)
        _RUNNING[request["TrainingJobName"]] = running

    def describe_training_job(self, job_name: str) -> dict[str, Any]:
        return self._describe("TrainingJob", job_name)

    def stop_training_job(self, job_name: str) -> None:
        self._stop("TrainingJob", job_name)

    def wait_for_job(self, job: str, poll: float = 0.5) -> dict[str, Any]:
        """Wait for a training job to end; raise if it did not complete (a ``Stopped`` job only warns)."""
        desc = self._wait("TrainingJob", job, poll)
        _check_status(desc, "TrainingJobStatus", job)
        return desc

    def logs_for_job(self, job_name: str, wait: bool = False, poll: float = 0.5, log_type: str = "All") -> None:
        from sluice.runtime.logs import follow_logs

        follow_logs(self, "TrainingJob", job_name, wait=wait, poll=poll)

    def training_job_metrics(self, job_name: str, metric: str | None = None) -> list[dict[str, Any]]:
        """The time series of a training job's metrics as matched in its logs, oldest first."""
        return [{"MetricName": p.metric, "Value": p.value, "Timestamp": p.timestamp, "Host": p.host}
                for p in self.metadata.metrics("TrainingJob", job_name, metric)]

    # ---- hyperparameter tuning jobs ---------------------------------------------------------
    def describe_tuning_job(self, job_name: str) -> dict[str, Any]:
        """A ``DescribeHyperParameterTuningJob``-shaped record (times as datetimes, nested ones too)."""
        from sluice.jobs.tuning import KIND, with_datetimes

        return with_datetimes(self._describe(KIND, job_name))

    def stop_tuning_job(self, name: str) -> None:
        """Ask a tuning job to stop; its driver stops the running training jobs, then ends ``Stopped``."""
        self._stop("HyperParameterTuningJob", name)

    def wait_for_tuning_job(self, job: str, poll: float = 5) -> dict[str, Any]:
        """Wait for a tuning job to end; raise if it did not complete (a ``Stopped`` one only warns)."""
        from sluice.jobs.tuning import with_datetimes

        desc = with_datetimes(self._wait("HyperParameterTuningJob", job, poll))
        _check_status(desc, "HyperParameterTuningJobStatus", job)
        return desc

    # ---- batch transform jobs ---------------------------------------------------------------
    def transform(
        self, job_name: str, model_name: str, strategy: str | None, max_concurrent_transforms: int | None,
        max_payload: int | None, input_config: dict, output_config: dict, resource_config: dict,
        experiment_config: dict | None = None, env: dict | None = None, tags: list | None = None,
        data_processing: dict | None = None, model_client_config: dict | None = None,
        batch_data_capture_config: dict | None = None, *, show_logs: bool = False,
    ) -> None:
        """Create and start a batch transform job from ``CreateTransformJob`` fields, as the SDK's ``transform``:
        it returns once the job has started (``wait_for_transform_job`` waits). ``show_logs`` streams the
        instances' logs and a live display to the terminal while it runs."""
        from sluice.serving.transform import start_transform_job

        request: dict[str, Any] = {"TransformJobName": job_name, "ModelName": model_name,
                                   "TransformInput": input_config, "TransformOutput": output_config,
                                   "TransformResources": resource_config}
        for key, value in (("BatchStrategy", strategy), ("MaxConcurrentTransforms", max_concurrent_transforms),
                           ("MaxPayloadInMB", max_payload), ("Environment", env), ("Tags", tags),
                           ("DataProcessing", data_processing), ("ModelClientConfig", model_client_config),
                           ("DataCaptureConfig", batch_data_capture_config), ("ExperimentConfig", experiment_config)):
            if value is not None:
                request[key] = value
        if self._intercept_create_request(request, "transform"):
            return
        _RUNNING[job_name] = start_transform_job(request, self._config, show_progress=show_logs,
                                                 show_logs=show_logs)

    def describe_transform_job(self, job_name: str) -> dict[str, Any]:
        return self._describe("TransformJob", job_name)

    def stop_transform_job(self, name: str) -> None:
        self._stop("TransformJob", name)

    def wait_for_transform_job(self, job: str, poll: float = 0.5) -> dict[str, Any]:
        """Wait for a transform job to end; raise if it did not complete (a ``Stopped`` one only warns)."""
        desc = self._wait("TransformJob", job, poll)
        _check_status(desc, "TransformJobStatus", job)
        return desc

    def logs_for_transform_job(self, job_name: str, wait: bool = False, poll: float = 0.5) -> None:
        from sluice.runtime.logs import follow_logs

        follow_logs(self, "TransformJob", job_name, wait=wait, poll=poll)

    # ---- shared -----------------------------------------------------------------------------
    def _intercept_create_request(self, request: dict[str, Any], func_name: str) -> bool:
        """Whether this session keeps ``request`` instead of starting the job: a PipelineSession does, to
        make it a pipeline step's arguments. A plain session starts the job."""
        return False

    def _describe(self, kind: str, name: str) -> dict[str, Any]:
        row = self.metadata.get_job(kind, name)
        if row is None:
            raise SpecError(f"no {kind} named {name!r}; `sluice jobs list` shows the jobs there are.")
        record = dict(row.record)
        status_key = f"{kind}Status"
        if not JobStatus(row.status).is_terminal and name not in _RUNNING and not row.driver_is_alive():
            reason = (f"InternalServerError: the process driving this job (pid {row.driver_pid}) ended before the "
                      "job did; start the job again.")
            record.update({status_key: "Failed", "FailureReason": reason, "LastModifiedTime": time.time()})
            self.metadata.update_job(kind, name, record=record, status=str(JobStatus.FAILED),
                                     allowed_from=allowed_from(JobStatus.FAILED))
        return _with_datetimes(record)

    def _stop(self, kind: str, name: str) -> None:
        row = self.metadata.get_job(kind, name)
        if row is None:
            raise SpecError(f"no {kind} named {name!r}; `sluice jobs list` shows the jobs there are.")
        if JobStatus(row.status).is_terminal:
            raise SpecError(f"{kind} {name!r} has already ended ({row.status}); only a running job can be stopped.")
        self.metadata.request_stop(kind, name)
        self.metadata.update_job(kind, name, status=str(JobStatus.STOPPING),
                                 allowed_from=allowed_from(JobStatus.STOPPING))

    def _wait(self, kind: str, name: str, poll: float) -> dict[str, Any]:
        running = _RUNNING.get(name)
        if running is not None:
            running.wait()
            _RUNNING.pop(name, None)
            return self._describe(kind, name)
        while True:  # a job driven by another process: read its record until it ends
            desc = self._describe(kind, name)
            if JobStatus(desc[f"{kind}Status"]).is_terminal:
                return desc
            time.sleep(poll)


#: Jobs driven by this process, by name.
_RUNNING: dict[str, Any] = {}


def _with_datetimes(record: dict[str, Any]) -> dict[str, Any]:
    out = dict(record)
    for key in _TIME_FIELDS:
        if isinstance(out.get(key), int | float):
            out[key] = dt.datetime.fromtimestamp(out[key], tz=dt.UTC)
    return out


def _check_status(desc: dict[str, Any], status_key: str, name: str) -> None:
    """As the SDK: ``Stopped`` warns, any other non-``Completed`` status raises."""
    status = desc[status_key]
    if status == "Stopped":
        log.warning("Job %s ended with status 'Stopped' rather than 'Completed'. This could mean the job timed out "
                    "or stopped early for some other reason: %s", name, desc.get("FailureReason", "stop was requested"))
    elif status != "Completed":
        reason = desc.get("FailureReason", "(no reason recorded)")
        arn = desc.get("ProcessingJobArn") or desc.get("TrainingJobArn") or desc.get("TransformJobArn") or name
        raise ExecutionError(f"Error for {arn}: {status}. Reason: {reason}")
