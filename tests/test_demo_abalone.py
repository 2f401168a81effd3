"""The README's main demo runs as documented: the SageMaker Pipelines local-mode walkthrough (abalone).

Each test runs ``examples/abalone/demo.py`` the way ``scripts/demo`` does, in a subprocess with its own
sluice home, then checks what it printed against what the run left in storage and in the model registry,
read independently here. The second test makes the blog's one-line swap, ``PipelineSession()`` for
``LocalPipelineSession()``, with object storage on the loopback S3 server, and expects the same result.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3

import sluice.s3
from sluice.session import Session
from sluice.storage import S3Uri

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "examples" / "abalone" / "demo.py"
PIPELINE_STEPS = {"AbaloneProcess", "AbaloneTrain", "AbaloneEval", "AbaloneMSECond", "AbaloneCreateModel-CreateModel",
                  "AbaloneTransform", "AbaloneRegisterModel-RegisterModel"}


def run_demo(home: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run the demo as scripts/demo does, on this checkout's sluice; return its output and DEMO-RESULT facts."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, str(DEMO), "--home", str(home), *args], capture_output=True, text=True,
                         timeout=240, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("DEMO-RESULT ")]
    assert len(lines) == 1, out.stdout
    return out, json.loads(lines[0].removeprefix("DEMO-RESULT "))


def check_walkthrough(out: subprocess.CompletedProcess[str], facts: dict[str, Any]) -> None:
    """What the walkthrough promises, each printed fact checked against storage and the registry."""
    session = Session()
    assert facts["status"] == "Succeeded"
    assert f"Pipeline execution {facts['execution_arn']} Succeeded" in out.stdout
    # Every step ran and succeeded; the condition held, so the FailStep in its else branch never ran.
    assert facts["steps"] == dict.fromkeys(PIPELINE_STEPS, "Succeeded")

    # The MSE is the one evaluation.json holds, and it passed the MseThreshold parameter (7.0 by default).
    report = json.loads(sluice.s3.S3Downloader.read_file(facts["evaluation_uri"]))
    assert facts["mse"] == report["regression_metrics"]["mse"]["value"]
    assert facts["mse_threshold"] == 7.0
    assert 0 < facts["mse"] <= facts["mse_threshold"]
    assert f"regression_metrics.mse.value = {facts['mse']:.4f}" in out.stdout

    # Exactly one model package was registered, the printed one, with the evaluation attached as its metrics.
    listed = session.sagemaker_client.list_model_packages(ModelPackageGroupName="AbaloneModelPackageGroupName")
    packages = listed["ModelPackageSummaryList"]
    assert [p["ModelPackageArn"] for p in packages] == [facts["model_package_arn"]]
    package = session.describe_model_package(f"{packages[0]['ModelPackageGroupName']}/"
                                             f"{packages[0]['ModelPackageVersion']}")
    assert package["ModelApprovalStatus"] == facts["model_approval_status"] == "PendingManualApproval"
    assert package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == facts["evaluation_uri"]
    assert facts["model_package_arn"] in out.stdout

    # The batch transform wrote one prediction per test row, where the demo says; scored against the labels in
    # test.csv, those predictions give back the evaluation step's number.
    test_rows = list(csv.reader(io.StringIO(sluice.s3.S3Downloader.read_file(facts["transform_input"]))))
    predictions = [float(v) for v in sluice.s3.S3Downloader.read_file(facts["transform_output"]).split()]
    assert len(predictions) == len(test_rows) == facts["predictions"] == facts["test_rows"] > 0
    assert all(1 <= p <= 30 for p in predictions)
    rmse = math.sqrt(sum((float(r[0]) - p) ** 2 for r, p in zip(test_rows, predictions, strict=True)) / len(test_rows))
    assert math.isclose(rmse, facts["mse"], rel_tol=1e-4)
    assert facts["transform_output"] in out.stdout


def test_the_walkthrough_runs_on_the_embedded_store(sluice_home):
    out, facts = run_demo(sluice_home)
    assert "session: LocalPipelineSession()" in out.stdout
    check_walkthrough(out, facts)
    output = S3Uri.parse(facts["transform_output"])
    assert (sluice_home / "storage" / output.bucket / output.key).is_file()  # the embedded store's layout


def test_swapping_in_pipeline_session_runs_the_same_pipeline_through_the_configured_s3(s3_home, s3_server):
    out, facts = run_demo(s3_home, "--session", "pipeline")
    assert "session: PipelineSession()" in out.stdout
    check_walkthrough(out, facts)
    # The objects are on the S3 server, not in the embedded store.
    output = S3Uri.parse(facts["transform_output"])
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    assert s3.head_object(Bucket=output.bucket, Key=output.key)["ContentLength"] > 0
    assert not (s3_home / "storage" / output.bucket / output.key).exists()
