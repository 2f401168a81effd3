"""Under a PipelineSession the SDK-shaped facade builds step arguments instead of running jobs."""

from __future__ import annotations

import json
from pathlib import Path

import sluice
from sluice.estimator import Estimator
from sluice.inputs import TrainingInput
from sluice.processing import ProcessingInput, ProcessingOutput, ScriptProcessor
from sluice.workflow.parameters import ParameterInteger, ParameterString
from sluice.workflow.pipeline import Pipeline
from sluice.workflow.pipeline_context import PipelineSession
from sluice.workflow.steps import ProcessingStep, TrainingStep

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


def test_processing_and_training_steps_from_the_facade_start_nothing(sluice_home: Path, tmp_path: Path):
    (tmp_path / "prep.py").write_text("print('prep')\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("print('train')\n")
    sess = PipelineSession()
    input_data = ParameterString(name="InputData", default_value=f"s3://{sess.default_bucket()}/raw")
    epochs = ParameterInteger(name="Epochs", default_value=5)
    proc = ScriptProcessor(command=["python3"], image_uri=SKLEARN_IMAGE, role=sluice.get_execution_role(),
                           instance_count=1, instance_type="ml.m5.xlarge", sagemaker_session=sess)
    prep = ProcessingStep(name="Prep", step_args=proc.run(
        code=str(tmp_path / "prep.py"),
        inputs=[ProcessingInput(source=input_data, destination="/opt/ml/processing/input")],
        outputs=[ProcessingOutput(output_name="train", source="/opt/ml/processing/train")],
        arguments=["--epochs", epochs]))
    est = Estimator(image_uri=SKLEARN_IMAGE, entry_point="train.py", source_dir=str(tmp_path / "src"),
                    role=sluice.get_execution_role(), instance_count=1, instance_type="ml.m5.xlarge",
                    hyperparameters={"epochs": epochs}, sagemaker_session=sess)
    train = TrainingStep(name="Train", step_args=est.fit({"train": TrainingInput(
        prep.properties.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri)}))
    definition = json.loads(Pipeline(name="demo", parameters=[input_data, epochs], steps=[prep, train],
                                     sagemaker_session=sess).definition())
    steps = {s["Name"]: s for s in definition["Steps"]}
    assert [s["Type"] for s in definition["Steps"]] == ["Processing", "Training"]
    prep_args = steps["Prep"]["Arguments"]
    assert prep_args["ProcessingInputs"][0]["S3Input"]["S3Uri"] == {"Get": "Parameters.InputData"}
    assert prep_args["AppSpecification"]["ContainerArguments"] == ["--epochs", {"Get": "Parameters.Epochs"}]
    channel = steps["Train"]["Arguments"]["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    assert channel == {"Get": "Steps.Prep.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}
    assert steps["Train"]["Arguments"]["HyperParameters"]["epochs"] == {
        "Std:Join": {"On": "", "Values": [{"Get": "Parameters.Epochs"}]}}
    assert sluice.Session().metadata.list_jobs() == []  # nothing ran
