"""``sluice.xgboost``: XGBoost training."""

from sluice.xgboost.estimator import XGBoost
from sluice.xgboost.model import XGBoostModel

__all__ = ["XGBoost", "XGBoostModel"]
