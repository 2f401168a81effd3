"""SageMaker's built-in XGBoost algorithm: a training job on the XGBoost image with no entry point, then the
trained ``xgboost-model`` served by batch transform and an endpoint with no inference code, as the SageMaker
blog's Abalone pipeline uses them. Real jobs in the sandbox, on the embedded store."""

from __future__ import annotations

import io
import pickle
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost as xgb

import sluice
from sluice.config import reset_config
from sluice.deserializers import CSVDeserializer
from sluice.errors import ExecutionError, SpecError
from sluice.estimator import Estimator
from sluice.inputs import TrainingInput
from sluice.model import Model
from sluice.runtime.algorithms.xgboost_algorithm import UserError, parse_hyperparameters
from sluice.s3 import S3Downloader
from sluice.serializers import CSVSerializer
from sluice.serving.endpoints import delete_endpoint, list_endpoints
from sluice.serving.handlers import Headers, InferenceError, InferenceService

# The blog's hyperparameters, with fewer rounds to keep the test fast.
BLOG_HYPERPARAMETERS: dict[str, Any] = dict(objective="reg:linear", num_round=6, max_depth=5, eta=0.2, gamma=4,
                                            min_child_weight=6, subsample=0.7, silent=0)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One sluice home for the module, so that the serving tests share one trained model."""
    root = tmp_path_factory.mktemp("builtin-xgboost-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLUICE_HOME", str(root))
        for var in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "SLUICE_CONFIG", "SLUICE_METADATA_URL"):
            mp.delenv(var, raising=False)
        reset_config()
        yield root
        for record in list_endpoints(sluice.Session().config):  # never leave a server running
            delete_endpoint(record["EndpointName"], sluice.Session().config)
        reset_config()


@pytest.fixture
def sess(home: Path) -> sluice.Session:
    return sluice.Session()


@pytest.fixture(scope="module")
def image() -> str:
    return sluice.image_uris.retrieve(framework="xgboost", region="us-east-1", version="1.5-1", py_version="py3",
                                      instance_type="ml.m5.xlarge")


def regression_rows(n: int = 200, seed: int = 0) -> np.ndarray:
    """``label, f1, f2, f3`` rows of a noisy linear target."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 3))
    y = x @ np.array([3.0, -2.0, 1.0]) + rng.normal(0, 0.05, n)
    return np.column_stack([y, x])


def upload_csv(sess: sluice.Session, tmp_path: Path, name: str, rows: np.ndarray) -> str:
    path = tmp_path / name / f"{name}.csv"
    path.parent.mkdir(parents=True)
    np.savetxt(path, rows, delimiter=",", fmt="%.6f")
    return sess.upload_data(str(path.parent), bucket=sess.default_bucket(), key_prefix=f"{tmp_path.name}/{name}")


def upload_libsvm(sess: sluice.Session, tmp_path: Path, name: str, rows: np.ndarray) -> str:
    path = tmp_path / name / f"{name}.libsvm"
    path.parent.mkdir(parents=True)
    path.write_text("".join(f"{r[0]:.6f} " + " ".join(f"{j}:{v:.6f}" for j, v in enumerate(r[1:])) + "\n"
                            for r in rows))
    return sess.upload_data(str(path.parent), bucket=sess.default_bucket(), key_prefix=f"{tmp_path.name}/{name}")


def xgb_estimator(sess: sluice.Session, image: str, **hyperparameters: Any) -> Estimator:
    est = Estimator(image_uri=image, instance_type="ml.m5.xlarge", instance_count=1,
                    output_path=f"s3://{sess.default_bucket()}/abalone/model", sagemaker_session=sess,
                    role=sluice.get_execution_role())
    est.set_hyperparameters(**hyperparameters)
    return est


def fit_failed(est: Estimator, inputs: dict[str, TrainingInput]) -> dict[str, Any]:
    """Run a job that must fail; its DescribeTrainingJob record."""
    with pytest.raises(ExecutionError):
        est.fit(inputs, logs=False)
    desc = est.latest_training_job.describe()
    assert desc["TrainingJobStatus"] == "Failed"
    return desc


def booster_from(sess: sluice.Session, model_data: str) -> xgb.Booster:
    """The blog's evaluation step: open model.tar.gz, pickle.load the ``xgboost-model`` in it."""
    raw = S3Downloader.read_bytes(model_data, sagemaker_session=sess)
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
        assert tar.getnames() == ["xgboost-model"]
        return pickle.load(tar.extractfile("xgboost-model"))


@pytest.fixture(scope="module")
def trained(home: Path, image: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The blog's training step: train and validation CSV channels, the blog's hyperparameters."""
    sess, tmp_path = sluice.Session(), tmp_path_factory.mktemp("abalone")
    rows = regression_rows()
    est = xgb_estimator(sess, image, **BLOG_HYPERPARAMETERS)
    est.fit({"train": TrainingInput(upload_csv(sess, tmp_path, "train", rows[:150]), content_type="text/csv"),
             "validation": TrainingInput(upload_csv(sess, tmp_path, "validation", rows[150:]),
                                         content_type="text/csv")}, logs=False)
    return {"estimator": est, "rows": rows, "booster": booster_from(sess, est.model_data)}


# ---- training ----------------------------------------------------------------------------------------
def test_the_blog_training_step_runs_the_builtin_algorithm_with_no_entry_point(sess, trained):
    est, rows, booster = trained["estimator"], trained["rows"], trained["booster"]
    desc = est.latest_training_job.describe()
    assert desc["TrainingJobStatus"] == "Completed"
    assert isinstance(booster, xgb.Booster) and booster.num_boosted_rounds() == 6
    # The final validation:rmse is the loaded model's RMSE on the validation rows, as the evaluate script computes.
    final = {m["MetricName"]: m["Value"] for m in desc["FinalMetricDataList"]}
    assert set(final) == {"train:rmse", "validation:rmse"}
    predicted = booster.predict(xgb.DMatrix(rows[150:, 1:]))
    assert final["validation:rmse"] == pytest.approx(float(np.sqrt(np.mean((rows[150:, 0] - predicted) ** 2))),
                                                     abs=1e-4)
    series = sess.training_job_metrics(desc["TrainingJobName"], "validation:rmse")
    assert len(series) == 6 and series[-1]["Value"] == final["validation:rmse"]
    # The service supplies the algorithm's metric definitions when the request has none.
    defined = {d["Name"]: d["Regex"] for d in desc["AlgorithmSpecification"]["MetricDefinitions"]}
    assert {"train:rmse", "validation:rmse", "validation:auc", "validation:mae"} <= set(defined)
    assert "HyperParameters" in desc and desc["HyperParameters"]["objective"] == "reg:linear"


@pytest.mark.parametrize("fmt,mode", [("csv", "Pipe"), ("libsvm", "File")])
def test_csv_in_pipe_mode_and_libsvm_train_too(sess, image, tmp_path, fmt, mode):
    rows = regression_rows(120, seed=1)
    upload = upload_csv if fmt == "csv" else upload_libsvm
    content_type = "csv" if fmt == "csv" else "text/libsvm"  # the container's short spelling is accepted too
    est = xgb_estimator(sess, image, num_round=3, eval_metric="mae", early_stopping_rounds=2)
    est.fit({"train": TrainingInput(upload(sess, tmp_path, "train", rows[:90]), content_type=content_type,
                                    input_mode=mode),
             "validation": TrainingInput(upload(sess, tmp_path, "validation", rows[90:]), content_type=content_type,
                                         input_mode=mode)}, logs=False)
    final = {m["MetricName"] for m in est.latest_training_job.describe()["FinalMetricDataList"]}
    assert final == {"train:mae", "validation:mae"}
    assert booster_from(sess, est.model_data).num_features() == 3


@pytest.mark.parametrize(
    "hyperparameters,channels,reason",
    [
        (dict(num_round=3), ("validation",), "ClientError: Missing required channel: train (channels given: "
                                             "'validation'). The built-in XGBoost algorithm reads its data from a "
                                             "channel named 'train'"),
        (dict(num_round=3, max_dept=5), ("train",), "ClientError: Extraneous hyperparameter found: max_dept (did "
                                                    "you mean 'max_depth'?). Remove it or correct its name; the "
                                                    "built-in XGBoost algorithm knows: _tuning_objective_metric, "),
        (dict(eta=0.2), ("train",), "ClientError: Missing required hyperparameter: num_round. Set the number of "
                                    "boosting rounds, e.g. estimator.set_hyperparameters(num_round=100)."),
        (dict(num_round=3, eta=1.5), ("train",), "ClientError: Hyperparameter eta: 1.5 is not in [0, 1]"),
    ],
)
def test_bad_input_fails_the_job_with_a_client_error_that_names_the_fix(sess, image, tmp_path, hyperparameters,
                                                                        channels, reason):
    uri = upload_csv(sess, tmp_path, "data", regression_rows(20))
    desc = fit_failed(xgb_estimator(sess, image, **hyperparameters),
                      {name: TrainingInput(uri, content_type="text/csv") for name in channels})
    assert desc["FailureReason"].startswith(reason)
    if "Extraneous" in reason:
        assert "subsample" in desc["FailureReason"] and "num_round" in desc["FailureReason"]


def test_a_content_type_the_algorithm_does_not_read_fails_with_the_accepted_ones(sess, image, tmp_path):
    uri = upload_csv(sess, tmp_path, "data", regression_rows(20))
    desc = fit_failed(xgb_estimator(sess, image, num_round=2),
                      {"train": TrainingInput(uri, content_type="application/json")})
    assert desc["FailureReason"].startswith("ClientError: Channel 'train': 'application/json' is not an accepted "
                                            "ContentType; use text/csv (or csv)")


def test_a_csv_header_row_fails_with_a_reason_that_asks_to_remove_it(sess, image, tmp_path):
    path = tmp_path / "with-header" / "train.csv"
    path.parent.mkdir()
    path.write_text("rings,length,diameter\n1,0.5,0.4\n2,0.6,0.5\n")
    uri = sess.upload_data(str(path.parent), bucket=sess.default_bucket(), key_prefix=f"{tmp_path.name}/header")
    desc = fit_failed(xgb_estimator(sess, image, num_round=2), {"train": TrainingInput(uri, content_type="text/csv")})
    assert desc["FailureReason"].startswith("ClientError: file 'train.csv' of channel train is not numeric CSV")
    assert "remove any header" in desc["FailureReason"]


def test_without_an_entry_point_only_the_xgboost_image_runs_and_only_on_one_instance(sess, image, tmp_path):
    uri = upload_csv(sess, tmp_path, "data", regression_rows(20))
    jobs_before = len(sess.metadata.list_jobs())
    sklearn_image = sluice.image_uris.retrieve("sklearn", region=sess.boto_region_name, version="1.2-1")
    with pytest.raises(SpecError, match=r"names no entry point(.|\n)*maps to environment 'sklearn'"):
        Estimator(image_uri=sklearn_image, role=sluice.get_execution_role(), instance_count=1,
                  instance_type="ml.m5.xlarge", sagemaker_session=sess).fit({"train": uri}, logs=False)
    two = xgb_estimator(sess, image, num_round=2)
    two.instance_count = 2
    with pytest.raises(SpecError, match="use instance_count=1, not 2"):
        two.fit({"train": TrainingInput(uri, content_type="text/csv")}, logs=False)
    assert len(sess.metadata.list_jobs()) == jobs_before  # refused before anything was recorded


def test_hyperparameter_strings_become_the_params_xgboost_train_gets():
    config = parse_hyperparameters({k: str(v) for k, v in BLOG_HYPERPARAMETERS.items()})
    assert config.num_round == 6
    assert config.params == {"objective": "reg:squarederror", "max_depth": 5, "eta": 0.2, "gamma": 4.0,
                             "min_child_weight": 6.0, "subsample": 0.7}
    tuned = parse_hyperparameters({"num_round": "10", "silent": "1", "learning_rate": "0.3",
                                   "objective": '"binary:logistic"', "_tuning_objective_metric": "validation:auc",
                                   "eval_metric": "logloss"})
    assert tuned.params == {"verbosity": 0, "eta": 0.3, "objective": "binary:logistic",
                            "eval_metric": ["logloss", "auc"]}
    with pytest.raises(UserError, match="num_class is required with objective 'multi:softmax'"):
        parse_hyperparameters({"num_round": "5", "objective": "multi:softmax"})
    with pytest.raises(UserError, match="'f1' is computed by SageMaker's container in Python"):
        parse_hyperparameters({"num_round": "5", "eval_metric": "f1"})


# ---- serving the trained model -----------------------------------------------------------------------
def test_batch_transform_of_csv_rows_gives_one_prediction_per_row(sess, image, tmp_path, trained):
    est, booster = trained["estimator"], trained["booster"]
    features = regression_rows(9, seed=3)[:, 1:]
    uri = upload_csv(sess, tmp_path, "batch", features)
    model = Model(image_uri=image, model_data=est.model_data, sagemaker_session=sess,
                  role=sluice.get_execution_role())
    transformer = model.transformer(instance_count=1, instance_type="ml.m5.xlarge", accept="text/csv",
                                    output_path=f"s3://{sess.default_bucket()}/abalone/transform")
    transformer.transform(uri, content_type="text/csv", split_type="Line", logs=False)
    out = S3Downloader.read_file(f"{transformer.output_path}/batch.csv.out", sagemaker_session=sess)
    lines = out.splitlines()
    assert len(lines) == 9
    assert [float(v) for v in lines] == pytest.approx(booster.predict(xgb.DMatrix(features)).tolist(), rel=1e-5)


def test_an_endpoint_answers_csv_in_the_algorithm_containers_one_line_form(sess, image, trained):
    est, booster = trained["estimator"], trained["booster"]
    features = regression_rows(4, seed=4)[:, 1:]
    model = Model(image_uri=image, model_data=est.model_data, sagemaker_session=sess,
                  role=sluice.get_execution_role())
    predictor = model.deploy(1, "ml.m5.large", serializer=CSVSerializer(), deserializer=CSVDeserializer())
    try:
        answer = predictor.predict(features)
    finally:
        predictor.delete_endpoint()
    assert len(answer) == 1  # one line, comma-separated, as the container answers an endpoint
    assert [float(v) for v in answer[0]] == pytest.approx(booster.predict(xgb.DMatrix(features)).tolist(),
                                                          rel=1e-5)


def test_the_default_handlers_read_libsvm_and_refuse_rows_that_still_carry_the_label(trained, tmp_path):
    booster = trained["booster"]
    root = tmp_path / "model"
    root.mkdir()
    (root / "xgboost-model").write_bytes(pickle.dumps(booster))
    service = InferenceService(root, framework="xgboost")
    service.load()
    features = regression_rows(3, seed=5)[:, 1:]
    body = "".join(" ".join(f"{j}:{v:.6f}" for j, v in enumerate(row)) + "\n" for row in features).encode()
    out = service.invoke(body, Headers([("Content-Type", "text/libsvm"), ("Accept", "text/csv")]))
    assert [float(v) for v in out.body.decode().split()] == pytest.approx(
        booster.predict(xgb.DMatrix(features.astype(np.float32))).tolist(), rel=1e-5)
    with_label = regression_rows(2, seed=6)
    with pytest.raises(InferenceError, match="rows have 4 feature columns but the model was trained on 3") as err:
        service.invoke(b"\n".join(",".join(str(v) for v in row).encode() for row in with_label),
                       Headers([("Content-Type", "text/csv")]))
    assert err.value.status == 400
