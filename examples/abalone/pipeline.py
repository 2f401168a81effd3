"""The SageMaker Pipelines local-mode walkthrough (AWS ML blog, 2022), with ``sagemaker`` changed to ``sluice``.

The code below follows the blog's notebook (``sagemaker-pipelines/tabular/local-mode`` in
amazon-sagemaker-examples) cell by cell, in the same order and with the same names, values and step
layout. Each place where it had to differ is marked ``# sluice:`` with the reason; README.md lists them all.
The notebook's cells run at the top level; here they sit in one function, so that the demo can hand in the
session (``LocalPipelineSession()`` or ``PipelineSession()``) and the data file, and nothing runs on import.

Run it through ``demo.py``, which generates the data, starts the pipeline and prints what it made.
"""

from __future__ import annotations

from sluice.workflow.pipeline import Pipeline


def build_pipeline(local_pipeline_session, local_path: str = "data/abalone-dataset.csv") -> Pipeline:
    """The blog's pipeline, built under ``local_pipeline_session``; the relative ``code/`` paths need the cwd
    to be this directory, as the notebook's do."""
    import sluice

    # Create a `LocalPipelineSession` object so that each pipeline step will run locally
    # To run this pipeline in the cloud, you must change `LocalPipelineSession()` to `PipelineSession()`
    # sluice: the demo creates the session and passes it in (see demo.py), so that the same code runs under both.

    region = local_pipeline_session.boto_region_name
    role = sluice.get_execution_role()

    default_bucket = local_pipeline_session.default_bucket()
    prefix = "sagemaker-pipelines-local-mode-example"

    # Upload the data into the default bucket.
    # sluice: the notebook downloads abalone.csv from SageMaker's public bucket; there is no network here, so
    # make_data.py has written a synthetic file of the same shape to `local_path` instead.
    base_uri = f"s3://{default_bucket}/{prefix}/abalone-data-set"
    input_data_uri = sluice.s3.S3Uploader.upload(
        local_path=local_path,
        desired_s3_uri=base_uri,
    )
    print(input_data_uri)

    from sluice.workflow.parameters import ParameterFloat, ParameterString

    processing_instance_count = 1
    training_instance_count = 1
    transform_instance_count = 1
    instance_type = "ml.m5.xlarge"

    input_data = ParameterString(
        name="InputData",
        default_value=input_data_uri,
    )

    mse_threshold = ParameterFloat(name="MseThreshold", default_value=7.0)

    # sluice: added for the register step below (from the blog's companion notebook, abalone_build_train_deploy).
    model_approval_status = ParameterString(name="ModelApprovalStatus", default_value="PendingManualApproval")

    # ---- Define a Processing Step for Feature Engineering ------------------------------------------------------
    from sluice.sklearn.processing import SKLearnProcessor

    framework_version = "1.0-1"

    sklearn_processor = SKLearnProcessor(
        framework_version=framework_version,
        instance_type=instance_type,
        instance_count=processing_instance_count,
        base_job_name="sklearn-abalone-process",
        role=role,
        sagemaker_session=local_pipeline_session,
    )

    from sluice.processing import ProcessingInput, ProcessingOutput
    from sluice.workflow.steps import ProcessingStep

    processor_args = sklearn_processor.run(
        inputs=[
            ProcessingInput(source=input_data, destination="/opt/ml/processing/input"),
        ],
        outputs=[
            ProcessingOutput(output_name="train", source="/opt/ml/processing/train"),
            ProcessingOutput(output_name="validation", source="/opt/ml/processing/validation"),
            ProcessingOutput(output_name="test", source="/opt/ml/processing/test"),
        ],
        code="code/preprocessing.py",
    )

    step_process = ProcessingStep(name="AbaloneProcess", step_args=processor_args)

    # ---- Define a Training Step to Train a Model (script mode, code/abalone.py) -------------------------------
    from sluice.estimator import Estimator
    from sluice.inputs import TrainingInput

    model_path = f"s3://{default_bucket}/{prefix}/model"
    image_uri = sluice.image_uris.retrieve(
        framework="xgboost",
        region=region,
        version="1.5-1",
        py_version="py3",
        instance_type=instance_type,
    )

    xgb_train = Estimator(
        image_uri=image_uri,
        entry_point="code/abalone.py",
        instance_type=instance_type,
        instance_count=training_instance_count,
        output_path=model_path,
        role=role,
        sagemaker_session=local_pipeline_session,
    )

    xgb_train.set_hyperparameters(
        objective="reg:squarederror",
        learning_rate=0.01,
        num_round=50,
        max_depth=5,
        eta=0.2,
        gamma=4,
        min_child_weight=6,
        subsample=0.7,
    )

    train_args = xgb_train.fit(
        inputs={
            "train": TrainingInput(
                s3_data=step_process.properties.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri,
                content_type="text/csv",
            ),
            "validation": TrainingInput(
                s3_data=step_process.properties.ProcessingOutputConfig.Outputs["validation"].S3Output.S3Uri,
                content_type="text/csv",
            ),
        }
    )

    from sluice.workflow.steps import TrainingStep

    step_train = TrainingStep(
        name="AbaloneTrain",
        step_args=train_args,
    )

    # ---- Define a Model Evaluation Step to Evaluate the Trained Model ----------------------------------------
    from sluice.processing import ScriptProcessor

    script_eval = ScriptProcessor(
        image_uri=image_uri,
        command=["python3"],
        instance_type=instance_type,
        instance_count=processing_instance_count,
        base_job_name="script-abalone-eval",
        role=role,
        sagemaker_session=local_pipeline_session,
    )

    eval_args = script_eval.run(
        inputs=[
            ProcessingInput(
                source=step_train.properties.ModelArtifacts.S3ModelArtifacts,
                destination="/opt/ml/processing/model",
            ),
            ProcessingInput(
                source=step_process.properties.ProcessingOutputConfig.Outputs["test"].S3Output.S3Uri,
                destination="/opt/ml/processing/test",
            ),
        ],
        outputs=[
            ProcessingOutput(output_name="evaluation", source="/opt/ml/processing/evaluation"),
        ],
        code="code/evaluation.py",
    )

    from sluice.workflow.properties import PropertyFile

    evaluation_report = PropertyFile(
        name="EvaluationReport", output_name="evaluation", path="evaluation.json"
    )
    step_eval = ProcessingStep(
        name="AbaloneEval",
        step_args=eval_args,
        property_files=[evaluation_report],
    )

    # ---- Define a Create Model Step to Create a Model ---------------------------------------------------------
    from sluice.model import Model

    # We provide a custom inference script that defines the logic for the batch transform job (code/inference.py).
    # The model's data is known only when the pipeline runs, so, as in the SDK, the ModelStep below starts with a
    # repack step that puts code/ into the trained model.tar.gz.
    model = Model(
        image_uri=image_uri,
        model_data=step_train.properties.ModelArtifacts.S3ModelArtifacts,
        source_dir="code",
        entry_point="inference.py",
        role=role,
        sagemaker_session=local_pipeline_session,
    )

    from sluice.workflow.model_step import ModelStep

    step_create_model = ModelStep(
        name="AbaloneCreateModel", step_args=model.create(instance_type=instance_type)
    )

    # ---- Define a Transform Step to Perform Batch Transformation ----------------------------------------------
    from sluice.transformer import Transformer

    transformer = Transformer(
        model_name=step_create_model.properties.ModelName,
        instance_type=instance_type,
        instance_count=transform_instance_count,
        output_path=f"s3://{default_bucket}/{prefix}/transform",
        sagemaker_session=local_pipeline_session,
    )

    from sluice.workflow.functions import Join
    from sluice.workflow.steps import TransformStep

    transform_data = Join(
        on="/",
        values=[
            step_process.properties.ProcessingOutputConfig.Outputs["test"].S3Output.S3Uri,
            "test.csv",
        ],
    )

    transform_args = transformer.transform(transform_data, content_type="text/csv")

    step_transform = TransformStep(name="AbaloneTransform", step_args=transform_args)

    # ---- Define a Register Model Step (added: from the blog's companion notebook) -----------------------------
    # sluice: the local-mode notebook stops at CreateModel, because SDK local mode cannot run RegisterModel;
    # sluice can, so the register step of abalone_build_train_deploy is added, as a ModelStep.
    from sluice.model_metrics import MetricsSource, ModelMetrics

    model_metrics = ModelMetrics(
        model_statistics=MetricsSource(
            # sluice: the companion notebook formats step_eval.arguments[...]["S3Uri"] into a string, which only
            # works when that URI is a plain string; under a PipelineSession it is a Join, so join it instead.
            s3_uri=Join(
                on="/",
                values=[
                    step_eval.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri,
                    "evaluation.json",
                ],
            ),
            content_type="application/json",
        )
    )
    register_args = model.register(
        content_types=["text/csv"],
        response_types=["text/csv"],
        inference_instances=["ml.t2.medium", "ml.m5.xlarge"],
        transform_instances=["ml.m5.xlarge"],
        model_package_group_name="AbaloneModelPackageGroupName",
        approval_status=model_approval_status,
        model_metrics=model_metrics,
    )
    step_register = ModelStep(name="AbaloneRegisterModel", step_args=register_args)

    # ---- Define a Fail Step ------------------------------------------------------------------------------------
    from sluice.workflow.fail_step import FailStep

    step_fail = FailStep(
        name="AbaloneMSEFail",
        error_message=Join(on=" ", values=["Execution failed due to MSE >", mse_threshold]),
    )

    # ---- Define a Condition Step to Check Accuracy -----------------------------------------------------------
    from sluice.workflow.condition_step import ConditionStep
    from sluice.workflow.conditions import ConditionLessThanOrEqualTo
    from sluice.workflow.functions import JsonGet

    cond_lte = ConditionLessThanOrEqualTo(
        left=JsonGet(
            step_name=step_eval.name,
            property_file=evaluation_report,
            json_path="regression_metrics.mse.value",
        ),
        right=mse_threshold,
    )

    step_cond = ConditionStep(
        name="AbaloneMSECond",
        conditions=[cond_lte],
        if_steps=[step_create_model, step_transform, step_register],  # sluice: step_register added
        else_steps=[step_fail],
    )

    # ---- Define a Pipeline using `LocalPipelineSession` ---------------------------------------------------------
    pipeline_name = "LocalModelPipeline"
    pipeline = Pipeline(
        name=pipeline_name,
        parameters=[
            input_data,
            mse_threshold,
            model_approval_status,  # sluice: added with the register step
        ],
        steps=[step_process, step_train, step_eval, step_cond],
        sagemaker_session=local_pipeline_session,
    )
    return pipeline
