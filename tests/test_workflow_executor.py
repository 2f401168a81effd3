"""The first pipeline executor: real (trivial) processing and training jobs run through the facade under a
PipelineSession, then ``upsert`` + ``start`` + ``wait``."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

import sluice
from sluice.errors import PipelineError
from sluice.estimator import Estimator
from sluice.inputs import TrainingInput
from sluice.processing import ProcessingOutput, ScriptProcessor
from sluice.workflow.condition_step import ConditionStep
from sluice.workflow.conditions import (
    ConditionEquals,
    ConditionGreaterThanOrEqualTo,
    ConditionIn,
    ConditionLessThan,
    ConditionLessThanOrEqualTo,
    ConditionNot,
    ConditionOr,
)
from sluice.workflow.fail_step import FailStep
from sluice.workflow.functions import Join, JsonGet
from sluice.workflow.graph import StepType, parse_definition
from sluice.workflow.parallelism_config import ParallelismConfiguration
from sluice.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
from sluice.workflow.pipeline import Pipeline
from sluice.workflow.pipeline_context import PipelineSession
from sluice.workflow.properties import PropertyFile
from sluice.workflow.steps import ProcessingStep, TrainingStep

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ROLE = sluice.get_execution_role()


@pytest.fixture
def sess(sluice_home: Path) -> PipelineSession:
    return PipelineSession()


def processor(sess: PipelineSession, env: dict[str, str] | None = None) -> ScriptProcessor:
    return ScriptProcessor(command=["python3"], image_uri=None, role=ROLE, instance_count=1,
                           instance_type="ml.m5.xlarge", sagemaker_session=sess, env=env)


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return str(path)


def run(pipeline: Pipeline, **start_kwargs):
    pipeline.upsert(role_arn=ROLE)
    execution = pipeline.start(**start_kwargs)
    with contextlib.suppress(PipelineError):  # a Failed run raises; the tests read describe() instead
        execution.wait()
    return execution


def job_named(sess: PipelineSession, arn: str) -> str:
    """The job whose ARN a step's Metadata gives (ARNs are lower-cased, names are not)."""
    return next(j.name for j in sess.metadata.list_jobs() if j.name.lower() == arn.split("/")[-1])


def steps_by_name(execution) -> dict[str, dict]:
    return {s["StepName"]: s for s in execution.list_steps()}


def test_processing_output_reaches_training_through_a_property_reference(sess, tmp_path):
    prep_code = script(tmp_path, "prep.py", (
        "import sys, pathlib\n"
        "out = pathlib.Path('/opt/ml/processing/train'); out.mkdir(parents=True, exist_ok=True)\n"
        "(out / 'data.csv').write_text('marker-' + sys.argv[2])\n"))
    src = tmp_path / "src"
    script(src, "train.py", (
        "import json, os, pathlib\n"
        "data = pathlib.Path('/opt/ml/input/data/train/data.csv').read_text()\n"
        "cfg = json.load(open('/opt/ml/input/config/inputdataconfig.json'))\n"
        "pathlib.Path('/opt/ml/model/seen.txt').write_text(data)\n"))
    tag = ParameterString(name="Tag", default_value="default")
    prep = ProcessingStep(name="Prep", step_args=processor(sess).run(
        code=prep_code, outputs=[ProcessingOutput(output_name="train", source="/opt/ml/processing/train")],
        arguments=["--tag", tag]))
    est = Estimator(image_uri=SKLEARN_IMAGE, entry_point="train.py", source_dir=str(src), role=ROLE,
                    instance_count=1, instance_type="ml.m5.xlarge",
                    output_path=f"s3://{sess.default_bucket()}/models", sagemaker_session=sess)
    train = TrainingStep(name="Train", step_args=est.fit({"train": TrainingInput(
        prep.properties.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri)}))
    pipeline = Pipeline(name="prep-train", parameters=[tag], steps=[prep, train], sagemaker_session=sess)
    execution = run(pipeline, parameters={"Tag": "given"})

    desc = execution.describe()
    assert desc["PipelineExecutionStatus"] == "Succeeded", desc.get("FailureReason")
    steps = steps_by_name(execution)
    assert {n: s["StepStatus"] for n, s in steps.items()} == {"Prep": "Succeeded", "Train": "Succeeded"}
    prep_job = sess.describe_processing_job(job_named(sess, steps["Prep"]["Metadata"]["ProcessingJob"]["Arn"]))
    train_job = sess.describe_training_job(job_named(sess, steps["Train"]["Metadata"]["TrainingJob"]["Arn"]))
    out_uri = prep_job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    channel = train_job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    assert channel == out_uri and execution.execution_id in out_uri
    assert steps["Prep"]["Metadata"]["ProcessingJob"]["Arn"] == prep_job["ProcessingJobArn"]
    # The ARN spells the name in lower case; describing by that name finds the job, as on the service.
    by_arn_name = sess.describe_processing_job(prep_job["ProcessingJobArn"].rsplit("/", 1)[-1])
    assert by_arn_name["ProcessingJobName"] == prep_job["ProcessingJobName"] != by_arn_name["ProcessingJobName"].lower()
    assert train_job["TrainingJobStatus"] == "Completed"
    record = sess.metadata.get_resource("Pipeline", "prep-train").record
    assert record["PipelineArn"] == pipeline.describe()["PipelineArn"]
    assert json.loads(record["PipelineDefinition"])["Steps"][0]["Name"] == "Prep"


def condition_pipeline(sess: PipelineSession, tmp_path: Path, accuracy: float) -> Pipeline:
    evaluate = script(tmp_path, "evaluate.py", (
        "import json, pathlib\n"
        "out = pathlib.Path('/opt/ml/processing/evaluation'); out.mkdir(parents=True, exist_ok=True)\n"
        f"(out / 'evaluation.json').write_text(json.dumps({{'metrics': {{'accuracy': {accuracy}}}}}))\n"))
    good = script(tmp_path, "good.py", "print('good')\n")
    bad = script(tmp_path, "bad.py", "print('bad')\n")
    report = PropertyFile(name="Report", output_name="evaluation", path="evaluation.json")
    step_eval = ProcessingStep(name="Evaluate", step_args=processor(sess).run(
        code=evaluate, outputs=[ProcessingOutput(output_name="evaluation", source="/opt/ml/processing/evaluation")]),
        property_files=[report])
    threshold = ParameterFloat(name="Threshold", default_value=0.8)
    cond = ConditionStep(
        name="Check",
        conditions=[ConditionGreaterThanOrEqualTo(
            JsonGet(step_name="Evaluate", property_file=report, json_path="metrics.accuracy"), threshold)],
        if_steps=[ProcessingStep(name="Good", step_args=processor(sess).run(code=good))],
        else_steps=[ProcessingStep(name="Bad", step_args=processor(sess).run(code=bad))])
    after_bad = ProcessingStep(name="AfterBad", step_args=processor(sess).run(code=bad), depends_on=["Bad"])
    return Pipeline(name="cond", parameters=[threshold], steps=[step_eval, cond, after_bad],
                    sagemaker_session=sess)


@pytest.mark.parametrize(("accuracy", "taken", "untaken"), [(0.9, "Good", "Bad"), (0.5, "Bad", "Good")])
def test_condition_on_a_property_file_takes_one_branch_only(sess, tmp_path, accuracy, taken, untaken):
    execution = run(condition_pipeline(sess, tmp_path, accuracy))
    assert execution.describe()["PipelineExecutionStatus"] == "Succeeded", execution.describe()
    steps = steps_by_name(execution)
    assert steps["Check"]["Metadata"] == {"Condition": {"Outcome": accuracy >= 0.8}}
    assert steps[taken]["StepStatus"] == "Succeeded"
    assert untaken not in steps
    assert ("AfterBad" in steps) == (taken == "Bad")  # downstream of the untaken branch never runs either
    jobs = [j for j in sluice.Session().metadata.list_jobs() if j.kind != "PipelineExecution"]
    assert len(jobs) == len(steps) - 1  # every step but the condition ran one job; the others none


def test_fail_step_ends_the_execution_failed_with_its_message(sess, tmp_path):
    threshold = ParameterFloat(name="Threshold", default_value=0.8)
    fail = FailStep(name="Stop", error_message=Join(on=" ", values=["accuracy below", threshold]))
    execution = run(Pipeline(name="failing", parameters=[threshold], steps=[fail], sagemaker_session=sess),
                    parameters={"Threshold": 0.95})
    desc = execution.describe()
    assert desc["PipelineExecutionStatus"] == "Failed"
    assert desc["FailureReason"] == "accuracy below 0.95"
    step = steps_by_name(execution)["Stop"]
    assert step["StepStatus"] == "Failed"
    assert step["Metadata"] == {"Fail": {"ErrorMessage": "accuracy below 0.95"}}
    with pytest.raises(PipelineError, match=r"accuracy below 0\.95"):
        execution.wait()


def test_a_failed_job_step_fails_the_execution_and_starts_nothing_after_it(sess, tmp_path):
    broken = script(tmp_path, "broken.py", "raise SystemExit(3)\n")
    after = script(tmp_path, "after.py", "print('after')\n")
    first = ProcessingStep(name="Broken", step_args=processor(sess).run(code=broken))
    second = ProcessingStep(name="After", step_args=processor(sess).run(code=after), depends_on=["Broken"])
    execution = run(Pipeline(name="broken", steps=[first, second], sagemaker_session=sess))
    desc = execution.describe()
    assert desc["PipelineExecutionStatus"] == "Failed"
    assert desc["FailureReason"].startswith("Step 'Broken' failed: ")
    assert set(steps_by_name(execution)) == {"Broken"}


def parallel_pipeline(sess: PipelineSession, tmp_path: Path, log: Path,
                      parallelism: ParallelismConfiguration | None) -> Pipeline:
    """Each script logs ``start-<me> <time>``, waits until the other has started (or 5 s), logs ``end-<me> <time>``.

    The wait only lets an overlap show; it synchronises nothing the assertions rely on."""
    body = (
        "import os, sys, time\n"
        "log, me = os.environ['EVENT_LOG'], sys.argv[1]\n"
        "def events():\n"
        "    return open(log).read().split() if os.path.exists(log) else []\n"
        "with open(log, 'a') as f: f.write(f'start-{me} {time.time()}\\n')\n"
        "deadline = time.time() + 5\n"
        "while time.time() < deadline and sum(e.startswith('start-') for e in events()) < 2:\n"
        "    time.sleep(0.05)\n"
        "with open(log, 'a') as f: f.write(f'end-{me} {time.time()}\\n')\n")
    code = script(tmp_path, "work.py", body)
    steps = [ProcessingStep(name=n, step_args=processor(sess, env={"EVENT_LOG": str(log)}).run(
        code=code, arguments=[n])) for n in ("A", "B")]
    return Pipeline(name="par", steps=steps, sagemaker_session=sess, parallelism_config=parallelism)


def spans(log: Path) -> dict[str, tuple[float, float]]:
    """``{step: (start, end)}`` from the event log."""
    seen: dict[str, dict[str, float]] = {}
    for line in log.read_text().splitlines():
        event, stamp = line.split()
        kind, _, name = event.partition("-")
        seen.setdefault(name, {})[kind] = float(stamp)
    return {name: (t["start"], t["end"]) for name, t in seen.items()}


def test_independent_steps_run_in_parallel(sess, tmp_path):
    log = tmp_path / "events.log"
    execution = run(parallel_pipeline(sess, tmp_path, log, None))
    assert execution.describe()["PipelineExecutionStatus"] == "Succeeded"
    times = spans(log)
    assert max(times["A"][0], times["B"][0]) < min(times["A"][1], times["B"][1])  # the two runs overlapped


def test_max_parallel_execution_steps_one_runs_them_one_at_a_time(sess, tmp_path):
    log = tmp_path / "events.log"
    execution = run(parallel_pipeline(sess, tmp_path, log, ParallelismConfiguration(1)))
    assert execution.describe()["PipelineExecutionStatus"] == "Succeeded"
    times = spans(log)
    first, second = sorted(times.values())
    assert first[1] <= second[0]  # the second started only after the first ended


def test_an_unsupported_step_type_is_refused_at_start_before_anything_runs(sess, tmp_path):
    work = script(tmp_path, "work.py", "print('work')\n")
    step = ProcessingStep(name="Work", step_args=processor(sess).run(code=work))
    pipeline = Pipeline(name="mixed", steps=[step], sagemaker_session=sess)
    data = json.loads(pipeline.definition())
    data["Steps"].append({"Name": "Deploy", "Type": "EMR",
                          "Arguments": {"ClusterId": "j-1", "StepConfig": {"HadoopJarStep": {"Jar": "x.jar"}}}})
    parsed = parse_definition(data)
    assert parsed.graph["Deploy"].type is StepType.EMR
    imported = Pipeline.from_definition(json.dumps(data), sagemaker_session=sess, name="mixed")
    imported.upsert(role_arn=ROLE)
    with pytest.raises(PipelineError, match="EMR step, which sluice cannot run"):
        imported.start()
    assert sluice.Session().metadata.list_jobs() == []  # no job and no execution recorded


def test_start_checks_parameters_and_needs_upsert(sess):
    threshold = ParameterFloat(name="Threshold", default_value=0.8)
    pipeline = Pipeline(name="params", parameters=[threshold],
                        steps=[FailStep(name="F", error_message="x")], sagemaker_session=sess)
    with pytest.raises(PipelineError, match="upsert"):
        pipeline.start()
    pipeline.upsert(role_arn=ROLE)
    with pytest.raises(PipelineError, match="Nope"):
        pipeline.start(parameters={"Nope": 1})


@pytest.mark.parametrize(("mode", "score", "branch"), [
    ("fast", 3, "If"), ("slow", 3, "Else"), ("fast", 9, "Else"), ("other", 1, "If")])
def test_every_condition_type_is_evaluated_at_run_time(sess, mode, score, branch):
    """Not/Or/In/Equals/LessThan over parameters; each branch is a FailStep whose message names it."""
    m = ParameterString(name="Mode", default_value="fast")
    s = ParameterInteger(name="Score", default_value=0)
    cond = ConditionStep(name="Pick", conditions=[
        ConditionNot(ConditionEquals(m, "slow")),
        ConditionOr([ConditionIn(m, ["fast", "quick"]), ConditionLessThan(s, 2)]),
        ConditionLessThanOrEqualTo(s, 5)],
        if_steps=[FailStep(name="IfFail", error_message="If")],
        else_steps=[FailStep(name="ElseFail", error_message="Else")])
    pipeline = Pipeline(name="conds", parameters=[m, s], steps=[cond], sagemaker_session=sess)
    execution = run(pipeline, parameters={"Mode": mode, "Score": score})
    assert execution.describe()["FailureReason"] == branch
    assert set(steps_by_name(execution)) == {"Pick", f"{branch}Fail"}


def test_under_a_local_pipeline_session_start_runs_to_the_end_as_sdk_local_mode_does(sluice_home, tmp_path, capsys):
    from sluice.workflow.pipeline_context import LocalPipelineSession

    local = LocalPipelineSession()
    work = ProcessingStep(name="Work", step_args=processor(local).run(code=script(tmp_path, "w.py", "print(1)\n")))
    pipeline = Pipeline(name="local-mode", steps=[work], sagemaker_session=local)
    pipeline.upsert(role_arn=ROLE)
    execution = pipeline.start()
    assert execution.describe()["PipelineExecutionStatus"] == "Succeeded"  # ended inside start()
    (step,) = execution.list_steps()["PipelineExecutionSteps"]  # SDK local mode's shape
    assert step["StepName"] == "Work" and step["StepStatus"] == "Succeeded"
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"Starting execution for pipeline local-mode. Execution ID is {execution.execution_id}",
                       "Starting pipeline step: 'Work'", "Pipeline step 'Work' SUCCEEDED.",
                       f"Pipeline execution {execution.execution_id} SUCCEEDED"]
