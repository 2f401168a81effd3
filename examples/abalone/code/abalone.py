"""Training for the abalone walkthrough: the blog's script-mode XGBoost regressor.

The SageMaker training toolkit runs it with the hyperparameters as ``--name value`` arguments and the
channels in ``SM_CHANNEL_TRAIN`` / ``SM_CHANNEL_VALIDATION``. Each channel holds a headerless CSV whose
first column is the label. The booster is pickled to ``$SM_MODEL_DIR/xgboost-model``, which the evaluation
script and the XGBoost image's default model loader both read. There is no sluice import.
"""

import argparse
import logging
import os
import pickle

import numpy as np
import pandas as pd
import xgboost as xgb

logging.basicConfig(level=logging.INFO)


def read_channel(directory, name):
    """A channel's CSV as (features, label), rows in random order."""
    df = pd.read_csv(os.path.join(directory, f"{name}.csv"), header=None)
    df = df.iloc[np.random.permutation(len(df))]
    return df.iloc[:, 1:].values, df.iloc[:, :1].values


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--max_depth", type=int)
    parser.add_argument("--eta", type=float)
    parser.add_argument("--gamma", type=int)
    parser.add_argument("--min_child_weight", type=int)
    parser.add_argument("--subsample", type=float)
    parser.add_argument("--verbosity", type=int)
    parser.add_argument("--objective", type=str)
    parser.add_argument("--num_round", type=int)
    parser.add_argument("--learning_rate", type=str, default="auto")
    parser.add_argument("--model_dir", type=str, default=os.environ.get("SM_MODEL_DIR"))
    parser.add_argument("--train", type=str, default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--validation", type=str, default=os.environ.get("SM_CHANNEL_VALIDATION"))
    args, _ = parser.parse_known_args()

    X_train, y_train = read_channel(args.train, "train")
    X_val, y_val = read_channel(args.validation, "validation")
    dtrain = xgb.DMatrix(data=X_train, label=y_train)
    dval = xgb.DMatrix(data=X_val, label=y_val)

    # As in the blog: learning_rate (not eta) is the step size the booster uses.
    params = {
        "booster": "gbtree",
        "objective": args.objective,
        "learning_rate": args.learning_rate,
        "gamma": args.gamma,
        "min_child_weight": args.min_child_weight,
        "max_depth": args.max_depth,
        "subsample": args.subsample,
        "colsample_bytree": 1,
        "reg_lambda": 1,
        "reg_alpha": 0,
        "eval_metric": "rmse",
    }
    bst = xgb.train(params=params, dtrain=dtrain, num_boost_round=args.num_round,
                    evals=[(dtrain, "train"), (dval, "validation")])

    model_location = os.path.join(args.model_dir, "xgboost-model")
    with open(model_location, "wb") as f:
        pickle.dump(bst, f)
    logging.info("Stored trained model at %s", model_location)


if __name__ == "__main__":
    main()
