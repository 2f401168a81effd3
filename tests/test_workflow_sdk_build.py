"""Building pipelines the SDK way: facade calls under a PipelineSession become steps, and the emitted JSON has
the shapes the SDK emits (checked against the reference example and against botocore's request shapes).

The facade hook is not in the facade modules yet (docs/pipelines.md lists the lines). These tests stand it
in by subclassing, exactly as those lines will behave:

* ``HookedSession``: ``Session.process/train/transform`` building their request and handing it to
  ``_intercept_create_request`` instead of starting a job;
* ``Hooked*`` facade classes: their public method wrapped in ``runnable_by_pipeline``, plus the two
  pipeline-variable fixes (a processing input whose source is a property; a training channel holding one).

Nothing here starts a job; the suite stays fast.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from sluice.errors import PipelineError
from sluice.estimator import Estimator
from sluice.inputs import TrainingInput
from sluice.jobs.schema import validate_request
from sluice.model import Model
from sluice.processing import ProcessingInput, ProcessingOutput, ScriptProcessor
from sluice.session import Session, get_execution_role
from sluice.sklearn.processing import SKLearnProcessor
from sluice.transformer import Transformer
from sluice.workflow import is_pipeline_variable
from sluice.workflow.condition_step import ConditionStep
from sluice.workflow.conditions import ConditionLessThanOrEqualTo
from sluice.workflow.fail_step import FailStep
from sluice.workflow.functions import Join, JsonGet
from sluice.workflow.model_step import ModelStep
from sluice.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
from sluice.workflow.pipeline import Pipeline
from sluice.workflow.pipeline_context import (
    LocalPipelineSession,
    PipelineSession,
    _StepArguments,
    runnable_by_pipeline,
)
from sluice.workflow.pipeline_definition_config import PipelineDefinitionConfig
from sluice.workflow.properties import PropertyFile
from sluice.workflow.retry import (
    SageMakerJobExceptionTypeEnum,
    SageMakerJobStepRetryPolicy,
    StepExceptionTypeEnum,
    StepRetryPolicy,
)
from sluice.workflow.steps import CacheConfig, ProcessingStep, TrainingStep, TransformStep

EXAMPLE = json.loads(Path("/work/shared/reference/sagemaker-pipeline-definition-example.json").read_text())
ROLE = "arn:aws:iam::111111111111:role/R"
XGB = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


# ---- the stand-in facade hook ----------------------------------------------------------------------------

class HookedSession(PipelineSession):
    """What ``Session.process/train/transform`` do once each asks ``_intercept_create_request`` first."""

    def process(self, inputs: Any, output_config: Any, job_name: str, resources: dict, stopping_condition: Any,
                app_specification: dict, environment: Any = None, network_config: Any = None, role_arn: Any = None,
                tags: Any = None, experiment_config: Any = None, **_: Any) -> None:
        request: dict[str, Any] = {"ProcessingJobName": job_name, "ProcessingResources": resources,
                                   "AppSpecification": app_specification, "RoleArn": role_arn or get_execution_role()}
        for key, value in (("ProcessingInputs", inputs), ("StoppingCondition", stopping_condition),
                           ("Environment", environment), ("NetworkConfig", network_config), ("Tags", tags),
                           ("ExperimentConfig", experiment_config)):
            if value:
                request[key] = value
        if output_config and output_config.get("Outputs"):
            request["ProcessingOutputConfig"] = output_config
        assert self._intercept_create_request(request, "process"), "a PipelineSession never starts a job"

    def train(self, request: dict[str, Any], **_: Any) -> None:
        request.setdefault("RoleArn", get_execution_role())
        assert self._intercept_create_request(request, "train")

    def transform(self, job_name: str, model_name: Any, strategy: Any, max_concurrent_transforms: Any,
                  max_payload: Any, input_config: dict, output_config: dict, resource_config: dict,
                  experiment_config: Any = None, env: Any = None, tags: Any = None, data_processing: Any = None,
                  model_client_config: Any = None, batch_data_capture_config: Any = None, **_: Any) -> None:
        request: dict[str, Any] = {"TransformJobName": job_name, "ModelName": model_name,
                                   "TransformInput": input_config, "TransformOutput": output_config,
                                   "TransformResources": resource_config}
        for key, value in (("BatchStrategy", strategy), ("MaxConcurrentTransforms", max_concurrent_transforms),
                           ("MaxPayloadInMB", max_payload), ("Environment", env), ("Tags", tags),
                           ("DataProcessing", data_processing), ("ExperimentConfig", experiment_config)):
            if value is not None:
                request[key] = value
        assert self._intercept_create_request(request, "transform")


class HookedSKLearnProcessor(SKLearnProcessor):
    run = runnable_by_pipeline(SKLearnProcessor.run)


class HookedScriptProcessor(ScriptProcessor):
    run = runnable_by_pipeline(ScriptProcessor.run)

    def _normalize_inputs(self, inputs: Any) -> Any:
        """The facade fix: an input whose source is a pipeline variable is neither uploaded nor str()-ed."""
        for n, item in enumerate(inputs or [], start=1):
            item.input_name = item.input_name or f"input-{n}"
        super()._normalize_inputs([i for i in inputs or [] if not is_pipeline_variable(i.source)])
        return list(inputs or [])


class HookedEstimator(Estimator):
    fit = runnable_by_pipeline(Estimator.fit)

    def _channels(self, inputs: Any) -> list[dict[str, Any]]:
        """The facade fix: copy channel configs with deepcopy (pipeline variables survive), not a JSON round trip."""
        return [{"ChannelName": name, **copy.deepcopy(value.config)} for name, value in inputs.items()]


class HookedModel(Model):
    create = runnable_by_pipeline(Model.create)
    register = runnable_by_pipeline(Model.register)


class HookedTransformer(Transformer):
    transform = runnable_by_pipeline(Transformer.transform)


@pytest.fixture
def session(sluice_home: Path) -> HookedSession:
    return HookedSession(default_bucket="my-bucket")


@pytest.fixture
def scripts(tmp_path: Path) -> dict[str, str]:
    out = {}
    for name in ("preprocess.py", "evaluate.py"):
        (tmp_path / name).write_text("print('hello')\n")
        out[name] = str(tmp_path / name)
    return out


# ---- the blog's local-mode pipeline -------------------------------------------------------------------------

def build_blog_pipeline(session: PipelineSession, scripts: dict[str, str]) -> Pipeline:
    """The SageMaker blog's local-mode pipeline (abalone): process, train, evaluate, condition, model, transform."""
    instance_count = ParameterInteger("ProcessingInstanceCount", default_value=1)
    approval = ParameterString("ModelApprovalStatus", default_value="PendingManualApproval")
    mse_threshold = ParameterFloat("MseThreshold", default_value=6.0)

    processor = HookedSKLearnProcessor(framework_version="1.2-1", role=ROLE, instance_type="ml.m5.xlarge",
                                       instance_count=instance_count, base_job_name="abalone-process",
                                       sagemaker_session=session)
    step_process = ProcessingStep(
        "AbaloneProcess",
        step_args=processor.run(
            inputs=[ProcessingInput(source="s3://my-bucket/abalone/abalone.csv",
                                    destination="/opt/ml/processing/input")],
            outputs=[ProcessingOutput(output_name="train", source="/opt/ml/processing/train"),
                     ProcessingOutput(output_name="test", source="/opt/ml/processing/test")],
            code=scripts["preprocess.py"]),
        cache_config=CacheConfig(enable_caching=True, expire_after="P30D"),
        retry_policies=[StepRetryPolicy([StepExceptionTypeEnum.SERVICE_FAULT], max_attempts=3),
                        SageMakerJobStepRetryPolicy([SageMakerJobExceptionTypeEnum.CAPACITY_ERROR],
                                                    expire_after_mins=60)],
    )
    estimator = HookedEstimator(image_uri=XGB, role=ROLE, instance_count=1, instance_type="ml.m5.xlarge",
                                output_path="s3://my-bucket/abalone/model", hyperparameters={"num_round": 50},
                                metric_definitions=[{"Name": "validation:rmse", "Regex": "rmse=([0-9.]+)"}],
                                sagemaker_session=session)
    step_train = TrainingStep("AbaloneTrain", step_args=estimator.fit(inputs={"train": TrainingInput(
        s3_data=step_process.properties.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri,
        content_type="text/csv")}))

    report = PropertyFile(name="EvaluationReport", output_name="evaluation", path="evaluation.json")
    evaluator = HookedScriptProcessor(image_uri=XGB, command=["python3"], role=ROLE, instance_type="ml.m5.xlarge",
                                      instance_count=1, base_job_name="abalone-eval", sagemaker_session=session)
    step_eval = ProcessingStep("AbaloneEval", property_files=[report], step_args=evaluator.run(
        code=scripts["evaluate.py"],
        inputs=[ProcessingInput(source=step_train.properties.ModelArtifacts.S3ModelArtifacts,
                                destination="/opt/ml/processing/model"),
                ProcessingInput(source=step_process.properties.ProcessingOutputConfig.Outputs["test"].S3Output.S3Uri,
                                destination="/opt/ml/processing/test")],
        outputs=[ProcessingOutput(output_name="evaluation", source="/opt/ml/processing/evaluation")]))

    model = HookedModel(image_uri=XGB, model_data=step_train.properties.ModelArtifacts.S3ModelArtifacts, role=ROLE,
                        sagemaker_session=session)
    step_register = ModelStep("AbaloneRegisterModel", step_args=model.register(
        content_types=["text/csv"], response_types=["text/csv"], inference_instances=["ml.m5.large"],
        transform_instances=["ml.m5.large"], model_package_group_name="AbaloneModels", approval_status=approval))
    step_create = ModelStep("AbaloneCreateModel", step_args=model.create(instance_type="ml.m5.large"))
    transformer = HookedTransformer(model_name=step_create.properties.ModelName, instance_count=1,
                                    instance_type="ml.m5.xlarge", base_transform_job_name="abalone-transform",
                                    sagemaker_session=session)
    step_transform = TransformStep("AbaloneTransform", step_args=transformer.transform(
        data="s3://my-bucket/abalone/batch", content_type="text/csv", split_type="Line"))
    step_fail = FailStep("AbaloneMSEFail", error_message=Join(on=" ", values=["Execution failed due to MSE >",
                                                                               mse_threshold]))
    step_cond = ConditionStep(
        "AbaloneMSECond",
        conditions=[ConditionLessThanOrEqualTo(
            left=JsonGet(step_name=step_eval.name, property_file=report, json_path="regression_metrics.mse.value"),
            right=mse_threshold)],
        if_steps=[step_register, step_create, step_transform], else_steps=[step_fail])
    return Pipeline("abalone-local", parameters=[instance_count, approval, mse_threshold],
                    steps=[step_process, step_train, step_eval, step_cond], sagemaker_session=session)


def _by_name(data: dict) -> dict[str, dict]:
    out = {}
    for s in data["Steps"]:
        out[s["Name"]] = s
        if s["Type"] == "Condition":
            out.update(_by_name({"Steps": s["Arguments"]["IfSteps"] + s["Arguments"]["ElseSteps"]}))
    return out


def _concrete(value: Any, defaults: dict[str, Any], key: str = "") -> Any:
    """Expressions replaced by plausible values, so a step's arguments can be checked against botocore."""
    placeholder = "model-name" if key == "ModelName" else "s3://bucket/key"
    if isinstance(value, dict):
        if "Get" in value and len(value) == 1:
            target = value["Get"]
            return defaults[target.removeprefix("Parameters.")] if target.startswith("Parameters.") else placeholder
        if len(value) == 1 and next(iter(value)).startswith("Std:"):
            return placeholder
        return {k: _concrete(v, defaults, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_concrete(v, defaults, key) for v in value]
    return value


def test_the_blog_pipeline_compiles_to_the_sdk_shape(session, scripts):
    data = json.loads(build_blog_pipeline(session, scripts).definition())
    assert data["Version"] == "2020-12-01" and data["Metadata"] == {}
    assert data["PipelineExperimentConfig"] == EXAMPLE["PipelineExperimentConfig"]
    assert [(s["Name"], s["Type"]) for s in data["Steps"]] == [
        ("AbaloneProcess", "Processing"), ("AbaloneTrain", "Training"), ("AbaloneEval", "Processing"),
        ("AbaloneMSECond", "Condition")]
    steps = _by_name(data)
    cond = steps["AbaloneMSECond"]["Arguments"]
    assert [s["Name"] for s in cond["IfSteps"]] == [
        "AbaloneRegisterModel-RegisterModel", "AbaloneCreateModel-CreateModel", "AbaloneTransform"]
    assert [(s["Name"], s["Type"]) for s in cond["ElseSteps"]] == [("AbaloneMSEFail", "Fail")]

    # Processing: the example's step-level fields, its argument names, and the pipeline layout of outputs.
    prep = steps["AbaloneProcess"]
    assert list(prep) == [*list(EXAMPLE["Steps"][0])[:3], "RetryPolicies", "CacheConfig"]
    assert prep["RetryPolicies"] == EXAMPLE["Steps"][0]["RetryPolicies"]
    assert prep["CacheConfig"] == EXAMPLE["Steps"][0]["CacheConfig"]
    args = prep["Arguments"]
    assert set(args) <= set(EXAMPLE["Steps"][0]["Arguments"]) and "ProcessingJobName" not in args
    cluster = args["ProcessingResources"]["ClusterConfig"]
    assert cluster["InstanceCount"] == {"Get": "Parameters.ProcessingInstanceCount"}
    assert args["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] == {"Std:Join": {"On": "/", "Values": [
        "s3:/", "my-bucket", "abalone-local", {"Get": "Execution.PipelineExecutionId"}, "AbaloneProcess", "output",
        "train"]}}
    assert [i["InputName"] for i in args["ProcessingInputs"]] == ["input-1", "code"]

    # Training: the channel reads the processing output by its property path.
    train = steps["AbaloneTrain"]["Arguments"]
    assert "TrainingJobName" not in train and "ExperimentConfig" not in train
    assert set(EXAMPLE["Steps"][1]["Arguments"]) - set(train) == {"DebugHookConfig", "ProfilerConfig"}
    assert train["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == {
        "Get": "Steps.AbaloneProcess.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}
    assert train["HyperParameters"] == {"num_round": "50"}

    # Evaluation: a property file, and inputs that are other steps' properties.
    evaluation = steps["AbaloneEval"]
    assert evaluation["PropertyFiles"] == [
        {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}]
    assert evaluation["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"] == {
        "Get": "Steps.AbaloneTrain.ModelArtifacts.S3ModelArtifacts"}

    # Condition on a JsonGet, as the example's first condition.
    assert cond["Conditions"] == [{"Type": "LessThanOrEqualTo", "LeftValue": {"Std:JsonGet": {
        "PropertyFile": {"Get": "Steps.AbaloneEval.PropertyFiles.EvaluationReport"},
        "Path": "regression_metrics.mse.value"}}, "RightValue": {"Get": "Parameters.MseThreshold"}}]

    # CreateModel and Transform: exactly the example's shapes.
    example_if = EXAMPLE["Steps"][2]["Arguments"]["IfSteps"]
    create = steps["AbaloneCreateModel-CreateModel"]["Arguments"]
    assert create == {"ExecutionRoleArn": ROLE, "PrimaryContainer": {
        "Image": XGB, "Environment": {}, "ModelDataUrl": {"Get": "Steps.AbaloneTrain.ModelArtifacts.S3ModelArtifacts"}}}
    assert list(create["PrimaryContainer"]) == list(example_if[0]["Arguments"]["PrimaryContainer"])
    transform = steps["AbaloneTransform"]["Arguments"]
    assert transform["ModelName"] == {"Get": "Steps.AbaloneCreateModel-CreateModel.ModelName"}
    assert transform["TransformOutput"]["S3OutputPath"] == {"Std:Join": {"On": "/", "Values": [
        "s3:/", "my-bucket", "abalone-local", {"Get": "Execution.PipelineExecutionId"}, "AbaloneTransform"]}}
    assert set(transform) <= set(example_if[1]["Arguments"]) and "TransformJobName" not in transform

    # RegisterModel: the CreateModelPackage request, without what the workflow service refuses.
    register = steps["AbaloneRegisterModel-RegisterModel"]["Arguments"]
    assert register["ModelPackageGroupName"] == "AbaloneModels"
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    assert register["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == create["PrimaryContainer"][
        "ModelDataUrl"]
    assert "CertifyForMarketplace" not in register

    assert steps["AbaloneMSEFail"]["Arguments"] == {"ErrorMessage": {"Std:Join": {"On": " ", "Values": [
        "Execution failed due to MSE >", {"Get": "Parameters.MseThreshold"}]}}}


def test_every_job_step_of_the_blog_pipeline_is_a_valid_api_request(session, scripts):
    data = json.loads(build_blog_pipeline(session, scripts).definition())
    defaults = {p["Name"]: p.get("DefaultValue") for p in data["Parameters"]}
    operations = {"Processing": ("CreateProcessingJob", "ProcessingJobName"),
                  "Training": ("CreateTrainingJob", "TrainingJobName"),
                  "Transform": ("CreateTransformJob", "TransformJobName"), "Model": ("CreateModel", "ModelName"),
                  "RegisterModel": ("CreateModelPackage", None)}
    checked = 0
    for step in _by_name(data).values():
        if step["Type"] in operations:
            operation, name_key = operations[step["Type"]]
            request = _concrete(step["Arguments"], defaults)
            if name_key:
                request[name_key] = "job-name"
            validate_request(operation, request)
            checked += 1
    assert checked == 6


def test_the_blog_pipeline_parses_back_to_the_same_graph(session, scripts):
    pipeline = build_blog_pipeline(session, scripts)
    text = pipeline.definition()
    again = Pipeline.from_definition(text, name="abalone-local")
    assert json.loads(again.definition()) == json.loads(text)
    graph = again.compile().graph
    assert graph["AbaloneEval"].property_files[0].name == "EvaluationReport"
    assert graph["AbaloneTransform"].branch_of == ("AbaloneMSECond", "IfSteps")


# ---- the PipelineSession hook ----------------------------------------------------------------------------------

def test_a_job_method_under_a_pipeline_session_returns_step_arguments_and_starts_nothing(session, scripts):
    processor = HookedScriptProcessor(image_uri=XGB, command=["python3"], role=ROLE, instance_type="ml.m5.xlarge",
                                      instance_count=1, sagemaker_session=session)
    step_args = processor.run(code=scripts["evaluate.py"], wait=True, logs=True)
    assert isinstance(step_args, _StepArguments)
    assert step_args.caller_name == "process"
    assert step_args.func_kwargs["wait"] is False and step_args.func_kwargs["logs"] is False
    Pipeline("p", steps=[ProcessingStep("Eval", step_args=step_args)]).definition()
    assert session.metadata.list_jobs() == []


def test_with_a_plain_session_a_decorated_method_runs_as_before(sluice_home):
    class Job:
        def __init__(self, sagemaker_session: Session) -> None:
            self.sagemaker_session = sagemaker_session

        @runnable_by_pipeline
        def run(self, wait: bool = True) -> str:
            return f"ran, wait={wait}"

    assert Job(Session()).run() == "ran, wait=True"
    assert isinstance(Job(PipelineSession()).run(), _StepArguments)


def test_a_facade_call_that_hands_no_request_to_the_session_is_named(sluice_home):
    class Silent:
        _pipeline_caller = "process"

        def __init__(self) -> None:
            self.sagemaker_session = PipelineSession()

        @runnable_by_pipeline
        def run(self) -> None:
            return None

    step = ProcessingStep("Quiet", step_args=Silent().run())
    with pytest.raises(PipelineError, match=r"Silent\.run\(\) did not hand its request to the PipelineSession"):
        Pipeline("p", steps=[step]).definition()


def test_a_pipeline_session_never_starts_a_job_whether_or_not_the_session_hook_has_landed(sluice_home, scripts):
    sess = PipelineSession(default_bucket="my-bucket")
    processor = HookedScriptProcessor(image_uri=XGB, command=["python3"], role=ROLE, instance_type="ml.m5.xlarge",
                                      instance_count=1, sagemaker_session=sess)
    pipeline = Pipeline("p", steps=[ProcessingStep("Eval", step_args=processor.run(code=scripts["evaluate.py"]))])
    try:
        data = json.loads(pipeline.definition())
    except PipelineError as exc:  # before the hook lands in Session: refused, not started
        assert "_intercept_create_request" in str(exc)
    else:  # after: the request became the step's arguments
        assert data["Steps"][0]["Type"] == "Processing"
    assert sess.metadata.list_jobs() == []


def test_step_args_from_the_wrong_call_are_refused(session, scripts):
    processor = HookedScriptProcessor(image_uri=XGB, command=["python3"], role=ROLE, instance_type="ml.m5.xlarge",
                                      instance_count=1, sagemaker_session=session)
    step_args = processor.run(code=scripts["evaluate.py"])
    with pytest.raises(PipelineError, match=r"these step_args come from a 'process' call; a TrainingStep takes those "
                                            r"of estimator\.fit\(\)"):
        TrainingStep("Train", step_args=step_args)
    with pytest.raises(PipelineError, match=r"ModelStep must be obtained from model\.create\(\) or model\.register"):
        ModelStep("M", step_args=step_args)
    with pytest.raises(PipelineError, match=r"give step_args .* or the processor itself, not both and not neither"):
        ProcessingStep("P")


def test_the_older_processor_form_makes_the_same_step(session, scripts):
    processor = HookedScriptProcessor(image_uri=XGB, command=["python3"], role=ROLE, instance_type="ml.m5.xlarge",
                                      instance_count=1, base_job_name="eval", sagemaker_session=session)
    outputs = [ProcessingOutput(output_name="report", source="/opt/ml/processing/report")]
    old = ProcessingStep("Old", processor=processor, outputs=outputs, code=scripts["evaluate.py"],
                         job_arguments=["--k", "v"])
    data = json.loads(Pipeline("p", steps=[old]).definition())
    args = data["Steps"][0]["Arguments"]
    assert args["AppSpecification"]["ContainerArguments"] == ["--k", "v"]
    assert args["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]["Std:Join"]["Values"][-3:] == [
        "Old", "output", "report"]
    with pytest.raises(PipelineError, match=r"must use a PipelineSession"):
        ProcessingStep("Direct", processor=ScriptProcessor(image_uri=XGB, command=["python3"], instance_count=1,
                                                           instance_type="ml.m5.xlarge", sagemaker_session=Session()))


def test_outputs_the_user_placed_keep_their_place(session, scripts):
    processor = HookedScriptProcessor(image_uri=XGB, command=["python3"], role=ROLE, instance_type="ml.m5.xlarge",
                                      instance_count=1, sagemaker_session=session)
    step_args = processor.run(code=scripts["evaluate.py"], outputs=[
        ProcessingOutput(output_name="fixed", source="/opt/ml/processing/fixed", destination="s3://my-bucket/fixed")])
    data = json.loads(Pipeline("p", steps=[ProcessingStep("Eval", step_args=step_args)]).definition())
    assert data["Steps"][0]["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] == \
        "s3://my-bucket/fixed"


def test_use_custom_job_prefix_keeps_the_base_job_name(session, scripts):
    processor = HookedScriptProcessor(image_uri=XGB, command=["python3"], role=ROLE, instance_type="ml.m5.xlarge",
                                      instance_count=1, base_job_name="nightly-eval", sagemaker_session=session)
    step = ProcessingStep("Eval", step_args=processor.run(code=scripts["evaluate.py"]))
    data = json.loads(Pipeline("p", steps=[step], pipeline_definition_config=PipelineDefinitionConfig(True))
                      .definition())
    assert data["Steps"][0]["Arguments"]["ProcessingJobName"] == "nightly-eval"


# ---- ModelStep --------------------------------------------------------------------------------------------------

def test_model_step_names_its_steps_as_the_sdk_and_passes_on_retries_and_dependencies(session):
    model = HookedModel(image_uri=XGB, model_data="s3://my-bucket/model.tar.gz", role=ROLE, sagemaker_session=session)
    retry = StepRetryPolicy([StepExceptionTypeEnum.THROTTLING], max_attempts=2)
    create = ModelStep("Make", step_args=model.create(), retry_policies=[retry], display_name="Make it")
    register = ModelStep("Keep", step_args=model.register(model_package_group_name="g"), depends_on=[create])
    assert create.properties.ModelName.expr == {"Get": "Steps.Make-CreateModel.ModelName"}
    assert register.properties.ModelPackageArn.expr == {"Get": "Steps.Keep-RegisterModel.ModelPackageArn"}
    steps = _by_name(json.loads(Pipeline("p", steps=[create, register]).definition()))
    assert steps["Make-CreateModel"]["RetryPolicies"] == [retry.to_request()]
    assert steps["Make-CreateModel"]["DisplayName"] == "Make it"
    assert steps["Keep-RegisterModel"]["DependsOn"] == ["Make-CreateModel"]
    assert steps["Keep-RegisterModel"]["Arguments"]["ModelApprovalStatus"] == "PendingManualApproval"
    with pytest.raises(PipelineError, match=r"SageMakerJobStepRetryPolicy is not allowed for a create/register"):
        ModelStep("Bad", step_args=model.create(), retry_policies=[
            SageMakerJobStepRetryPolicy([SageMakerJobExceptionTypeEnum.CAPACITY_ERROR])])
    with pytest.raises(AttributeError, match=r"Fail step 'Never': the step has no properties at all"):
        _ = FailStep("Never").properties.ErrorMessage


def test_local_pipeline_session_is_a_pipeline_session(sluice_home):
    sess = LocalPipelineSession()
    assert isinstance(sess, PipelineSession) and sess.local_mode


def test_the_definition_is_the_same_each_time_it_is_emitted(session, scripts):
    pipeline = build_blog_pipeline(session, scripts)
    first = json.loads(pipeline.definition())
    assert json.loads(pipeline.definition()) == first
    code = _by_name(first)["AbaloneProcess"]["Arguments"]["ProcessingInputs"][1]["S3Input"]["S3Uri"]
    assert code.startswith("s3://my-bucket/abalone-local/code/") and code.endswith("/preprocess.py")
    assert session.store.get_bytes("my-bucket", code.removeprefix("s3://my-bucket/")) == b"print('hello')\n"
