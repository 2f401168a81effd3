"""``sluice.sklearn.model.SKLearnModel``: a scikit-learn model served with ``entry_point`` handlers."""

from __future__ import annotations

from typing import Any

from sluice.model import FrameworkModel

__all__ = ["SKLearnModel"]


class SKLearnModel(FrameworkModel):
    _framework_name = "sklearn"

    def __init__(self, model_data: str | None, role: str | None = None, entry_point: str | None = None,
                 framework_version: str | None = None, py_version: str = "py3", image_uri: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(model_data, image_uri, role, entry_point, framework_version=framework_version,
                         py_version=py_version, **kwargs)
