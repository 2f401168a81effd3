"""``sluice.pytorch.estimator.PyTorch``: script-mode training in the PyTorch (CPU) environment."""

from __future__ import annotations

from typing import Any

from sluice.errors import SpecError
from sluice.estimator import Framework

__all__ = ["PyTorch"]


class PyTorch(Framework):
    """Trains ``entry_point`` with PyTorch on CPU (SDK v2 signature)."""

    _framework_name = "pytorch"

    def __init__(self, entry_point: str, framework_version: str | None = None, py_version: str | None = None,
                 source_dir: str | None = None, hyperparameters: dict[str, Any] | None = None,
                 image_uri: str | None = None, distribution: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if distribution:
            raise SpecError("PyTorch distribution (torchrun, smdistributed, MPI) is not available yet: instances "
                            "run, but no process group is set up between them. Leave distribution unset.")
        super().__init__(entry_point, source_dir, hyperparameters, framework_version=framework_version,
                         py_version=py_version, image_uri=image_uri, **kwargs)
