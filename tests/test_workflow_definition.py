"""The definition JSON in both directions: an SDK-produced definition parses and re-emits unchanged, and
pipelines built in Python emit the SDK's shapes (Condition branches inline, Lambda and @step steps)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from sluice.errors import PipelineError
from sluice.session import Session
from sluice.workflow.condition_step import ConditionStep
from sluice.workflow.conditions import ConditionEquals, ConditionGreaterThanOrEqualTo
from sluice.workflow.execution_variables import ExecutionVariables
from sluice.workflow.fail_step import FailStep
from sluice.workflow.function_step import CONTAINER_ENTRYPOINT, DelayedReturnRef, PipelineVariableRef, step
from sluice.workflow.functions import Join
from sluice.workflow.graph import (
    CacheSpec,
    ParameterSpec,
    ParameterType,
    PropertyFileSpec,
    RetrySpec,
    StepType,
    emit_definition,
    parse_definition,
)
from sluice.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum, LambdaStep, local_function
from sluice.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
from sluice.workflow.pipeline import Pipeline

EXAMPLE = Path("/work/shared/reference/sagemaker-pipeline-definition-example.json")


@pytest.fixture(scope="module")
def example_text() -> str:
    return EXAMPLE.read_text()


# ---- an SDK definition, parsed and re-emitted --------------------------------------------------------------

def test_the_sdk_example_parses_and_re_emits_unchanged_key_order_included(example_text):
    original = json.loads(example_text)
    emitted = emit_definition(parse_definition(example_text))
    assert emitted == original
    assert list(emitted) == list(original)
    for ours, theirs in zip(emitted["Steps"], original["Steps"], strict=True):
        assert list(ours) == list(theirs)


def test_pipeline_from_definition_emits_the_example_again(example_text):
    pipeline = Pipeline.from_definition(example_text, name="demo")
    first = json.loads(pipeline.definition())
    assert first == json.loads(example_text)
    assert json.loads(pipeline.definition()) == first  # emitting twice changes nothing
    assert [s.name for s in pipeline.steps] == ["Preprocess", "Train", "CheckAcc"]
    assert [p.name for p in pipeline.parameters] == ["ProcessingInstanceCount", "InputData", "Threshold", "Flag",
                                                    "Mode"]


def test_the_parsed_example_is_a_flat_graph_of_specs(example_text):
    parsed = parse_definition(example_text)
    summary = {name: (s.type, s.depends_on, s.branch_of, s.if_steps, s.else_steps) for name, s in parsed.graph.items()}
    assert summary == {
        "Preprocess": (StepType.PROCESSING, (), None, (), ()),
        "Train": (StepType.TRAINING, (), None, (), ()),
        "CheckAcc": (StepType.CONDITION, (), None, ("CreateModel-CreateModel", "BatchScore"), ("Fail",)),
        "CreateModel-CreateModel": (StepType.CREATE_MODEL, (), ("CheckAcc", "IfSteps"), (), ()),
        "BatchScore": (StepType.TRANSFORM, (), ("CheckAcc", "IfSteps"), (), ()),
        "Fail": (StepType.FAIL, (), ("CheckAcc", "ElseSteps"), (), ()),
    }
    assert parsed.top_level == ["Preprocess", "Train", "CheckAcc"]
    assert parsed.parameters == {
        "ProcessingInstanceCount": ParameterSpec("ProcessingInstanceCount", ParameterType.INTEGER, 1),
        "InputData": ParameterSpec("InputData", ParameterType.STRING, "s3://my-bucket/raw/"),
        "Threshold": ParameterSpec("Threshold", ParameterType.FLOAT, 0.7),
        "Flag": ParameterSpec("Flag", ParameterType.BOOLEAN, False),
        "Mode": ParameterSpec("Mode", ParameterType.STRING, "a", ("a", "b")),
    }
    prep = parsed.graph["Preprocess"]
    assert prep.cache_config == CacheSpec(True, "P30D")
    assert prep.cache_config.window.days == 30
    assert prep.retry_policies == (RetrySpec(("Step.SERVICE_FAULT",), 1, 2.0, 3, None),
                                   RetrySpec(("SageMaker.CAPACITY_ERROR",), 1, 2.0, None, 60))
    assert prep.property_files == (PropertyFileSpec("EvalReport", "evaluation", "evaluation.json"),)
    assert [c["Type"] for c in parsed.graph["CheckAcc"].conditions] == ["GreaterThanOrEqualTo", "Or", "Not"]
    assert "IfSteps" not in parsed.graph["CheckAcc"].arguments  # branches are steps of the graph, not arguments


def test_retry_defaults_apply_only_where_the_definition_is_silent():
    neither = RetrySpec(("Step.THROTTLING",))
    assert (neither.effective_interval_seconds, neither.effective_backoff_rate, neither.effective_max_attempts) == \
        (1, 2.0, 5)
    assert RetrySpec(("Step.THROTTLING",), expire_after_min=60).effective_max_attempts is None
    assert neither.to_dict() == {"ExceptionType": ["Step.THROTTLING"]}


def test_an_imported_pipeline_can_grow_steps_that_read_its_steps(example_text):
    pipeline = Pipeline.from_definition(example_text, name="demo")
    train = pipeline.steps[1]
    assert train.properties.ModelArtifacts.S3ModelArtifacts.expr == {
        "Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    job = ConditionStep("JobNamed", conditions=[ConditionEquals(train.properties.TrainingJobName, "x")],
                        else_steps=[FailStep("Unnamed", error_message="no job name")])
    pipeline.steps.append(job)
    data = json.loads(pipeline.definition())
    assert [s["Name"] for s in data["Steps"]] == ["Preprocess", "Train", "CheckAcc", "JobNamed"]
    assert data["Steps"][3]["Arguments"]["ElseSteps"][0]["Name"] == "Unnamed"


# ---- structural problems, refused by the parser -----------------------------------------------------------

def _definition(*steps: dict, parameters: list | None = None, version: str = "2020-12-01") -> dict:
    return {"Version": version, "Metadata": {}, "Parameters": parameters or [], "PipelineExperimentConfig": None,
            "Steps": list(steps)}


def fail(name: str, **extra) -> dict:
    return {"Name": name, "Type": "Fail", "Arguments": {"ErrorMessage": "x"}, **extra}


def test_the_parser_collects_every_structural_problem_in_one_error():
    bad = _definition(
        {"Name": "a", "Type": "Tarining", "Arguments": {}},
        {"Name": "has space", "Type": "Fail", "Arguments": {}},
        {"Name": "b", "Type": "Processing"},
        {"Name": "c", "Type": "Processing", "Arguments": {}, "CacheConfig": {"Enabled": "yes"}},
        {"Name": "d", "Type": "Processing", "Arguments": {}, "RetryPolicies": [{"MaxAttempts": 2}]},
        {"Name": "e", "Type": "Processing", "Arguments": {}, "PropertyFiles": [{"PropertyFileName": "x"}]},
        {"Name": "f", "Type": "Processing", "Arguments": {}, "CacheConfig": {"Enabled": True, "ExpireAfter": "soon"}},
        parameters=[{"Name": "N", "Type": "Integer", "DefaultValue": "1"},
                    {"Name": "M", "Type": "Integer", "EnumValues": ["a"]},
                    {"Name": "S", "Type": "Text"}],
        version="2019-01-01",
    )
    with pytest.raises(PipelineError) as info:
        parse_definition(bad)
    message = str(info.value)
    assert "The pipeline definition is invalid (11 problems)" in message
    for expected in ("Version is '2019-01-01'", "Type 'Tarining' is not a pipeline step type (known: Condition,",
                     "step Name 'has space' must be 1-64 letters", "step 'b': Arguments is missing",
                     "step 'c': CacheConfig must be", "step 'd': RetryPolicies[0] needs an ExceptionType list",
                     "step 'e': PropertyFiles[0] must be", "step 'f': ExpireAfter 'soon' is not an ISO-8601 duration",
                     "parameter 'N': DefaultValue '1' is a str, not an Integer",
                     "parameter 'M': EnumValues is only for String parameters",
                     "parameter 'S': Type 'Text' is not one of String, Integer, Float, Boolean"):
        assert expected in message, expected


def test_a_step_name_used_twice_is_refused_naming_both_places():
    cond = {"Name": "Check", "Type": "Condition", "Arguments": {"Conditions": [], "IfSteps": [fail("Stop")],
                                                                "ElseSteps": []}}
    with pytest.raises(PipelineError, match=r"step name 'Stop' is used twice \(at the top level and in the IfSteps "
                                            r"of 'Check'\)"):
        parse_definition(_definition(fail("Stop"), cond))


def test_not_json_is_refused():
    with pytest.raises(PipelineError, match=r"not JSON"):
        parse_definition("{nope")


# ---- pipelines built in Python ------------------------------------------------------------------------------

def test_a_pipeline_emits_version_metadata_parameters_and_the_default_experiment_config():
    threshold = ParameterFloat("Threshold", 0.5)
    stop = FailStep("Stop", error_message=Join(on=" ", values=["below", threshold]))
    data = json.loads(Pipeline("p", parameters=[threshold], steps=[stop]).definition())
    assert data == {
        "Version": "2020-12-01", "Metadata": {},
        "Parameters": [{"Name": "Threshold", "Type": "Float", "DefaultValue": 0.5}],
        "PipelineExperimentConfig": {"ExperimentName": {"Get": "Execution.PipelineName"},
                                     "TrialName": {"Get": "Execution.PipelineExecutionId"}},
        "Steps": [{"Name": "Stop", "Type": "Fail", "Arguments": {"ErrorMessage": {"Std:Join": {
            "On": " ", "Values": ["below", {"Get": "Parameters.Threshold"}]}}}}],
    }
    no_experiment = json.loads(Pipeline("p", steps=[FailStep("Stop")], pipeline_experiment_config=None).definition())
    assert no_experiment["PipelineExperimentConfig"] is None


def test_condition_branches_are_nested_inline_with_depends_on_display_name_and_description():
    n = ParameterInteger("N", 1)
    first = ConditionStep("First", conditions=[ConditionEquals(n, 1)])
    cond = ConditionStep("Check", conditions=[ConditionGreaterThanOrEqualTo(n, 2)], display_name="Check it",
                         description="is N big", if_steps=[FailStep("Big", depends_on=[first])],
                         else_steps=[FailStep("Small")])
    data = json.loads(Pipeline("p", parameters=[n], steps=[first, cond]).definition())
    step_dict = data["Steps"][1]
    assert list(step_dict) == ["Name", "Type", "Arguments", "DisplayName", "Description"]
    assert step_dict["Arguments"]["Conditions"] == [
        {"Type": "GreaterThanOrEqualTo", "LeftValue": {"Get": "Parameters.N"}, "RightValue": 2}]
    assert step_dict["Arguments"]["IfSteps"] == [
        {"Name": "Big", "Type": "Fail", "Arguments": {"ErrorMessage": ""}, "DependsOn": ["First"]}]
    assert step_dict["Arguments"]["ElseSteps"][0]["Name"] == "Small"


def test_compile_gives_the_parsed_model_of_what_definition_emits():
    pipeline = Pipeline("p", steps=[FailStep("Stop", error_message="bye")])
    assert emit_definition(pipeline.compile()) == json.loads(pipeline.definition())


def test_pipeline_names_and_parameter_names_are_checked_when_the_pipeline_is_made():
    with pytest.raises(PipelineError, match=r"pipeline name 'my_pipeline' is not allowed"):
        Pipeline("my_pipeline")
    with pytest.raises(PipelineError, match=r"parameter name 'N' is used twice"):
        Pipeline("p", parameters=[ParameterInteger("N"), ParameterString("N")])


# ---- Lambda steps ---------------------------------------------------------------------------------------------

def double(event: dict, context: object = None) -> dict:
    return {"doubled": event["n"] * 2}


def test_a_lambda_step_names_its_python_function_and_declares_its_outputs():
    n = ParameterInteger("N", 2)
    lam = LambdaStep("Double", lambda_func=double, inputs={"n": n},
                     outputs=[LambdaOutput("doubled", LambdaOutputTypeEnum.Integer)])
    assert lam.properties.Outputs["doubled"].expr == {"Get": "Steps.Double.OutputParameters['doubled']"}
    with pytest.raises(KeyError, match=r"declares no output 'tripled'"):
        _ = lam.properties.Outputs["tripled"]
    check = ConditionStep("Big", conditions=[ConditionGreaterThanOrEqualTo(lam.properties.Outputs["doubled"], 3)],
                          if_steps=[FailStep("TooBig")])
    data = json.loads(Pipeline("p", parameters=[n], steps=[lam, check]).definition())
    lam_dict = data["Steps"][0]
    assert lam_dict["Type"] == "Lambda" and lam_dict["Arguments"] == {"n": {"Get": "Parameters.N"}}
    assert lam_dict["FunctionArn"].endswith(":function:tests.test_workflow_definition.double")
    assert lam_dict["OutputParameters"] == [{"OutputName": "doubled", "OutputType": "Integer"}]
    assert local_function(lam_dict["FunctionArn"]) is double
    arn = lam_dict["FunctionArn"].replace("double", "not_there")
    with pytest.raises(PipelineError, match=r"no local function"):
        local_function(arn)


def test_a_lambda_output_compared_as_the_wrong_type_is_refused_in_parsed_definitions_too():
    from sluice.workflow.validation import validate_definition

    lam = {"Name": "L", "Type": "Lambda", "Arguments": {}, "FunctionArn": "arn:aws:lambda:r:1:function:m.f",
           "OutputParameters": [{"OutputName": "ok", "OutputType": "Boolean"}]}
    cond = {"Name": "C", "Type": "Condition", "Arguments": {"Conditions": [
        {"Type": "GreaterThan", "LeftValue": {"Get": "Steps.L.OutputParameters['ok']"}, "RightValue": 1}],
        "IfSteps": [], "ElseSteps": []}}
    with pytest.raises(PipelineError, match=r"booleans have no order"):
        validate_definition(parse_definition(_definition(lam, cond)))


# ---- @step function steps -------------------------------------------------------------------------------------

@step(name="Prepare", instance_type="ml.m5.xlarge")
def prepare(n: int, scale: float) -> list:
    return [n * scale]


@step(name="Total")
def total(xs: list) -> dict:
    return {"sum": sum(xs)}


def test_a_function_step_is_a_training_step_shaped_as_the_sdk_remote_function_job(sluice_home):
    n = ParameterInteger("N", 3)
    result = total(prepare(n, 1.5))
    pipeline = Pipeline("fn", parameters=[n], steps=[result])
    data = json.loads(pipeline.definition())
    assert [s["Name"] for s in data["Steps"]] == ["Prepare", "Total"]  # the upstream step joins by itself
    prep, tot = data["Steps"]
    assert prep["Type"] == "Training" and "DependsOn" not in prep and tot["DependsOn"] == ["Prepare"]
    args = prep["Arguments"]
    bucket = "sagemaker-us-east-1-000000000000"
    assert "TrainingJobName" not in args
    assert args["AlgorithmSpecification"]["ContainerEntrypoint"] == CONTAINER_ENTRYPOINT
    assert args["AlgorithmSpecification"]["TrainingInputMode"] == "File"
    container_args = args["AlgorithmSpecification"]["ContainerArguments"]
    assert container_args[:2] == ["--s3_base_uri", f"s3://{bucket}/fn"]
    refs = container_args[container_args.index("--property_references") + 1:]
    assert refs == ["Execution.PipelineExecutionId",
                    {"Std:Join": {"On": "", "Values": [{"Get": "Execution.PipelineExecutionId"}]}},
                    "Parameters.N", {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.N"}]}}]
    assert args["OutputDataConfig"]["S3OutputPath"] == {"Std:Join": {"On": "/", "Values": [
        f"s3://{bucket}/fn", {"Get": "Execution.PipelineExecutionId"}, "Prepare", "results"]}}
    assert args["InputDataConfig"][0]["ChannelName"] == "sagemaker_remote_function_bootstrap"
    assert args["ResourceConfig"] == {"VolumeSizeInGB": 30, "InstanceCount": 1, "InstanceType": "ml.m5.xlarge"}
    assert args["RetryStrategy"] == {"MaximumRetryAttempts": 1}
    tot_refs = tot["Arguments"]["AlgorithmSpecification"]["ContainerArguments"]
    assert "Steps.Prepare.OutputDataConfig.S3OutputPath" in tot_refs

    build = container_args[container_args.index("--func_step_s3_dir") + 1]
    store = Session().store
    func = pickle.loads(store.get_bytes(bucket, f"fn/Prepare/{build}/function/payload.pkl"))
    assert func(2, 2.0) == [4.0]  # the undecorated function, as recorded
    tot_build = tot_refs[tot_refs.index("--func_step_s3_dir") + 1]  # each step's payload has its own folder
    stored_args, stored_kwargs = pickle.loads(store.get_bytes(bucket, f"fn/Total/{tot_build}/arguments/payload.pkl"))
    assert stored_args == (DelayedReturnRef("Prepare"),) and stored_kwargs == {}
    prep_args, _ = pickle.loads(store.get_bytes(bucket, f"fn/Prepare/{build}/arguments/payload.pkl"))
    assert prep_args == (PipelineVariableRef({"Get": "Parameters.N"}), 1.5)


def test_a_condition_on_a_function_result_reads_it_with_jsonget_on_s3_and_depends_on_it(sluice_home):
    out = total([1, 2])
    cond = ConditionStep("Enough", conditions=[ConditionGreaterThanOrEqualTo(out["sum"], 3)],
                         if_steps=[FailStep("Done")])
    data = json.loads(Pipeline("fn", steps=[cond]).definition())
    assert [s["Name"] for s in data["Steps"]] == ["Total", "Enough"]
    cond_dict = data["Steps"][1]
    assert cond_dict["DependsOn"] == ["Total"]
    left = cond_dict["Arguments"]["Conditions"][0]["LeftValue"]
    assert left == {"Std:JsonGet": {"S3Uri": {"Std:Join": {"On": "/", "Values": [
        "s3://sagemaker-us-east-1-000000000000", {"Get": "Execution.PipelineName"},
        {"Get": "Execution.PipelineExecutionId"}, "Total", "results", "results.json"]}}, "Path": "Result['sum']"}}


def test_a_function_step_has_no_properties_and_its_depends_on_is_extended_not_replaced():
    out = prepare(1, 1.0)
    with pytest.raises(NotImplementedError, match=r"not supported for a @step"):
        _ = out._step.properties
    with pytest.raises(PipelineError, match=r"use add_depends_on"):
        out._step.depends_on = ["x"]
    out._step.add_depends_on(["Other"])
    assert out._step.depends_on == ["Other"]
    assert ExecutionVariables.PIPELINE_NAME.expr == {"Get": "Execution.PipelineName"}


# ---- steps sluice reads but does not build -----------------------------------------------------------------------

def test_tuning_steps_trim_their_job_name_and_offer_the_sdk_properties():
    from sluice.workflow.pipeline_context import _JobStepArguments
    from sluice.workflow.steps import TuningStep

    request = {"HyperParameterTuningJobName": "tune-2025-01-02-03-04-05-678",
               "HyperParameterTuningJobConfig": {"Strategy": "Random"}, "TrainingJobDefinition": {}}
    tune = TuningStep("Tune", step_args=_JobStepArguments("create_tuning_job", request))
    best = tune.properties.BestTrainingJob.FinalHyperParameterTuningJobObjectiveMetric.Value
    good = ConditionStep("Good", conditions=[ConditionGreaterThanOrEqualTo(best, 0.9)], else_steps=[
        FailStep("Bad", error_message=tune.get_top_model_s3_uri(top_k=0, s3_bucket="b", prefix="models"))])
    data = json.loads(Pipeline("p", steps=[tune, good]).definition())
    assert data["Steps"][0]["Arguments"] == {"HyperParameterTuningJobConfig": {"Strategy": "Random"},
                                             "TrainingJobDefinition": {}}
    assert data["Steps"][1]["Arguments"]["Conditions"][0]["LeftValue"] == {
        "Get": "Steps.Tune.BestTrainingJob.FinalHyperParameterTuningJobObjectiveMetric.Value"}
    assert data["Steps"][1]["Arguments"]["ElseSteps"][0]["Arguments"]["ErrorMessage"] == {"Std:Join": {
        "On": "/", "Values": ["s3:/", "b", "models", {"Get": "Steps.Tune.TrainingJobSummaries[0].TrainingJobName"},
                              "output/model.tar.gz"]}}


def test_step_types_sluice_does_not_model_round_trip_and_are_checked_where_it_can():
    callback = {"Name": "Ask", "Type": "Callback", "Arguments": {"q": {"Get": "Parameters.P"}},
                "SqsQueueUrl": "https://sqs/q", "OutputParameters": [{"OutputName": "answer", "OutputType": "String"}]}
    emr = {"Name": "Spark", "Type": "EMR", "Arguments": {"ClusterId": "j-1", "StepConfig": {}}}
    check = {"Name": "Quality", "Type": "QualityCheck", "Arguments": {}}
    reader = {"Name": "Read", "Type": "Fail", "Arguments": {"ErrorMessage": {"Std:Join": {"On": ",", "Values": [
        {"Get": "Steps.Ask.OutputParameters['answer']"}, {"Get": "Steps.Spark.Status.State"},
        {"Get": "Steps.Quality.CalculatedBaselineConstraints"}]}}}}
    definition = {"Version": "2020-12-01", "Metadata": {}, "Parameters": [{"Name": "P", "Type": "String"}],
                  "PipelineExperimentConfig": None, "Steps": [callback, emr, check, reader]}
    pipeline = Pipeline.from_definition(json.dumps(definition), name="p")
    assert json.loads(pipeline.definition()) == definition
    reader["Arguments"]["ErrorMessage"]["Std:Join"]["Values"][0] = {"Get": "Steps.Ask.OutputParameters['answr']"}
    with pytest.raises(PipelineError, match=r"step 'Ask' has no OutputParameters entry named 'answr' \(it has: "
                                            r"answer\)"):
        Pipeline.from_definition(definition)
