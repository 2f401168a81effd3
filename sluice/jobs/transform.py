"""``CreateTransformJob`` requests: validated once at the edge, then an immutable spec.

Two passes, each reporting every problem it finds at once: the request's shape against the SageMaker
service model in botocore, then the service's own rules and what sluice needs locally:

* ``MaxPayloadInMB`` at most 100, and ``MaxConcurrentTransforms * MaxPayloadInMB`` at most 100 when
  ``MaxConcurrentTransforms`` is given (``MaxPayloadInMB`` counting as its default 6 when unset);
* ``BatchStrategy`` needs a ``SplitType`` other than ``None``;
* ``DataProcessing``: filters inside the documented JSONPath subset, on CSV or JSON; with
  ``JoinSource=Input``, ``ContentType == Accept`` and ``SplitType == AssembleWith``
  (:func:`sluice.channels.transform_dataproc.data_processing_problems`);
* input ``S3Prefix`` or ``ManifestFile`` on ``s3://``; the model recorded (``CreateModel``) with one
  container, and its ``ModelDataUrl`` readable.

:func:`describe_transform_job` builds the ``DescribeTransformJob``-shaped record the driver keeps current.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sluice.channels.transform_dataproc import data_processing_problems
from sluice.channels.transform_records import BatchStrategy, SplitType
from sluice.config import ACCOUNT_ID, Config
from sluice.errors import NoSuchKeyError, SluiceError, SpecError
from sluice.jobs.instance_types import InstanceType, check_quota
from sluice.jobs.schema import validate_request
from sluice.storage.base import ObjectStore
from sluice.storage.uri import S3Uri

__all__ = ["KIND", "MAX_PAYLOAD_LIMIT_MB", "TransformJobSpec", "describe_transform_job"]

KIND = "TransformJob"
MODEL_KIND = "Model"
MAX_PAYLOAD_LIMIT_MB = 100
DEFAULT_MAX_PAYLOAD_MB = 6
#: Transform jobs have no StoppingCondition; the driver still needs a bound.
NO_TIME_LIMIT_SECONDS = 30 * 24 * 3600

log = logging.getLogger("sluice.jobs")


@dataclass(frozen=True)
class TransformJobSpec:
    """A validated transform job. Build it with :meth:`from_request`."""

    name: str
    request: dict[str, Any]
    model_name: str
    model: dict[str, Any]  # the DescribeModel record
    image_uri: str
    model_data_url: str | None
    model_env: dict[str, str]
    instance_count: int
    instance_type: InstanceType
    data_type: str
    input_uri: str
    output_path: str
    split_type: SplitType = SplitType.NONE
    gzip: bool = False
    content_type: str | None = None
    accept: str | None = None
    assemble_with: str | None = None
    batch_strategy: BatchStrategy | None = None
    max_payload_mb: int | None = None
    max_concurrent_transforms: int | None = None
    input_filter: str | None = None
    output_filter: str | None = None
    join_source: str | None = None
    invocations_timeout_seconds: int = 600
    invocations_max_retries: int = 3
    env_vars: dict[str, str] = field(default_factory=dict)
    region: str = "us-east-1"

    kind = KIND

    @property
    def arn(self) -> str:
        return f"arn:aws:sagemaker:{self.region}:{ACCOUNT_ID}:transform-job/{self.name.lower()}"

    def container_env(self) -> dict[str, str]:
        """What the model server sees on top of the instance's environment (DevGuide, batch contract)."""
        env: dict[str, str] = {"SAGEMAKER_BATCH": "true"}
        if self.max_payload_mb is not None:
            env["SAGEMAKER_MAX_PAYLOAD_IN_MB"] = str(self.max_payload_mb)
        if self.batch_strategy is not None:
            env["SAGEMAKER_BATCH_STRATEGY"] = self.batch_strategy.env_value
        if self.max_concurrent_transforms:
            env["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] = str(self.max_concurrent_transforms)
        return {**self.model_env, **self.env_vars, **env}

    @classmethod
    def from_request(
        cls, request: dict[str, Any], config: Config, *, metadata: Any = None, store: ObjectStore | None = None,
    ) -> TransformJobSpec:
        """Validate ``request``; ``metadata`` (for the model) and ``store`` default to ``config``'s."""
        validate_request("CreateTransformJob", request)
        if metadata is None:
            from sluice.metadata import open_metadata

            metadata = open_metadata(config.database_url)
        if store is None:
            from sluice.storage import store_for

            store = store_for(config)
        name = request["TransformJobName"]
        problems: list[str] = []
        tin, tout = request["TransformInput"], request["TransformOutput"]
        s3 = tin["DataSource"]["S3DataSource"]
        data_type = s3["S3DataType"]
        if data_type not in ("S3Prefix", "ManifestFile"):
            problems.append(
                f"TransformInput.DataSource.S3DataSource.S3DataType {data_type!r} is not available here; use "
                "'S3Prefix' (every object under a prefix) or 'ManifestFile'."
            )
        for where, uri in (("TransformInput.DataSource.S3DataSource.S3Uri", s3["S3Uri"]),
                           ("TransformOutput.S3OutputPath", tout["S3OutputPath"])):
            try:
                S3Uri.parse(uri)
            except SluiceError as exc:
                problems.append(f"{where}: {exc}")
        split = SplitType(tin.get("SplitType", "None"))
        strategy = BatchStrategy(request["BatchStrategy"]) if request.get("BatchStrategy") else None
        max_payload = request.get("MaxPayloadInMB")
        concurrency = request.get("MaxConcurrentTransforms") or None
        if max_payload is not None and max_payload > MAX_PAYLOAD_LIMIT_MB:
            problems.append(f"MaxPayloadInMB={max_payload} is over the limit of {MAX_PAYLOAD_LIMIT_MB} MB; "
                            "lower max_payload.")
        if concurrency:
            effective = DEFAULT_MAX_PAYLOAD_MB if max_payload is None else max_payload
            if concurrency * effective > MAX_PAYLOAD_LIMIT_MB:
                problems.append(
                    f"MaxConcurrentTransforms * MaxPayloadInMB = {concurrency} * {effective}"
                    f"{' (the default)' if max_payload is None else ''} = {concurrency * effective} MB, over the "
                    f"limit of {MAX_PAYLOAD_LIMIT_MB} MB; lower max_concurrent_transforms or max_payload."
                )
        if strategy is not None and split is SplitType.NONE:
            problems.append(
                f"BatchStrategy={strategy.value} needs a SplitType to split objects into records (it is None); set "
                "split_type='Line' (or 'RecordIO', 'TFRecord'), or drop strategy."
            )
        dp = request.get("DataProcessing") or {}
        problems += data_processing_problems(
            input_filter=dp.get("InputFilter"), output_filter=dp.get("OutputFilter"),
            join_source=dp.get("JoinSource"), content_type=tin.get("ContentType"), accept=tout.get("Accept"),
            split=split, assemble_with=tout.get("AssembleWith"),
        )
        model_name = request["ModelName"]
        model, container = _model(metadata, store, model_name, problems)
        if request.get("DataCaptureConfig"):
            log.warning("transform job %s: DataCaptureConfig is recorded but batch data capture is not performed "
                        "locally.", name)
        if problems:
            lines = "\n".join(f"  - {p}" for p in problems)
            raise SpecError(f"transform job {name!r} was not started; fix these first:\n{lines}")
        resources = request["TransformResources"]
        itype = check_quota(resources["InstanceType"], int(resources["InstanceCount"]), config, job_kind="transform")
        client = request.get("ModelClientConfig") or {}
        return cls(
            name=name,
            request=request,
            model_name=model_name,
            model=model,
            image_uri=container.get("Image", ""),
            model_data_url=container.get("ModelDataUrl"),
            model_env=dict(container.get("Environment") or {}),
            instance_count=int(resources["InstanceCount"]),
            instance_type=itype,
            data_type=data_type,
            input_uri=s3["S3Uri"],
            output_path=tout["S3OutputPath"],
            split_type=split,
            gzip=tin.get("CompressionType", "None") == "Gzip",
            content_type=tin.get("ContentType") or None,
            accept=tout.get("Accept") or None,
            assemble_with=tout.get("AssembleWith"),
            batch_strategy=strategy,
            max_payload_mb=max_payload,
            max_concurrent_transforms=concurrency,
            input_filter=dp.get("InputFilter"),
            output_filter=dp.get("OutputFilter"),
            join_source=dp.get("JoinSource"),
            invocations_timeout_seconds=int(client.get("InvocationsTimeoutInSeconds", 600)),
            invocations_max_retries=int(client.get("InvocationsMaxRetries", 3)),
            env_vars=dict(request.get("Environment") or {}),
            region=config.storage.region,
        )


def _model(metadata: Any, store: ObjectStore, name: str, problems: list[str]) -> tuple[dict[str, Any], dict]:
    """The model's record and its one container; problems are appended, not raised."""
    row = metadata.get_resource(MODEL_KIND, name)
    if row is None:
        problems.append(
            f"ModelName {name!r}: there is no model with that name. Create it first (Model.create(), "
            "estimator.create_model(), or model.transformer() which creates it), then start the transform job."
        )
        return {}, {}
    record = row.record
    containers = record.get("Containers") or []
    container = record.get("PrimaryContainer") or (containers[0] if len(containers) == 1 else None)
    if container is None:
        problems.append(
            f"model {name!r} is an inference pipeline of {len(containers)} containers; sluice runs single-container "
            "models. Combine the steps into one inference.py."
        )
        return record, {}
    data = container.get("ModelDataUrl")
    if data:
        try:
            uri = S3Uri.parse(data)
            store.stat(uri.bucket, uri.key)
        except NoSuchKeyError:
            problems.append(f"model {name!r}: its ModelDataUrl {data} does not exist; upload the model.tar.gz or "
                            "recreate the model.")
        except SluiceError as exc:
            problems.append(f"model {name!r}: its ModelDataUrl {data!r} cannot be read: {exc}")
    return record, container


def describe_transform_job(spec: TransformJobSpec, status: str, **extra: Any) -> dict[str, Any]:
    """A ``DescribeTransformJob``-shaped record of ``spec`` in ``status``."""
    req = spec.request
    now = time.time()
    record: dict[str, Any] = {
        "TransformJobName": spec.name,
        "TransformJobArn": spec.arn,
        "TransformJobStatus": status,
        "ModelName": spec.model_name,
        "TransformInput": req["TransformInput"],
        "TransformOutput": req["TransformOutput"],
        "TransformResources": req["TransformResources"],
        "Environment": req.get("Environment", {}),
        "CreationTime": now,
        "LastModifiedTime": now,
    }
    for key in ("MaxConcurrentTransforms", "MaxPayloadInMB", "BatchStrategy", "ModelClientConfig",
                "DataProcessing", "DataCaptureConfig", "ExperimentConfig", "Tags"):
        if key in req:
            record[key] = req[key]
    record.update(extra)
    return record
