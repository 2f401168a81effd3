"""``sluice.xgboost``: XGBoost training."""

from sluice.xgboost.estimator import XGBoost

__all__ = ["XGBoost"]
