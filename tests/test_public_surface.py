"""The public surface is pinned: the SDK-named modules export what the SDK does, leak no backend types,
and `import sluice` stays light (no boto3, SQLAlchemy or Ray until they are used)."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

FACADE = {
    "sluice": {"Session", "SluiceError", "__version__", "errors", "get_execution_role", "image_uris", "s3", "session"},
    "sluice.processing": {"FrameworkProcessor", "ProcessingInput", "ProcessingJob", "ProcessingOutput", "Processor",
                          "ScriptProcessor"},
    "sluice.sklearn.processing": {"SKLearnProcessor"},
    "sluice.s3": {"S3Downloader", "S3Uploader", "parse_s3_url", "s3_path_join"},
    "sluice.session": {"ACCOUNT_ID", "Session", "get_execution_role"},
    "sluice.estimator": {"Estimator", "EstimatorBase", "Framework"},
    "sluice.inputs": {"CreateModelInput", "ShuffleConfig", "TrainingInput", "TransformInput"},
    "sluice.io": {"RecordIOWriter", "channel_fifo", "encode_record", "manifest_rows", "pipe_epochs", "pipe_records",
                  "read_records"},
    "sluice.tuner": {"CategoricalParameter", "ContinuousParameter", "HyperparameterTuner",
                     "HyperparameterTuningJobAnalytics", "IntegerParameter", "TuningJobCompletionCriteriaConfig",
                     "WarmStartConfig", "WarmStartTypes"},
    "sluice.parameter": {"CategoricalParameter", "ContinuousParameter", "IntegerParameter", "ParameterRange",
                         "ScalingType"},
    "sluice.sklearn": {"SKLearn", "SKLearnModel", "SKLearnProcessor"},
    "sluice.xgboost": {"XGBoost", "XGBoostModel"},
    "sluice.pytorch": {"PyTorch", "PyTorchModel"},
    "sluice.model": {"FrameworkModel", "Model", "ModelPackage"},
    "sluice.model_metrics": {"FileSource", "MetricsSource", "ModelMetrics"},
    "sluice.predictor": {"ModelError", "Predictor", "PredictorBase"},
    "sluice.transformer": {"Transformer"},
    "sluice.serializers": {"BaseSerializer", "CSVSerializer", "IdentitySerializer", "JSONLinesSerializer",
                           "JSONSerializer", "NumpySerializer", "SimpleBaseSerializer", "StringSerializer"},
    "sluice.deserializers": {"BaseDeserializer", "BytesDeserializer", "CSVDeserializer", "JSONDeserializer",
                             "JSONLinesDeserializer", "NumpyDeserializer", "PandasDeserializer",
                             "SimpleBaseDeserializer", "StreamDeserializer", "StringDeserializer"},
}


@pytest.mark.parametrize("module", sorted(FACADE))
def test_facade_exports_exactly_the_pinned_names(module):
    mod = importlib.import_module(module)
    assert set(mod.__all__) == FACADE[module]
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name} is listed in __all__ but missing"


@pytest.mark.parametrize("module", sorted(FACADE))
def test_facade_signatures_expose_no_backend_types(module):
    mod = importlib.import_module(module)
    for name in mod.__all__:
        obj = getattr(mod, name)
        methods = [m for _, m in inspect.getmembers(obj, inspect.isfunction)] if inspect.isclass(obj) else []
        for fn in [obj, *methods]:
            if not callable(fn):
                continue
            try:
                sig = str(inspect.signature(fn))
            except (TypeError, ValueError):
                continue
            for leak in ("botocore", "boto3", "ray.", "ObjectRef", "sqlalchemy", "starlette"):
                assert leak not in sig, f"{module}.{name}{sig} exposes {leak}"


def test_import_sluice_loads_no_heavy_backend():
    code = ("import sys, sluice, sluice.processing, sluice.s3, sluice.estimator, sluice.inputs, sluice.io; "
            "print(sorted(m for m in ('boto3', 'botocore', 'ray', 'sqlalchemy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_sdk_argument_names_and_defaults_match_sdk_v2():
    from sluice.processing import ProcessingInput, ProcessingOutput, ScriptProcessor

    pi = inspect.signature(ProcessingInput).parameters
    assert [(n, p.default) for n, p in pi.items()][:7] == [
        ("source", None), ("destination", None), ("input_name", None), ("s3_data_type", "S3Prefix"),
        ("s3_input_mode", "File"), ("s3_data_distribution_type", "FullyReplicated"), ("s3_compression_type", "None")]
    po = inspect.signature(ProcessingOutput).parameters
    assert po["s3_upload_mode"].default == "EndOfJob"
    run = inspect.signature(ScriptProcessor.run).parameters
    assert list(run)[1:10] == ["code", "inputs", "outputs", "arguments", "wait", "logs", "job_name",
                               "experiment_config", "kms_key"]
    assert inspect.signature(ScriptProcessor).parameters["volume_size_in_gb"].default == 30


def test_estimator_argument_names_match_sdk_v2():
    from sluice.estimator import EstimatorBase
    from sluice.inputs import TrainingInput

    params = inspect.signature(EstimatorBase).parameters
    for name, default in [("volume_size", 30), ("max_run", 24 * 60 * 60), ("input_mode", "File"),
                          ("model_channel_name", "model"), ("use_spot_instances", False),
                          ("disable_output_compression", False)]:
        assert params[name].default == default, name
    for name in ("entry_point", "source_dir", "dependencies", "hyperparameters", "code_location", "output_path",
                 "metric_definitions", "environment", "checkpoint_s3_uri", "checkpoint_local_path",
                 "base_job_name", "tags"):
        assert name in params, name
    ti = inspect.signature(TrainingInput).parameters
    assert list(ti)[:10] == ["s3_data", "distribution", "compression", "content_type", "record_wrapping",
                             "s3_data_type", "instance_groups", "input_mode", "attribute_names",
                             "target_attribute_name"]


def test_errors_pickle_across_processes():
    import pickle

    from sluice.errors import ExecutionError, InvalidKeyError, NoSuchKeyError, ResourceLimitExceeded, SpecError

    for exc in (SpecError("bad"), ResourceLimitExceeded("quota"), InvalidKeyError("key"), NoSuchKeyError("gone"),
                ExecutionError("failed", retryable=True)):
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc) and str(back) == str(exc)
    assert pickle.loads(pickle.dumps(ExecutionError("x", retryable=True))).retryable is True
