"""The facade pieces pipelines use besides jobs: ``Transformer.transform`` under a PipelineSession (the SDK blog's
TransformStep, and the older ``TransformStep(transformer=..., inputs=TransformInput(...))``), one Model record
and one model-package record for the facade and the pipeline runners alike, the SDK's older ``RegisterModel``
collection, and AWS Lambda functions mapped to Python callables in the ``[lambdas]`` config section.

Jobs are real and tiny (four CSV rows); the CLI test runs ``sluice pipeline run`` in a process of its own.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path
from typing import Any

import botocore.session
import pytest

import sluice
from sluice.config import load_config, reset_config
from sluice.errors import PipelineError, SpecError
from sluice.estimator import Estimator
from sluice.inputs import TransformInput
from sluice.model import Model
from sluice.model_metrics import MetricsSource, ModelMetrics
from sluice.model_registry import create_model_package
from sluice.processing import ProcessingOutput, ScriptProcessor
from sluice.transformer import Transformer
from sluice.workflow.execution import open_execution
from sluice.workflow.graph import dependencies
from sluice.workflow.lambda_step import local_function
from sluice.workflow.model_step import ModelStep
from sluice.workflow.parameters import ParameterString
from sluice.workflow.pipeline import Pipeline
from sluice.workflow.pipeline_context import LocalPipelineSession, PipelineSession
from sluice.workflow.step_collections import RegisterModel
from sluice.workflow.steps import ProcessingStep, TrainingStep, TransformStep
from tests.pipelines import INFERENCE, TRAIN

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ROLE = sluice.get_execution_role()

@pytest.fixture
def sess(sluice_home: Path) -> LocalPipelineSession:
    return LocalPipelineSession()


def shape_members(operation: str) -> set[str]:
    model = botocore.session.get_session().get_service_model("sagemaker")
    return set(model.operation_model(operation).output_shape.members)


def uploaded_model(sess: PipelineSession, key: str = "artifacts/model.tar.gz") -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("model.txt")
        info.size = 7
        tar.addfile(info, io.BytesIO(b"weights"))
    bucket = sess.default_bucket()
    sess.store.put(bucket, key, buf.getvalue())
    return f"s3://{bucket}/{key}"


def steps_of(definition: str) -> dict[str, dict[str, Any]]:
    return {s["Name"]: s for s in json.loads(definition)["Steps"]}


def finished(pipeline: Pipeline, **start_kwargs: Any) -> Any:
    pipeline.upsert(role_arn=ROLE)
    execution = pipeline.start(**start_kwargs)
    with contextlib.suppress(PipelineError):  # a Failed run raises; the tests read describe() instead
        execution.wait(show=False)
    return execution


# ---- the blog's TransformStep -----------------------------------------------------------------------------

def blog_pipeline(local_pipeline_session: LocalPipelineSession, code: Path) -> tuple[Pipeline, Transformer]:
    """Training -> ModelStep(model.create) -> TransformStep, written as the SDK blog's walkthrough writes them."""
    (code / "train.py").write_text(TRAIN)
    (code / "inference.py").write_text(INFERENCE)
    bucket = local_pipeline_session.default_bucket()
    batch_data = ParameterString(name="BatchData", default_value=f"s3://{bucket}/abalone/batch")
    estimator = Estimator(image_uri=SKLEARN_IMAGE, entry_point="train.py", source_dir=str(code), role=ROLE,
                          instance_count=1, instance_type="ml.m5.xlarge", output_path=f"s3://{bucket}/model",
                          sagemaker_session=local_pipeline_session)
    step_train = TrainingStep(name="AbaloneTrain", step_args=estimator.fit())
    model = Model(image_uri=SKLEARN_IMAGE, model_data=step_train.properties.ModelArtifacts.S3ModelArtifacts,
                  role=ROLE, sagemaker_session=local_pipeline_session)
    step_create_model = ModelStep(name="AbaloneCreateModel", step_args=model.create(instance_type="ml.m5.xlarge"))
    transformer = Transformer(
        model_name=step_create_model.properties.ModelName,
        instance_type="ml.m5.xlarge",
        instance_count=1,
        output_path=f"s3://{bucket}/AbaloneTransform",
        sagemaker_session=local_pipeline_session,
    )
    step_transform = TransformStep(
        name="AbaloneTransform", step_args=transformer.transform(data=batch_data, content_type="text/csv")
    )
    pipeline = Pipeline(name="LocalModelPipeline", parameters=[batch_data],
                        steps=[step_train, step_create_model, step_transform],
                        sagemaker_session=local_pipeline_session)
    return pipeline, transformer


def test_the_blogs_transform_step_compiles_to_the_sdk_definition_and_starts_nothing(sess, tmp_path):
    pipeline, transformer = blog_pipeline(sess, tmp_path)
    bucket = sess.default_bucket()

    definition = pipeline.definition()
    step = steps_of(definition)["AbaloneTransform"]

    assert step["Type"] == "Transform"
    assert step["Arguments"] == {  # the shape of the SDK's step: no job name, the model read from the model step
        "ModelName": {"Get": "Steps.AbaloneCreateModel-CreateModel.ModelName"},
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                           "S3Uri": {"Get": "Parameters.BatchData"}}},
                           "ContentType": "text/csv"},
        "TransformOutput": {"S3OutputPath": f"s3://{bucket}/AbaloneTransform"},
        "TransformResources": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge"},
    }
    assert list(step["Arguments"]) == ["ModelName", "TransformInput", "TransformOutput", "TransformResources"]
    # The model is known only at execution: the job is named as the SDK names it, not from a model record.
    assert transformer._current_job_name.startswith("transform-job-")
    graph = pipeline.compile().graph
    assert dependencies(graph)["AbaloneTransform"] == {"AbaloneCreateModel-CreateModel"}
    assert steps_of(pipeline.definition())["AbaloneTransform"] == step  # the same every time it is built
    assert sess.metadata.list_jobs() == [] and sess.metadata.list_resources("Model") == []  # nothing ran


def test_the_blogs_training_model_and_transform_steps_run_end_to_end(sess, tmp_path):
    pipeline, _ = blog_pipeline(sess, tmp_path)
    bucket = sess.default_bucket()
    sess.store.put(bucket, "abalone/batch/rows.csv", b"0.0\n3.0\n0.5\n2.5\n")

    execution = finished(pipeline)

    assert execution.describe()["PipelineExecutionStatus"] == "Succeeded", execution.describe().get("FailureReason")
    steps = {s["StepName"]: s for s in execution.list_steps()["PipelineExecutionSteps"]}
    assert {name: s["StepStatus"] for name, s in steps.items()} == {
        "AbaloneTrain": "Succeeded", "AbaloneCreateModel-CreateModel": "Succeeded", "AbaloneTransform": "Succeeded"}
    [job] = sess.metadata.list_jobs("TransformJob")
    assert steps["AbaloneTransform"]["Metadata"] == {"TransformJob": {"Arn": job.record["TransformJobArn"]}}
    model_arn = steps["AbaloneCreateModel-CreateModel"]["Metadata"]["Model"]["Arn"]
    assert model_arn.endswith(f":model/{job.record['ModelName'].lower()}")
    assert job.record["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{bucket}/abalone/batch"
    assert sess.store.get_bytes(bucket, "AbaloneTransform/rows.csv.out") == b"0\n1\n0\n1\n"


def test_transform_data_may_be_an_earlier_steps_output_in_either_transform_step_form(sess, tmp_path):
    """``step_args=transformer.transform(...)`` and the older ``transformer=..., inputs=TransformInput(...)`` give
    the same arguments; the data is a processing step's output, so both steps wait for it."""
    (tmp_path / "prep.py").write_text("print('prep')\n")
    processor = ScriptProcessor(command=["python3"], image_uri=SKLEARN_IMAGE, role=ROLE, instance_count=1,
                                instance_type="ml.m5.xlarge", sagemaker_session=sess)
    prep = ProcessingStep("Prep", step_args=processor.run(code=str(tmp_path / "prep.py"), outputs=[
        ProcessingOutput(output_name="batch", source="/opt/ml/processing/batch")]))
    batch = prep.properties.ProcessingOutputConfig.Outputs["batch"].S3Output.S3Uri
    transformer = Transformer(model_name="churn-model", instance_count=1, instance_type="ml.m5.large",
                              output_path=f"s3://{sess.default_bucket()}/scored", accept="text/csv",
                              assemble_with="Line", sagemaker_session=sess)
    by_args = TransformStep("ByArgs", step_args=transformer.transform(
        batch, content_type="text/csv", split_type="Line", input_filter="$[1:]", join_source="Input"))
    by_inputs = TransformStep("ByInputs", transformer=transformer, inputs=TransformInput(
        data=batch, content_type="text/csv", split_type="Line", input_filter="$[1:]", join_source="Input"))
    pipeline = Pipeline(name="score", steps=[prep, by_args, by_inputs], sagemaker_session=sess)

    steps = steps_of(pipeline.definition())

    assert steps["ByArgs"]["Arguments"] == steps["ByInputs"]["Arguments"]
    arguments = steps["ByArgs"]["Arguments"]
    assert arguments["ModelName"] == "churn-model"
    assert arguments["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == {
        "Get": "Steps.Prep.ProcessingOutputConfig.Outputs['batch'].S3Output.S3Uri"}
    assert arguments["DataProcessing"] == {"InputFilter": "$[1:]", "JoinSource": "Input"}
    assert list(arguments["TransformOutput"]) == ["S3OutputPath", "AssembleWith", "Accept"]  # the SDK's order
    graph = pipeline.compile().graph
    assert dependencies(graph)["ByArgs"] == dependencies(graph)["ByInputs"] == {"Prep"}
    assert sess.metadata.list_jobs() == []


def test_a_pipeline_variable_given_to_a_transformer_outside_a_pipeline_session_is_refused(sluice_home):
    plain = sluice.Session()
    model_name = ParameterString("ModelName", default_value="m")
    with pytest.raises(SpecError, match=r"pipeline variable.*PipelineSession\(\)"):
        Transformer(model_name=model_name, instance_count=1, instance_type="ml.m5.large",
                    sagemaker_session=plain).transform(f"s3://{plain.default_bucket()}/in")
    with pytest.raises(SpecError, match=r"pipeline variable.*TransformStep"):
        Transformer(model_name="m", instance_count=1, instance_type="ml.m5.large",
                    sagemaker_session=plain).transform(ParameterString("Data", default_value="s3://b/in"))
    assert plain.metadata.list_jobs() == []


# ---- one Model record -------------------------------------------------------------------------------------

def test_model_create_and_a_model_step_record_the_same_describe_model_record(sess):
    data = uploaded_model(sess)
    standalone = Model(image_uri=SKLEARN_IMAGE, model_data=data, env={"THREADS": "2"}, role=ROLE,
                       sagemaker_session=sluice.Session())
    standalone.create(instance_type="ml.m5.large")
    in_pipeline = Model(image_uri=SKLEARN_IMAGE, model_data=data, env={"THREADS": "2"}, role=ROLE,
                        sagemaker_session=sess)
    execution = finished(Pipeline(name="models", steps=[ModelStep("M", step_args=in_pipeline.create(
        instance_type="ml.m5.large"))], sagemaker_session=sess))
    assert execution.describe()["PipelineExecutionStatus"] == "Succeeded", execution.describe().get("FailureReason")

    by_facade = sess.describe_model(standalone.name)
    [step] = execution.list_steps()["PipelineExecutionSteps"]
    by_step = next(r.record for r in sess.metadata.list_resources("Model")
                   if r.record["ModelArn"] == step["Metadata"]["Model"]["Arn"])
    assert set(by_facade) == set(by_step) <= shape_members("DescribeModel")
    for key in ("PrimaryContainer", "ExecutionRoleArn", "EnableNetworkIsolation"):
        assert by_facade[key] == by_step[key], key
    assert by_facade["PrimaryContainer"] == {"Image": SKLEARN_IMAGE, "Environment": {"THREADS": "2"},
                                             "ModelDataUrl": data}


def test_model_create_checks_the_request_against_the_create_model_shape_and_records_nothing_bad(sess):
    plain = sluice.Session()
    model = Model(image_uri=SKLEARN_IMAGE, model_data=uploaded_model(sess), env={"THREADS": 2}, role=ROLE,
                  sagemaker_session=plain)
    with pytest.raises(SpecError, match=r'(?s)CreateModel request is invalid.*'
                                        r'PrimaryContainer\.Environment\["THREADS"\]: got 2'):
        model.create()
    assert plain.metadata.list_resources("Model") == []


# ---- one model-package record -----------------------------------------------------------------------------

def registry_arguments(sess: PipelineSession) -> dict[str, Any]:
    """``model.register()`` arguments for every CreateModelPackage field the registry used to leave out."""
    bucket = sess.default_bucket()
    return dict(
        content_types=["text/csv"], response_types=["text/csv"], inference_instances=["ml.m5.large"],
        transform_instances=["ml.m5.large"], model_package_group_name="RiskModels",
        model_metrics=ModelMetrics(model_statistics=MetricsSource("application/json",
                                                                  f"s3://{bucket}/eval/evaluation.json")),
        metadata_properties={"CommitId": "4f1c2e9", "Repository": "https://git.example.com/risk.git",
                             "GeneratedBy": "nightly", "ProjectId": "p-17"},
        drift_check_baselines={"ModelQuality": {"Statistics": {"ContentType": "application/json",
                                                               "S3Uri": f"s3://{bucket}/drift/statistics.json"}}},
        customer_metadata_properties={"team": "risk"}, domain="MACHINE_LEARNING", task="CLASSIFICATION",
        sample_payload_url=f"s3://{bucket}/payload/sample.tar.gz",
        validation_specification={"ValidationRole": ROLE, "ValidationProfiles": [{
            "ProfileName": "smoke", "TransformJobDefinition": {
                "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                                   "S3Uri": f"s3://{bucket}/validation"}}},
                "TransformOutput": {"S3OutputPath": f"s3://{bucket}/validation-out"},
                "TransformResources": {"InstanceCount": 1, "InstanceType": "ml.m5.large"}}}]},
        approval_status="Approved", description="nightly build",
    )


RECORDED = {"MetadataProperties": "metadata_properties", "DriftCheckBaselines": "drift_check_baselines",
            "CustomerMetadataProperties": "customer_metadata_properties", "Domain": "domain", "Task": "task",
            "SamplePayloadUrl": "sample_payload_url", "ValidationSpecification": "validation_specification"}


def test_a_register_step_and_model_register_record_every_create_model_package_field(sess):
    data = uploaded_model(sess)
    arguments = registry_arguments(sess)
    model = Model(image_uri=SKLEARN_IMAGE, model_data=data, role=ROLE, sagemaker_session=sess)
    execution = finished(Pipeline(name="registry", steps=[ModelStep("Register", step_args=model.register(
        **arguments))], sagemaker_session=sess))
    assert execution.describe()["PipelineExecutionStatus"] == "Succeeded", execution.describe().get("FailureReason")
    Model(image_uri=SKLEARN_IMAGE, model_data=data, role=ROLE, sagemaker_session=sluice.Session()).register(
        **arguments)

    by_step, by_facade = sess.list_model_packages("RiskModels")
    assert [by_step["ModelPackageVersion"], by_facade["ModelPackageVersion"]] == [1, 2]
    [step] = execution.list_steps()["PipelineExecutionSteps"]
    assert step["Metadata"] == {"RegisterModel": {"Arn": by_step["ModelPackageArn"]}}
    assert by_step["ModelPackageArn"].endswith(":model-package/riskmodels/1")  # ARNs are lower case, as AWS's
    assert sess.sagemaker_client.describe_model_package(ModelPackageName=by_step["ModelPackageArn"]) == by_step
    for record in (by_step, by_facade):
        for field, argument in RECORDED.items():
            assert record[field] == arguments[argument], field
        assert record["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].endswith("/eval/evaluation.json")
        assert record["ModelApprovalStatus"] == "Approved"
        assert record["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == data
        assert set(record) <= shape_members("DescribeModelPackage")
    assert by_facade["ModelPackageDescription"] == "nightly build"


def test_create_model_package_refuses_a_bad_field_by_name_before_recording_anything(sess):
    request = {"ModelPackageGroupName": "risk", "Domain": 5, "SamplePayloadUrl": "ftp://elsewhere/x",
               "InferenceSpecification": {"Containers": [{"Image": SKLEARN_IMAGE}],
                                          "SupportedContentTypes": ["text/csv"],
                                          "SupportedResponseMIMETypes": ["text/csv"]}}
    with pytest.raises(SpecError, match=r"CreateModelPackage request is invalid \(2 problems\)") as info:
        create_model_package(sess, request)
    assert "Domain" in str(info.value) and "SamplePayloadUrl" in str(info.value)
    with pytest.raises(SpecError, match=r"needs ModelPackageGroupName and an InferenceSpecification"):
        create_model_package(sess, {"ModelPackageGroupName": "risk"})
    assert sess.metadata.list_resources("ModelPackage") == [] and sess.metadata.list_resources(
        "ModelPackageGroup") == []


# ---- the SDK's older RegisterModel collection ---------------------------------------------------------------

def test_register_model_with_an_estimator_emits_the_step_model_step_does_and_runs(sess, tmp_path):
    model_data = ParameterString("ModelData", default_value=uploaded_model(sess))
    estimator = Estimator(image_uri=SKLEARN_IMAGE, role=ROLE, instance_count=1, instance_type="ml.m5.xlarge",
                          sagemaker_session=sess)
    common = dict(content_types=["text/csv"], response_types=["text/csv"], inference_instances=["ml.m5.large"],
                  transform_instances=["ml.m5.large"], model_package_group_name="legacy",
                  approval_status="PendingManualApproval")
    with pytest.warns(DeprecationWarning, match="Please use the ModelStep instead"):
        legacy = RegisterModel(name="Register", estimator=estimator, model_data=model_data, **common)
    modern = ModelStep("Modern", step_args=Model(image_uri=SKLEARN_IMAGE, model_data=model_data, role=ROLE,
                                                  sagemaker_session=sess).register(**common))
    pipeline = Pipeline(name="legacy", parameters=[model_data], steps=[legacy, modern], sagemaker_session=sess)

    steps = steps_of(pipeline.definition())
    assert [s.name for s in legacy.steps] == ["Register-RegisterModel"]
    assert steps["Register-RegisterModel"]["Type"] == "RegisterModel"
    assert steps["Register-RegisterModel"]["Arguments"] == steps["Modern-RegisterModel"]["Arguments"]
    assert legacy.properties.ModelPackageArn.expr == {"Get": "Steps.Register-RegisterModel.ModelPackageArn"}

    execution = finished(pipeline)
    assert execution.describe()["PipelineExecutionStatus"] == "Succeeded", execution.describe().get("FailureReason")
    assert [p["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] for p in sess.list_model_packages(
        "legacy")] == [model_data.default_value] * 2

    with pytest.raises(PipelineError, match=r"repack step.*ModelStep"):
        RegisterModel(name="Repack", estimator=estimator, model_data=model_data, entry_point="inference.py",
                      **common)


# ---- [lambdas] ----------------------------------------------------------------------------------------------

def write_config(home: Path, text: str) -> None:
    (home / "config.toml").write_text(textwrap.dedent(text))
    reset_config()


def lambda_definition(function_arn: str) -> dict[str, Any]:
    """A Lambda step as the SageMaker SDK exports it, naming a real AWS function, and a condition on its output."""
    return {"Version": "2020-12-01", "Parameters": [{"Name": "N", "Type": "Integer", "DefaultValue": 5}], "Steps": [
        {"Name": "Gate", "Type": "Lambda", "FunctionArn": function_arn, "Arguments": {"n": {"Get": "Parameters.N"}},
         "OutputParameters": [{"OutputName": "big", "OutputType": "Boolean"},
                              {"OutputName": "label", "OutputType": "String"}]},
        {"Name": "IsBig", "Type": "Condition", "Arguments": {
            "Conditions": [{"Type": "Equals", "LeftValue": {"Get": "Steps.Gate.OutputParameters['big']"},
                            "RightValue": True}],
            "IfSteps": [], "ElseSteps": [{"Name": "Small", "Type": "Fail", "Arguments": {"ErrorMessage": "small"}}]}}]}


def test_a_lambdas_entry_runs_an_sdk_exported_lambda_step_from_the_cli(sluice_home, tmp_path):
    handlers = sluice_home / "handlers"
    handlers.mkdir()
    (handlers / "labels.py").write_text("def label(n):\n    return f'n={n}'\n")  # imported from beside the handler
    (handlers / "gate.py").write_text(textwrap.dedent(
        """
        import labels
        def handler(event, context):
            return {"big": event["n"] > 3, "label": labels.label(event["n"]) + " by " + context.function_name}
        """))
    write_config(sluice_home, """
        [lambdas]
        "score-gate" = "handlers/gate.py:handler"
        """)
    definition = tmp_path / "exported.json"
    definition.write_text(json.dumps(lambda_definition(
        "arn:aws:lambda:us-east-1:123456789012:function:score-gate:prod")))

    out = subprocess.run([sys.executable, "-m", "sluice.cli", "pipeline", "run", str(definition)],
                         capture_output=True, text=True, env=os.environ.copy(), timeout=120)

    assert out.returncode == 0, (out.stdout, out.stderr)
    arn = out.stdout.splitlines()[0].removeprefix("started ")
    assert out.stdout.splitlines()[-1] == f"{arn} Succeeded"
    steps = {s["StepName"]: s for s in open_execution(load_config(), arn).list_steps()}
    assert steps["Gate"]["Metadata"]["Lambda"]["OutputParameters"] == [
        {"Name": "big", "Value": "true"}, {"Name": "label", "Value": "n=5 by score-gate"}]
    assert steps["IsBig"]["Metadata"] == {"Condition": {"Outcome": True}}


def test_an_unmapped_lambda_function_fails_its_step_naming_the_lambdas_entry_to_add(sess):
    arn = "arn:aws:lambda:us-east-1:123456789012:function:never-mapped"
    execution = finished(Pipeline.from_definition(lambda_definition(arn), sagemaker_session=sess, name="unmapped"))

    description = execution.describe()
    assert description["PipelineExecutionStatus"] == "Failed"
    reason = description["FailureReason"]
    assert reason.startswith("Step 'Gate' failed: ClientError: Lambda step 'Gate': no local function for ")
    assert f'add the entry "never-mapped" = "module:callable" (or "/path/to/file.py:callable") to the [lambdas] ' \
           f"section of {sess.config.config_file}" in reason
    assert "register_local_function('never-mapped', handler)" in reason


def test_lambdas_entries_match_by_arn_or_name_and_bad_ones_are_refused_naming_the_entry(sluice_home):
    (sluice_home / "gates.py").write_text("class Gate:\n    @staticmethod\n    def run(event, context):\n"
                                          "        return {'by': 'file'}\nVALUE = 3\n")
    write_config(sluice_home, """
        [lambdas]
        "arn:aws:lambda:eu-west-1:111111111111:function:exact" = "gates.py:Gate.run"
        "by-name" = "json:dumps"
        "not-callable" = "gates.py:VALUE"
        "missing-attr" = "gates.py:nope"
        "missing-module" = "no_such_module_here:handler"
        """)
    config = load_config()

    assert local_function("arn:aws:lambda:eu-west-1:111111111111:function:exact", config)({}, None) == {"by": "file"}
    assert local_function("arn:aws:lambda:us-east-1:222222222222:function:by-name:7", config) is json.dumps
    with pytest.raises(PipelineError, match=r'\[lambdas\] entry "not-callable" = "gates.py:VALUE" in .*config\.toml: '
                                            r"'VALUE' in 'gates.py' is not callable \(it is int 3\)"):
        local_function("arn:aws:lambda:us-east-1:1:function:not-callable", config)
    with pytest.raises(PipelineError, match=r"entry \"missing-attr\".*'gates.py' has no attribute 'nope'"):
        local_function("missing-attr", config)
    with pytest.raises(PipelineError, match=r"entry \"missing-module\".*cannot load 'no_such_module_here': "
                                            r"ModuleNotFoundError"):
        local_function("missing-module", config)

    write_config(sluice_home, """
        [lambdas]
        "score-gate" = "gates.py"
        """)
    with pytest.raises(SpecError, match=r"\[lambdas\] entry 'score-gate' in .*config\.toml must be "
                                        r"\"module:callable\" or \"/path/to/file.py:callable\", not 'gates.py'"):
        load_config()
