"""``sluice.sklearn``: scikit-learn processing and training."""

from sluice.sklearn.estimator import SKLearn
from sluice.sklearn.model import SKLearnModel
from sluice.sklearn.processing import SKLearnProcessor

__all__ = ["SKLearn", "SKLearnModel", "SKLearnProcessor"]
