"""sluice's main demo: the SageMaker Pipelines local-mode walkthrough (abalone), run with sluice.

It writes a synthetic dataset in the shape of the UCI Abalone set, builds the blog's pipeline (pipeline.py:
processing, XGBoost training, evaluation with a property file, a condition on the MSE, model creation with
inference code (after the SDK's repack step), batch transform, model registration and a fail step), upserts
and starts it, and ends by printing the execution's steps, the evaluation MSE, the registered model package
and where the transform output lies.

    python examples/abalone/demo.py [--session local|pipeline] [--rows N] [--seed S] [--home DIR]

``--session pipeline`` builds the pipeline under ``PipelineSession()`` instead of ``LocalPipelineSession()``,
the one-line swap the blog describes; with sluice both run through whatever storage sluice is configured
with (the embedded store, or an S3-compatible endpoint). The environment variable ``ABALONE_SESSION`` sets
the default.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SESSIONS = {"local": "LocalPipelineSession", "pipeline": "PipelineSession"}
#: The model's features in the order code/preprocessing.py writes them: the seven scaled measurements, then
#: sex one-hot encoded (the encoder sorts its categories).
FEATURES = ["length", "diameter", "height", "whole_weight", "shucked_weight", "viscera_weight", "shell_weight",
            "sex_F", "sex_I", "sex_M"]


def _name(arn: str) -> str:
    """The resource name at the end of an ARN (``...:processing-job/<name>``)."""
    return arn.rsplit("/", 1)[-1]


def _step(steps: list[dict[str, Any]], name: str) -> dict[str, Any]:
    for step in steps:
        if step["StepName"] == name:
            return step
    raise SystemExit(f"the execution has no step {name!r}; it has {sorted(s['StepName'] for s in steps)}")


def _print_steps(steps: list[dict[str, Any]]) -> None:
    print("\nSteps:")
    for step in sorted(steps, key=lambda s: (s.get("StartTime") is None, s.get("StartTime"))):
        start, end = step.get("StartTime"), step.get("EndTime")
        took = f"{(end - start).total_seconds():6.1f} s" if start and end else "       -"
        clock = start.strftime("%H:%M:%S") if start else "--:--:--"
        line = f"  {step['StepName']:<36} {step['StepStatus']:<10} {clock}  {took}"
        if step.get("FailureReason"):
            line += f"  ({step['FailureReason']})"
        print(line)


def summarize(session: Any, execution: Any) -> dict[str, Any]:
    """Print what the execution made, and return it (the test reads the same facts from the printed JSON)."""
    import sluice

    description = execution.describe()
    steps = execution.list_steps()
    if isinstance(steps, dict):  # SDK local mode's shape, which LocalPipelineSession keeps
        steps = steps["PipelineExecutionSteps"]
    status = description["PipelineExecutionStatus"]
    print(f"\nPipeline execution {execution.arn} {status}")
    _print_steps(steps)
    facts: dict[str, Any] = {"execution_arn": execution.arn, "status": status,
                             "steps": {s["StepName"]: s["StepStatus"] for s in steps}}
    if status != "Succeeded":
        print(f"  failure: {description.get('FailureReason', '(no reason recorded)')}")
        print("\nDEMO-RESULT " + json.dumps(facts))
        return facts

    evaluation_job = session.describe_processing_job(_name(_step(steps, "AbaloneEval")["Metadata"]["ProcessingJob"]
                                                            ["Arn"]))
    evaluation_uri = evaluation_job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] + "/evaluation.json"
    report = json.loads(sluice.s3.S3Downloader.read_file(evaluation_uri, sagemaker_session=session))
    mse = report["regression_metrics"]["mse"]
    threshold = next(float(p["Value"]) for p in execution.list_parameters() if p["Name"] == "MseThreshold")
    print(f"\nEvaluation ({evaluation_uri}):")
    print(f"  regression_metrics.mse.value = {mse['value']:.4f} (threshold {threshold}; as in the blog's "
          f"evaluation.py, this is the square root of the mean squared error)")
    print(f"  standard deviation of the residuals = {mse['standard_deviation']:.4f}")

    package_arn = _step(steps, "AbaloneRegisterModel-RegisterModel")["Metadata"]["RegisterModel"]["Arn"]
    package = session.sagemaker_client.describe_model_package(ModelPackageName=package_arn)
    print("\nModel package:")
    print(f"  {package['ModelPackageArn']}")
    print(f"  group {package['ModelPackageGroupName']}, version {package.get('ModelPackageVersion')}, "
          f"status {package['ModelPackageStatus']}, approval {package['ModelApprovalStatus']}")

    transform_job = session.describe_transform_job(_name(_step(steps, "AbaloneTransform")["Metadata"]["TransformJob"]
                                                         ["Arn"]))
    output_path = transform_job["TransformOutput"]["S3OutputPath"].rstrip("/")
    input_uri = transform_job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
    output_uri = f"{output_path}/{input_uri.rsplit('/', 1)[-1]}.out"
    # One line per test row, as the blog's transform_fn writes it: the prediction, then each feature's
    # contribution to it, the last being the bias.
    scored = [[float(v) for v in line.split(",")] for line in
              sluice.s3.S3Downloader.read_file(output_uri, sagemaker_session=session).splitlines() if line]
    predictions = [row[0] for row in scored]
    test_rows = list(csv.reader(io.StringIO(sluice.s3.S3Downloader.read_file(input_uri, sagemaker_session=session))))
    model = session.sagemaker_client.describe_model(ModelName=transform_job["ModelName"])
    container = model["PrimaryContainer"]
    print(f"\nModel {model['ModelName']}:")
    print(f"  {container['ModelDataUrl']}")
    print(f"  the trained model.tar.gz with code/ added by AbaloneCreateModel-RepackModel-0; SAGEMAKER_PROGRAM="
          f"{container['Environment'].get('SAGEMAKER_PROGRAM')}")
    print(f"\nBatch transform ({transform_job['TransformJobName']}), served by code/inference.py:")
    print(f"  input  {input_uri} ({len(test_rows)} rows)")
    print(f"  output {output_uri} ({len(predictions)} lines: the prediction, then "
          f"{len(scored[0]) - 2 if scored else 0} feature contributions and the bias)")
    for row, out in list(zip(test_rows, scored, strict=False))[:5]:
        contributions = dict(zip(FEATURES, out[1:-1], strict=False))
        name = max(contributions, key=lambda k: abs(contributions[k]))
        print(f"    rings {float(row[0]):4.0f}   predicted {out[0]:5.2f}   (bias {out[-1]:5.2f}, largest contribution "
              f"{contributions[name]:+5.2f} from {name})")

    facts.update({
        "mse": mse["value"],
        "mse_threshold": threshold,
        "evaluation_uri": evaluation_uri,
        "model_package_arn": package["ModelPackageArn"],
        "model_package_group": package["ModelPackageGroupName"],
        "model_approval_status": package["ModelApprovalStatus"],
        "model_data": container["ModelDataUrl"],
        "model_program": container["Environment"].get("SAGEMAKER_PROGRAM"),
        "transform_input": input_uri,
        "transform_output": output_uri,
        "predictions": len(predictions),
        "output_columns": sorted({len(row) for row in scored}),
        "test_rows": len(test_rows),
    })
    print("\nDEMO-RESULT " + json.dumps(facts))
    return facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--session", choices=sorted(SESSIONS), default=os.environ.get("ABALONE_SESSION", "local"),
                        help="build under LocalPipelineSession() (local, the default) or PipelineSession() (pipeline)")
    parser.add_argument("--rows", type=int, default=4177, help="how many abalone to generate (default 4177)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated data (default 7)")
    parser.add_argument("--home", default=None, help="sluice home to use (default: a fresh temporary one)")
    args = parser.parse_args(argv)
    if args.rows < 20:
        parser.error(f"--rows must be at least 20 (the test split is 15% of them), not {args.rows}")
    os.environ["SLUICE_HOME"] = args.home or tempfile.mkdtemp(prefix="sluice-demo-")
    print(f"sluice home: {os.environ['SLUICE_HOME']}")

    sys.path.insert(0, str(HERE))
    from make_data import write_csv
    from pipeline import build_pipeline

    local_path = write_csv(Path(tempfile.mkdtemp(prefix="sluice-abalone-")) / "data" / "abalone-dataset.csv",
                           rows=args.rows, seed=args.seed)
    print(f"wrote {args.rows} abalone (seed {args.seed}) to {local_path}")
    os.chdir(HERE)  # code="code/preprocessing.py" and entry_point="code/abalone.py" are relative, as in the blog

    import sluice
    from sluice.workflow.pipeline_context import LocalPipelineSession, PipelineSession

    local_pipeline_session = LocalPipelineSession() if args.session == "local" else PipelineSession()
    print(f"session: {type(local_pipeline_session).__name__}()")
    pipeline = build_pipeline(local_pipeline_session, str(local_path))

    # ---- the blog's last cells: examine the definition, upsert, start ---------------------------------------
    definition = json.loads(pipeline.definition())
    print(f"pipeline {pipeline.name}: {len(definition['Steps'])} top-level steps, parameters "
          f"{[p['Name'] for p in definition['Parameters']]}")
    role = sluice.get_execution_role()
    pipeline.upsert(role_arn=role)
    execution = pipeline.start()  # under LocalPipelineSession, as in SDK local mode, this runs to the end
    if args.session == "pipeline":
        try:
            execution.wait()  # a PipelineSession execution runs in the background, as a managed one does
        except Exception as exc:  # the summary below still shows which step failed and why
            print(f"\n{exc}")
    facts = summarize(local_pipeline_session, execution)
    return 0 if facts["status"] == "Succeeded" else 1


if __name__ == "__main__":
    raise SystemExit(main())
