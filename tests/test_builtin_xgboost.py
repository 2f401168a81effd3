"""SageMaker's built-in XGBoost algorithm: a training job on the XGBoost image with no entry point, tuned as the
SDK's classic example tunes it, then the trained ``xgboost-model`` served by batch transform and an endpoint with
no inference code, as the SageMaker blog's Abalone pipeline uses them. Real jobs in the sandbox, on the embedded
store."""

from __future__ import annotations

import io
import json
import pickle
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
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
from sluice.serving.endpoints import delete_endpoint, describe_endpoint, list_endpoints
from sluice.serving.handlers import Headers, InferenceError, InferenceService
from sluice.tuner import ContinuousParameter, HyperparameterTuner, IntegerParameter

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


# ---- tuning the built-in algorithm -------------------------------------------------------------------
def test_tuning_the_builtin_algorithm_keeps_the_trial_with_the_lowest_validation_rmse(sess, image, tmp_path):
    rows = regression_rows(120, seed=7)
    inputs = {"train": TrainingInput(upload_csv(sess, tmp_path, "train", rows[:90]), content_type="text/csv"),
              "validation": TrainingInput(upload_csv(sess, tmp_path, "validation", rows[90:]),
                                          content_type="text/csv")}
    # The SDK's classic example: the XGBoost image, no entry point, no metric_definitions.
    tuner = HyperparameterTuner(xgb_estimator(sess, image, num_round=3, objective="reg:squarederror"),
                                objective_metric_name="validation:rmse", objective_type="Minimize",
                                hyperparameter_ranges={"eta": ContinuousParameter(0, 1),
                                                       "max_depth": IntegerParameter(1, 10)},
                                max_jobs=4, max_parallel_jobs=2, random_seed=3)
    tuner.fit(inputs)
    desc = tuner.describe()
    assert desc["HyperParameterTuningJobStatus"] == "Completed"
    assert desc["TrainingJobStatusCounters"]["Completed"] == 4
    # The service supplies the algorithm's metric definitions to the tuning job and its trials.
    defined = {d["Name"] for d in desc["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"]}
    assert {"train:rmse", "validation:rmse"} <= defined
    trials = tuner.analytics().training_job_summaries()
    values = {t["TrainingJobName"]: t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for t in trials}
    assert len(values) == 4
    best = desc["BestTrainingJob"]
    assert best["TrainingJobName"] == min(values, key=values.__getitem__) == tuner.best_training_job()
    assert best["FinalHyperParameterTuningJobObjectiveMetric"] == {"Type": "Minimize", "MetricName": "validation:rmse",
                                                                   "Value": min(values.values())}
    # Each value is the trial's own final validation:rmse, printed by the algorithm it ran.
    trial = sess.describe_training_job(best["TrainingJobName"])
    assert trial["HyperParameters"]["_tuning_objective_metric"] == "validation:rmse"
    final = {m["MetricName"]: m["Value"] for m in trial["FinalMetricDataList"]}
    assert final["validation:rmse"] == min(values.values())
    assert booster_from(sess, trial["ModelArtifacts"]["S3ModelArtifacts"]).num_boosted_rounds() == 3


def test_the_tuners_check_knows_the_builtin_metrics_without_metric_definitions(sess, image):
    ranges = {"eta": ContinuousParameter(0, 1)}
    accepted = HyperparameterTuner(xgb_estimator(sess, image, num_round=3), "validation:auc", ranges, max_jobs=2)
    assert accepted.metric_definitions is None  # nothing added: the request carries none, as the SDK sends none
    with pytest.raises(SpecError, match="'validation:accuracy' is not among the defined metrics") as err:
        HyperparameterTuner(xgb_estimator(sess, image, num_round=3), "validation:accuracy", ranges, max_jobs=2)
    assert "'train:rmse'" in str(err.value) and "'validation:rmse'" in str(err.value)
    sklearn_image = sluice.image_uris.retrieve("sklearn", region=sess.boto_region_name, version="1.2-1")
    no_algorithm = Estimator(image_uri=sklearn_image, role=sluice.get_execution_role(), instance_count=1,
                             instance_type="ml.m5.xlarge", sagemaker_session=sess)
    with pytest.raises(SpecError, match="there are no metric_definitions"):
        HyperparameterTuner(no_algorithm, "validation:rmse", ranges, max_jobs=2)


def test_tuning_what_a_training_job_without_an_entry_point_cannot_run_is_refused_up_front(sess, image, tmp_path):
    inputs = {"train": TrainingInput(upload_csv(sess, tmp_path, "data", regression_rows(20)), content_type="text/csv")}
    sklearn_image = sluice.image_uris.retrieve("sklearn", region=sess.boto_region_name, version="1.2-1")
    est = Estimator(image_uri=sklearn_image, role=sluice.get_execution_role(), instance_count=1,
                    instance_type="ml.m5.xlarge", sagemaker_session=sess)
    no_algorithm = HyperparameterTuner(est, "validation:rmse", {"eta": ContinuousParameter(0, 1)}, max_jobs=2,
                                       metric_definitions=[{"Name": "validation:rmse", "Regex": "rmse=([0-9.]+)"}])
    two = xgb_estimator(sess, image, num_round=2)
    two.instance_count = 2
    two_instances = HyperparameterTuner(two, "validation:rmse", {"eta": ContinuousParameter(0, 1)}, max_jobs=2)
    jobs_before = len(sess.metadata.list_jobs())
    with pytest.raises(SpecError, match=r"its training jobs would be refused(.|\n)*names no entry point(.|\n)*"
                                        r"maps to environment 'sklearn'"):
        no_algorithm.fit(inputs)
    with pytest.raises(SpecError, match=r"its training jobs would be refused(.|\n)*use instance_count=1, not 2"):
        two_instances.fit(inputs)
    assert len(sess.metadata.list_jobs()) == jobs_before  # no tuning job, no trial


# ---- the batch container's environment and the algorithm's default Accept --------------------------------
ENV_REPORTER = """
import json, os

def model_fn(model_dir):
    return None

def transform_fn(model, input_data, content_type, accept):
    names = ("SAGEMAKER_BATCH", "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT")
    return json.dumps({"env": {k: os.environ.get(k) for k in names}, "accept": accept}), "application/json"
"""


def test_a_transform_instance_sees_sagemaker_batch_and_inference_code_keeps_the_json_default(sess, image, tmp_path,
                                                                                             trained):
    code = tmp_path / "code"
    code.mkdir()
    (code / "inference.py").write_text(ENV_REPORTER)
    uri = upload_csv(sess, tmp_path, "batch", regression_rows(2, seed=8)[:, 1:])
    model = Model(image_uri=image, model_data=trained["estimator"].model_data, entry_point="inference.py",
                  source_dir=str(code), sagemaker_session=sess, role=sluice.get_execution_role())
    transformer = model.transformer(instance_count=1, instance_type="ml.m5.xlarge",
                                    output_path=f"s3://{sess.default_bucket()}/{tmp_path.name}/env")
    transformer.transform(uri, content_type="text/csv", logs=False)
    seen = json.loads(S3Downloader.read_file(f"{transformer.output_path}/batch.csv.out", sagemaker_session=sess))
    # SAGEMAKER_BATCH as the platform sets it for batch containers; a model with inference code (SAGEMAKER_PROGRAM)
    # is not in algorithm mode, so a request with no Accept gets the model server's default.
    assert seen == {"env": {"SAGEMAKER_BATCH": "true", "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": None},
                    "accept": "application/json"}


def test_batch_transform_with_no_accept_writes_the_algorithms_csv_unless_the_user_sets_another(sess, image,
                                                                                            tmp_path, trained):
    est, booster = trained["estimator"], trained["booster"]
    features = regression_rows(5, seed=9)[:, 1:]
    uri = upload_csv(sess, tmp_path, "batch", features)
    expected = booster.predict(xgb.DMatrix(features)).tolist()
    model = Model(image_uri=image, model_data=est.model_data, sagemaker_session=sess,
                  role=sluice.get_execution_role())
    outputs = {}
    for label, env in (("default", None), ("json", {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/json"})):
        transformer = model.transformer(instance_count=1, instance_type="ml.m5.xlarge", env=env,
                                        output_path=f"s3://{sess.default_bucket()}/{tmp_path.name}/{label}")
        transformer.transform(uri, content_type="text/csv", logs=False)  # no accept, as the blog's step has none
        outputs[label] = S3Downloader.read_file(f"{transformer.output_path}/batch.csv.out", sagemaker_session=sess)
    assert [float(v) for v in outputs["default"].splitlines()] == pytest.approx(expected, rel=1e-5)
    assert json.loads(outputs["json"]) == pytest.approx(expected, rel=1e-5)


def test_an_endpoint_answers_a_request_with_no_accept_in_csv_on_one_line(sess, image, trained):
    est, booster = trained["estimator"], trained["booster"]
    features = regression_rows(3, seed=10)[:, 1:]
    model = Model(image_uri=image, model_data=est.model_data, sagemaker_session=sess,
                  role=sluice.get_execution_role())
    predictor = model.deploy(1, "ml.m5.large")
    try:
        url = describe_endpoint(predictor.endpoint_name, sess.config)["Local"]["Url"]
        runtime = boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1",
                               aws_access_key_id="x", aws_secret_access_key="x")
        body = "\n".join(",".join(f"{v:.6f}" for v in row) for row in features)
        answer = runtime.invoke_endpoint(EndpointName=predictor.endpoint_name, Body=body, ContentType="text/csv")
    finally:
        predictor.delete_endpoint()
    assert answer["ContentType"] == "text/csv"
    # The classic notebook's read of it: np.fromstring(result, sep=",").
    predictions = np.fromstring(answer["Body"].read().decode(), sep=",")
    assert predictions.tolist() == pytest.approx(booster.predict(xgb.DMatrix(features)).tolist(), rel=1e-5)
