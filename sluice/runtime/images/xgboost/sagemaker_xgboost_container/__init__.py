"""The part of the SageMaker XGBoost container's package that inference code imports: :mod:`.encoder`.

The image's package (``aws/sagemaker-xgboost-container``) also holds its training and serving entry points;
sluice runs those itself (:mod:`sluice.runtime.algorithms`, :mod:`sluice.serving`), so only the encoders and
their content-type constants are here.
"""
