"""``sluice.sklearn``: scikit-learn processing and training."""

from sluice.sklearn.estimator import SKLearn
from sluice.sklearn.processing import SKLearnProcessor

__all__ = ["SKLearn", "SKLearnProcessor"]
