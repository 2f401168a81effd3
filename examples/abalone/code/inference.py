"""Inference code for the abalone model, with the walkthrough's interface (``model_fn`` and ``transform_fn``).

The pipeline's Model serves it (``source_dir="code"``, ``entry_point="inference.py"``; the SDK's repack step
puts it into the model). ``model_fn`` unpickles the booster the training script saved. ``transform_fn`` scores
a ``text/csv`` request whose first column is the label (as ``test.csv`` is written), or a ``text/libsvm`` one,
and answers one line per row: the prediction, then the features' contributions and the bias
(``pred_contribs``), comma-separated. Like the walkthrough's, it reads libsvm with the XGBoost image's own
``sagemaker_xgboost_container.encoder``. There is no sluice import: it is user code for the image.
"""

import io
import logging
import os
import pickle

import numpy as np
import pandas as pd
import sagemaker_xgboost_container.encoder as xgb_encoders
import xgboost as xgb

logging.basicConfig(level=logging.INFO)


def model_fn(model_dir):
    """The booster that abalone.py pickled as ``xgboost-model``."""
    with open(os.path.join(model_dir, "xgboost-model"), "rb") as f:
        return pickle.load(f)


def transform_fn(model, request_body, request_content_type, accept):
    """Score every row of the request; each answer line is the prediction followed by its contributions."""
    if request_content_type == "text/libsvm":
        data = xgb_encoders.libsvm_to_dmatrix(request_body)
    elif request_content_type == "text/csv":
        rows = pd.read_csv(io.StringIO(request_body.strip("\n")), header=None)
        data = xgb.DMatrix(data=rows.drop(columns=0))  # the first column is the label
    else:
        raise ValueError(f"Content type {request_content_type} is not supported.")
    prediction = model.predict(data)
    contributions = model.predict(data, pred_contribs=True, validate_features=False)
    scored = np.hstack((prediction[:, np.newaxis], contributions))
    logging.info("Scored %d rows.", len(scored))
    return "\n".join(",".join(str(value) for value in row) for row in scored)
