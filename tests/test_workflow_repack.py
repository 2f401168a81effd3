"""The repack step: a model with ``entry_point`` whose ``model_data`` is a training step's output.

As in the SageMaker SDK, ``ModelStep`` then starts with ``<name>-RepackModel-0``, a Training step in the
scikit-learn image whose job unpacks the trained archive, adds the model's code under ``code/`` and writes
the result as its own ``model.tar.gz``; the Model (or RegisterModel) step points its ``ModelDataUrl`` at
that job's ``ModelArtifacts.S3ModelArtifacts``. The tests check the definition against the SDK's shape, run
one small pipeline end to end (training, two repack jobs, a transform through the entry point's handlers, a
registration), check that rebuilding gives the same definition, and check the refusals.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import textwrap
from pathlib import Path
from typing import Any

import pytest

import sluice
from sluice.errors import PipelineError, SpecError
from sluice.estimator import Estimator
from sluice.model import Model
from sluice.storage import S3Uri
from sluice.transformer import Transformer
from sluice.workflow.model_step import ModelStep
from sluice.workflow.pipeline import Pipeline
from sluice.workflow.pipeline_context import LocalPipelineSession, PipelineSession
from sluice.workflow.step_collections import RegisterModel
from sluice.workflow.steps import CreateModelStep, TrainingStep, TransformStep

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
REPACK_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:0.23-1-cpu-py3"
ROLE = "arn:aws:iam::111111111111:role/R"

# The training job writes its "weights" and, as some training scripts do, a code/ folder of its own, which
# the repack must replace rather than merge with.
TRAIN = textwrap.dedent(
    """
    import argparse, json, os, pathlib
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float)
    args, _ = parser.parse_known_args()
    model_dir = pathlib.Path(os.environ["SM_MODEL_DIR"])
    (model_dir / "weights.json").write_text(json.dumps({"scale": args.scale}))
    (model_dir / "code").mkdir()
    (model_dir / "code" / "stale.py").write_text("raise RuntimeError('the old code must not be served')\\n")
    """
)
# The entry point's own input_fn / predict_fn / output_fn; it imports a module of its source_dir and a
# dependency, so both must have been repacked beside it.
INFERENCE = textwrap.dedent(
    """
    import json, os
    from parsing import numbers
    from units import label
    def model_fn(model_dir):
        return json.loads(open(os.path.join(model_dir, "weights.json")).read())["scale"]
    def input_fn(body, content_type):
        return numbers(body)
    def predict_fn(data, model):
        return [x * model for x in data]
    def output_fn(prediction, accept):
        return "".join(f"{label()}:{p}\\n" for p in prediction), "text/csv"
    """
)
PARSING = "def numbers(body):\n    return [float(line) for line in body.split()]\n"
UNITS = "def label():\n    return 'scaled'\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A training script, and the model's inference code in a source_dir with a dependency beside it."""
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "train.py").write_text(TRAIN)
    (tmp_path / "serve").mkdir()
    (tmp_path / "serve" / "inference.py").write_text(INFERENCE)
    (tmp_path / "serve" / "parsing.py").write_text(PARSING)
    (tmp_path / "units.py").write_text(UNITS)
    return tmp_path


def build(session: PipelineSession, project: Path, with_transform: bool = True) -> Pipeline:
    """Training -> ModelStep(model.create) -> TransformStep, and ModelStep(model.register), the model having
    entry_point + source_dir + dependencies and the training step's archive as its model_data."""
    bucket = session.default_bucket()
    est = Estimator(image_uri=SKLEARN_IMAGE, entry_point="train.py", source_dir=str(project / "train"), role=ROLE,
                    instance_count=1, instance_type="ml.m5.large", hyperparameters={"scale": 3},
                    output_path=f"s3://{bucket}/trained", sagemaker_session=session)
    train = TrainingStep("Train", step_args=est.fit())
    model = Model(image_uri=SKLEARN_IMAGE, model_data=train.properties.ModelArtifacts.S3ModelArtifacts,
                  source_dir=str(project / "serve"), entry_point="inference.py",
                  dependencies=[str(project / "units.py")], role=ROLE, sagemaker_session=session)
    serve = ModelStep("Serve", step_args=model.create(instance_type="ml.m5.large"))
    keep = ModelStep("Keep", step_args=model.register(content_types=["text/csv"], response_types=["text/csv"],
                                                       model_package_group_name="repacked"))
    steps: list[Any] = [train, serve, keep]
    if with_transform:
        transformer = Transformer(model_name=serve.properties.ModelName, instance_count=1,
                                  instance_type="ml.m5.large", output_path=f"s3://{bucket}/scored",
                                  sagemaker_session=session)
        steps.append(TransformStep("Score", step_args=transformer.transform(
            f"s3://{bucket}/batch/numbers.csv", content_type="text/csv", split_type="Line")))
    return Pipeline("repacked", steps=steps, sagemaker_session=session)


def steps_of(definition: str) -> dict[str, dict[str, Any]]:
    return {s["Name"]: s for s in json.loads(definition)["Steps"]}


def members(session: PipelineSession, uri: str) -> dict[str, bytes]:
    where = S3Uri.parse(uri)
    with tarfile.open(fileobj=io.BytesIO(session.store.get_bytes(where.bucket, where.key)), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


# ---- the definition ----------------------------------------------------------------------------------------

def test_the_definition_has_the_sdks_repack_step_before_the_model_and_register_steps(sluice_home, project):
    session = PipelineSession()
    steps = steps_of(build(session, project).definition())
    assert list(steps) == ["Train", "Serve-RepackModel-0", "Serve-CreateModel", "Keep-RepackModel-0",
                           "Keep-RegisterModel", "Score"]

    repack = steps["Serve-RepackModel-0"]
    assert repack["Type"] == "Training"
    args = repack["Arguments"]
    trained = {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert args["AlgorithmSpecification"]["TrainingImage"] == REPACK_IMAGE  # the SDK's SKLearn 0.23-1
    assert args["ResourceConfig"] == {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30}
    assert args["InputDataConfig"] == [{"ChannelName": "training", "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": trained, "S3DataDistributionType": "FullyReplicated"}}}]
    hps = args["HyperParameters"]
    assert hps["inference_script"] == '"inference.py"'
    assert hps["model_archive"] == {"Std:Join": {"On": "", "Values": [trained]}}
    assert hps["dependencies"] == json.dumps(str(project / "units.py"))
    assert hps["source_dir"] == json.dumps(str(project / "serve"))
    assert hps["sagemaker_program"] == '"_repack_script_launcher.sh"'
    assert "TrainingJobName" not in args and "sagemaker_job_name" not in hps
    assert args["OutputDataConfig"]["S3OutputPath"] == f"s3://{session.default_bucket()}/repacked/Serve-RepackModel-0"

    # The repack job's code: the launcher, sluice's script, the model's code under model/code/.
    bundle = members(session, json.loads(hps["sagemaker_submit_directory"]))
    assert sorted(bundle) == ["_repack_model.py", "_repack_script_launcher.sh", "model/code/inference.py",
                              "model/code/parsing.py", "model/code/units.py"]
    assert bundle["model/code/inference.py"].decode() == INFERENCE

    env = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
           "SAGEMAKER_CONTAINER_LOG_LEVEL": "20", "SAGEMAKER_REGION": "us-east-1"}
    container = steps["Serve-CreateModel"]["Arguments"]["PrimaryContainer"]
    assert container == {"Image": SKLEARN_IMAGE, "Environment": env,
                         "ModelDataUrl": {"Get": "Steps.Serve-RepackModel-0.ModelArtifacts.S3ModelArtifacts"}}
    registered = steps["Keep-RegisterModel"]["Arguments"]["InferenceSpecification"]["Containers"][0]
    assert registered["ModelDataUrl"] == {"Get": "Steps.Keep-RepackModel-0.ModelArtifacts.S3ModelArtifacts"}
    assert registered["Environment"] == env
    assert steps["Score"]["Arguments"]["ModelName"] == {"Get": "Steps.Serve-CreateModel.ModelName"}


def test_depends_on_and_retry_policies_go_to_the_steps_the_sdk_gives_them(sluice_home, project):
    from sluice.workflow.retry import (
        SageMakerJobExceptionTypeEnum,
        SageMakerJobStepRetryPolicy,
        StepExceptionTypeEnum,
        StepRetryPolicy,
    )

    session = PipelineSession()
    train = TrainingStep("Train", step_args=Estimator(
        image_uri=SKLEARN_IMAGE, entry_point="train.py", source_dir=str(project / "train"), role=ROLE,
        instance_count=1, instance_type="ml.m5.large", sagemaker_session=session).fit())
    model = Model(image_uri=SKLEARN_IMAGE, model_data=train.properties.ModelArtifacts.S3ModelArtifacts,
                  source_dir=str(project / "serve"), entry_point="inference.py", role=ROLE, sagemaker_session=session)
    repack_retry = SageMakerJobStepRetryPolicy([SageMakerJobExceptionTypeEnum.CAPACITY_ERROR], max_attempts=2)
    create_retry = StepRetryPolicy([StepExceptionTypeEnum.THROTTLING], max_attempts=2)
    step = ModelStep("Serve", step_args=model.create(), depends_on=["Train"],
                     retry_policies={"repack_model_retry_policies": [repack_retry],
                                     "create_model_retry_policies": [create_retry]},
                     repack_model_step_settings={"instance_type": "ml.m5.xlarge", "volume_size": 5})
    steps = steps_of(Pipeline("deps", steps=[train, step], sagemaker_session=session).definition())
    assert steps["Serve-RepackModel-0"]["DependsOn"] == ["Train"]
    assert "DependsOn" not in steps["Serve-CreateModel"]  # it waits on the repack step through ModelDataUrl
    assert steps["Serve-RepackModel-0"]["RetryPolicies"] == [repack_retry.to_request()]
    assert steps["Serve-CreateModel"]["RetryPolicies"] == [create_retry.to_request()]
    assert steps["Serve-RepackModel-0"]["Arguments"]["ResourceConfig"] == {
        "InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 5}
    assert step.properties.ModelName.expr == {"Get": "Steps.Serve-CreateModel.ModelName"}


# ---- rebuilding ----------------------------------------------------------------------------------------------

def test_rebuilding_gives_the_same_definition_and_changed_code_moves_only_the_bundle(sluice_home, project):
    first = build(PipelineSession(), project).definition()
    os.utime(project / "serve" / "inference.py", (1_000_000_000, 1_000_000_000))  # touched, same bytes
    assert build(PipelineSession(), project).definition() == first

    (project / "serve" / "parsing.py").write_text(PARSING + "# changed\n")
    after, before = steps_of(build(PipelineSession(), project).definition()), steps_of(first)
    for name in ("Serve-RepackModel-0", "Keep-RepackModel-0"):
        old, new = before[name]["Arguments"]["HyperParameters"], after[name]["Arguments"]["HyperParameters"]
        assert new.pop("sagemaker_submit_directory") != old.pop("sagemaker_submit_directory")
        assert new == old
        assert after[name]["Arguments"]["OutputDataConfig"] == before[name]["Arguments"]["OutputDataConfig"]
    for name in ("Train", "Serve-CreateModel", "Keep-RegisterModel", "Score"):
        assert after[name] == before[name]


# ---- running it ----------------------------------------------------------------------------------------------

def _job(session: Any, steps: list[dict[str, Any]], name: str, kind: str) -> str:
    arn = next(s for s in steps if s["StepName"] == name)["Metadata"][kind]["Arn"]
    return arn.rsplit("/", 1)[-1]


def test_the_model_is_repacked_at_run_time_and_transform_and_registry_use_its_entry_point(sluice_home, project):
    session = LocalPipelineSession()
    bucket = session.default_bucket()
    session.store.put(bucket, "batch/numbers.csv", b"1\n2\n3\n")
    pipeline = build(session, project)
    pipeline.upsert(role_arn=ROLE)
    execution = pipeline.start()
    execution.wait(show=False)
    steps = execution.list_steps()["PipelineExecutionSteps"]
    assert {s["StepName"]: s["StepStatus"] for s in steps} == dict.fromkeys(
        ["Train", "Serve-RepackModel-0", "Serve-CreateModel", "Keep-RepackModel-0", "Keep-RegisterModel", "Score"],
        "Succeeded")

    # The transform ran the entry point's input_fn, predict_fn and output_fn, with the trained weights.
    scored = session.store.get_bytes(bucket, "scored/numbers.csv.out").decode()
    assert scored.split() == ["scaled:3.0", "scaled:6.0", "scaled:9.0"]

    # The model serves the repack job's archive: the trained files plus the new code, the old code/ gone.
    trained = session.describe_training_job(_job(session, steps, "Train", "TrainingJob"))
    repack = session.describe_training_job(_job(session, steps, "Serve-RepackModel-0", "TrainingJob"))
    assert repack["AlgorithmSpecification"]["TrainingImage"] == REPACK_IMAGE
    repacked = repack["ModelArtifacts"]["S3ModelArtifacts"]
    assert repacked != trained["ModelArtifacts"]["S3ModelArtifacts"]
    transform = session.describe_transform_job(_job(session, steps, "Score", "TransformJob"))
    model = session.describe_model(transform["ModelName"])
    created = next(s for s in steps if s["StepName"] == "Serve-CreateModel")
    assert model["ModelArn"] == created["Metadata"]["Model"]["Arn"]
    assert model["PrimaryContainer"]["ModelDataUrl"] == repacked
    files = members(session, repacked)
    assert sorted(files) == ["code/inference.py", "code/parsing.py", "code/units.py", "weights.json"]
    assert json.loads(files["weights.json"]) == {"scale": 3.0}

    # The registered version holds its own repack job's archive and the entry point's environment.
    package = session.describe_model_package(
        next(s for s in steps if s["StepName"] == "Keep-RegisterModel")["Metadata"]["RegisterModel"]["Arn"])
    container = package["InferenceSpecification"]["Containers"][0]
    kept = session.describe_training_job(_job(session, steps, "Keep-RepackModel-0", "TrainingJob"))
    assert container["ModelDataUrl"] == kept["ModelArtifacts"]["S3ModelArtifacts"] != repacked
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert sorted(members(session, container["ModelDataUrl"])) == sorted(files)


# ---- refusals ----------------------------------------------------------------------------------------------

def _trained_model(session: PipelineSession, project: Path, **kwargs: Any) -> tuple[TrainingStep, Model]:
    train = TrainingStep("Train", step_args=Estimator(
        image_uri=SKLEARN_IMAGE, entry_point="train.py", source_dir=str(project / "train"), role=ROLE,
        instance_count=1, instance_type="ml.m5.large", sagemaker_session=session).fit())
    model = Model(image_uri=SKLEARN_IMAGE, model_data=train.properties.ModelArtifacts.S3ModelArtifacts, role=ROLE,
                  sagemaker_session=session, **kwargs)
    return train, model


def test_a_missing_entry_point_is_refused_when_the_model_step_is_made(sluice_home, project):
    _, model = _trained_model(PipelineSession(), project, source_dir=str(project / "serve"), entry_point="serve.py")
    with pytest.raises(SpecError, match=r"entry_point 'serve.py' was not found in source_dir"):
        ModelStep("Serve", step_args=model.create())
    _, model = _trained_model(PipelineSession(), project, entry_point="inference.py",
                              source_dir=str(project / "serve"), dependencies=[str(project / "nowhere.py")])
    with pytest.raises(SpecError, match=r"dependency '.*nowhere.py' does not exist"):
        ModelStep("Serve", step_args=model.create())


def test_repack_settings_the_step_sets_itself_are_refused(sluice_home, project):
    _, model = _trained_model(PipelineSession(), project, source_dir=str(project / "serve"), entry_point="inference.py")
    with pytest.raises(PipelineError, match=r"hyperparameters, output_path cannot be set for the repack job"):
        ModelStep("Serve", step_args=model.create(),
                  repack_model_step_settings={"hyperparameters": {"a": 1}, "output_path": "s3://b/x"})


def test_steps_that_cannot_hold_a_repack_step_refuse_such_a_model_and_name_model_step(sluice_home, project):
    session = PipelineSession()
    _, model = _trained_model(session, project, source_dir=str(project / "serve"), entry_point="inference.py")
    with pytest.raises(PipelineError, match=r"ModelStep adds the repack step"):
        CreateModelStep("Old", model=model)
    with pytest.raises(PipelineError, match=r"only ModelStep adds.*ModelStep\(name, step_args=model.register"):
        RegisterModel("Old", content_types=["text/csv"], response_types=["text/csv"], model=model,
                      model_package_group_name="g")
    with pytest.raises(PipelineError, match=r"ModelStep adds the repack step"):
        Model(image_uri=SKLEARN_IMAGE, model_data=model.model_data, entry_point="inference.py",
              source_dir=str(project / "serve"), role=ROLE, sagemaker_session=sluice.Session()).create()


def test_a_repack_job_that_cannot_unpack_the_archive_fails_its_step_saying_why(sluice_home, project):
    from sluice.workflow.parameters import ParameterString

    session = LocalPipelineSession()
    bucket = session.default_bucket()
    session.store.put(bucket, "weights/model.tar.gz", b"these are not the bytes of a tar.gz")
    model_data = ParameterString("ModelData", default_value=f"s3://{bucket}/weights/model.tar.gz")
    model = Model(image_uri=SKLEARN_IMAGE, model_data=model_data, source_dir=str(project / "serve"),
                  entry_point="inference.py", role=ROLE, sagemaker_session=session)
    pipeline = Pipeline("broken", parameters=[model_data], sagemaker_session=session,
                        steps=[ModelStep("Serve", step_args=model.create())])
    pipeline.upsert(role_arn=ROLE)
    execution = pipeline.start()
    with pytest.raises(PipelineError):
        execution.wait(show=False)
    steps = {s["StepName"]: s for s in execution.list_steps()["PipelineExecutionSteps"]}
    assert steps["Serve-RepackModel-0"]["StepStatus"] == "Failed"
    assert "the model archive model.tar.gz cannot be unpacked" in steps["Serve-RepackModel-0"]["FailureReason"]
    assert "Serve-CreateModel" not in steps  # the model is never created from the unrepacked archive
