"""Pipeline executions are records in the metadata store: any process can describe, list, read and stop them,
and an execution whose driving process died is reported Failed rather than left Executing."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import botocore.session
import pytest

import sluice
from sluice.errors import PipelineError
from sluice.processing import ScriptProcessor
from sluice.workflow.execution import list_executions, open_execution
from sluice.workflow.fail_step import FailStep
from sluice.workflow.parameters import ParameterString
from sluice.workflow.pipeline import Pipeline
from sluice.workflow.pipeline_context import PipelineSession
from sluice.workflow.steps import ProcessingStep
from tests.waiting import wait_until

ROLE = sluice.get_execution_role()
DEADLINE = 60.0


@pytest.fixture
def sess(sluice_home: Path) -> PipelineSession:
    return PipelineSession()




def processing_step(sess: PipelineSession, tmp_path: Path, name: str, body: str, **kwargs) -> ProcessingStep:
    code = tmp_path / f"{name.lower()}.py"
    code.write_text(body)
    processor = ScriptProcessor(command=["python3"], image_uri=None, role=ROLE, instance_count=1,
                                instance_type="ml.m5.xlarge", sagemaker_session=sess)
    return ProcessingStep(name=name, step_args=processor.run(code=str(code), arguments=kwargs.pop("arguments", None)),
                          **kwargs)


def blocking_pipeline(sess: PipelineSession, tmp_path: Path, name: str, pid_file: Path) -> Pipeline:
    """``Block`` writes its pid to ``pid_file`` and sleeps for an hour; ``After`` depends on it."""
    block = processing_step(sess, tmp_path, "Block", (
        "import pathlib, os, time\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))\n"
        "time.sleep(3600)\n"))
    after = processing_step(sess, tmp_path, "After", "print('after')\n", depends_on=["Block"])
    pipeline = Pipeline(name=name, steps=[block, after], sagemaker_session=sess)
    pipeline.upsert(role_arn=ROLE)
    return pipeline


def running_job(execution, step: str) -> str:
    """Wait until ``step``'s record shows it Executing with its job's ARN; return that ARN."""
    def job_arn() -> str | None:
        record = execution.step_records().get(step, {})
        arn = (record.get("Metadata") or {}).get("ProcessingJob", {}).get("Arn")
        return arn if record.get("StepStatus") == "Executing" else None

    wait_until(job_arn, f"step {step!r} to be Executing with a job")
    arn = job_arn()
    assert arn is not None
    return arn


def job_named(sess: PipelineSession, arn: str) -> str:
    """The job an ARN in a step's Metadata names (ARNs are lower-cased, job names are not)."""
    return next(j.name for j in sess.metadata.list_jobs() if j.name.lower() == arn.split("/")[-1])


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie has ended too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "Z"


def python(code: str, *args: str) -> str:
    """Run ``code`` in a fresh interpreter (same sluice home); its standard output."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    return done.stdout


READ_EXECUTION = """
import json, sys
from sluice.session import Session
from sluice.workflow.execution import list_executions, open_execution
config = Session().config
execution = open_execution(config, sys.argv[1])
print(json.dumps({"describe": execution.describe(), "steps": execution.list_steps(),
                  "listed": list_executions(config, sys.argv[2])}, default=str))
"""


def test_an_execution_driven_by_one_process_is_read_and_awaited_from_another(sess, tmp_path):
    go = tmp_path / "go"
    gate = processing_step(sess, tmp_path, "Gate", (
        "import os, time\n"
        f"while not os.path.exists({str(go)!r}):\n"
        "    time.sleep(0.05)\n"))
    tag = ParameterString(name="Tag", default_value="default")
    after = processing_step(sess, tmp_path, "Echo", "import sys; print(sys.argv[1])\n", arguments=[tag],
                            depends_on=["Gate"])
    Pipeline(name="crossing", parameters=[tag], steps=[gate, after], sagemaker_session=sess).upsert(role_arn=ROLE)
    driver = subprocess.Popen([sys.executable, "-c", (
        "from sluice.session import Session\n"
        "from sluice.workflow.pipeline import Pipeline\n"
        "execution = Pipeline(name='crossing', sagemaker_session=Session()).start(parameters={'Tag': 'given'})\n"
        "print(execution.arn, flush=True)\n"
        "execution.join(None)\n")], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert driver.stdout is not None
        arn = driver.stdout.readline().strip()
        execution = open_execution(sess.config, arn)
        running_job(execution, "Gate")

        # while it runs, in this process and in a third one
        assert execution.describe()["PipelineExecutionStatus"] == "Executing"
        assert [s["StepName"] for s in execution.list_steps()] == ["Gate"]
        seen = json.loads(python(READ_EXECUTION, arn, "crossing"))
        assert seen["describe"]["PipelineExecutionStatus"] == "Executing"
        assert seen["describe"]["PipelineExecutionArn"] == arn
        assert [(s["StepName"], s["StepStatus"]) for s in seen["steps"]] == [("Gate", "Executing")]
        assert [(e["PipelineExecutionArn"], e["PipelineExecutionStatus"]) for e in seen["listed"]] == \
            [(arn, "Executing")]
        assert execution.list_parameters() == [{"Name": "Tag", "Value": "given"}]

        go.touch()
        execution.wait()  # not the driving process: it polls the store
        assert driver.wait(timeout=DEADLINE) == 0
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()

    steps = {s["StepName"]: s for s in execution.list_steps()}
    assert [s["StepName"] for s in execution.list_steps()] == ["Echo", "Gate"]  # most recently started first
    assert {n: (s["StepStatus"], s["AttemptCount"]) for n, s in steps.items()} == \
        {"Gate": ("Succeeded", 1), "Echo": ("Succeeded", 1)}
    echo_job = sess.describe_processing_job(job_named(sess, steps["Echo"]["Metadata"]["ProcessingJob"]["Arn"]))
    assert echo_job["AppSpecification"]["ContainerArguments"] == ["given"]
    assert all(isinstance(s["StartTime"], dt.datetime) and s["EndTime"] >= s["StartTime"] for s in steps.values())
    seen = json.loads(python(READ_EXECUTION, arn.rsplit("/", 1)[1], "crossing"))  # by id, as well as by ARN
    assert seen["describe"]["PipelineExecutionStatus"] == "Succeeded"
    assert [(s["StepName"], s["StepStatus"]) for s in seen["steps"]] == [("Echo", "Succeeded"), ("Gate", "Succeeded")]


def test_a_stop_from_another_process_stops_the_running_job_and_starts_nothing_more(sess, tmp_path):
    pid_file = tmp_path / "block.pid"
    execution = blocking_pipeline(sess, tmp_path, "stoppable", pid_file).start()
    job_arn = running_job(execution, "Block")
    wait_until(lambda: pid_file.exists() and pid_file.read_text(), "the step's script to start")

    stop = subprocess.run([sys.executable, "-m", "sluice.cli", "pipeline", "stop", execution.arn],
                          capture_output=True, text=True, env=os.environ.copy())
    assert stop.returncode == 0, stop.stderr
    assert stop.stdout.strip() == f"stop requested for {execution.arn}"
    with pytest.raises(PipelineError, match="ended Stopped"):
        execution.wait()

    desc = execution.describe()
    assert desc["PipelineExecutionStatus"] == "Stopped"
    assert "FailureReason" not in desc
    steps = {s["StepName"]: s for s in execution.list_steps()}
    assert list(steps) == ["Block"]  # After never started
    assert steps["Block"]["StepStatus"] == "Stopped"
    assert sess.describe_processing_job(job_named(sess, job_arn))["ProcessingJobStatus"] == "Stopped"
    wait_until(lambda: gone(int(pid_file.read_text())), "the stopped job's script to end")
    with pytest.raises(PipelineError, match="already ended Stopped"):
        execution.stop()


def test_an_execution_whose_driver_was_killed_is_failed_naming_the_dead_driver(sess, tmp_path):
    pid_file = tmp_path / "block.pid"
    blocking_pipeline(sess, tmp_path, "orphaned", pid_file)
    driver = subprocess.Popen([sys.executable, "-c", (
        "from sluice.session import Session\n"
        "from sluice.workflow.pipeline import Pipeline\n"
        "execution = Pipeline(name='orphaned', sagemaker_session=Session()).start()\n"
        "print(execution.arn, flush=True)\n"
        "execution.join(None)\n")], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert driver.stdout is not None
        arn = driver.stdout.readline().strip()
        execution = open_execution(sess.config, arn)
        running_job(execution, "Block")
        wait_until(lambda: pid_file.exists() and pid_file.read_text(), "the step's script to start")
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()

    wait_until(lambda: gone(int(pid_file.read_text())), "the step's script to end with its driver")
    listed = subprocess.run([sys.executable, "-m", "sluice.cli", "pipeline", "executions", "orphaned", "--json"],
                            capture_output=True, text=True, env=os.environ.copy())
    assert listed.returncode == 0, listed.stderr
    summary = json.loads(listed.stdout)["PipelineExecutionSummaries"][0]
    assert (summary["PipelineExecutionArn"], summary["PipelineExecutionStatus"]) == (arn, "Failed")
    reason = summary["PipelineExecutionFailureReason"]
    assert f"pid {driver.pid} " in reason and "ended before the execution did" in reason

    desc = execution.describe()
    assert desc["PipelineExecutionStatus"] == "Failed"
    assert desc["FailureReason"] == reason
    steps = {s["StepName"]: s for s in execution.list_steps()}
    assert list(steps) == ["Block"]
    assert steps["Block"]["StepStatus"] == "Failed"
    assert "driving the execution ended" in steps["Block"]["FailureReason"]
    with pytest.raises(PipelineError, match="ended Failed"):
        execution.wait()


def test_pipeline_list_executions_is_shaped_like_the_service_response(sess, tmp_path):
    pipeline = Pipeline(name="listed", steps=[FailStep(name="Stop", error_message="no good")],
                        sagemaker_session=sess)
    pipeline.upsert(role_arn=ROLE)
    first = pipeline.start(execution_display_name="first-run")
    with pytest.raises(PipelineError):
        first.wait()
    second = pipeline.start()
    with pytest.raises(PipelineError):
        second.wait()
    Pipeline(name="other", steps=[FailStep(name="F", error_message="x")], sagemaker_session=sess).upsert(
        role_arn=ROLE)

    listed = pipeline.list_executions()
    assert list(listed) == ["PipelineExecutionSummaries"]
    summaries = listed["PipelineExecutionSummaries"]
    assert [s["PipelineExecutionArn"] for s in summaries] == [second.arn, first.arn]  # newest first
    members = set(botocore.session.get_session().get_service_model("sagemaker")
                  .shape_for("PipelineExecutionSummary").members)
    for summary in summaries:
        assert set(summary) - {"PipelineName"} <= members  # PipelineName: so one listing can span pipelines
        assert isinstance(summary["StartTime"], dt.datetime)
        assert summary["PipelineExecutionStatus"] == "Failed"
        assert summary["PipelineExecutionFailureReason"] == "no good"
    assert summaries[1]["PipelineExecutionDisplayName"] == "first-run"
    assert summaries[0]["PipelineExecutionDisplayName"] == f"execution-{second.execution_id}"
    assert pipeline.list_executions(sort_order="Ascending")["PipelineExecutionSummaries"] == summaries[::-1]
    assert [s["PipelineExecutionArn"] for s in pipeline.list_executions(max_results=1)
            ["PipelineExecutionSummaries"]] == [second.arn]
    assert list_executions(sess.config, "other") == []


def test_delete_forgets_the_pipeline_but_not_its_executions_and_waits_for_running_ones(sess, tmp_path):
    pid_file = tmp_path / "pid"
    pipeline = blocking_pipeline(sess, tmp_path, "deletable", pid_file)
    execution = pipeline.start()
    running_job(execution, "Block")
    with pytest.raises(PipelineError, match="still running"):
        pipeline.delete()
    execution.stop()
    wait_until(lambda: execution.describe()["PipelineExecutionStatus"] == "Stopped", "the execution to stop")
    assert pipeline.delete() == {"PipelineArn": execution.describe()["PipelineArn"]}
    with pytest.raises(PipelineError, match="does not exist"):
        pipeline.describe()
    assert open_execution(sess.config, execution.arn).describe()["PipelineExecutionStatus"] == "Stopped"
