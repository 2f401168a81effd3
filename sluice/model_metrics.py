"""``sluice.model_metrics``: the SDK's ``ModelMetrics`` and ``MetricsSource``, attached to model packages."""

from __future__ import annotations

from typing import Any

__all__ = ["FileSource", "MetricsSource", "ModelMetrics"]


class MetricsSource:
    """A metrics report in object storage (``ContentType``, ``S3Uri``)."""

    def __init__(self, content_type: str, s3_uri: str, content_digest: str | None = None) -> None:
        self.content_type, self.s3_uri, self.content_digest = content_type, s3_uri, content_digest

    def _to_request_dict(self) -> dict[str, Any]:
        out = {"ContentType": self.content_type, "S3Uri": self.s3_uri}
        if self.content_digest:
            out["ContentDigest"] = self.content_digest
        return out


class FileSource(MetricsSource):
    """A file in object storage used as a drift-check baseline (same shape as ``MetricsSource``)."""


class ModelMetrics:
    """Reports attached to a model package: quality, bias, explainability, data quality."""

    def __init__(self, model_statistics: MetricsSource | None = None, model_constraints: MetricsSource | None = None,
                 model_data_statistics: MetricsSource | None = None,
                 model_data_constraints: MetricsSource | None = None, bias: MetricsSource | None = None,
                 explainability: MetricsSource | None = None, bias_pre_training: MetricsSource | None = None,
                 bias_post_training: MetricsSource | None = None) -> None:
        self.model_statistics, self.model_constraints = model_statistics, model_constraints
        self.model_data_statistics, self.model_data_constraints = model_data_statistics, model_data_constraints
        self.bias, self.explainability = bias, explainability
        self.bias_pre_training, self.bias_post_training = bias_pre_training, bias_post_training

    def _to_request_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        quality = {k: v._to_request_dict() for k, v in (("Statistics", self.model_statistics),
                                                        ("Constraints", self.model_constraints)) if v}
        if quality:
            out["ModelQuality"] = quality
        data = {k: v._to_request_dict() for k, v in (("Statistics", self.model_data_statistics),
                                                     ("Constraints", self.model_data_constraints)) if v}
        if data:
            out["ModelDataQuality"] = data
        reports = (("Report", self.bias), ("PreTrainingReport", self.bias_pre_training),
                   ("PostTrainingReport", self.bias_post_training))
        bias = {k: v._to_request_dict() for k, v in reports if v}
        if bias:
            out["Bias"] = bias
        if self.explainability:
            out["Explainability"] = {"Report": self.explainability._to_request_dict()}
        return out
