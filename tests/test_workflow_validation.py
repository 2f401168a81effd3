"""Validation refuses a bad pipeline before anything runs, and each message names the problem and the fix.

Definitions here are plain data (as an SDK would emit them) so each rule is tested on exactly what the
executor will receive; a few tests show the same refusal for pipelines built in Python.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from sluice.errors import PipelineError
from sluice.workflow.condition_step import ConditionStep
from sluice.workflow.conditions import ConditionEquals
from sluice.workflow.fail_step import FailStep
from sluice.workflow.graph import parse_definition
from sluice.workflow.parameters import ParameterBoolean, ParameterFloat, ParameterInteger, ParameterString
from sluice.workflow.pipeline import Pipeline
from sluice.workflow.validation import validate, validate_definition, validate_overrides, validate_selection

EXAMPLE = json.loads(Path("/work/shared/reference/sagemaker-pipeline-definition-example.json").read_text())


def example() -> dict:
    return copy.deepcopy(EXAMPLE)


def problems_of(definition: dict) -> str:
    with pytest.raises(PipelineError) as info:
        validate_definition(parse_definition(definition))
    return str(info.value)


def steps(d: dict) -> dict[str, dict]:
    """The example's steps by name, nested ones included (for editing in place)."""
    out = {}
    for s in d["Steps"]:
        out[s["Name"]] = s
        for key in ("IfSteps", "ElseSteps"):
            for child in s["Arguments"].get(key, []) if s["Type"] == "Condition" else []:
                out[child["Name"]] = child
    return out


def test_the_sdk_example_is_valid():
    validate_definition(parse_definition(example()))


def test_a_dependency_cycle_is_refused_naming_the_cycle():
    d = example()
    steps(d)["Preprocess"]["DependsOn"] = ["Train"]
    assert "dependency cycle: Preprocess -> Train -> Preprocess" in problems_of(d)


def test_a_longer_cycle_through_property_references_is_named_in_order():
    d = example()
    steps(d)["Preprocess"]["Arguments"]["Environment"]["K"] = {"Get": "Steps.BatchScore.TransformOutput.S3OutputPath"}
    message = problems_of(d)
    assert "dependency cycle: Preprocess -> BatchScore -> CheckAcc -> Preprocess" in message


def test_a_step_name_used_twice_is_refused_when_the_pipeline_is_made():
    with pytest.raises(PipelineError, match=r"step name 'Stop' is used twice \(at the top level and in the ElseSteps "
                                            r"of 'Check'\)"):
        stop = FailStep("Stop")
        Pipeline("p", steps=[stop, ConditionStep("Check", conditions=[ConditionEquals(1, 1)], else_steps=[stop])])


def test_references_to_unknown_parameters_steps_and_execution_variables_are_refused():
    d = example()
    s = steps(d)
    s["Preprocess"]["Arguments"]["Environment"] = {"A": {"Get": "Parameters.InputDta"},
                                                   "B": {"Get": "Execution.PipelineExecutionID"},
                                                   "C": {"Get": "Steps.Trian.TrainingJobName"},
                                                   "D": {"Get": "PipelineExperimentConfig.RunName"}}
    s["Train"]["DependsOn"] = ["Preprocss"]
    message = problems_of(d)
    assert "step 'Preprocess' reads Parameters.InputDta, which is not declared (declared: Flag, InputData, Mode, " \
           "ProcessingInstanceCount, Threshold). Did you mean 'InputData'?" in message
    assert "step 'Preprocess' reads Execution.PipelineExecutionID, which is not an execution variable" in message
    assert "step 'Preprocess' reads Steps.Trian.TrainingJobName, but there is no step 'Trian' in this pipeline. " \
           "Did you mean 'Train'?" in message
    assert "PipelineExperimentConfig.RunName; it has only ExperimentName and TrialName" in message
    assert "step 'Train': DependsOn names 'Preprocss', which is not a step of this pipeline. Did you mean " \
           "'Preprocess'?" in message


def test_a_property_path_that_does_not_exist_in_the_describe_shape_is_refused():
    d = example()
    s = steps(d)
    s["BatchScore"]["Arguments"]["ModelName"] = {"Get": "Steps.CreateModel-CreateModel.ModelNme"}
    s["Train"]["Arguments"]["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = {
        "Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs.S3Output.S3Uri"}
    s["Fail"]["Arguments"]["ErrorMessage"] = {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts.Bucket"}
    message = problems_of(d)
    assert "step 'BatchScore' reads Steps.CreateModel-CreateModel.ModelNme: the step has no property 'ModelNme'; " \
           "did you mean 'ModelName'?" in message
    assert "(Model step 'CreateModel-CreateModel'; its properties mirror DescribeModelOutput)" in message
    assert "ProcessingOutputConfig.Outputs is a list; index it" in message
    assert "ModelArtifacts.S3ModelArtifacts is a string value and has no property 'Bucket'" in message


def test_an_output_name_the_processing_step_does_not_have_is_refused():
    d = example()
    steps(d)["Train"]["Arguments"]["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = {
        "Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['trian'].S3Output.S3Uri"}
    assert "step 'Preprocess' has no Outputs entry named 'trian' (it has: evaluation, train). Did you mean " \
           "'train'?" in problems_of(d)


def test_a_jsonget_on_a_property_file_the_step_does_not_declare_is_refused():
    d = example()
    cond = steps(d)["CheckAcc"]["Arguments"]["Conditions"][0]
    cond["LeftValue"]["Std:JsonGet"]["PropertyFile"] = {"Get": "Steps.Preprocess.PropertyFiles.EvalReprt"}
    message = problems_of(d)
    assert "JsonGet reads property file 'EvalReprt', which step 'Preprocess' does not declare (it declares: " \
           "EvalReport). Add PropertyFile(name='EvalReprt', ...) to its property_files." in message


def test_a_jsonget_on_a_step_that_is_not_processing_and_a_property_file_outside_jsonget_are_refused():
    d = example()
    s = steps(d)
    cond = s["CheckAcc"]["Arguments"]["Conditions"][0]
    cond["LeftValue"]["Std:JsonGet"]["PropertyFile"] = {"Get": "Steps.Train.PropertyFiles.EvalReport"}
    s["Fail"]["Arguments"]["ErrorMessage"] = {"Get": "Steps.Preprocess.PropertyFiles.EvalReport"}
    message = problems_of(d)
    assert "JsonGet reads property file 'EvalReport' of Training step 'Train'; only Processing steps declare " \
           "property files" in message
    assert "Steps.Preprocess.PropertyFiles.EvalReport is not a property file reference" in message


def test_a_property_file_reading_an_output_the_step_lacks_is_refused():
    d = example()
    steps(d)["Preprocess"]["PropertyFiles"][0]["OutputName"] = "report"
    assert "property file 'EvalReport' reads output 'report', which the step does not have (outputs: evaluation, " \
           "train)" in problems_of(d)


def test_a_condition_comparing_incompatible_types_is_refused():
    d = example()
    conditions = steps(d)["CheckAcc"]["Arguments"]["Conditions"]
    conditions[1]["Conditions"][0]["RightValue"] = "false"          # Flag (Boolean) == "false"
    conditions[1]["Conditions"][1]["Values"] = ["a", 1]             # Mode (String) in ["a", 1]
    conditions.append({"Type": "GreaterThan", "LeftValue": {"Get": "Parameters.Mode"}, "RightValue": 5})
    conditions.append({"Type": "LessThan", "LeftValue": {"Get": "Steps.Train.ModelArtifacts"}, "RightValue": 5})
    conditions.append({"Type": "Between", "LeftValue": 1, "RightValue": 2})
    message = problems_of(d)
    assert "Conditions[1].Conditions[0]: Equals compares Parameters.Flag (a boolean parameter) with \"false\" " \
           "(a string): a boolean never equals a string." in message
    assert "Conditions[1].Conditions[1]: In compares Parameters.Mode (a string parameter) with 1 (an integer)" \
        in message
    assert "Conditions[3]: GreaterThan compares Parameters.Mode (a string parameter) with 5 (an integer): " \
           "GreaterThan needs two numbers (or two strings), not a string and an integer." in message
    assert "Conditions[4]: LessThan compares Steps.Train.ModelArtifacts (a structure property) with 5" in message
    assert "condition Type 'Between' is not one of Equals" in message


def test_a_step_depending_on_a_fail_step_is_refused():
    d = example()
    steps(d)["BatchScore"]["DependsOn"] = ["Fail"]
    assert "step 'BatchScore' depends on FailStep 'Fail'; a FailStep ends the execution" in problems_of(d)


def test_retry_policies_outside_the_rules_are_refused():
    d = example()
    s = steps(d)
    s["Preprocess"]["RetryPolicies"][0]["ExceptionType"] = ["Step.SERVICE_FAILURE"]
    s["Preprocess"]["RetryPolicies"][1]["MaxAttempts"] = 50
    s["CreateModel-CreateModel"]["RetryPolicies"] = [{"ExceptionType": ["SageMaker.CAPACITY_ERROR"]}]
    s["CheckAcc"]["RetryPolicies"] = [{"ExceptionType": ["Step.THROTTLING"]}]
    message = problems_of(d)
    assert "RetryPolicies[0]: ExceptionType 'Step.SERVICE_FAILURE' is not one of Step.SERVICE_FAULT" in message
    assert "RetryPolicies[1]: MaxAttempts 50 must be an integer from 0 to 20" in message
    assert "SageMaker.CAPACITY_ERROR applies to job steps; a Model step starts no job" in message
    assert "step 'CheckAcc': a Condition step takes no RetryPolicies" in message


def test_every_problem_is_reported_at_once():
    d = example()
    s = steps(d)
    s["Train"]["DependsOn"] = ["Nope"]
    s["Fail"]["Arguments"]["ErrorMessage"] = {"Get": "Parameters.Nope"}
    assert "The pipeline is invalid (2 problems); nothing was run:" in problems_of(d)


def test_python_pipelines_are_validated_by_definition_before_any_json_comes_out():
    mode = ParameterString("Mode", "a")
    undeclared = ParameterInteger("Undeclared", 1)
    pipeline = Pipeline("p", parameters=[mode], steps=[
        ConditionStep("Check", conditions=[ConditionEquals(undeclared, 1)], if_steps=[FailStep("Stop")])])
    with pytest.raises(PipelineError, match=r"reads Parameters\.Undeclared, which is not declared \(declared: Mode\)"):
        pipeline.definition()


def test_validate_takes_the_graph_and_parameter_objects_directly():
    parsed = parse_definition(example())
    validate(parsed.graph, list(parsed.parameters.values()))
    with pytest.raises(PipelineError, match=r"reads Parameters\.Threshold, which is not declared"):
        validate(parsed.graph, [ParameterInteger("ProcessingInstanceCount", 1), ParameterString("InputData", "x"),
                                ParameterBoolean("Flag", False), ParameterString("Mode", "a")])


# ---- start parameters -------------------------------------------------------------------------------------

PARAMETERS = [ParameterInteger("Count", 1), ParameterFloat("Threshold", 0.5), ParameterBoolean("Flag", False),
              ParameterString("Mode", "a", enum_values=["a", "b"]), ParameterString("Input")]


def test_overrides_are_typed_and_merged_with_defaults():
    assert validate_overrides(PARAMETERS, {"Count": 3, "Input": "s3://b/k", "Threshold": 1}) == {
        "Count": 3, "Threshold": 1.0, "Flag": False, "Mode": "a", "Input": "s3://b/k"}


def test_overrides_in_the_wire_format_are_read_as_the_declared_types():
    assert validate_overrides(PARAMETERS, {"Count": "4", "Threshold": "0.9", "Flag": "True", "Input": "x"}) == {
        "Count": 4, "Threshold": 0.9, "Flag": True, "Mode": "a", "Input": "x"}


def test_overrides_of_the_wrong_type_outside_enum_values_unknown_or_missing_are_refused_together():
    with pytest.raises(PipelineError) as info:
        validate_overrides(PARAMETERS, {"Count": 2.5, "Threshold": "high", "Flag": "maybe", "Mode": "c",
                                        "Modee": "a"})
    message = str(info.value)
    for expected in ("parameter 'Count' is Integer: 2.5 is a float, not an Integer",
                     "parameter 'Threshold' is Float: 'high' is not a Float",
                     "parameter 'Flag' is Boolean: 'maybe' is not a Boolean (give true or false)",
                     "parameter 'Mode': 'c' is not one of its EnumValues ['a', 'b']",
                     "'Modee' is not a parameter of this pipeline (parameters: Count, Flag, Input, Mode, Threshold)."
                     " Did you mean 'Mode'?",
                     "parameter 'Input' has no default, so a value must be given at start"):
        assert expected in message, expected


def test_an_empty_string_override_is_refused_as_the_service_does():
    with pytest.raises(PipelineError, match=r"parameter 'Input': the empty string is not allowed"):
        validate_overrides(PARAMETERS, {"Input": ""})


def test_overrides_accept_the_parsed_parameter_specs():
    parsed = parse_definition(example())
    assert validate_overrides(parsed.parameters, {"Mode": "b"})["Mode"] == "b"


# ---- selective execution --------------------------------------------------------------------------------------

def test_a_selection_must_include_every_step_between_two_selected_steps():
    graph = parse_definition(example()).graph
    validate_selection(graph, ["Train", "CheckAcc"])
    validate_selection(graph, ["BatchScore"])
    with pytest.raises(PipelineError, match=r"steps CheckAcc, CreateModel-CreateModel, Train lie between selected "
                                            r"steps 'Preprocess' and 'BatchScore'"):
        validate_selection(graph, ["Preprocess", "BatchScore"])
    with pytest.raises(PipelineError, match=r"'Trian' is not a step of this pipeline\. Did you mean 'Train'\?"):
        validate_selection(graph, ["Trian"])
