"""What the SageMaker XGBoost image ships for user code: ``sagemaker_xgboost_container`` (its encoders).

This folder, not the package, goes on ``PYTHONPATH`` for the ``xgboost`` environment's instances.
"""
