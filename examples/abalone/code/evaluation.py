"""Evaluation for the abalone walkthrough: the blog's script, scoring the model on the test split.

It unpacks ``/opt/ml/processing/model/model.tar.gz``, unpickles ``xgboost-model``, predicts the rings of
``/opt/ml/processing/test/test.csv`` (label first) and writes ``/opt/ml/processing/evaluation/evaluation.json``:
``{"regression_metrics": {"mse": {"value": ..., "standard_deviation": ...}}}``, which the pipeline's
PropertyFile and condition read.

As in the blog, ``mse.value`` holds the square root of the mean squared error (the RMSE), and
``standard_deviation`` the standard deviation of the residuals. There is no sluice import.
"""

import json
import math
import pathlib
import pickle
import tarfile

import numpy as np
import pandas as pd
import xgboost
from sklearn.metrics import mean_squared_error

if __name__ == "__main__":
    with tarfile.open("/opt/ml/processing/model/model.tar.gz") as tar:
        tar.extractall(path=".", filter="data")
    with open("xgboost-model", "rb") as f:
        model = pickle.load(f)

    df = pd.read_csv("/opt/ml/processing/test/test.csv", header=None)
    y_test = df.iloc[:, 0].to_numpy()
    predictions = model.predict(xgboost.DMatrix(df.iloc[:, 1:].values))

    mse = mean_squared_error(y_test, predictions)
    std = np.std(y_test - predictions)
    report_dict = {"regression_metrics": {"mse": {"value": math.sqrt(mse), "standard_deviation": float(std)}}}

    output_dir = pathlib.Path("/opt/ml/processing/evaluation")
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "evaluation.json").write_text(json.dumps(report_dict))
    print(f"test rows: {len(y_test)}, regression_metrics.mse.value: {math.sqrt(mse):.4f}")
