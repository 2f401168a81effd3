"""The Tuning, Transform, Model (CreateModel), RegisterModel and Lambda step runners.

Each runner is called directly first (a compiled StepSpec, a StepContext, arguments resolved by hand), then
the step types run in small pipelines through ``upsert()`` / ``start()`` / ``wait()``, reading each other's
properties: Training -> Model -> Transform, Tuning -> Model (the best trial, and the second best through
``get_top_model_s3_uri``), RegisterModel -> Lambda -> Condition. Jobs are real and tiny.
"""

from __future__ import annotations

import contextlib
import io
import json
import secrets
import tarfile
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

import sluice
from sluice.errors import PipelineError
from sluice.estimator import Estimator
from sluice.model import Model
from sluice.tuner import CategoricalParameter, HyperparameterTuner
from sluice.workflow.condition_step import ConditionStep
from sluice.workflow.conditions import ConditionEquals
from sluice.workflow.fail_step import FailStep
from sluice.workflow.functions import Join
from sluice.workflow.graph import StepSpec, StepType, parse_definition
from sluice.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum, LambdaStep, register_local_function
from sluice.workflow.model_step import ModelStep
from sluice.workflow.parameters import ParameterInteger, ParameterString
from sluice.workflow.pipeline import Pipeline
from sluice.workflow.pipeline_context import PipelineSession
from sluice.workflow.runners import RUNNERS, StepContext, StepFailed
from sluice.workflow.runners.base import job_name
from sluice.workflow.runners.jobs import ranked_training_jobs, run_transform
from sluice.workflow.runners.lambda_ import run_lambda
from sluice.workflow.runners.models import run_create_model, run_register_model
from sluice.workflow.steps import TrainingStep, TuningStep
from tests.pipelines import INFERENCE, TRAIN

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ROLE = sluice.get_execution_role()

# A tuning trial: its objective is -(x - 2)^2; with x == 3 it completes without printing it.
TRIAL = textwrap.dedent(
    """
    import argparse, pathlib
    p = argparse.ArgumentParser()
    p.add_argument("-x", type=float)
    a, _ = p.parse_known_args()
    if a.x != 3:
        print(f"score={-(a.x - 2) ** 2}")
    pathlib.Path("/opt/ml/model/x.txt").write_text(str(a.x))
    """
)


@pytest.fixture
def sess(sluice_home: Path) -> PipelineSession:
    return PipelineSession()


def model_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def uploaded_model(sess: PipelineSession, key: str = "artifacts/model.tar.gz") -> str:
    bucket = sess.default_bucket()
    sess.store.put(bucket, key, model_tar({"model.txt": b"weights"}))
    return f"s3://{bucket}/{key}"


def context(sess: PipelineSession, spec: StepSpec, *, recorded: list[dict[str, Any]] | None = None,
            stop: threading.Event | None = None) -> StepContext:
    """What the scheduler gives a runner for one attempt of ``spec``."""
    execution_id = secrets.token_hex(6)
    extra: dict[str, Any] = {"stop": stop} if stop is not None else {}
    return StepContext(session=sess, config=sess.config, pipeline_name="p", execution_id=execution_id,
                       execution_arn=f"arn:aws:sagemaker:us-east-1:000000000000:pipeline/p/execution/{execution_id}",
                       spec=spec, job_name=job_name(execution_id, spec.name),
                       record_metadata=(recorded.append if recorded is not None else lambda m: None), **extra)


def compiled(sess: PipelineSession, *steps: Any, parameters: list[Any] | None = None) -> dict[str, StepSpec]:
    return Pipeline(name="p", parameters=parameters or [], steps=list(steps), sagemaker_session=sess).compile().graph


def run(pipeline: Pipeline, **start_kwargs: Any) -> Any:
    pipeline.upsert(role_arn=ROLE)
    execution = pipeline.start(**start_kwargs)
    with contextlib.suppress(PipelineError):  # a Failed run raises; the tests read describe() instead
        execution.wait(show=False)
    return execution


def steps_by_name(execution: Any) -> dict[str, dict[str, Any]]:
    return {s["StepName"]: s for s in execution.list_steps()}


def resource_named(sess: PipelineSession, kind: str, arn: str) -> dict[str, Any]:
    """The resource whose ARN a step's Metadata gives (ARNs are lower-cased, names are not)."""
    return next(r.record for r in sess.metadata.list_resources(kind) if r.name.lower() == arn.split("/", 1)[-1])


def shape_members(operation: str) -> set[str]:
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return set(model.operation_model(operation).output_shape.members)


def test_every_step_type_of_this_module_has_a_runner():
    assert {StepType.TUNING, StepType.TRANSFORM, StepType.CREATE_MODEL, StepType.REGISTER_MODEL,
            StepType.LAMBDA} <= set(RUNNERS)


# ---- Model (CreateModel) ---------------------------------------------------------------------------------

def test_a_model_step_records_a_model_of_its_own_for_each_run(sess):
    data = uploaded_model(sess)
    threads = ParameterInteger("Threads", default_value=2)
    model = Model(image_uri=SKLEARN_IMAGE, model_data=data, env={"THREADS": threads}, role=ROLE,
                  sagemaker_session=sess)
    spec = compiled(sess, ModelStep("M", step_args=model.create(instance_type="ml.m5.large")),
                    parameters=[threads])["M-CreateModel"]
    assert "ModelName" not in spec.arguments  # the service names the model per execution
    resolved = json.loads(json.dumps(spec.arguments).replace('{"Get": "Parameters.Threads"}', "4"))

    recorded: list[dict[str, Any]] = []
    first, second = context(sess, spec, recorded=recorded), context(sess, spec)
    one = run_create_model(first, resolved)
    two = run_create_model(second, resolved)

    assert one.properties["ModelName"] == first.job_name and two.properties["ModelName"] == second.job_name
    assert one.properties["PrimaryContainer"] == {"Image": SKLEARN_IMAGE, "Environment": {"THREADS": "4"},
                                                  "ModelDataUrl": data}
    assert one.properties["ModelArn"].endswith(f":model/{first.job_name.lower()}")
    assert one.metadata == {"Model": {"Arn": one.properties["ModelArn"]}} and recorded == [one.metadata]
    described = sess.describe_model(first.job_name)  # where Model.create() records, so transforms find it
    assert described == json.loads(json.dumps(one.properties))
    assert set(described) <= shape_members("DescribeModel")


def test_a_model_step_whose_model_data_is_missing_fails_naming_it_and_records_nothing(sess):
    bucket = sess.default_bucket()
    missing = f"s3://{bucket}/models/nothing-here/output/model.tar.gz"
    model = Model(image_uri=SKLEARN_IMAGE, model_data=missing, role=ROLE, sagemaker_session=sess)
    spec = compiled(sess, ModelStep("M", step_args=model.create()))["M-CreateModel"]
    with pytest.raises(StepFailed, match=r"Could not find model data at s3://.*/nothing-here/") as info:
        run_create_model(context(sess, spec), dict(spec.arguments))
    assert info.value.failure_type is None  # the request's fault: no retry policy retries it
    assert sess.metadata.list_resources("Model") == []


def test_a_model_step_with_an_image_sluice_cannot_run_is_refused_naming_it(sess):
    model = Model(image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/my-own-server:1", model_data=None,
                  role=ROLE, sagemaker_session=sess)
    spec = compiled(sess, ModelStep("M", step_args=model.create()))["M-CreateModel"]
    with pytest.raises(StepFailed, match=r"my-own-server"):
        run_create_model(context(sess, spec), dict(spec.arguments))
    assert sess.metadata.list_resources("Model") == []


def test_register_model_creates_the_group_and_adds_numbered_versions(sess):
    data = uploaded_model(sess)
    approval = ParameterString("Approval", default_value="PendingManualApproval")
    model = Model(image_uri=SKLEARN_IMAGE, model_data=data, role=ROLE, sagemaker_session=sess)
    step = ModelStep("Reg", step_args=model.register(
        content_types=["text/csv"], response_types=["text/csv"], inference_instances=["ml.m5.large"],
        transform_instances=["ml.m5.large"], model_package_group_name="churn", approval_status=approval))
    spec = compiled(sess, step, parameters=[approval])["Reg-RegisterModel"]
    assert spec.arguments["ModelApprovalStatus"] == {"Get": "Parameters.Approval"}

    recorded: list[dict[str, Any]] = []
    first = run_register_model(context(sess, spec, recorded=recorded),
                               {**spec.arguments, "ModelApprovalStatus": "Approved"})
    second = run_register_model(context(sess, spec), {**spec.arguments, "ModelApprovalStatus": "Rejected"})

    assert sess.sagemaker_client.describe_model_package_group(ModelPackageGroupName="churn")["ModelPackageGroupName"] \
        == "churn"
    assert [first.properties["ModelPackageVersion"], second.properties["ModelPackageVersion"]] == [1, 2]
    assert first.properties["ModelPackageArn"].endswith(":model-package/churn/1")
    assert first.metadata == {"RegisterModel": {"Arn": first.properties["ModelPackageArn"]}}
    assert recorded == [first.metadata]
    described = sess.describe_model_package(first.properties["ModelPackageArn"])
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == data
    assert described["InferenceSpecification"]["SupportedTransformInstanceTypes"] == ["ml.m5.large"]
    assert [p["ModelApprovalStatus"] for p in sess.list_model_packages("churn")] == ["Approved", "Rejected"]
    assert set(described) <= shape_members("DescribeModelPackage")


def test_register_steps_running_at_once_into_a_new_group_all_get_their_own_version(sess):
    """Parallel RegisterModel steps into a group that does not exist yet: one creates the group, none fails."""
    model = Model(image_uri=SKLEARN_IMAGE, model_data=uploaded_model(sess), role=ROLE, sagemaker_session=sess)
    step = ModelStep("Reg", step_args=model.register(
        content_types=["text/csv"], response_types=["text/csv"], inference_instances=["ml.m5.large"],
        transform_instances=["ml.m5.large"], model_package_group_name="together"))
    spec = compiled(sess, step)["Reg-RegisterModel"]
    start = threading.Barrier(6)
    versions: list[int] = []
    failures: list[BaseException] = []

    def register() -> None:
        start.wait()
        try:
            versions.append(run_register_model(context(sess, spec), dict(spec.arguments)).properties[
                "ModelPackageVersion"])
        except BaseException as exc:  # collected: the assertion below names it
            failures.append(exc)

    threads = [threading.Thread(target=register) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sorted(versions) == [1, 2, 3, 4, 5, 6]


def test_register_model_with_an_unknown_approval_status_fails_naming_the_field(sess):
    model = Model(image_uri=SKLEARN_IMAGE, model_data=uploaded_model(sess), role=ROLE, sagemaker_session=sess)
    spec = compiled(sess, ModelStep("Reg", step_args=model.register(
        content_types=["text/csv"], response_types=["text/csv"], model_package_group_name="churn")))[
        "Reg-RegisterModel"]
    with pytest.raises(StepFailed, match=r'ModelApprovalStatus: value "Maybe" is not allowed') as info:
        run_register_model(context(sess, spec), {**spec.arguments, "ModelApprovalStatus": "Maybe"})
    assert info.value.failure_type is None
    assert sess.metadata.list_resources("ModelPackage") == []


# ---- Transform --------------------------------------------------------------------------------------------

def test_a_transform_step_whose_model_does_not_exist_fails_naming_the_model(sess):
    bucket = sess.default_bucket()
    request = {"ModelName": "never-created",
               "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                                  "S3Uri": f"s3://{bucket}/in"}}},
               "TransformOutput": {"S3OutputPath": f"s3://{bucket}/out"},
               "TransformResources": {"InstanceCount": 1, "InstanceType": "ml.m5.large"}}
    spec = StepSpec("Score", StepType.TRANSFORM, request)
    with pytest.raises(StepFailed, match=r"no model named 'never-created'.*ModelStep"):
        run_transform(context(sess, spec), dict(request))
    assert sess.metadata.list_jobs() == []


# ---- Lambda -----------------------------------------------------------------------------------------------

def lambda_spec(sess: PipelineSession, func: Any, outputs: list[LambdaOutput], inputs: dict[str, Any] | None = None
                ) -> StepSpec:
    return compiled(sess, LambdaStep("Gate", lambda_func=func, inputs=inputs or {"n": 3}, outputs=outputs))["Gate"]


def test_a_lambda_handler_gets_the_event_and_a_lambda_context_and_returns_typed_outputs(sess):
    seen: list[tuple[Any, Any]] = []

    def handler(event, context):
        seen.append((event, context))
        return {"label": f"n={event['n']}", "count": event["n"] * 2, "ratio": 1, "ok": True, "extra": [1]}

    spec = lambda_spec(sess, handler, [LambdaOutput("label"), LambdaOutput("count", LambdaOutputTypeEnum.Integer),
                                       LambdaOutput("ratio", LambdaOutputTypeEnum.Float),
                                       LambdaOutput("ok", LambdaOutputTypeEnum.Boolean)])
    recorded: list[dict[str, Any]] = []
    outcome = run_lambda(context(sess, spec, recorded=recorded), {"n": 3})

    [(event, ctx)] = seen
    assert event == {"n": 3}
    arn = spec.extra["FunctionArn"]
    assert ctx.invoked_function_arn == arn and ctx.function_name == arn.rsplit(":", 1)[1]
    assert ctx.function_version == "$LATEST" and len(ctx.aws_request_id) == 36
    assert 0 < ctx.get_remaining_time_in_millis() <= 900_000
    assert outcome.properties == {"OutputParameters": {"label": "n=3", "count": 6, "ratio": 1.0, "ok": True}}
    assert isinstance(outcome.properties["OutputParameters"]["ratio"], float)
    assert outcome.metadata == {"Lambda": {"Arn": arn, "OutputParameters": [
        {"Name": "label", "Value": "n=3"}, {"Name": "count", "Value": "6"}, {"Name": "ratio", "Value": "1.0"},
        {"Name": "ok", "Value": "true"}]}}
    assert recorded == [{"Lambda": {"Arn": arn}}]


def test_a_one_argument_handler_gets_the_event_alone_and_a_handler_taking_none_is_refused(sess):
    def by_event(event):
        return {"doubled": event["n"] * 2}

    spec = lambda_spec(sess, by_event, [LambdaOutput("doubled", LambdaOutputTypeEnum.Integer)])
    assert run_lambda(context(sess, spec), {"n": 4}).properties == {"OutputParameters": {"doubled": 8}}

    def no_event():
        return {}

    with pytest.raises(PipelineError, match=r"cannot be called as a Lambda handler.*handler\(event, context\)"):
        LambdaStep("Bad", lambda_func=no_event)


@pytest.mark.parametrize(("returned", "message"), [
    ({"label": "x"}, r"output 'count' \(integer\) is missing.*it returned: label"),
    ({"label": "x", "count": "6"}, r"output 'count' is declared integer but the function returned str '6'"),
    ({"label": "x", "count": True}, r"output 'count' is declared integer but the function returned bool True"),
    ({"label": 7, "count": 1.5}, r"output 'label' is declared string.*int 7; output 'count' .* float 1.5"),
    (["label", "count"], r"returned list .*must return a dict with its outputs \(label, count\)"),
])
def test_missing_or_mistyped_lambda_outputs_fail_the_step_naming_each(sess, returned, message):
    def handler(event, context):
        return returned

    spec = lambda_spec(sess, handler, [LambdaOutput("label"), LambdaOutput("count", LambdaOutputTypeEnum.Integer)])
    with pytest.raises(StepFailed, match=message) as info:
        run_lambda(context(sess, spec), {"n": 1})
    assert info.value.failure_type is None and info.value.status == "Failed"


def test_an_exception_in_the_lambda_function_fails_the_step_with_it(sess):
    def handler(event, context):
        raise ValueError(f"no score for {event['n']}")

    spec = lambda_spec(sess, handler, [LambdaOutput("label")])
    with pytest.raises(StepFailed, match=r"Gate.*raised ValueError: no score for 3") as info:
        run_lambda(context(sess, spec), {"n": 3})
    assert info.value.failure_type is None


def test_stopping_the_execution_ends_a_running_lambda_step_stopped(sess):
    started, release = threading.Event(), threading.Event()

    def handler(event, context):
        started.set()
        release.wait(60)
        return {"label": "late"}

    spec = lambda_spec(sess, handler, [LambdaOutput("label")])
    stop = threading.Event()
    outcome: list[BaseException] = []

    def attempt() -> None:
        try:
            run_lambda(context(sess, spec, stop=stop), {"n": 1})
        except StepFailed as exc:
            outcome.append(exc)

    runner = threading.Thread(target=attempt)
    runner.start()
    assert started.wait(30)
    stop.set()
    runner.join(30)
    release.set()
    [failure] = outcome
    assert isinstance(failure, StepFailed) and failure.status == "Stopped"


def test_an_aws_lambda_arn_runs_once_mapped_to_a_local_callable(sess):
    function = f"score-gate-{secrets.token_hex(3)}"
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function}"
    definition = {"Version": "2020-12-01", "Steps": [{
        "Name": "Gate", "Type": "Lambda", "Arguments": {"n": 5}, "FunctionArn": arn,
        "OutputParameters": [{"OutputName": "big", "OutputType": "Boolean"}]}]}
    spec = parse_definition(json.dumps(definition)).graph["Gate"]
    with pytest.raises(StepFailed, match=rf"AWS Lambda function '{function}'.*register_local_function\('{function}'"):
        run_lambda(context(sess, spec), {"n": 5})

    register_local_function(function, lambda event, context: {"big": event["n"] > 3})
    assert run_lambda(context(sess, spec), {"n": 5}).properties == {"OutputParameters": {"big": True}}


# ---- Tuning -----------------------------------------------------------------------------------------------

def summary(name: str, value: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {"TrainingJobName": name, "ObjectiveStatus": "Succeeded" if value is not None else "Failed"}
    if value is not None:
        out["FinalHyperParameterTuningJobObjectiveMetric"] = {"MetricName": "m", "Value": value}
    return out


def test_trials_are_ranked_best_first_as_the_service_sorts_them_by_objective():
    trials = [summary("t-001", 0.5), summary("t-002", None), summary("t-003", 0.9), summary("t-004", 0.5)]
    assert [s["TrainingJobName"] for s in ranked_training_jobs(trials, "Maximize")] == ["t-003", "t-001", "t-004"]
    assert [s["TrainingJobName"] for s in ranked_training_jobs(trials, "Minimize")] == ["t-001", "t-004", "t-003"]
    many = [summary(f"t-{i:03d}", float(i)) for i in range(60)]
    assert len(ranked_training_jobs(many, "Maximize")) == 50


def estimator(sess: PipelineSession, src: Path, **kw: Any) -> Estimator:
    return Estimator(image_uri=SKLEARN_IMAGE, entry_point="train.py", source_dir=str(src), role=ROLE,
                     instance_count=1, instance_type="ml.m5.xlarge",
                     output_path=f"s3://{sess.default_bucket()}/models", sagemaker_session=sess, **kw)


def test_a_tuning_step_ranks_its_trials_and_model_steps_take_the_best_and_the_second(sess, tmp_path):
    (tmp_path / "train.py").write_text(TRIAL)
    bucket = sess.default_bucket()
    est = estimator(sess, tmp_path, metric_definitions=[{"Name": "score", "Regex": r"score=(-?[0-9.]+)"}])
    tuner = HyperparameterTuner(est, "score", {"x": CategoricalParameter([0, 3, 2])}, strategy="Grid", max_jobs=3,
                                max_parallel_jobs=2)
    tune = TuningStep("Tune", step_args=tuner.fit())
    best_by_name = Model(image_uri=SKLEARN_IMAGE, role=ROLE, sagemaker_session=sess, model_data=Join(
        on="/", values=[f"s3://{bucket}/models", tune.properties.BestTrainingJob.TrainingJobName,
                        "output/model.tar.gz"]))
    top = [Model(image_uri=SKLEARN_IMAGE, role=ROLE, sagemaker_session=sess,
                 model_data=tune.get_top_model_s3_uri(k, bucket, "models")) for k in (0, 1)]
    execution = run(Pipeline(name="tune", steps=[
        tune, ModelStep("Best", step_args=best_by_name.create()), ModelStep("Top0", step_args=top[0].create()),
        ModelStep("Top1", step_args=top[1].create())], sagemaker_session=sess))

    assert execution.describe()["PipelineExecutionStatus"] == "Succeeded", execution.describe().get("FailureReason")
    steps = steps_by_name(execution)
    tuning_arn = steps["Tune"]["Metadata"]["TuningJob"]["Arn"]
    tuning_name = next(j.name for j in sess.metadata.list_jobs("HyperParameterTuningJob")
                       if j.name.lower() == tuning_arn.split("/")[-1])
    assert len(tuning_name) <= 32 and execution.arn.split("/")[-1] in tuning_name
    trials = {r.record["HyperParameters"]["x"]: r.name for r in sess.metadata.list_jobs("TrainingJob")
              if r.record.get("TuningJobArn") == tuning_arn}
    assert set(trials) == {"0", "2", "3"}

    def model_data(step: str) -> str:
        model = resource_named(sess, "Model", steps[step]["Metadata"]["Model"]["Arn"])
        return model["PrimaryContainer"]["ModelDataUrl"]

    # x=2 scores 0 (the best), x=0 scores -4; x=3 reported no objective, so it is not ranked at all.
    assert model_data("Best-CreateModel") == f"s3://{bucket}/models/{trials['2']}/output/model.tar.gz"
    assert model_data("Top0-CreateModel") == model_data("Best-CreateModel")
    assert model_data("Top1-CreateModel") == f"s3://{bucket}/models/{trials['0']}/output/model.tar.gz"
    assert sess.describe_tuning_job(tuning_name)["BestTrainingJob"]["TrainingJobName"] == trials["2"]


# ---- pipelines of these steps -----------------------------------------------------------------------------

def test_training_then_model_then_transform_read_each_others_properties(sess, tmp_path):
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "inference.py").write_text(INFERENCE)
    bucket = sess.default_bucket()
    sess.store.put(bucket, "batch/in/rows.csv", b"0.0\n3.0\n0.5\n")
    train = TrainingStep("Train", step_args=estimator(sess, tmp_path).fit())
    model = Model(image_uri=SKLEARN_IMAGE, model_data=train.properties.ModelArtifacts.S3ModelArtifacts, role=ROLE,
                  sagemaker_session=sess)
    create = ModelStep("Classifier", step_args=model.create(instance_type="ml.m5.large"))
    definition = json.loads(Pipeline(name="batch", steps=[train, create], sagemaker_session=sess).definition())
    # The Transform step as the SDK emits it (reference example, BatchScore): ModelName read from the model step,
    # the output under the execution's id.
    definition["Steps"].append({"Name": "Score", "Type": "Transform", "Arguments": {
        "ModelName": create.properties.ModelName.expr,
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                           "S3Uri": f"s3://{bucket}/batch/in"}},
                           "ContentType": "text/csv", "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": {"Std:Join": {"On": "/", "Values": [
            "s3:/", bucket, "batch", {"Get": "Execution.PipelineExecutionId"}, "Score"]}},
            "Accept": "text/csv", "AssembleWith": "Line"},
        "TransformResources": {"InstanceCount": 1, "InstanceType": "ml.m5.large"}}})
    execution = run(Pipeline.from_definition(definition, sagemaker_session=sess, name="batch"))

    assert execution.describe()["PipelineExecutionStatus"] == "Succeeded", execution.describe().get("FailureReason")
    steps = steps_by_name(execution)
    training = sess.describe_training_job(next(
        j.name for j in sess.metadata.list_jobs("TrainingJob")
        if j.name.lower() == steps["Train"]["Metadata"]["TrainingJob"]["Arn"].split("/")[-1]))
    recorded_model = resource_named(sess, "Model", steps["Classifier-CreateModel"]["Metadata"]["Model"]["Arn"])
    assert recorded_model["PrimaryContainer"]["ModelDataUrl"] == training["ModelArtifacts"]["S3ModelArtifacts"]
    transform = next(j.record for j in sess.metadata.list_jobs("TransformJob"))
    assert steps["Score"]["Metadata"] == {"TransformJob": {"Arn": transform["TransformJobArn"]}}
    assert transform["ModelName"] == recorded_model["ModelName"]
    out = f"batch/{execution.arn.split('/')[-1]}/Score/rows.csv.out"
    assert transform["TransformOutput"]["S3OutputPath"] == f"s3://{bucket}/{out.rsplit('/', 1)[0]}"
    assert sess.store.get_bytes(bucket, out) == b"0\n1\n0\n"


def test_register_model_then_a_lambda_reads_the_package_arn_and_a_condition_its_output(sess):
    data = uploaded_model(sess)
    model = Model(image_uri=SKLEARN_IMAGE, model_data=data, role=ROLE, sagemaker_session=sess)
    register = ModelStep("Register", step_args=model.register(
        content_types=["text/csv"], response_types=["text/csv"], model_package_group_name="scores",
        approval_status="Approved"))
    events: list[dict[str, Any]] = []

    def announce(event, context):
        events.append(event)
        return {"version": int(event["package"].rsplit("/", 1)[1]), "approved": event["status"] == "Approved"}

    lam = LambdaStep("Announce", lambda_func=announce, inputs={
        "package": register.properties.ModelPackageArn, "status": register.properties.ModelApprovalStatus},
        outputs=[LambdaOutput("version", LambdaOutputTypeEnum.Integer),
                 LambdaOutput("approved", LambdaOutputTypeEnum.Boolean)])
    check = ConditionStep("FirstVersion", conditions=[ConditionEquals(lam.properties.Outputs["version"], 1),
                                                      ConditionEquals(lam.properties.Outputs["approved"], True)],
                          else_steps=[FailStep("NotFirst", error_message="not the first approved version")])
    execution = run(Pipeline(name="registry", steps=[register, lam, check], sagemaker_session=sess))

    assert execution.describe()["PipelineExecutionStatus"] == "Succeeded", execution.describe().get("FailureReason")
    steps = steps_by_name(execution)
    arn = steps["Register-RegisterModel"]["Metadata"]["RegisterModel"]["Arn"]
    assert arn.endswith(":model-package/scores/1")
    assert events == [{"package": arn, "status": "Approved"}]
    assert steps["Announce"]["Metadata"]["Lambda"]["OutputParameters"] == [
        {"Name": "version", "Value": "1"}, {"Name": "approved", "Value": "true"}]
    assert steps["FirstVersion"]["Metadata"] == {"Condition": {"Outcome": True}}
    assert "NotFirst" not in steps
