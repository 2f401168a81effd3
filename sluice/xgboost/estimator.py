"""``sluice.xgboost.estimator.XGBoost``: script-mode training in the XGBoost environment."""

from __future__ import annotations

from typing import Any

from sluice.estimator import Framework

__all__ = ["XGBoost"]


class XGBoost(Framework):
    """Trains ``entry_point`` with XGBoost as a framework (SDK v2 signature)."""

    _framework_name = "xgboost"

    def __init__(self, entry_point: str, framework_version: str, source_dir: str | None = None,
                 hyperparameters: dict[str, Any] | None = None, py_version: str = "py3",
                 image_uri: str | None = None, image_uri_region: str | None = None, **kwargs: Any) -> None:
        super().__init__(entry_point, source_dir, hyperparameters, framework_version=framework_version,
                         py_version=py_version, image_uri=image_uri, **kwargs)
