"""Pipeline entities compile to the SDK's definition forms: parameters, execution variables, properties,
Join and JsonGet, conditions, retry and cache settings; and they refuse misuse where it is written."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from sluice.errors import PipelineError
from sluice.workflow.conditions import (
    ConditionEquals,
    ConditionGreaterThan,
    ConditionGreaterThanOrEqualTo,
    ConditionIn,
    ConditionLessThan,
    ConditionLessThanOrEqualTo,
    ConditionNot,
    ConditionOr,
)
from sluice.workflow.execution_variables import ExecutionVariables
from sluice.workflow.functions import Join, JsonGet
from sluice.workflow.parallelism_config import ParallelismConfiguration
from sluice.workflow.parameters import ParameterBoolean, ParameterFloat, ParameterInteger, ParameterString
from sluice.workflow.properties import Properties, PropertyFile
from sluice.workflow.retry import (
    SageMakerJobExceptionTypeEnum,
    SageMakerJobStepRetryPolicy,
    StepExceptionTypeEnum,
    StepRetryPolicy,
)
from sluice.workflow.selective_execution_config import SelectiveExecutionConfig
from sluice.workflow.steps import CacheConfig

# ---- parameters ------------------------------------------------------------------------------------------


def test_parameters_compile_to_their_definition_form_and_get_expression():
    mode = ParameterString("Mode", default_value="a", enum_values=["a", "b"])
    assert mode.to_request() == {"Name": "Mode", "Type": "String", "DefaultValue": "a", "EnumValues": ["a", "b"]}
    assert mode.expr == {"Get": "Parameters.Mode"}
    assert ParameterInteger("N", 1).to_request() == {"Name": "N", "Type": "Integer", "DefaultValue": 1}
    assert ParameterFloat("T", 0.7).to_request() == {"Name": "T", "Type": "Float", "DefaultValue": 0.7}
    assert ParameterBoolean("F", False).to_request() == {"Name": "F", "Type": "Boolean", "DefaultValue": False}
    assert ParameterString("Required").to_request() == {"Name": "Required", "Type": "String"}


def test_to_string_joins_on_nothing_except_for_a_string_parameter_which_already_is_one():
    count = ParameterInteger("N", 1)
    assert count.to_string().expr == {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.N"}]}}
    mode = ParameterString("Mode", "a")
    assert mode.to_string() is mode


@pytest.mark.parametrize(("make", "message"), [
    (lambda: ParameterInteger("N", "1"), r"parameter 'N': the default value '1' is a str, not an Integer"),
    (lambda: ParameterInteger("N", True), r"True is a bool, not an Integer"),
    (lambda: ParameterBoolean("B", 0), r"0 is an int, not a Boolean"),
    (lambda: ParameterString("S", "c", enum_values=["a", "b"]), r"the default 'c' is not one of its enum_values"),
    (lambda: ParameterString("bad name"), r"parameter name 'bad name' is not allowed"),
])
def test_a_parameter_whose_default_does_not_fit_is_refused(make, message):
    with pytest.raises(PipelineError, match=message):
        make()


def test_pipeline_variables_refuse_str_and_concatenation_pointing_at_to_string():
    p = ParameterString("Bucket", "b")
    with pytest.raises(TypeError, match=r"Please use `\.to_string\(\)`"):
        str(p)
    with pytest.raises(TypeError, match=r"Use sluice\.workflow\.functions\.Join"):
        _ = "s3://" + p


def test_execution_variables_are_gets_on_execution():
    assert ExecutionVariables.PIPELINE_EXECUTION_ID.expr == {"Get": "Execution.PipelineExecutionId"}
    assert ExecutionVariables.START_DATETIME.expr == {"Get": "Execution.StartDateTime"}
    assert ExecutionVariables.PROCESSING_JOB_NAME.expr == {"Get": "Execution.ProcessingJobName"}


# ---- properties --------------------------------------------------------------------------------------------


def test_properties_follow_the_describe_response_shapes():
    proc = Properties.for_step_type("Prep", "Processing")
    train = Properties.for_step_type("Train", "Training")
    tune = Properties.for_step_type("Tune", "Tuning")
    assert proc.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri.expr == {
        "Get": "Steps.Prep.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}
    assert train.ModelArtifacts.S3ModelArtifacts.expr == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert train.FinalMetricDataList["val:rmse"].Value.expr == {
        "Get": "Steps.Train.FinalMetricDataList['val:rmse'].Value"}
    assert train.HyperParameters["epochs"].expr == {"Get": "Steps.Train.HyperParameters['epochs']"}
    assert tune.BestTrainingJob.TrainingJobName.expr == {"Get": "Steps.Tune.BestTrainingJob.TrainingJobName"}
    assert tune.TrainingJobSummaries[1].TrainingJobName.expr == {
        "Get": "Steps.Tune.TrainingJobSummaries[1].TrainingJobName"}
    assert Properties.for_step_type("M", "Model").ModelName.expr == {"Get": "Steps.M.ModelName"}
    assert Properties.for_step_type("R", "RegisterModel").ModelPackageArn.expr == {"Get": "Steps.R.ModelPackageArn"}
    assert Properties.for_step_type("B", "Transform").TransformOutput.S3OutputPath.expr == {
        "Get": "Steps.B.TransformOutput.S3OutputPath"}


def test_a_property_that_does_not_exist_is_an_attribute_error_naming_the_valid_ones():
    train = Properties.for_step_type("Train", "Training")
    with pytest.raises(AttributeError) as info:
        _ = train.ModelArtefacts
    message = str(info.value)
    assert "Training step 'Train'" in message
    assert "did you mean 'ModelArtifacts'?" in message
    assert "Valid properties: AlgorithmSpecification," in message and "TrainingJobName" in message
    with pytest.raises(AttributeError, match=r"ModelArtifacts has no property 'S3Uri'.*S3ModelArtifacts"):
        _ = train.ModelArtifacts.S3Uri
    with pytest.raises(AttributeError, match=r"FinalMetricDataList is a list; index it"):
        _ = train.FinalMetricDataList.Value
    with pytest.raises(AttributeError, match=r"TrainingJobName is a string value and has no property 'Foo'"):
        _ = train.TrainingJobName.Foo


def test_property_file_is_declared_with_the_sdk_fields():
    report = PropertyFile(name="EvalReport", output_name="evaluation", path="evaluation.json")
    assert report.expr == {"PropertyFileName": "EvalReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}


# ---- functions --------------------------------------------------------------------------------------------


def test_join_compiles_values_and_reports_the_steps_it_reads():
    train = Properties.for_step_type("Train", "Training")
    join = Join(on="/", values=["s3:/", ParameterString("Bucket", "b"), ExecutionVariables.PIPELINE_EXECUTION_ID,
                                train.TrainingJobName])
    assert join.expr == {"Std:Join": {"On": "/", "Values": [
        "s3:/", {"Get": "Parameters.Bucket"}, {"Get": "Execution.PipelineExecutionId"},
        {"Get": "Steps.Train.TrainingJobName"}]}}
    assert join._referenced_steps == ["Train"]


def test_jsonget_on_a_property_file_and_on_an_s3_uri():
    report = PropertyFile("EvalReport", "evaluation", "evaluation.json")
    assert JsonGet(step_name="Eval", property_file=report, json_path="metrics.acc.value").expr == {
        "Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.EvalReport"}, "Path": "metrics.acc.value"}}
    assert JsonGet(step_name="Eval", property_file="EvalReport", json_path="a").expr["Std:JsonGet"]["PropertyFile"] \
        == {"Get": "Steps.Eval.PropertyFiles.EvalReport"}
    uri = Join(on="/", values=["s3://b", ExecutionVariables.PIPELINE_EXECUTION_ID, "results.json"])
    assert JsonGet(s3_uri=uri, json_path="Result[0]").expr == {"Std:JsonGet": {"S3Uri": uri.expr, "Path": "Result[0]"}}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"step_name": "E", "json_path": "a"}, r"either property_file \(with step_name\) or s3_uri"),
    ({"property_file": "R", "json_path": "a"}, r"needs step_name"),
    ({"step_name": "E", "property_file": "R"}, r"needs json_path"),
    ({"s3_uri": "s3://b/k", "json_path": "a"}, r"takes a Join"),
])
def test_jsonget_refuses_incomplete_forms(kwargs, message):
    with pytest.raises(PipelineError, match=message):
        JsonGet(**kwargs)


# ---- conditions -----------------------------------------------------------------------------------------------


def test_conditions_compile_to_the_sdk_forms():
    threshold = ParameterFloat("Threshold", 0.7)
    flag, mode = ParameterBoolean("Flag", False), ParameterString("Mode", "a", ["a", "b"])
    acc = Properties.for_step_type("Train", "Training").FinalMetricDataList["val:acc"].Value
    assert ConditionGreaterThanOrEqualTo(acc, threshold).to_request() == {
        "Type": "GreaterThanOrEqualTo", "LeftValue": acc.expr, "RightValue": {"Get": "Parameters.Threshold"}}
    assert ConditionOr([ConditionEquals(flag, False), ConditionIn(mode, ["a", "b"])]).to_request() == {
        "Type": "Or", "Conditions": [
            {"Type": "Equals", "LeftValue": {"Get": "Parameters.Flag"}, "RightValue": False},
            {"Type": "In", "QueryValue": {"Get": "Parameters.Mode"}, "Values": ["a", "b"]}]}
    assert ConditionNot(ConditionEquals(acc, 0.0)).to_request() == {
        "Type": "Not", "Condition": {"Type": "Equals", "LeftValue": acc.expr, "RightValue": 0.0}}
    for cls, kind in ((ConditionGreaterThan, "GreaterThan"), (ConditionLessThan, "LessThan"),
                      (ConditionLessThanOrEqualTo, "LessThanOrEqualTo")):
        assert cls(acc, 1)._referenced_steps == ["Train"]
        assert cls(acc, 1).to_request()["Type"] == kind


def test_a_condition_on_a_jsonget_is_not_type_checked_before_the_run():
    value = JsonGet(step_name="Eval", property_file="R", json_path="mse")
    assert ConditionLessThanOrEqualTo(value, 6.0).to_request()["RightValue"] == 6.0


@pytest.mark.parametrize(("make", "message"), [
    (lambda: ConditionGreaterThan(ParameterString("Mode", "a"), 5),
     r"ConditionGreaterThan compares Parameters\.Mode \(a string parameter\) with 5 \(an integer\): GreaterThan "
     r"needs two numbers"),
    (lambda: ConditionEquals(ParameterBoolean("Flag"), "no"), r"a boolean never equals a string"),
    (lambda: ConditionLessThan(ParameterBoolean("Flag"), True), r"booleans have no order"),
    (lambda: ConditionEquals(Properties.for_step_type("T", "Training").ModelArtifacts, "s3://x"),
     r"a structure is not a value that can be compared"),
    (lambda: ConditionIn(ParameterInteger("N"), [1, "two"]), r"an integer never equals a string"),
    (lambda: ConditionGreaterThan(Properties.for_step_type("T", "Training").TrainingJobName, 1.5),
     r"Steps\.T\.TrainingJobName \(a string property\)"),
])
def test_comparing_incompatible_types_is_refused_where_the_condition_is_written(make, message):
    with pytest.raises(PipelineError, match=message):
        make()


# ---- retry, cache, parallelism, selection ---------------------------------------------------------------------


def test_retry_policies_compile_as_the_sdk_emits_them():
    assert StepRetryPolicy([StepExceptionTypeEnum.SERVICE_FAULT], max_attempts=3).to_request() == {
        "BackoffRate": 2.0, "IntervalSeconds": 1, "MaxAttempts": 3, "ExceptionType": ["Step.SERVICE_FAULT"]}
    policy = SageMakerJobStepRetryPolicy(exception_types=[SageMakerJobExceptionTypeEnum.CAPACITY_ERROR],
                                         failure_reason_types=[SageMakerJobExceptionTypeEnum.CAPACITY_ERROR,
                                                               SageMakerJobExceptionTypeEnum.RESOURCE_LIMIT],
                                         expire_after_mins=60)
    assert policy.to_request() == {"BackoffRate": 2.0, "IntervalSeconds": 1, "ExpireAfterMin": 60,
                                   "ExceptionType": ["SageMaker.CAPACITY_ERROR", "SageMaker.RESOURCE_LIMIT"]}


def test_retry_policies_tolerate_both_limits_or_neither_as_sdk_definitions_carry_them():
    both = StepRetryPolicy([StepExceptionTypeEnum.THROTTLING], max_attempts=2, expire_after_mins=5).to_request()
    assert both["MaxAttempts"] == 2 and both["ExpireAfterMin"] == 5
    neither = StepRetryPolicy([StepExceptionTypeEnum.THROTTLING]).to_request()
    assert "MaxAttempts" not in neither and "ExpireAfterMin" not in neither


@pytest.mark.parametrize(("make", "message"), [
    (lambda: StepRetryPolicy([StepExceptionTypeEnum.SERVICE_FAULT], max_attempts=21), r"MaxAttempts 21 must be"),
    (lambda: StepRetryPolicy([StepExceptionTypeEnum.SERVICE_FAULT], interval_seconds=43201), r"IntervalSeconds"),
    (lambda: StepRetryPolicy([StepExceptionTypeEnum.SERVICE_FAULT], backoff_rate=-1), r"BackoffRate -1"),
    (lambda: StepRetryPolicy([StepExceptionTypeEnum.SERVICE_FAULT], expire_after_mins=14401), r"ExpireAfterMin"),
    (lambda: StepRetryPolicy([SageMakerJobExceptionTypeEnum.CAPACITY_ERROR]), r"StepExceptionTypeEnum"),
    (lambda: SageMakerJobStepRetryPolicy(), r"at least one of exception_types and failure_reason_types"),
])
def test_retry_settings_outside_the_service_limits_are_refused(make, message):
    with pytest.raises(PipelineError, match=message):
        make()


def test_cache_config_compiles_and_checks_its_duration():
    assert CacheConfig(enable_caching=True, expire_after="P30D").config == {
        "CacheConfig": {"Enabled": True, "ExpireAfter": "P30D"}}
    assert CacheConfig().config == {"CacheConfig": {"Enabled": False}}
    with pytest.raises(PipelineError, match=r"not an ISO-8601 duration"):
        CacheConfig(True, "a month")


def test_parallelism_and_selective_execution_requests():
    assert ParallelismConfiguration(4).to_request() == {"MaxParallelExecutionSteps": 4}
    with pytest.raises(PipelineError, match=r"integer >= 1"):
        ParallelismConfiguration(0)
    config = SelectiveExecutionConfig(["Train", "Eval"], source_pipeline_execution_arn="arn:x")
    assert config.to_request() == {"SourcePipelineExecutionArn": "arn:x",
                                   "SelectedSteps": [{"StepName": "Train"}, {"StepName": "Eval"}]}
    assert SelectiveExecutionConfig(["Train"]).to_request() == {"SelectedSteps": [{"StepName": "Train"}]}
    with pytest.raises(PipelineError, match=r"select 1 to 50 steps"):
        SelectiveExecutionConfig([])


# ---- the surface ---------------------------------------------------------------------------------------------

SURFACE = {
    "sluice.workflow.parameters": {"ParameterString", "ParameterInteger", "ParameterFloat", "ParameterBoolean"},
    "sluice.workflow.execution_variables": {"ExecutionVariables"},
    "sluice.workflow.properties": {"Properties", "PropertiesList", "PropertiesMap", "PropertyFile"},
    "sluice.workflow.functions": {"Join", "JsonGet"},
    "sluice.workflow.conditions": {"ConditionEquals", "ConditionGreaterThan", "ConditionGreaterThanOrEqualTo",
                                   "ConditionLessThan", "ConditionLessThanOrEqualTo", "ConditionIn", "ConditionNot",
                                   "ConditionOr"},
    "sluice.workflow.steps": {"Step", "ProcessingStep", "TrainingStep", "TuningStep", "TransformStep",
                              "CreateModelStep", "CacheConfig", "StepTypeEnum"},
    "sluice.workflow.model_step": {"ModelStep"},
    "sluice.workflow.condition_step": {"ConditionStep"},
    "sluice.workflow.fail_step": {"FailStep"},
    "sluice.workflow.lambda_step": {"LambdaStep", "LambdaOutput", "LambdaOutputTypeEnum"},
    "sluice.workflow.function_step": {"step", "DelayedReturn"},
    "sluice.workflow.retry": {"StepRetryPolicy", "SageMakerJobStepRetryPolicy", "StepExceptionTypeEnum",
                              "SageMakerJobExceptionTypeEnum"},
    "sluice.workflow.parallelism_config": {"ParallelismConfiguration"},
    "sluice.workflow.selective_execution_config": {"SelectiveExecutionConfig"},
    "sluice.workflow.pipeline": {"Pipeline"},
    "sluice.workflow.pipeline_context": {"PipelineSession", "LocalPipelineSession"},
    "sluice.workflow.graph": {"PipelineGraph", "StepSpec", "dependencies", "toposort", "find_cycle", "downstream"},
    "sluice.workflow.validation": {"validate", "validate_overrides"},
}


@pytest.mark.parametrize("module", sorted(SURFACE))
def test_the_sdk_import_paths_export_the_sdk_names(module):
    mod = importlib.import_module(module)
    assert SURFACE[module] <= set(mod.__all__)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name} is listed in __all__ but missing"


def test_importing_the_workflow_package_loads_no_heavy_backend():
    code = ("import sys, sluice.workflow.pipeline, sluice.workflow.pipeline_context, sluice.workflow.function_step, "
            "sluice.workflow.lambda_step, sluice.workflow.model_step; "
            "print(sorted(m for m in ('boto3', 'botocore', 'ray', 'sqlalchemy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_step_name_the_service_would_refuse_is_refused_when_the_step_is_made():
    from sluice.workflow.fail_step import FailStep

    with pytest.raises(PipelineError, match=r"step name 'check accuracy' is not allowed: use 1-64 letters"):
        FailStep("check accuracy")
