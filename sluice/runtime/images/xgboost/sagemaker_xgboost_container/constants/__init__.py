"""Constants of the SageMaker XGBoost container (``sagemaker_xgboost_container.constants``)."""
