"""The definition the SageMaker SDK itself produced (../shared/reference/sagemaker-pipeline-definition-example.json)
runs as it is: its ECR images mapped to environments in [images], its ``s3://`` code location in the store.

What each step does here is the user's business (the scripts and the train program below); what sluice must
get right is everything between them: parameters, property files, the nested input layout, the condition's
three kinds of operands, the model, the batch transform with its filters, the Fail step's message."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
from pathlib import Path

import pytest

import sluice
from sluice.config import reset_config
from sluice.errors import PipelineError
from sluice.workflow.pipeline import Pipeline

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "sagemaker-pipeline-definition-example.json"
if not REFERENCE.exists():
    REFERENCE = Path("/work/shared/reference/sagemaker-pipeline-definition-example.json")

PREPROCESS = """\
import argparse, csv, json, os, pathlib
parser = argparse.ArgumentParser(); parser.add_argument("--x"); args = parser.parse_args()
rows = []
for name in sorted(os.listdir("/opt/ml/processing/input")):
    if name.endswith(".csv"):
        rows += list(csv.reader(open(f"/opt/ml/processing/input/{name}")))
train = pathlib.Path("/opt/ml/processing/train"); train.mkdir(parents=True, exist_ok=True)
with open(train / "train.csv", "w", newline="") as f:
    csv.writer(f).writerows(rows)
evaluation = pathlib.Path("/opt/ml/processing/evaluation"); evaluation.mkdir(parents=True, exist_ok=True)
accuracy = float(os.environ["K"] == "V") * 0.9  # the definition's env {"K": "V"} reached the script
(evaluation / "evaluation.json").write_text(json.dumps({"metrics": {"acc": {"value": accuracy}}, "x": args.x}))
"""

TRAIN = """\
import csv, json, pickle
import joblib
from sklearn.linear_model import LogisticRegression
hp = json.load(open("/opt/ml/input/config/hyperparameters.json"))
rows = list(csv.reader(open("/opt/ml/input/data/train/train.csv")))
X = [[float(v) for v in r[1:]] for r in rows]; y = [int(r[0]) for r in rows]
model = LogisticRegression().fit(X, y)
joblib.dump(model, "/opt/ml/model/model.joblib")
print(f"epochs={hp['epochs']} val_acc={model.score(X, y):.3f}")
"""

ROWS = [[1, 5.0, 1.0], [0, 1.0, 5.0], [1, 6.0, 0.5], [0, 0.5, 6.0], [1, 4.0, 1.5], [0, 1.5, 4.5]]
SCORE = [["id-1", 5.5, 0.5], ["id-2", 0.2, 5.5], ["id-3", 4.8, 1.2]]


@pytest.fixture
def mapped(sluice_home: Path, tmp_path: Path) -> sluice.Session:
    """A home whose config maps the definition's three images, with the code and data it reads in the store."""
    train = tmp_path / "train.py"
    train.write_text(TRAIN)
    python = json.dumps(sys.executable)
    (sluice_home / "config.toml").write_text(
        "[images]\n"
        f'"123.dkr.ecr.us-east-1.amazonaws.com/img:1" = {{ python = {python} }}\n'
        f'"123.dkr.ecr.us-east-1.amazonaws.com/train:1" = {{ python = {python}, requirements = ["scikit-learn"], '
        f'train = ["python3", {json.dumps(str(train))}] }}\n'
        f'"123.dkr.ecr.us-east-1.amazonaws.com/serve:1" = {{ python = {python}, requirements = ["scikit-learn"] }}\n')
    reset_config()
    sess = sluice.Session()
    sess.store.create_bucket("my-bucket")
    sess.upload_string_as_file_body(PREPROCESS, "my-bucket", "code/preprocess.py")
    for i, chunk in enumerate((ROWS[:3], ROWS[3:])):
        body = io.StringIO()
        csv.writer(body).writerows(chunk)
        sess.upload_string_as_file_body(body.getvalue(), "my-bucket", f"raw/part-{i}.csv")
    body = io.StringIO()
    csv.writer(body).writerows(SCORE)
    sess.upload_string_as_file_body(body.getvalue(), "my-bucket", "score/batch.csv")
    return sess


def run(parameters: dict | None = None):
    pipeline = Pipeline.from_definition(REFERENCE.read_text(), name="demo")
    pipeline.upsert(role_arn="arn:aws:iam::111111111111:role/R")
    execution = pipeline.start(parameters=parameters)
    with contextlib.suppress(PipelineError):
        execution.wait()
    return execution


def test_the_sdk_produced_definition_runs_every_step_it_reaches(mapped):
    execution = run()
    desc = execution.describe()
    assert desc["PipelineExecutionStatus"] == "Succeeded", desc.get("FailureReason")
    steps = {s["StepName"]: s for s in execution.list_steps()}
    assert {n: s["StepStatus"] for n, s in steps.items()} == {
        "Preprocess": "Succeeded", "Train": "Succeeded", "CheckAcc": "Succeeded",
        "CreateModel-CreateModel": "Succeeded", "BatchScore": "Succeeded"}
    assert steps["CheckAcc"]["Metadata"] == {"Condition": {"Outcome": True}}
    transform = execution.step_records()["BatchScore"]["Properties"]
    out_prefix = transform["TransformOutput"]["S3OutputPath"]
    assert out_prefix == f"s3://my-bucket/demo/{execution.execution_id}/BatchScore"
    bucket, _, key = out_prefix[5:].partition("/")
    lines = mapped.store.get_bytes(bucket, f"{key}/batch.csv.out").decode().splitlines()
    # InputFilter $[1:] fed the model the features; JoinSource Input + OutputFilter $[0,-1] kept id + prediction.
    assert [line.split(",") for line in lines] == [["id-1", "1"], ["id-2", "0"], ["id-3", "1"]]
    train = execution.step_records()["Train"]["Properties"]
    assert [m["MetricName"] for m in train["FinalMetricDataList"]] == ["val:acc"]


def test_the_definitions_fail_step_reports_its_joined_message(mapped):
    execution = run({"Threshold": "0.95"})
    desc = execution.describe()
    assert desc["PipelineExecutionStatus"] == "Failed"
    assert desc["FailureReason"] == "acc below 0.95"
    steps = {s["StepName"]: s for s in execution.list_steps()}
    assert steps["Fail"]["StepStatus"] == "Failed"
    assert "BatchScore" not in steps and "CreateModel-CreateModel" not in steps


def test_a_bad_parameter_value_is_refused_before_anything_runs(mapped):
    pipeline = Pipeline.from_definition(REFERENCE.read_text(), name="demo")
    pipeline.upsert(role_arn="arn:aws:iam::111111111111:role/R")
    with pytest.raises(PipelineError, match="Mode"):
        pipeline.start(parameters={"Mode": "c"})
    assert mapped.metadata.list_jobs() == []


def test_sluice_pipeline_run_executes_the_sdk_definition_file_with_a_parameter(mapped):
    from click.testing import CliRunner

    from sluice.cli import main

    result = CliRunner(env={"COLUMNS": "250"}).invoke(
        main, ["pipeline", "run", str(REFERENCE), "--name", "demo", "--parameter", "Threshold=0.95"])
    assert result.exit_code == 1, (result.stdout, result.stderr)  # the Fail step ends it Failed
    assert "Failed: acc below 0.95" in result.stdout
    result = CliRunner(env={"COLUMNS": "250"}).invoke(main, ["pipeline", "run", str(REFERENCE), "--name", "demo"])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "BatchScore: Succeeded" in result.stdout
