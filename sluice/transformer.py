"""``sluice.transformer``: the SDK v2 ``Transformer`` for batch transform, run locally and faithfully.

Argument names and defaults follow ``sagemaker.transformer.Transformer``; the job it starts is a
``CreateTransformJob`` request (see :mod:`sluice.jobs.transform` and :mod:`sluice.serving.transform`).
Unlike SageMaker's local mode, every instance, ``MaxConcurrentTransforms``, nested prefixes, manifests,
TFRecord splitting, Gzip input, input/output filters and join are honoured.

Under a ``PipelineSession``, ``transform()`` starts nothing and returns a ``TransformStep``'s arguments
(``@runnable_by_pipeline``); ``model_name`` and ``data`` may then be pipeline variables, such as
``step_create_model.properties.ModelName`` and an earlier step's output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sluice.errors import SpecError
from sluice.jobs.naming import base_name_from_image, name_from_base
from sluice.s3 import s3_path_join
from sluice.session import Session
from sluice.workflow import is_pipeline_variable
from sluice.workflow.pipeline_context import PipelineSession, runnable_by_pipeline

if TYPE_CHECKING:
    from sluice.workflow.entities import PipelineVariable

__all__ = ["Transformer"]


class Transformer:
    """Runs batch transform jobs for a recorded model (SDK v2 ``sagemaker.transformer.Transformer``)."""

    JOB_CLASS_NAME = "transform-job"

    def __init__(
        self, model_name: str | PipelineVariable, instance_count: int, instance_type: str, strategy: str | None = None,
        assemble_with: str | None = None, output_path: str | None = None, output_kms_key: str | None = None,
        accept: str | None = None, max_concurrent_transforms: int | None = None, max_payload: int | None = None,
        tags: list[dict[str, str]] | None = None, env: dict[str, str] | None = None,
        base_transform_job_name: str | None = None, sagemaker_session: Session | None = None,
        volume_kms_key: str | None = None,
    ) -> None:
        self.model_name = model_name
        self.strategy = strategy
        self.env = env
        self.output_path = output_path
        self.output_kms_key = output_kms_key
        self.accept = accept
        self.assemble_with = assemble_with
        self.instance_count = instance_count
        self.instance_type = instance_type
        self.volume_kms_key = volume_kms_key
        self.max_concurrent_transforms = max_concurrent_transforms
        self.max_payload = max_payload
        self.tags = tags
        self.base_transform_job_name = base_transform_job_name
        self.sagemaker_session = sagemaker_session or Session()
        self._current_job_name: str | None = None
        self._reset_output_path = False
        self.latest_transform_job: _TransformJob | None = None

    @runnable_by_pipeline
    def transform(
        self, data: str | PipelineVariable, data_type: str = "S3Prefix", content_type: str | None = None,
        compression_type: str | None = None, split_type: str | None = None, job_name: str | None = None,
        input_filter: str | None = None, output_filter: str | None = None, join_source: str | None = None,
        experiment_config: dict[str, str] | None = None, model_client_config: dict[str, int] | None = None,
        batch_data_capture_config: Any = None, wait: bool = True, logs: bool = True,
    ) -> None:
        """Start a transform job over ``data`` (an ``s3://`` prefix or manifest); with ``wait``, block until it ends.

        Each input object ``<prefix>/<path>`` becomes ``<output_path>/<path>.out``. Bad settings (a filter
        outside the JSONPath subset, a join whose content types differ, a payload limit over 100 MB, a
        model that does not exist) are refused here, before anything runs. Under a ``PipelineSession`` it
        returns the step arguments instead, and the model is looked for when the step runs.
        """
        if not isinstance(self.sagemaker_session, PipelineSession) and any(
                is_pipeline_variable(v) for v in (data, self.model_name)):
            raise SpecError("this transformer's model_name or data is a pipeline variable (a parameter or a step's "
                            "property), which has a value only while a pipeline runs: build the transformer with "
                            "sagemaker_session=PipelineSession() and pass transform()'s result to a TransformStep.")
        if not is_pipeline_variable(data) and (not isinstance(data, str) or not data.startswith("s3://")):
            raise SpecError(f"Invalid S3 URI: {data!r}. Upload the data first (Session.upload_data) and pass its "
                            "s3:// prefix or manifest (or, in a pipeline, a parameter or an earlier step's output).")
        if job_name is not None:
            self._current_job_name = job_name
        else:
            self._current_job_name = name_from_base(self.base_transform_job_name or self._retrieve_base_name())
        if self.output_path is None or self._reset_output_path:
            sess = self.sagemaker_session
            self.output_path = s3_path_join("s3://", sess.default_bucket(), *([sess.default_bucket_prefix]
                                            if sess.default_bucket_prefix else []), self._current_job_name)
            self._reset_output_path = True
        input_config: dict[str, Any] = {
            "DataSource": {"S3DataSource": {"S3DataType": data_type, "S3Uri": data}},
        }
        if content_type is not None:
            input_config["ContentType"] = content_type
        if compression_type is not None:
            input_config["CompressionType"] = compression_type
        if split_type is not None:
            input_config["SplitType"] = split_type
        output_config: dict[str, Any] = {"S3OutputPath": self.output_path}
        if self.output_kms_key is not None:
            output_config["KmsKeyId"] = self.output_kms_key
        if self.assemble_with is not None:  # the SDK's order: AssembleWith, then Accept
            output_config["AssembleWith"] = self.assemble_with
        if self.accept is not None:
            output_config["Accept"] = self.accept
        resource_config: dict[str, Any] = {"InstanceCount": self.instance_count, "InstanceType": self.instance_type}
        if self.volume_kms_key is not None:
            resource_config["VolumeKmsKeyId"] = self.volume_kms_key
        data_processing = {k: v for k, v in (("InputFilter", input_filter), ("OutputFilter", output_filter),
                                             ("JoinSource", join_source)) if v is not None}
        capture = batch_data_capture_config
        if capture is not None and hasattr(capture, "_to_request_dict"):
            capture = capture._to_request_dict()
        self.sagemaker_session.transform(
            job_name=self._current_job_name, model_name=self.model_name, strategy=self.strategy,
            max_concurrent_transforms=self.max_concurrent_transforms, max_payload=self.max_payload,
            env=self.env, input_config=input_config, output_config=output_config, resource_config=resource_config,
            experiment_config=experiment_config, tags=self.tags, data_processing=data_processing or None,
            model_client_config=model_client_config, batch_data_capture_config=capture, show_logs=wait and logs,
        )
        self.latest_transform_job = _TransformJob(self.sagemaker_session, self._current_job_name)
        if wait:
            self.latest_transform_job.wait(logs=logs)

    def wait(self, logs: bool = True) -> None:
        """Block until the latest job ends; raise if it did not complete."""
        self._ensure_last_transform_job()
        assert self.latest_transform_job is not None
        self.latest_transform_job.wait(logs=logs)

    def stop_transform_job(self, wait: bool = True) -> None:
        self._ensure_last_transform_job()
        assert self.latest_transform_job is not None
        self.latest_transform_job.stop()
        if wait:
            self.latest_transform_job.wait(logs=False)

    def delete_model(self) -> None:
        """Delete the model this transformer uses."""
        if is_pipeline_variable(self.model_name):
            raise SpecError(f"this transformer's model is {self.model_name.expr}, named only when the pipeline "
                            "runs; delete that model by its name (`sluice models list` shows it).")
        if not self.sagemaker_session.metadata.delete_resource("Model", self.model_name):
            raise SpecError(f"Could not find model {self.model_name!r}.")

    def _retrieve_base_name(self) -> str:
        """As the SDK: the model image's repository name (``sagemaker-scikit-learn``), else the model name.

        A model known only at execution (``step.properties.ModelName``) has no record to read yet: the SDK
        then names the job ``transform-job-<timestamp>``, and so does sluice.
        """
        if is_pipeline_variable(self.model_name):
            return self.JOB_CLASS_NAME
        row = self.sagemaker_session.metadata.get_resource("Model", self.model_name)
        record = row.record if row is not None else {}
        container = record.get("PrimaryContainer") or next(iter(record.get("Containers") or []), None) or {}
        image = container.get("Image")
        return base_name_from_image(image, default=self.JOB_CLASS_NAME) if image else self.model_name

    def _ensure_last_transform_job(self) -> None:
        if self.latest_transform_job is None:
            raise SpecError("No transform job available: call transform() first.")

    @classmethod
    def attach(cls, transform_job_name: str, sagemaker_session: Session | None = None) -> Transformer:
        """A transformer for an existing job, its settings read from the job's record."""
        sess = sagemaker_session or Session()
        desc = sess.describe_transform_job(transform_job_name)
        out, res = desc.get("TransformOutput", {}), desc["TransformResources"]
        transformer = cls(
            model_name=desc["ModelName"], instance_count=res["InstanceCount"], instance_type=res["InstanceType"],
            strategy=desc.get("BatchStrategy"), assemble_with=out.get("AssembleWith"),
            output_path=out.get("S3OutputPath"), output_kms_key=out.get("KmsKeyId"), accept=out.get("Accept"),
            max_concurrent_transforms=desc.get("MaxConcurrentTransforms"), max_payload=desc.get("MaxPayloadInMB"),
            env=desc.get("Environment") or None, sagemaker_session=sess,
        )
        transformer._current_job_name = transform_job_name
        transformer.latest_transform_job = _TransformJob(sess, transform_job_name)
        return transformer


class _TransformJob:
    """A started transform job: ``describe()``, ``wait()``, ``stop()``."""

    def __init__(self, sagemaker_session: Session, job_name: str) -> None:
        self.sagemaker_session = sagemaker_session
        self.job_name = job_name

    def describe(self) -> dict[str, Any]:
        return self.sagemaker_session.describe_transform_job(self.job_name)

    def wait(self, logs: bool = True) -> None:
        """Block until the job ends, printing its logs unless a live display already shows them; raise if
        it did not complete (a ``Stopped`` job only warns)."""
        from sluice.session import _RUNNING

        running = _RUNNING.get(self.job_name)
        if logs and (running is None or running.display is None):
            self.sagemaker_session.logs_for_transform_job(self.job_name, wait=True)
        self.sagemaker_session.wait_for_transform_job(self.job_name)

    def stop(self) -> None:
        self.sagemaker_session.stop_transform_job(self.job_name)
