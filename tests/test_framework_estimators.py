"""The framework estimators train with their real frameworks: scikit-learn, XGBoost and PyTorch (CPU)."""

from __future__ import annotations

import io
import tarfile
import textwrap
from pathlib import Path

import pytest

import sluice
from sluice.pytorch import PyTorch
from sluice.s3 import S3Downloader
from sluice.sklearn import SKLearn
from sluice.xgboost import XGBoost


@pytest.fixture
def sess(sluice_home: Path) -> sluice.Session:
    return sluice.Session()


@pytest.fixture
def csv_data(sess: sluice.Session, tmp_path: Path) -> str:
    rows = [f"{2 * x + 1},{x}" for x in range(40)]  # label first, as SageMaker's built-ins expect
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("\n".join(rows) + "\n")
    return sess.upload_data(str(tmp_path / "data"), bucket=sess.default_bucket(), key_prefix="fw-train")


def model_members(sess: sluice.Session, uri: str) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(S3Downloader.read_bytes(uri, sagemaker_session=sess))) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def script(tmp_path: Path, body: str) -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "train.py").write_text(textwrap.dedent(body))
    return src


COMMON = dict(role="arn:aws:iam::000000000000:role/SluiceLocalExecutionRole", instance_count=1,
              instance_type="ml.m5.large")


def test_sklearn_estimator_fits_and_saves_a_model(sess, tmp_path, csv_data):
    src = script(tmp_path, """
        import argparse, os, joblib, numpy as np
        from sklearn.linear_model import LinearRegression
        p = argparse.ArgumentParser(); p.add_argument("--fit_intercept", type=str, default="True")
        a = p.parse_args()
        d = np.loadtxt(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "train.csv"), delimiter=",")
        m = LinearRegression(fit_intercept=a.fit_intercept == "True").fit(d[:, 1:], d[:, 0])
        print(f"coef={m.coef_[0]:.3f}")
        joblib.dump(m, os.path.join(os.environ["SM_MODEL_DIR"], "model.joblib"))
    """)
    est = SKLearn(entry_point="train.py", source_dir=str(src), framework_version="1.2-1",
                  hyperparameters={"fit_intercept": True}, sagemaker_session=sess,
                  metric_definitions=[{"Name": "coef", "Regex": "coef=([0-9.]+)"}], **COMMON)
    est.fit({"train": csv_data}, logs=False)
    assert "model.joblib" in model_members(sess, est.model_data)
    assert est.latest_training_job.describe()["FinalMetricDataList"][0]["Value"] == pytest.approx(2.0)


def test_xgboost_estimator_trains_a_booster(sess, tmp_path, csv_data):
    src = script(tmp_path, """
        import argparse, os, numpy as np, xgboost as xgb
        p = argparse.ArgumentParser(); p.add_argument("--num_round", type=int); p.add_argument("--max_depth", type=int)
        a = p.parse_args()
        d = np.loadtxt(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "train.csv"), delimiter=",")
        dtrain = xgb.DMatrix(d[:, 1:], label=d[:, 0])
        result = {}
        booster = xgb.train({"max_depth": a.max_depth, "eta": 0.3}, dtrain, a.num_round, evals=[(dtrain, "train")],
                            evals_result=result, verbose_eval=False)
        print(f"train-rmse={result['train']['rmse'][-1]:.4f}")
        booster.save_model(os.path.join(os.environ["SM_MODEL_DIR"], "xgboost-model.json"))
    """)
    est = XGBoost(entry_point="train.py", source_dir=str(src), framework_version="1.7-1",
                  hyperparameters={"num_round": 30, "max_depth": 3}, sagemaker_session=sess,
                  metric_definitions=[{"Name": "train:rmse", "Regex": "train-rmse=([0-9.]+)"}], **COMMON)
    est.fit({"train": csv_data}, logs=False)
    members = model_members(sess, est.model_data)
    assert b'"learner"' in members["xgboost-model.json"]
    assert est.latest_training_job.describe()["FinalMetricDataList"][0]["Value"] < 5.0


def test_pytorch_estimator_trains_on_cpu(sess, tmp_path, csv_data):
    src = script(tmp_path, """
        import argparse, os, numpy as np, torch
        p = argparse.ArgumentParser(); p.add_argument("--epochs", type=int); p.add_argument("--lr", type=float)
        a = p.parse_args()
        d = torch.tensor(np.loadtxt(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "train.csv"), delimiter=","),
                         dtype=torch.float32)
        x, y = d[:, 1:] / 40, d[:, :1] / 40
        model = torch.nn.Linear(1, 1)
        opt = torch.optim.SGD(model.parameters(), lr=a.lr)
        for epoch in range(a.epochs):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
        print(f"loss={loss.item():.6f} cuda={torch.cuda.is_available()}")
        torch.save(model.state_dict(), os.path.join(os.environ["SM_MODEL_DIR"], "model.pth"))
    """)
    est = PyTorch(entry_point="train.py", source_dir=str(src), framework_version="2.1", py_version="py310",
                  hyperparameters={"epochs": 300, "lr": 0.5}, sagemaker_session=sess,
                  metric_definitions=[{"Name": "loss", "Regex": "loss=([0-9.]+)"}], **COMMON)
    assert "pytorch-training:2.1-cpu-py310" in est.training_image_uri()
    est.fit({"train": csv_data}, logs=False)
    assert "model.pth" in model_members(sess, est.model_data)
    assert est.latest_training_job.describe()["FinalMetricDataList"][0]["Value"] < 0.01
