"""``sluice.pytorch``: PyTorch training (CPU)."""

from sluice.pytorch.estimator import PyTorch
from sluice.pytorch.model import PyTorchModel

__all__ = ["PyTorch", "PyTorchModel"]
