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
import tarfile
from pathlib import Path
from typing import Any

import boto3

import sluice.s3
from sluice.session import Session
from sluice.storage import S3Uri

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "examples" / "abalone" / "demo.py"
PIPELINE_STEPS = {"AbaloneProcess", "AbaloneTrain", "AbaloneEval", "AbaloneMSECond", "AbaloneCreateModel-RepackModel-0",
                  "AbaloneCreateModel-CreateModel", "AbaloneTransform", "AbaloneRegisterModel-RepackModel-0",
                  "AbaloneRegisterModel-RegisterModel"}


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

    # The model the transform used is the repack step's output: the trained booster with the blog's code/ added.
    assert facts["model_program"] == "inference.py"
    assert "/AbaloneCreateModel-RepackModel-0/" in facts["model_data"] and facts["model_data"] in out.stdout
    where = S3Uri.parse(facts["model_data"])
    with tarfile.open(fileobj=io.BytesIO(session.store.get_bytes(where.bucket, where.key))) as tar:
        names = set(tar.getnames())
        assert {"xgboost-model", "code/inference.py", "code/abalone.py"} <= names
        assert tar.extractfile("code/inference.py").read() == (DEMO.parent / "code" / "inference.py").read_bytes()

    # The model was served by the blog's code/inference.py, repacked into the trained model by the repack step:
    # its transform_fn wrote, per test row (one CSV line per request), the prediction followed by the ten
    # features' contributions and the bias, which add up to the prediction (XGBoost's pred_contribs).
    test_rows = list(csv.reader(io.StringIO(sluice.s3.S3Downloader.read_file(facts["transform_input"]))))
    scored = [[float(v) for v in line.split(",")]
              for line in sluice.s3.S3Downloader.read_file(facts["transform_output"]).splitlines()]
    assert len(scored) == len(test_rows) == facts["predictions"] == facts["test_rows"] > 0
    assert facts["output_columns"] == [12] and {len(row) for row in scored} == {12}
    assert all(math.isclose(sum(row[1:]), row[0], abs_tol=1e-3) for row in scored)
    predictions = [row[0] for row in scored]
    assert all(1 <= p <= 30 for p in predictions)
    # Scored against the labels in test.csv, the predictions give back the evaluation step's number.
    rmse = math.sqrt(sum((float(r[0]) - p) ** 2 for r, p in zip(test_rows, predictions, strict=True)) / len(test_rows))
    assert math.isclose(rmse, facts["mse"], rel_tol=1e-4)
    assert facts["transform_output"] in out.stdout
    assert "served by code/inference.py" in out.stdout


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


# The blog's code/inference.py imports the XGBoost image's own sagemaker_xgboost_container.encoder; sluice's
# xgboost environment provides it (sluice/runtime/images/xgboost), behaving as the image's does.
ENCODER_CHECK = """
import json, pathlib
import sagemaker_xgboost_container.encoder as xgb_encoders
csv = xgb_encoders.csv_to_dmatrix("1,,3\\n4,5,6")
semicolons = xgb_encoders.decode(b"1;2\\n3;4", "text/csv; charset=utf-8")
libsvm = xgb_encoders.libsvm_to_dmatrix(b"2 0:1.5 3:4\\n0 1:1")
try:
    xgb_encoders.decode("{}", "application/json")
    refused = None
except xgb_encoders.UnsupportedFormatError as exc:
    refused = str(exc)
report = {
    "csv": [csv.num_row(), csv.num_col(), int(csv.get_data().nnz)],
    "semicolons": [semicolons.num_row(), semicolons.num_col()],
    "libsvm": [libsvm.num_row(), libsvm.num_col(), libsvm.get_label().tolist()],
    "jsonlines": xgb_encoders.json_to_jsonlines({"predictions": [1, {"a": 2}]}).decode(),
    "refused": refused,
}
out = pathlib.Path("/opt/ml/processing/output")
out.mkdir(parents=True, exist_ok=True)
(out / "encoders.json").write_text(json.dumps(report))
"""


def test_the_xgboost_image_provides_the_container_encoders_the_blogs_inference_code_imports(sluice_home, tmp_path):
    from sluice.image_uris import retrieve
    from sluice.processing import ProcessingOutput, ScriptProcessor

    script = tmp_path / "check_encoders.py"
    script.write_text(ENCODER_CHECK)
    session = Session()
    processor = ScriptProcessor(image_uri=retrieve("xgboost", region="us-east-1", version="1.5-1"),
                                command=["python3"], instance_count=1, instance_type="ml.m5.xlarge",
                                role=sluice.get_execution_role(), sagemaker_session=session)
    output = f"s3://{session.default_bucket()}/encoders"
    processor.run(code=str(script), outputs=[ProcessingOutput(source="/opt/ml/processing/output", destination=output)],
                  logs=False)
    report = json.loads(sluice.s3.S3Downloader.read_file(f"{output}/encoders.json"))
    assert report["csv"] == [2, 3, 5]  # an empty field is a missing value, not a zero
    assert report["semicolons"] == [2, 2]  # the delimiter is sniffed from the first line
    assert report["libsvm"] == [2, 4, [2.0, 0.0]]  # the first field is the label; indices count from 0
    assert report["jsonlines"] == '1\n{"a": 2}\n'
    assert report["refused"] == "Content type application/json is not supported by this framework."
