"""Python packages a SageMaker image ships for the user code that runs in it, one folder per environment.

Why: code written for an image may import the image's own packages, as the SageMaker blog's ``inference.py``
imports ``sagemaker_xgboost_container.encoder`` from the XGBoost image. sluice runs that code in a local
Python environment instead of the image, so the folder named after the environment (``xgboost/``) holds a
faithful minimal copy of what such code imports, and goes first on ``PYTHONPATH`` for every instance of that
environment (training, processing, transform and endpoints alike, as the image has it everywhere).

Only what user code is documented or known to import is here, each behaving as the image's own does.
"""
