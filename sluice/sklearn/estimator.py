"""``sluice.sklearn.estimator.SKLearn``: script-mode training in the scikit-learn environment."""

from __future__ import annotations

from typing import Any

from sluice.estimator import Framework

__all__ = ["SKLearn"]


class SKLearn(Framework):
    """Trains ``entry_point`` with scikit-learn (SDK v2 signature)."""

    _framework_name = "sklearn"

    def __init__(self, entry_point: str, framework_version: str | None = None, py_version: str = "py3",
                 source_dir: str | None = None, hyperparameters: dict[str, Any] | None = None,
                 image_uri: str | None = None, image_uri_region: str | None = None, **kwargs: Any) -> None:
        super().__init__(entry_point, source_dir, hyperparameters, framework_version=framework_version,
                         py_version=py_version, image_uri=image_uri, **kwargs)
