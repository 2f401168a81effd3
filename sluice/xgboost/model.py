"""``sluice.xgboost.model.XGBoostModel``: an XGBoost model served with default or ``entry_point`` handlers."""

from __future__ import annotations

from typing import Any

from sluice.model import FrameworkModel

__all__ = ["XGBoostModel"]


class XGBoostModel(FrameworkModel):
    _framework_name = "xgboost"

    def __init__(self, model_data: str | None, role: str | None = None, entry_point: str | None = None,
                 framework_version: str | None = None, image_uri: str | None = None, py_version: str = "py3",
                 **kwargs: Any) -> None:
        super().__init__(model_data, image_uri, role, entry_point, framework_version=framework_version,
                         py_version=py_version, **kwargs)
