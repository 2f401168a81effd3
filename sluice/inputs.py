"""``sluice.inputs``: the SDK's ``TrainingInput`` and ``ShuffleConfig``, building ``Channel`` request shapes,
and ``TransformInput`` / ``CreateModelInput``, the argument bundles of the older ``TransformStep(transformer=...,
inputs=...)`` and ``CreateModelStep(model=..., inputs=...)`` forms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CreateModelInput", "ShuffleConfig", "TrainingInput", "TransformInput"]


class ShuffleConfig:
    """Reshuffle a Pipe-mode channel every epoch from ``seed`` (deterministic across runs)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed


class TrainingInput:
    """A training channel (SDK v2 signature and defaults); ``config`` is the ``Channel`` request shape."""

    def __init__(
        self, s3_data: str, distribution: str | None = None, compression: str | None = None,
        content_type: str | None = None, record_wrapping: str | None = None, s3_data_type: str = "S3Prefix",
        instance_groups: list[str] | None = None, input_mode: str | None = None,
        attribute_names: list[str] | None = None, target_attribute_name: str | None = None,
        shuffle_config: ShuffleConfig | None = None, hub_access_config: dict | None = None,
        model_access_config: dict | None = None,
    ) -> None:
        self.config: dict[str, Any] = {
            "DataSource": {"S3DataSource": {"S3DataType": s3_data_type, "S3Uri": s3_data}},
        }
        if not (target_attribute_name or distribution):
            distribution = "FullyReplicated"
        if distribution is not None:
            self.config["DataSource"]["S3DataSource"]["S3DataDistributionType"] = distribution
        if compression is not None:
            self.config["CompressionType"] = compression
        if content_type is not None:
            self.config["ContentType"] = content_type
        if record_wrapping is not None:
            self.config["RecordWrapperType"] = record_wrapping
        if input_mode is not None:
            self.config["InputMode"] = input_mode
        if attribute_names is not None:
            self.config["DataSource"]["S3DataSource"]["AttributeNames"] = attribute_names
        if instance_groups is not None:
            self.config["DataSource"]["S3DataSource"]["InstanceGroupNames"] = instance_groups
        # Kept on the object: the Channel shape has no such field (the SDK uses it for AutoML).
        self.target_attribute_name = target_attribute_name
        if shuffle_config is not None:
            self.config["ShuffleConfig"] = {"Seed": shuffle_config.seed}


@dataclass
class TransformInput:
    """The arguments of ``Transformer.transform()``, as one object (SDK ``sagemaker.inputs.TransformInput``).

    ``TransformStep(name, transformer=transformer, inputs=TransformInput(data=...))`` calls
    ``transformer.transform(data, data_type=..., ...)`` with them. Any field may be a pipeline variable.
    """

    data: Any
    data_type: Any = "S3Prefix"
    content_type: Any = None
    compression_type: Any = None
    split_type: Any = None
    input_filter: Any = None
    output_filter: Any = None
    join_source: Any = None
    model_client_config: dict[str, Any] | None = None


@dataclass
class CreateModelInput:
    """The arguments of ``Model.create()`` for ``CreateModelStep(name, model=model, inputs=CreateModelInput(...))``
    (SDK ``sagemaker.inputs.CreateModelInput``)."""

    instance_type: str | None = None
    accelerator_type: str | None = None
