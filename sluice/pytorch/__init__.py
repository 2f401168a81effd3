"""``sluice.pytorch``: PyTorch training (CPU)."""

from sluice.pytorch.estimator import PyTorch

__all__ = ["PyTorch"]
