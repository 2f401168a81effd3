"""``sluice.sklearn``: scikit-learn processing (and, later, the SKLearn estimator)."""

from sluice.sklearn.processing import SKLearnProcessor

__all__ = ["SKLearnProcessor"]
