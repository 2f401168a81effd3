"""The step cache: what a step's key is made of, the ExpireAfter window, explain, and definitions stable enough to
cache (building the same pipeline twice gives byte-identical step arguments).

Keys are computed against the real stores: the embedded local store under an isolated sluice home, and the moto
S3 server over HTTP. Nothing here starts a job.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from sluice.errors import PipelineError
from sluice.inputs import TrainingInput
from sluice.metadata.store import CacheEntry
from sluice.model import Model
from sluice.processing import FrameworkProcessor, ProcessingInput, ProcessingOutput
from sluice.session import Session
from sluice.sklearn.estimator import SKLearn
from sluice.sklearn.processing import SKLearnProcessor
from sluice.storage.base import ObjectInfo, ObjectStore
from sluice.workflow.cache import (
    CacheOutcome,
    cache_key,
    check_cache_config,
    explain,
    explain_step,
    parse_expire_after,
)
from sluice.workflow.condition_step import ConditionStep
from sluice.workflow.conditions import ConditionLessThanOrEqualTo
from sluice.workflow.fail_step import FailStep
from sluice.workflow.functions import Join, JsonGet
from sluice.workflow.graph import CacheSpec, StepSpec, StepType, parse_definition
from sluice.workflow.model_step import ModelStep
from sluice.workflow.parameters import ParameterFloat, ParameterInteger
from sluice.workflow.pipeline import Pipeline
from sluice.workflow.pipeline_context import PipelineSession
from sluice.workflow.properties import PropertyFile
from sluice.workflow.steps import CacheConfig, ProcessingStep, TrainingStep

BUCKET = "cache-bucket"
EXEC_ID = {"Get": "Execution.PipelineExecutionId"}


@pytest.fixture
def session(sluice_home: Path) -> Session:
    sess = Session(default_bucket=BUCKET)
    sess.default_bucket()
    return sess


def _put(store: ObjectStore, key: str, data: bytes) -> str:
    store.put(BUCKET, key, data)
    return f"s3://{BUCKET}/{key}"


def _processing(store: ObjectStore) -> tuple[StepSpec, dict[str, Any]]:
    """A processing step as the executor hands it over: the definition's arguments and the resolved request."""
    _put(store, "raw/a.csv", b"1,2\n")
    _put(store, "raw/b.csv", b"3,4\n")
    _put(store, "code/prep.py", b"print('prep')\n")
    arguments = {
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                                  "VolumeSizeInGB": 30}},
        "AppSpecification": {"ImageUri": "sklearn:1.2-1", "ContainerEntrypoint": ["python3", "/code/prep.py"],
                             "ContainerArguments": ["--run", EXEC_ID, "--rate", {"Get": "Parameters.Rate"}]},
        "RoleArn": "arn:aws:iam::111111111111:role/R",
        "Environment": {"MODE": "full"},
        "ProcessingInputs": [
            {"InputName": "raw", "AppManaged": False, "S3Input": {
                "S3Uri": f"s3://{BUCKET}/raw/", "LocalPath": "/opt/ml/processing/input", "S3DataType": "S3Prefix",
                "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated", "S3CompressionType": "None"}},
            {"InputName": "code", "AppManaged": False, "S3Input": {
                "S3Uri": f"s3://{BUCKET}/code/prep.py", "LocalPath": "/opt/ml/processing/input/code/",
                "S3DataType": "S3Prefix", "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated",
                "S3CompressionType": "None"}}],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "train", "AppManaged": False, "S3Output": {
            "S3Uri": {"Std:Join": {"On": "/", "Values": ["s3:/", BUCKET, "p", EXEC_ID, "Prep", "output", "train"]}},
            "LocalPath": "/opt/ml/processing/train", "S3UploadMode": "EndOfJob"}}]},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }
    spec = StepSpec("Prep", StepType.PROCESSING, arguments, cache_config=CacheSpec(True, "P30D"))
    return spec, _resolve(arguments, "0f1e2d3c4b5a", {"Rate": "0.5"})


def _resolve(value: Any, execution_id: str, parameters: dict[str, Any]) -> Any:
    """What the executor does to the arguments before a step runs (just enough of it for these requests)."""
    if isinstance(value, dict):
        if value.get("Get") == "Execution.PipelineExecutionId":
            return execution_id
        if isinstance(value.get("Get"), str) and value["Get"].startswith("Parameters."):
            return parameters[value["Get"].removeprefix("Parameters.")]
        if "Std:Join" in value:
            join = value["Std:Join"]
            return join["On"].join(str(_resolve(v, execution_id, parameters)) for v in join["Values"])
        return {k: _resolve(v, execution_id, parameters) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, execution_id, parameters) for v in value]
    return value


def _training(store: ObjectStore) -> tuple[StepSpec, dict[str, Any]]:
    _put(store, "train/part-0.csv", b"1,0\n")
    _put(store, "demo/code/abc/sourcedir.tar.gz", b"bundle-v1")
    arguments = {
        "AlgorithmSpecification": {"TrainingImage": "xgboost:1.7-1", "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::111111111111:role/R",
        "OutputDataConfig": {"S3OutputPath": {"Std:Join": {"On": "/", "Values": [f"s3://{BUCKET}", EXEC_ID, "model"]}}},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        "HyperParameters": {"epochs": "10", "sagemaker_program": '"train.py"',
                            "sagemaker_submit_directory": f'"s3://{BUCKET}/demo/code/abc/sourcedir.tar.gz"'},
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/train/", "S3DataDistributionType": "FullyReplicated"}}}],
        "DebugHookConfig": {"S3OutputPath": {"Std:Join": {"On": "/", "Values": [f"s3://{BUCKET}", EXEC_ID, "model"]}},
                            "CollectionConfigurations": []},
        "ProfilerConfig": {"S3OutputPath": f"s3://{BUCKET}/profile", "DisableProfiler": False},
        "CheckpointConfig": {"S3Uri": f"s3://{BUCKET}/checkpoints"},
        "Environment": {"SEED": "7"},
    }
    spec = StepSpec("Train", StepType.TRAINING, arguments, cache_config=CacheSpec(True, "P30D"))
    return spec, _resolve(arguments, "0f1e2d3c4b5a", {})


def _transform(store: ObjectStore) -> tuple[StepSpec, dict[str, Any]]:
    _put(store, "batch/in.csv", b"1,2\n")
    arguments = {
        "ModelName": {"Get": "Steps.CreateModel-CreateModel.ModelName"},
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/batch/"}},
                           "ContentType": "text/csv", "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": {"Std:Join": {"On": "/", "Values": ["s3:/", BUCKET, EXEC_ID, "Score"]}}},
        "TransformResources": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge"},
        "DataProcessing": {"InputFilter": "$[1:]", "JoinSource": "Input"},
        "Environment": {"TS_MAX": "1"},
    }
    request = _resolve({k: v for k, v in arguments.items() if k != "ModelName"}, "0f1e2d3c4b5a", {})
    request["ModelName"] = "pipelines-0f1e2d3c4b5a-CreateModel-1a2b3c"
    return StepSpec("Score", StepType.TRANSFORM, arguments, cache_config=CacheSpec(True, "P30D")), request


def _tuning() -> tuple[StepSpec, dict[str, Any]]:
    definition = {"AlgorithmSpecification": {"TrainingImage": "xgboost:1.7-1", "TrainingInputMode": "File"},
                  "StaticHyperParameters": {"num_round": "50"},
                  "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
                      "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/train/"}}}],
                  "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/0f1e2d3c4b5a/tune"},
                  "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
                  "RoleArn": "arn:aws:iam::111111111111:role/R", "StoppingCondition": {"MaxRuntimeInSeconds": 600}}
    request = {"HyperParameterTuningJobConfig": {"Strategy": "Random", "ResourceLimits": {
        "MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2}},
        "TrainingJobDefinition": definition}
    return StepSpec("Tune", StepType.TUNING, copy.deepcopy(request)), request


def _key(spec: StepSpec, request: dict[str, Any], store: ObjectStore, **kwargs: Any) -> str:
    key = cache_key(spec, request, store, **kwargs)
    assert key is not None
    return key.digest


def _changed(request: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``request`` with the value at a dotted path (list indices as numbers) replaced."""
    out = copy.deepcopy(request)
    *head, last = path.split(".")
    target: Any = out
    for part in head:
        target = target[int(part)] if isinstance(target, list) else target[part]
    target[int(last) if isinstance(target, list) else last] = value
    return out


# ---- what the key is made of -------------------------------------------------------------------------------------

def test_the_same_request_gives_the_same_key_and_a_readable_record_of_its_parts(session):
    spec, request = _processing(session.store)
    first = cache_key(spec, request, session.store)
    again = cache_key(spec, copy.deepcopy(request), session.store)
    assert first is not None and again is not None
    assert first.digest == again.digest and first.parts == again.parts
    assert len(first.digest) == 64 and int(first.digest, 16) >= 0
    assert list(first.parts) == ["AppSpecification", "Environment", "ProcessingInputs",
                                 f"content:s3://{BUCKET}/raw/", f"code:s3://{BUCKET}/code/prep.py"]
    assert set(first.parts[f"content:s3://{BUCKET}/raw/"]["objects"]) == {
        f"s3://{BUCKET}/raw/a.csv", f"s3://{BUCKET}/raw/b.csv"}
    assert json.loads(json.dumps(first.parts)) == first.parts  # what the executor records on the step


@pytest.mark.parametrize(("build", "path", "value"), [
    ("processing", "AppSpecification.ImageUri", "sklearn:1.0-1"),
    ("processing", "AppSpecification.ContainerArguments.3", "0.7"),
    ("processing", "Environment.MODE", "quick"),
    ("processing", "ProcessingInputs.0.S3Input.LocalPath", "/opt/ml/processing/elsewhere"),
    ("processing", "ProcessingInputs.0.S3Input.S3DataDistributionType", "ShardedByS3Key"),
    ("training", "AlgorithmSpecification.TrainingImage", "xgboost:1.5-1"),
    ("training", "HyperParameters.epochs", "11"),
    ("training", "InputDataConfig.0.DataSource.S3DataSource.S3DataDistributionType", "ShardedByS3Key"),
    ("training", "CheckpointConfig.S3Uri", f"s3://{BUCKET}/other-checkpoints"),
    ("training", "DebugHookConfig.CollectionConfigurations", [{"CollectionName": "losses"}]),
    ("training", "Environment.SEED", "8"),
    ("transform", "ModelName", "another-model"),
    ("transform", "DataProcessing.JoinSource", "None"),
    ("transform", "Environment.TS_MAX", "2"),
    ("transform", "TransformInput.SplitType", "None"),
    ("tuning", "HyperParameterTuningJobConfig.Strategy", "Bayesian"),
    ("tuning", "TrainingJobDefinition.StaticHyperParameters.num_round", "60"),
])
def test_each_attribute_the_service_keys_changes_the_key(session, build, path, value):
    spec, request = {"processing": _processing, "training": _training, "transform": _transform,
                     "tuning": lambda _: _tuning()}[build](session.store)
    assert _key(spec, _changed(request, path, value), session.store) != _key(spec, request, session.store)


@pytest.mark.parametrize(("build", "path", "value"), [
    ("processing", "ProcessingResources.ClusterConfig.InstanceCount", 4),
    ("processing", "RoleArn", "arn:aws:iam::111111111111:role/Other"),
    ("processing", "StoppingCondition.MaxRuntimeInSeconds", 60),
    ("processing", "ProcessingOutputConfig.Outputs.0.S3Output.S3Uri", f"s3://{BUCKET}/p/9a8b7c/Prep/output/train"),
    ("training", "OutputDataConfig.S3OutputPath", f"s3://{BUCKET}/9a8b7c/model"),
    ("training", "DebugHookConfig.S3OutputPath", f"s3://{BUCKET}/9a8b7c/model"),
    ("training", "ProfilerConfig.S3OutputPath", f"s3://{BUCKET}/elsewhere"),
    ("training", "ResourceConfig.InstanceCount", 2),
    ("transform", "TransformOutput.S3OutputPath", f"s3://{BUCKET}/9a8b7c/Score"),
    ("transform", "TransformResources.InstanceCount", 3),
    ("tuning", "TrainingJobDefinition.OutputDataConfig.S3OutputPath", f"s3://{BUCKET}/9a8b7c/tune"),
    ("tuning", "TrainingJobDefinition.ResourceConfig.InstanceCount", 2),
])
def test_what_the_service_does_not_key_leaves_the_key_alone(session, build, path, value):
    spec, request = {"processing": _processing, "training": _training, "transform": _transform,
                     "tuning": lambda _: _tuning()}[build](session.store)
    assert _key(spec, _changed(request, path, value), session.store) == _key(spec, request, session.store)


def test_a_job_name_in_the_request_is_not_part_of_the_key(session):
    spec, request = _processing(session.store)
    assert _key(spec, {**request, "ProcessingJobName": "pipelines-9a8b7c-Prep-1f2e3d"}, session.store) == \
        _key(spec, request, session.store)


def test_values_from_per_execution_variables_are_keyed_as_placeholders_not_values(session):
    spec, request = _processing(session.store)
    next_run = _resolve(spec.arguments, "9a8b7c6d5e4f", {"Rate": "0.5"})
    assert next_run["AppSpecification"]["ContainerArguments"][1] != request["AppSpecification"]["ContainerArguments"][1]
    key = cache_key(spec, next_run, session.store)
    assert key is not None and key.digest == _key(spec, request, session.store)
    assert key.parts["AppSpecification"]["ContainerArguments"][:2] == ["--run", "{Execution.PipelineExecutionId}"]
    other_rate = _resolve(spec.arguments, "9a8b7c6d5e4f", {"Rate": "0.9"})  # a parameter is a real change
    assert _key(spec, other_rate, session.store) != key.digest


def test_steps_that_are_never_cached_have_no_key(session):
    for kind in (StepType.CONDITION, StepType.FAIL, StepType.CREATE_MODEL, StepType.REGISTER_MODEL,
                 StepType.CALLBACK):
        assert cache_key(StepSpec("S", kind, {}), {}, session.store) is None


# ---- the bytes: what the service misses -------------------------------------------------------------------------

def test_new_bytes_at_the_same_path_change_the_key_and_explain_names_the_object(session):
    store = session.store
    spec, request = _processing(store)
    before = cache_key(spec, request, store)
    _put(store, "raw/b.csv", b"3,5\n")
    after = cache_key(spec, request, store)
    assert before is not None and after is not None and before.digest != after.digest
    entry = CacheEntry(1, "p", "Prep", before.digest, before.parts, "arn:exec/first", {}, time.time() - 60)
    why = explain(after.digest, after.parts, hit=None, candidates=[entry], expire_after=30 * 86400,
                  started_at=time.time())
    assert why.outcome is CacheOutcome.CHANGED and not why.hit and why.entry == entry
    assert why.details == (f"input s3://{BUCKET}/raw/: the bytes of s3://{BUCKET}/raw/b.csv changed "
                           f"({_short(before, 'raw/b.csv')} -> {_short(after, 'raw/b.csv')})",)
    assert "arn:exec/first" in str(why)


def _short(key: Any, name: str) -> str:
    part = next(v for k, v in key.parts.items() if k.startswith("content:"))
    kind, _, value = part["objects"][f"s3://{BUCKET}/{name}"].partition(":")
    return f"{kind}:{value[:12]}..."


def test_new_code_at_the_same_path_changes_the_key(session):
    store = session.store
    spec, request = _processing(store)
    before = _key(spec, request, store)
    _put(store, "code/prep.py", b"print('prep, faster')\n")
    assert _key(spec, request, store) != before
    train, train_request = _training(store)
    trained = cache_key(train, train_request, store)
    _put(store, "demo/code/abc/sourcedir.tar.gz", b"bundle-v2")  # sagemaker_submit_directory, JSON-encoded
    retrained = cache_key(train, train_request, store)
    assert trained is not None and retrained is not None and trained.digest != retrained.digest
    entry = CacheEntry(1, "p", "Train", trained.digest, trained.parts, "arn:exec/first", {}, time.time())
    why = explain(retrained.digest, retrained.parts, hit=None, candidates=[entry])
    assert len(why.details) == 1
    assert why.details[0].startswith(f"code s3://{BUCKET}/demo/code/abc/sourcedir.tar.gz: its bytes changed (")


def test_identical_bytes_written_again_keep_the_key(session):
    store = session.store
    spec, request = _processing(store)
    before = _key(spec, request, store)
    _put(store, "raw/a.csv", b"1,2\n")  # a new object version with the same bytes (e.g. upload_data re-run)
    assert store.stat(BUCKET, "raw/a.csv").etag  # a version tag, not a content hash...
    assert _key(spec, request, store) == before  # ...but the key follows the bytes


def test_an_object_added_under_an_input_prefix_changes_the_key(session):
    store = session.store
    spec, request = _processing(store)
    before = cache_key(spec, request, store)
    _put(store, "raw/c.csv", b"5,6\n")
    after = cache_key(spec, request, store)
    assert before is not None and after is not None and before.digest != after.digest
    entry = CacheEntry(1, "p", "Prep", before.digest, before.parts, "arn:exec/first", {}, time.time())
    assert explain(after.digest, after.parts, hit=None, candidates=[entry]).details == (
        f"input s3://{BUCKET}/raw/: s3://{BUCKET}/raw/c.csv was added",)


def test_a_cached_run_trusts_the_version_and_reads_no_bytes_again(session):
    """The local store's objects are immutable: a key computed again reads the remembered digest, not the file.

    Shown by changing a file's bytes behind the store's back while keeping its version (size, mtime, inode):
    the key does not move, so the bytes were not read again. (Through the store, a change makes a new version.)
    """
    store = session.store
    spec, request = _processing(store)
    before = _key(spec, request, store)
    path = store.local_path(BUCKET, "raw/a.csv")
    assert path is not None
    st = path.stat()
    os.chmod(path, 0o644)
    with open(path, "r+b") as fh:
        fh.write(b"9,9\n")  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert store.stat(BUCKET, "raw/a.csv").etag == f"{st.st_size:x}-{st.st_mtime_ns:x}-{st.st_ino:x}"
    assert _key(spec, request, store) == before


def test_a_manifest_input_fingerprints_the_objects_it_names(session):
    store = session.store
    spec, request = _processing(store)
    _put(store, "images/1.jpg", b"one")
    _put(store, "images/2.jpg", b"two")
    manifest = _put(store, "manifests/m.json", json.dumps([{"prefix": f"s3://{BUCKET}/images/"}, "1.jpg",
                                                           "2.jpg"]).encode())
    s3 = request["ProcessingInputs"][0]["S3Input"]
    s3.update(S3Uri=manifest, S3DataType="ManifestFile")
    before = cache_key(spec, request, store)
    assert before is not None
    assert set(before.parts[f"content:{manifest}"]["objects"]) == {
        manifest, f"s3://{BUCKET}/images/1.jpg", f"s3://{BUCKET}/images/2.jpg"}
    _put(store, "images/2.jpg", b"TWO")
    after = cache_key(spec, request, store)
    assert after is not None and after.digest != before.digest
    entry = CacheEntry(1, "p", "Prep", before.digest, before.parts, "arn:exec/first", {}, time.time())
    (line,) = explain(after.digest, after.parts, hit=None, candidates=[entry]).details
    assert line.startswith(f"input {manifest}: the bytes of s3://{BUCKET}/images/2.jpg changed")


def test_a_missing_input_is_fingerprinted_as_missing_not_refused(session):
    spec, request = _processing(session.store)
    request["ProcessingInputs"][0]["S3Input"]["S3Uri"] = f"s3://{BUCKET}/nothing-here/"
    key = cache_key(spec, request, session.store)
    assert key is not None and key.parts[f"content:s3://{BUCKET}/nothing-here/"]["objects"] == {}


class CountingStore(ObjectStore):
    """The S3 store, counting the reads of object bytes (a fake over the real interface, no patching)."""

    kind = "s3"

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.reads = 0

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.inner.list(bucket, prefix)

    def open(self, bucket: str, key: str) -> BinaryIO:
        self.reads += 1
        return self.inner.open(bucket, key)

    def put(self, bucket: str, key: str, data: bytes | BinaryIO) -> ObjectInfo:
        return self.inner.put(bucket, key, data)

    def stat(self, bucket: str, key: str) -> ObjectInfo:
        return self.inner.stat(bucket, key)

    def delete(self, bucket: str, key: str) -> None:
        self.inner.delete(bucket, key)

    def presign(self, bucket: str, key: str, expires_in: int = 3600) -> str:
        return self.inner.presign(bucket, key, expires_in)

    def create_bucket(self, bucket: str) -> None:
        self.inner.create_bucket(bucket)

    def bucket_exists(self, bucket: str) -> bool:
        return self.inner.bucket_exists(bucket)


def test_s3_inputs_are_fingerprinted_by_their_etag_without_reading_a_byte(s3_home):
    sess = Session(default_bucket=BUCKET)
    sess.default_bucket()
    store = CountingStore(sess.store)
    spec, request = _processing(store)
    before = cache_key(spec, request, store)
    assert before is not None and store.reads == 0
    objects = before.parts[f"content:s3://{BUCKET}/raw/"]["objects"]
    assert objects[f"s3://{BUCKET}/raw/a.csv"] == "md5:" + __import__("hashlib").md5(b"1,2\n").hexdigest()
    _put(store, "raw/a.csv", b"1,3\n")
    assert _key(spec, request, store) != before.digest and store.reads == 0


def test_a_transform_is_keyed_on_its_model_not_on_the_models_per_execution_name(session):
    store = session.store
    spec, request = _transform(store)
    model_data = _put(store, "model/model.tar.gz", b"weights-v1")
    container = {"Image": "xgboost:1.7-1", "Environment": {}, "ModelDataUrl": model_data}
    for name in ("pipelines-0f1e2d3c4b5a-CreateModel-1a2b3c", "pipelines-9a8b7c6d5e4f-CreateModel-4d5e6f"):
        session.metadata.create_resource("Model", name, {"ModelName": name, "PrimaryContainer": container})
    first = cache_key(spec, request, store, metadata=session.metadata)
    second = cache_key(spec, {**request, "ModelName": "pipelines-9a8b7c6d5e4f-CreateModel-4d5e6f"}, store,
                       metadata=session.metadata)
    assert first is not None and second is not None and first.digest == second.digest
    assert "ModelName" not in first.parts and first.parts["Model"]["Containers"] == [container]
    _put(store, "model/model.tar.gz", b"weights-v2")
    assert _key(spec, request, store, metadata=session.metadata) != first.digest
    # without the metadata store, the service's key: the model's name
    assert _key(spec, request, store) != _key(spec, {**request, "ModelName": "other"}, store)


def test_a_lambda_step_is_keyed_on_its_function_its_inputs_and_the_functions_source(session, tmp_path,
                                                                                    monkeypatch):
    from sluice.workflow.lambda_step import local_function

    module = tmp_path / "gate_module.py"
    module.write_text("def handler(event, context):\n    return {'ok': event['x'] > 1}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    arn = "arn:aws:lambda:us-east-1:000000000000:function:gate_module.handler"
    assert local_function(arn)({"x": 2}, None) == {"ok": True}
    spec = StepSpec("Gate", StepType.LAMBDA, {"x": {"Get": "Parameters.X"}}, cache_config=CacheSpec(True),
                    extra={"FunctionArn": arn, "OutputParameters": [{"OutputName": "ok", "OutputType": "Boolean"}]})
    key = cache_key(spec, {"x": 2}, session.store)
    assert key is not None and key.parts["Arguments"] == {"x": 2} and key.parts["FunctionArn"] == arn
    assert _key(spec, {"x": 3}, session.store) != key.digest
    module.write_text("def handler(event, context):\n    return {'ok': event['x'] > 2}\n")
    assert _key(spec, {"x": 2}, session.store) != key.digest


# ---- ExpireAfter and CacheConfig checks -------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "seconds"), [
    ("P30D", 30 * 86400), ("PT1H", 3600), ("P4DT12H", 4 * 86400 + 12 * 3600), ("p30d", 30 * 86400),
    ("30d", 30 * 86400), ("T16m", 16 * 60), ("30dT5h", 30 * 86400 + 5 * 3600), ("P1W", 7 * 86400),
    ("5y", 5 * 365 * 86400), ("P1M", 30 * 86400), ("PT90S", 90), (" P1D ", 86400),
])
def test_expire_after_reads_the_lenient_forms_the_devguide_shows(text, seconds):
    assert parse_expire_after(text) == seconds


@pytest.mark.parametrize("text", ["", "P", "PT", "T", "thirty days", "30", "P30X", "-P1D", "P1.5D", "1 day"])
def test_a_malformed_expire_after_is_refused_with_the_forms_to_use(text):
    with pytest.raises(PipelineError, match=r"is not an ISO-8601 duration; write e\.g\. 'P30D'"):
        parse_expire_after(text)


def test_expire_after_must_be_a_string_and_none_means_never():
    assert parse_expire_after(None) is None
    with pytest.raises(PipelineError, match=r"must be an ISO-8601 duration string such as 'P30D', not 30"):
        parse_expire_after(30)  # type: ignore[arg-type]


def test_check_cache_config_names_every_problem_before_anything_runs():
    def step(kind: StepType, enabled: bool, expire: str | None) -> StepSpec:
        return StepSpec("S", kind, {}, cache_config=CacheSpec(enabled, expire))

    assert check_cache_config(step(StepType.TRAINING, True, "P30D")) == []
    assert check_cache_config(step(StepType.TRAINING, True, None)) == []
    assert check_cache_config(step(StepType.TRAINING, False, "soon")) == []  # off: nothing is read
    assert check_cache_config(StepSpec("S", StepType.PROCESSING, {})) == []
    (bad,) = check_cache_config(step(StepType.PROCESSING, True, "soon"))
    assert "ExpireAfter 'soon' is not an ISO-8601 duration" in bad
    (zero,) = check_cache_config(step(StepType.TRANSFORM, True, "P0D"))
    assert "is zero, so no earlier run could ever be reused" in zero
    (never,) = check_cache_config(step(StepType.CONDITION, True, "P1D"))
    assert never.startswith("CacheConfig enables caching, but Condition steps are never cached")
    assert "remove the CacheConfig" in never


# ---- explain ------------------------------------------------------------------------------------------------------

def _entry(key: Any, execution: str, at: float) -> CacheEntry:
    return CacheEntry(1, "p", "Prep", key.digest, key.parts, execution, {}, at)


def test_explain_a_hit_names_the_execution_it_reused_and_when(session):
    spec, request = _processing(session.store)
    key = cache_key(spec, request, session.store)
    now = time.time()
    entry = _entry(key, "arn:exec/first", now - 7200)
    why = explain(key.digest, key.parts, hit=entry, candidates=[entry], expire_after=86400, started_at=now)
    assert why.hit and why.outcome is CacheOutcome.HIT and why.entry == entry
    assert why.summary.startswith("Cache hit: reused the run of execution arn:exec/first, which succeeded at ")
    assert why.summary.endswith(", 2 h before this run.")


def test_explain_a_miss_with_no_earlier_run(session):
    spec, request = _processing(session.store)
    key = cache_key(spec, request, session.store)
    why = explain(key.digest, key.parts, hit=None, candidates=[], started_at=time.time())
    assert why.outcome is CacheOutcome.NO_EARLIER_RUN
    assert why.summary == "Cache miss: there is no earlier successful run of this step in this pipeline to reuse."


def test_explain_a_miss_whose_matching_run_had_expired(session):
    spec, request = _processing(session.store)
    key = cache_key(spec, request, session.store)
    now = time.time()
    entry = _entry(key, "arn:exec/old", now - 2 * 86400)
    why = explain(key.digest, key.parts, hit=None, candidates=[entry], expire_after=86400, started_at=now)
    assert why.outcome is CacheOutcome.EXPIRED and why.entry == entry
    assert "execution arn:exec/old" in why.summary and "had expired" in why.summary


def test_explain_a_miss_while_the_same_key_was_still_running(session):
    spec, request = _processing(session.store)
    key = cache_key(spec, request, session.store)
    now = time.time()
    twin = CacheEntry(2, "p", "Prep", key.digest, key.parts, "arn:exec/twin", {"StartTime": now - 10}, now + 30)
    mine = CacheEntry(3, "p", "Prep", key.digest, key.parts, "arn:exec/me", {"StartTime": now}, now + 40)
    why = explain(key.digest, key.parts, hit=None, candidates=[mine, twin], started_at=now,
                  execution_arn="arn:exec/me")
    assert why.outcome is CacheOutcome.CONCURRENT and why.entry == twin and "after this run started" in why.summary
    later = CacheEntry(4, "p", "Prep", key.digest, key.parts, "arn:exec/later", {"StartTime": now + 50}, now + 60)
    assert explain(key.digest, key.parts, hit=None, candidates=[later, mine], started_at=now,
                   execution_arn="arn:exec/me").outcome is CacheOutcome.NO_EARLIER_RUN


def test_explain_compares_with_the_nearest_earlier_run_and_lists_old_and_new_values(session):
    store = session.store
    spec, request = _processing(store)
    base = cache_key(spec, request, store)
    far = cache_key(spec, _changed(_changed(request, "Environment.MODE", "x"), "AppSpecification.ImageUri", "y"),
                    store)
    now_request = _changed(request, "Environment.MODE", "quick")
    now_request["ProcessingInputs"][0]["InputName"] = "raw"  # lists of named elements are compared by name
    now_request["ProcessingInputs"][0]["S3Input"]["LocalPath"] = "/opt/ml/processing/raw"
    now = cache_key(spec, now_request, store)
    t = time.time()
    candidates = [_entry(far, "arn:exec/newest-but-far", t - 10), _entry(base, "arn:exec/nearest", t - 20)]
    why = explain(now.digest, now.parts, hit=None, candidates=candidates, started_at=t)
    assert why.outcome is CacheOutcome.CHANGED and why.entry.execution_arn == "arn:exec/nearest"
    assert why.details == (
        "Environment.MODE: 'full' -> 'quick'",
        "ProcessingInputs['raw'].S3Input.LocalPath: '/opt/ml/processing/input' -> '/opt/ml/processing/raw'",
    )
    assert "differs in 2 places" in why.summary


def test_explain_says_when_caching_is_off_or_the_step_type_is_never_cached():
    assert explain(None, None, hit=None, candidates=[], enabled=False).outcome is CacheOutcome.DISABLED
    why = explain(None, None, hit=None, candidates=[], step_type=StepType.CONDITION)
    assert why.outcome is CacheOutcome.NOT_CACHEABLE and why.summary == "Not cached: Condition steps are never cached."


def test_explain_step_reads_the_step_record_and_the_cache_entries_on_record(session):
    store, metadata = session.store, session.metadata
    spec, request = _processing(store)
    first = cache_key(spec, request, store)
    metadata.add_cache_entry("demo", "Prep", first.digest, first.parts, "arn:exec/first", {"StepStatus": "Succeeded"})
    _put(store, "code/prep.py", b"print('changed')\n")
    second = cache_key(spec, request, store)
    started = time.time() + 1  # the entry above was made before this run
    record = {"StepName": "Prep", "StartTime": started, "CacheKey": {"Digest": second.digest, "Parts": second.parts}}
    why = explain_step(metadata, "demo", spec, record, execution_arn="arn:exec/second")
    assert why.outcome is CacheOutcome.CHANGED
    assert why.details[0].startswith(f"code s3://{BUCKET}/code/prep.py: its bytes changed (")
    metadata.add_cache_entry("demo", "Prep", second.digest, second.parts, "arn:exec/second", {})
    hit_record = {"StepName": "Prep", "StartTime": time.time() + 1, "CacheKey": record["CacheKey"],
                  "CacheHitResult": {"SourcePipelineExecutionArn": "arn:exec/second"}}
    hit = explain_step(metadata, "demo", spec, hit_record, execution_arn="arn:exec/third")
    assert hit.hit and hit.entry is not None and hit.entry.execution_arn == "arn:exec/second"


# ---- definitions stable enough to cache (#2736) ------------------------------------------------------------------

ROLE = "arn:aws:iam::111111111111:role/R"
XGB = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The blog pipeline's local files: a data directory, a script, and two source directories."""
    src = tmp_path / "project"
    for name, text in {"data/abalone.csv": "M,0.455,15\n", "preprocess.py": "print('split')\n",
                       "train/train.py": "print('fit')\n", "train/requirements.txt": "scikit-learn\n",
                       "eval/evaluate.py": "print('score')\n"}.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    return src


def build_blog_pipeline(src: Path) -> Pipeline:
    """The SageMaker blog's abalone pipeline, through sluice's own facade under a fresh PipelineSession:
    processing with a local input and a script, framework training from a source_dir, a FrameworkProcessor
    evaluation with a property file, a condition, a model created and registered, and a fail step."""
    session = PipelineSession(default_bucket=BUCKET)
    count = ParameterInteger("ProcessingInstanceCount", default_value=1)
    threshold = ParameterFloat("MseThreshold", default_value=6.0)
    cache = CacheConfig(enable_caching=True, expire_after="P30D")
    processor = SKLearnProcessor(framework_version="1.2-1", role=ROLE, instance_type="ml.m5.xlarge",
                                 instance_count=count, base_job_name="abalone-process", sagemaker_session=session)
    process = ProcessingStep("Process", cache_config=cache, step_args=processor.run(
        code=str(src / "preprocess.py"),
        inputs=[ProcessingInput(source=str(src / "data"), destination="/opt/ml/processing/input")],
        outputs=[ProcessingOutput(output_name="train", source="/opt/ml/processing/train"),
                 ProcessingOutput(output_name="test", source="/opt/ml/processing/test")]))
    estimator = SKLearn(entry_point="train.py", source_dir=str(src / "train"), framework_version="1.2-1",
                        role=ROLE, instance_count=1, instance_type="ml.m5.xlarge",
                        hyperparameters={"max_depth": 3}, sagemaker_session=session)
    train = TrainingStep("Train", cache_config=cache, step_args=estimator.fit({"train": TrainingInput(
        process.properties.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri, content_type="text/csv")}))
    report = PropertyFile(name="EvaluationReport", output_name="evaluation", path="evaluation.json")
    evaluator = FrameworkProcessor(SKLearn, "1.2-1", role=ROLE, instance_count=1, instance_type="ml.m5.xlarge",
                                   sagemaker_session=session)
    evaluate = ProcessingStep("Evaluate", property_files=[report], cache_config=cache, step_args=evaluator.run(
        code="evaluate.py", source_dir=str(src / "eval"),
        inputs=[ProcessingInput(source=train.properties.ModelArtifacts.S3ModelArtifacts,
                                destination="/opt/ml/processing/model"),
                ProcessingInput(source=process.properties.ProcessingOutputConfig.Outputs["test"].S3Output.S3Uri,
                                destination="/opt/ml/processing/test")],
        outputs=[ProcessingOutput(output_name="evaluation", source="/opt/ml/processing/evaluation")]))
    model = Model(image_uri=XGB, model_data=train.properties.ModelArtifacts.S3ModelArtifacts, role=ROLE,
                  sagemaker_session=session)
    create = ModelStep("CreateModel", step_args=model.create(instance_type="ml.m5.large"))
    register = ModelStep("Register", step_args=model.register(
        content_types=["text/csv"], response_types=["text/csv"], inference_instances=["ml.m5.large"],
        transform_instances=["ml.m5.large"], model_package_group_name="AbaloneModels"))
    fail = FailStep("MseTooHigh", error_message=Join(on=" ", values=["MSE above", threshold]))
    check = ConditionStep("CheckMSE", conditions=[ConditionLessThanOrEqualTo(
        JsonGet(step_name=evaluate.name, property_file=report, json_path="regression_metrics.mse.value"), threshold)],
        if_steps=[create, register], else_steps=[fail])
    return Pipeline("abalone", parameters=[count, threshold], steps=[process, train, evaluate, check],
                    sagemaker_session=session)


def _steps(definition: str) -> dict[str, dict[str, Any]]:
    return {name: {"Arguments": spec.arguments} for name, spec in parse_definition(definition).graph.items()}


def test_building_the_same_pipeline_twice_gives_byte_identical_definitions(sluice_home, project):
    first = build_blog_pipeline(project).definition()
    second = build_blog_pipeline(project).definition()  # new session, new facade objects, new job names
    assert second == first
    steps = _steps(first)
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in steps["Process"]["Arguments"]["ProcessingInputs"]}
    assert inputs["input-1"] == f"s3://{BUCKET}/abalone/Process/input/input-1"  # contract 5.15
    code_hash = inputs["code"].split("/")[-2]
    assert inputs["code"] == f"s3://{BUCKET}/abalone/code/{code_hash}/preprocess.py" and len(code_hash) == 64
    hyperparameters = steps["Train"]["Arguments"]["HyperParameters"]
    assert "sagemaker_job_name" not in hyperparameters
    assert json.loads(hyperparameters["sagemaker_submit_directory"]).startswith(f"s3://{BUCKET}/abalone/code/")
    evaluation = {i["InputName"]: i["S3Input"]["S3Uri"] for i in steps["Evaluate"]["Arguments"]["ProcessingInputs"]}
    assert evaluation["code"].endswith("/sourcedir.tar.gz") and evaluation["entrypoint"].endswith("/runproc.sh")
    assert all(evaluation[n].startswith(f"s3://{BUCKET}/abalone/code/") for n in ("code", "entrypoint"))


def test_rebuilt_steps_keep_their_cache_key_and_a_code_change_moves_only_that_code(sluice_home, project):
    session = Session(default_bucket=BUCKET)
    before = _steps(build_blog_pipeline(project).definition())
    again = _steps(build_blog_pipeline(project).definition())
    spec = StepSpec("Process", StepType.PROCESSING, before["Process"]["Arguments"], cache_config=CacheSpec(True))
    defaults = {"ProcessingInstanceCount": 1, "MseThreshold": 6.0}
    keys = [_key(spec, _resolve(s["Process"]["Arguments"], run, defaults), session.store)
            for s, run in ((before, "0f1e2d3c4b5a"), (again, "9a8b7c6d5e4f"))]
    assert keys[0] == keys[1]  # rebuilt and run again: a cache hit
    (project / "train" / "train.py").write_text("print('fit, deeper')\n")
    changed = _steps(build_blog_pipeline(project).definition())
    assert changed["Process"] == before["Process"] and changed["Evaluate"] == before["Evaluate"]
    old, new = before["Train"]["Arguments"], changed["Train"]["Arguments"]
    assert old["HyperParameters"]["sagemaker_submit_directory"] != new["HyperParameters"]["sagemaker_submit_directory"]
    old["HyperParameters"].pop("sagemaker_submit_directory")
    new["HyperParameters"].pop("sagemaker_submit_directory")
    assert new == old



def test_a_tuning_step_built_twice_is_identical_and_names_no_job(sluice_home, project):
    from sluice.tuner import ContinuousParameter, HyperparameterTuner
    from sluice.workflow.steps import TuningStep

    def build() -> str:
        session = PipelineSession(default_bucket=BUCKET)
        estimator = SKLearn(entry_point="train.py", source_dir=str(project / "train"), framework_version="1.2-1",
                            role=ROLE, instance_count=1, instance_type="ml.m5.xlarge", sagemaker_session=session)
        tuner = HyperparameterTuner(estimator, "val:acc", {"lr": ContinuousParameter(0.01, 0.1)},
                                    metric_definitions=[{"Name": "val:acc", "Regex": "acc=([0-9.]+)"}],
                                    max_jobs=2, max_parallel_jobs=1)
        step = TuningStep("Tune", step_args=tuner.fit(f"s3://{BUCKET}/train/"))
        return Pipeline("tuned", steps=[step], sagemaker_session=session).definition()

    first = build()
    assert build() == first
    static = _steps(first)["Tune"]["Arguments"]["TrainingJobDefinition"]["StaticHyperParameters"]
    assert "sagemaker_job_name" not in static
    assert json.loads(static["sagemaker_submit_directory"]).startswith(f"s3://{BUCKET}/tuned/code/")
