"""Feature engineering for the abalone walkthrough: the blog's processing script, for a SageMaker container.

It reads the headerless ``/opt/ml/processing/input/abalone-dataset.csv``, imputes and scales the seven
measurements, imputes and one-hot encodes sex, puts the label (rings) in the first column, shuffles, and
writes 70% / 15% / 15% of the rows to ``train/train.csv``, ``validation/validation.csv`` and
``test/test.csv`` under ``/opt/ml/processing``, headerless, as the built-in XGBoost convention wants.
There is no sluice import: this runs as it would in the scikit-learn image.
"""

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

FEATURES = ["sex", "length", "diameter", "height", "whole_weight", "shucked_weight", "viscera_weight",
            "shell_weight"]
LABEL = "rings"
DTYPES = {name: np.float64 for name in [*FEATURES, LABEL]} | {"sex": str}


if __name__ == "__main__":
    base_dir = "/opt/ml/processing"
    df = pd.read_csv(f"{base_dir}/input/abalone-dataset.csv", header=None, names=[*FEATURES, LABEL], dtype=DTYPES)

    numeric = [name for name in FEATURES if name != "sex"]
    preprocess = ColumnTransformer(transformers=[
        ("num", Pipeline(steps=[("imputer", SimpleImputer(strategy="median")), ("scaler", StandardScaler())]),
         numeric),
        ("cat", Pipeline(steps=[("imputer", SimpleImputer(strategy="constant", fill_value="missing")),
                                ("onehot", OneHotEncoder(handle_unknown="ignore"))]), ["sex"]),
    ])

    y = df.pop(LABEL).to_numpy().reshape(-1, 1)
    X = np.concatenate((y, preprocess.fit_transform(df)), axis=1)
    np.random.shuffle(X)
    train, validation, test = np.split(X, [int(0.7 * len(X)), int(0.85 * len(X))])

    for name, part in (("train", train), ("validation", validation), ("test", test)):
        pd.DataFrame(part).to_csv(f"{base_dir}/{name}/{name}.csv", header=False, index=False)
        print(f"{name}: {len(part)} rows, {part.shape[1] - 1} features")
