"""``sluice pipeline ...`` on real executions of tiny pipelines (processing steps with trivial scripts), and the
table of step states a terminal shows while an execution runs."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import signal
import subprocess
import sys
from pathlib import Path

import botocore.session
import pytest
from click.testing import CliRunner, Result
from rich.console import Console

import sluice
from sluice.cli import main
from sluice.errors import PipelineError
from sluice.processing import ScriptProcessor
from sluice.workflow.display import steps_listing, steps_table, watch_execution
from sluice.workflow.execution import open_execution
from sluice.workflow.fail_step import FailStep
from sluice.workflow.parameters import ParameterInteger, ParameterString
from sluice.workflow.pipeline import Pipeline
from sluice.workflow.pipeline_context import PipelineSession
from sluice.workflow.selective_execution_config import SelectiveExecutionConfig
from sluice.workflow.steps import CacheConfig, ProcessingStep
from tests.waiting import wait_until

ROLE = sluice.get_execution_role()
SDK_EXAMPLE = Path(__file__).resolve().parents[2] / "shared/reference/sagemaker-pipeline-definition-example.json"
if not SDK_EXAMPLE.exists():  # the SageMaker SDK's own export (as tests/test_workflow_sdk_definition_run.py reads it)
    SDK_EXAMPLE = Path("/work/shared/reference/sagemaker-pipeline-definition-example.json")
DEADLINE = 60.0
WIDE = {"COLUMNS": "250"}  # rich fits tables to the width; wide enough that no cell wraps


@pytest.fixture
def sess(sluice_home: Path) -> PipelineSession:
    return PipelineSession()




def cli(*args: str, code: int = 0) -> Result:
    result = CliRunner(env=WIDE).invoke(main, list(args))
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def rows(text: str) -> list[list[str]]:
    """The body rows of a rich table as lists of cell texts."""
    return [[cell.strip() for cell in line.strip().strip("│").split("│")]
            for line in text.splitlines() if line.startswith("│")]


def processing_step(sess: PipelineSession, tmp_path: Path, name: str, body: str, **kwargs) -> ProcessingStep:
    code = tmp_path / f"{name.lower()}.py"
    code.write_text(body)
    processor = ScriptProcessor(command=["python3"], image_uri=None, role=ROLE, instance_count=1,
                                instance_type="ml.m5.xlarge", sagemaker_session=sess)
    return ProcessingStep(name=name, step_args=processor.run(code=str(code), arguments=kwargs.pop("arguments", None)),
                          **kwargs)


WORK = "import sys\nif sys.argv[1] == 'fail':\n    raise SystemExit('asked to fail')\nprint('mode', sys.argv[1:])\n"


def two_step_pipeline(sess: PipelineSession, tmp_path: Path, name: str = "report") -> Pipeline:
    """``Work`` (fails when Mode is ``fail``, else prints its arguments), then ``Use``; Mode and Count parameters."""
    mode = ParameterString(name="Mode", default_value="ok", enum_values=["ok", "fail", "given"])
    count = ParameterInteger(name="Count", default_value=1)
    work = processing_step(sess, tmp_path, "Work", WORK, arguments=[mode, count])
    use = processing_step(sess, tmp_path, "Use", "print('use')\n", depends_on=["Work"])
    return Pipeline(name=name, parameters=[mode, count], steps=[work, use], sagemaker_session=sess)


def finished(pipeline: Pipeline, **kwargs):
    execution = pipeline.start(**kwargs)
    with contextlib.suppress(PipelineError):  # a Failed execution raises; the tests read what was recorded
        execution.wait()
    return execution


def job_named(sess: PipelineSession, arn: str) -> str:
    return next(j.name for j in sess.metadata.list_jobs() if j.name.lower() == arn.split("/")[-1])


def test_list_describe_executions_steps_and_stop_read_real_executions(sess, tmp_path):
    pipeline = two_step_pipeline(sess, tmp_path)
    pipeline.upsert(role_arn=ROLE)
    good = finished(pipeline)
    bad = finished(pipeline, parameters={"Mode": "fail"})

    listed = rows(cli("pipeline", "list").stdout)
    assert listed == [["report", bad.execution_id, "Failed", listed[0][3], listed[0][4]]]
    summary = json.loads(cli("pipeline", "list", "--json").stdout)["PipelineSummaries"][0]
    assert (summary["PipelineName"], summary["LatestExecutionArn"], summary["LatestExecutionStatus"]) == \
        ("report", bad.arn, "Failed")

    described = cli("pipeline", "describe", "report").stdout
    assert f"latest execution: {bad.execution_id} Failed" in described
    assert [r[:4] for r in rows(described)] == [
        ["Mode", "String", '"ok"', "ok, fail, given"], ["Count", "Integer", "1", ""],  # the parameters
        ["Work", "Processing", "", ""], ["Use", "Processing", "Work", ""],  # the steps: type, depends on, branch
    ]
    raw = json.loads(cli("pipeline", "describe", "report", "--json").stdout)
    assert raw["PipelineDefinition"] == pipeline.describe()["PipelineDefinition"]
    assert raw["PipelineArn"].endswith(":pipeline/report") and raw["RoleArn"] == ROLE

    executions = rows(cli("pipeline", "executions").stdout)
    assert [r[:3] for r in executions] == [[bad.execution_id, "report", "Failed"],
                                           [good.execution_id, "report", "Succeeded"]]
    assert executions[0][4].startswith("Step 'Work' failed: ProcessingJob ") and executions[1][4] == ""
    summaries = json.loads(cli("pipeline", "executions", "report", "--json").stdout)["PipelineExecutionSummaries"]
    assert [(s["PipelineExecutionArn"], s["PipelineExecutionStatus"]) for s in summaries] == \
        [(bad.arn, "Failed"), (good.arn, "Succeeded")]
    assert "asked to fail" in summaries[0]["PipelineExecutionFailureReason"]

    steps = cli("pipeline", "steps", good.arn).stdout
    assert steps.splitlines()[0].startswith(f"{good.arn}  Succeeded  (started ")
    assert [r[:4] for r in rows(steps)] == [["Work", "Processing", "Succeeded", "1"],
                                            ["Use", "Processing", "Succeeded", "1"]]
    failed = rows(cli("pipeline", "steps", bad.execution_id).stdout)  # the id alone works too
    assert [r[:4] for r in failed] == [["Work", "Processing", "Failed", "1"]]
    assert "ended Failed: AlgorithmError" in failed[0][7] and failed[0][5]  # the reason, and an end time

    listing = json.loads(cli("pipeline", "steps", bad.arn, "--json").stdout)
    assert list(listing) == ["PipelineExecutionSteps"]
    members = set(botocore.session.get_session().get_service_model("sagemaker")
                  .shape_for("PipelineExecutionStep").members)
    (step,) = listing["PipelineExecutionSteps"]
    assert set(step) <= members
    assert (step["StepName"], step["StepStatus"], step["AttemptCount"]) == ("Work", "Failed", 1)
    assert step["Metadata"]["ProcessingJob"]["Arn"].startswith("arn:aws:sagemaker:")

    refused = cli("pipeline", "stop", good.arn, code=2)
    assert "already ended Succeeded; nothing to stop" in refused.stderr
    assert "no pipeline execution 'nope'" in cli("pipeline", "steps", "nope", code=1).stderr
    assert "no pipeline named 'nope'" in cli("pipeline", "executions", "nope", code=1).stderr
    assert "no pipeline named 'nope'" in cli("pipeline", "describe", "nope", code=1).stderr


def test_describe_shows_an_sdk_exported_definitions_branches_cache_and_retries(sess):
    Pipeline.from_definition(SDK_EXAMPLE.read_text(), sagemaker_session=sess, name="example").upsert(role_arn=ROLE)
    described = cli("pipeline", "describe", "example").stdout
    assert "latest execution" not in described  # it has not run
    assert rows(described) == [
        ["ProcessingInstanceCount", "Integer", "1", ""], ["InputData", "String", '"s3://my-bucket/raw/"', ""],
        ["Threshold", "Float", "0.7", ""], ["Flag", "Boolean", "false", ""], ["Mode", "String", '"a"', "a, b"],
        ["Preprocess", "Processing", "", "", "P30D", "2"],
        ["Train", "Training", "Preprocess", "", "", ""],
        ["CheckAcc", "Condition", "Preprocess, Train", "", "", ""],
        ["CreateModel-CreateModel", "Model", "CheckAcc, Train", "IfSteps of CheckAcc", "", ""],
        ["BatchScore", "Transform", "CheckAcc, CreateModel-CreateModel", "IfSteps of CheckAcc", "", ""],
        ["Fail", "Fail", "CheckAcc", "ElseSteps of CheckAcc", "", ""],
    ]
    assert rows(cli("pipeline", "list").stdout)[0][:3] == ["example", "", ""]
    assert json.loads(cli("pipeline", "executions", "example", "--json").stdout) == {"PipelineExecutionSummaries": []}


def test_jobs_list_shows_the_jobs_of_pipeline_steps_but_not_the_executions(sess, tmp_path):
    pipeline = two_step_pipeline(sess, tmp_path)
    pipeline.upsert(role_arn=ROLE)
    execution = finished(pipeline)
    jobs = json.loads(cli("jobs", "list", "--json").stdout)
    assert sorted(j["Kind"] for j in jobs) == ["ProcessingJob", "ProcessingJob"]
    assert all(j["Name"].startswith(f"pipelines-{execution.execution_id}-") for j in jobs)
    assert len(rows(cli("jobs", "list").stdout)) == 2
    assert json.loads(cli("jobs", "list", "--json", "--limit", "1").stdout)[0]["Name"] == jobs[0]["Name"]


def test_run_records_and_runs_a_definition_file_with_parameter_values(sess, tmp_path):
    definition = tmp_path / "tagged_run.json"
    definition.write_text(two_step_pipeline(sess, tmp_path, name="built").definition())

    result = cli("pipeline", "run", str(definition), "--parameter", "Mode=given", "-p", "Count=3")
    lines = result.stdout.splitlines()
    arn = lines[0].removeprefix("started ")
    assert ":pipeline/tagged-run/execution/" in arn  # named after the file: tagged_run -> tagged-run
    assert "Work: Succeeded" in lines and "Use: Succeeded" in lines
    assert lines.index("Work: Succeeded") < lines.index("Use: Succeeded")
    assert lines[-1] == f"{arn} Succeeded"

    execution = open_execution(sess.config, arn)
    assert execution.list_parameters() == [{"Name": "Mode", "Value": "given"}, {"Name": "Count", "Value": "3"}]
    work = {s["StepName"]: s for s in execution.list_steps()}["Work"]
    job = sess.describe_processing_job(job_named(sess, work["Metadata"]["ProcessingJob"]["Arn"]))
    assert job["AppSpecification"]["ContainerArguments"] == ["given", "3"]
    recorded = sess.metadata.get_resource("Pipeline", "tagged-run").record
    assert json.loads(recorded["PipelineDefinition"]) == json.loads(definition.read_text())

    again = cli("pipeline", "run", str(definition), "--name", "renamed", "--max-parallel", "1")
    arn = again.stdout.splitlines()[0].removeprefix("started ")
    desc = open_execution(sess.config, arn).describe()
    assert desc["PipelineExecutionArn"].split("/")[-3] == "renamed"
    assert desc["ParallelismConfiguration"] == {"MaxParallelExecutionSteps": 1}
    assert open_execution(sess.config, arn).list_parameters() == [{"Name": "Mode", "Value": "ok"},
                                                                   {"Name": "Count", "Value": "1"}]


def test_a_cache_hit_shows_the_execution_its_result_came_from(sess, tmp_path):
    step = processing_step(sess, tmp_path, "Cached", "print('once')\n",
                           cache_config=CacheConfig(enable_caching=True, expire_after="P1D"))
    definition = tmp_path / "cached.json"
    definition.write_text(Pipeline(name="cached", steps=[step], sagemaker_session=sess).definition())
    first = cli("pipeline", "run", str(definition)).stdout.splitlines()[0].removeprefix("started ")
    second = cli("pipeline", "run", str(definition)).stdout.splitlines()
    first_id = first.rsplit("/", 1)[1]
    assert f"Cached: Succeeded: cache hit from {first_id}" in second

    arn = second[0].removeprefix("started ")
    ((name, _, status, _, _, _, source, reason),) = rows(cli("pipeline", "steps", arn).stdout)
    assert (name, status, source, reason) == ("Cached", "Succeeded", first_id, "")
    (listed,) = json.loads(cli("pipeline", "steps", arn, "--json").stdout)["PipelineExecutionSteps"]
    assert listed["CacheHitResult"] == {"SourcePipelineExecutionArn": first}
    assert rows(cli("pipeline", "steps", first).stdout)[0][6] == ""  # the first run ran its job

    explained = cli("pipeline", "explain", arn, "Cached").stdout
    assert explained.startswith(f"Cache hit: reused the run of execution {first}")
    assert json.loads(cli("pipeline", "explain", first, "Cached", "--json").stdout)["Outcome"] == "no-earlier-run"
    assert "no step 'Nope'" in cli("pipeline", "explain", arn, "Nope", code=2).stderr


def test_run_exits_1_with_the_reason_when_the_execution_fails(sess, tmp_path):
    definition = tmp_path / "failing.json"
    definition.write_text(two_step_pipeline(sess, tmp_path).definition())
    result = cli("pipeline", "run", str(definition), "-p", "Mode=fail", code=1)
    lines = result.stdout.splitlines()
    assert any(line.startswith("Work: Failed: ProcessingJob ") and "ended Failed: AlgorithmError: algo-1 exited "
               "with code 1" in line for line in lines)
    assert "asked to fail" in result.stdout  # the reason's log lines, in the final status
    assert not any(line.startswith("Use:") for line in lines)
    final = f"{lines[0].removeprefix('started ')} Failed: Step 'Work' failed: ProcessingJob "
    assert [line for line in lines if line.startswith(final)]  # the last status, its reason's log lines after it


def test_run_refuses_bad_input_with_exit_2_and_records_nothing(sess, tmp_path):
    definition = tmp_path / "strict.json"
    definition.write_text(two_step_pipeline(sess, tmp_path).definition())

    bad = cli("pipeline", "run", str(definition), "-p", "Count=many", "-p", "Mode=maybe", "-p", "Nope=1", code=2)
    assert bad.stderr.startswith("error: The pipeline parameters are invalid; nothing was run:")
    assert "parameter 'Count' is Integer" in bad.stderr
    assert "'maybe' is not one of its EnumValues" in bad.stderr
    assert "'Nope' is not a parameter of this pipeline" in bad.stderr
    assert "is not NAME=VALUE" in cli("pipeline", "run", str(definition), "-p", "Count", code=2).stderr
    assert "given twice" in cli("pipeline", "run", str(definition), "-p", "Count=1", "-p", "Count=2", code=2).stderr
    assert "empty string" in cli("pipeline", "run", str(definition), "-p", "Mode=", code=2).stderr
    cli("pipeline", "run", str(definition), "--max-parallel", "0", code=2)

    data = json.loads(definition.read_text())
    data["Steps"].append({"Name": "Cluster", "Type": "EMR",
                          "Arguments": {"ClusterId": "j-1", "StepConfig": {"HadoopJarStep": {"Jar": "x.jar"}}}})
    unsupported = tmp_path / "emr.json"
    unsupported.write_text(json.dumps(data))
    assert "EMR step, which sluice cannot run" in cli("pipeline", "run", str(unsupported), code=2).stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert "is not JSON" in cli("pipeline", "run", str(broken), code=2).stderr

    assert sess.metadata.list_resources("Pipeline") == []
    assert sess.metadata.list_jobs() == []  # no execution and no job


def test_run_no_wait_returns_the_arn_while_a_background_process_drives_it(sess, tmp_path):
    definition = tmp_path / "background.json"
    definition.write_text(two_step_pipeline(sess, tmp_path).definition())
    arn = cli("pipeline", "run", str(definition), "--no-wait", "-p", "Count=2").stdout.strip()
    execution = open_execution(sess.config, arn)
    execution.wait()  # from this process, which is not the driver
    driver = sess.metadata.get_job("PipelineExecution", execution.execution_id)
    assert driver is not None and driver.driver_pid != os.getpid()
    assert {s["StepName"]: s["StepStatus"] for s in execution.list_steps()} == {"Work": "Succeeded",
                                                                                "Use": "Succeeded"}
    assert execution.list_parameters()[1] == {"Name": "Count", "Value": "2"}


def test_ctrl_c_while_run_waits_stops_the_execution(sess, tmp_path):
    pid_file = tmp_path / "block.pid"
    block = processing_step(sess, tmp_path, "Block", (
        "import pathlib, os, time\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))\n"
        "time.sleep(3600)\n"))
    definition = tmp_path / "interrupted.json"
    definition.write_text(Pipeline(name="interrupted", steps=[block], sagemaker_session=sess).definition())
    run = subprocess.Popen([sys.executable, "-m", "sluice.cli", "pipeline", "run", str(definition)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        wait_until(lambda: pid_file.exists() and pid_file.read_text(), "the step's script to start")
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=DEADLINE)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 1, err
    assert "stopping arn:" in err
    assert out.splitlines()[-1].endswith(" Stopped")
    (summary,) = Pipeline(name="interrupted", sagemaker_session=sess).list_executions()["PipelineExecutionSummaries"]
    assert summary["PipelineExecutionStatus"] == "Stopped"
    (step,) = open_execution(sess.config, summary["PipelineExecutionArn"]).list_steps()
    assert step["StepStatus"] == "Stopped"
    job = sess.describe_processing_job(job_named(sess, step["Metadata"]["ProcessingJob"]["Arn"]))
    assert job["ProcessingJobStatus"] == "Stopped"
    pid = int(pid_file.read_text())
    assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "Z"


def test_a_second_ctrl_c_abandons_the_execution_at_once(sess, tmp_path):
    pid_file = tmp_path / "stubborn.pid"
    stubborn = processing_step(sess, tmp_path, "Stubborn", (  # ignores SIGINT: its job's stop takes 5 s
        "import pathlib, os, signal, time\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))\n"
        "time.sleep(3600)\n"))
    definition = tmp_path / "abandoned.json"
    definition.write_text(Pipeline(name="abandoned", steps=[stubborn], sagemaker_session=sess).definition())
    run = subprocess.Popen([sys.executable, "-m", "sluice.cli", "pipeline", "run", str(definition)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        wait_until(lambda: pid_file.exists() and pid_file.read_text(), "the step's script to start")
        run.send_signal(signal.SIGINT)
        assert run.stderr is not None
        assert run.stderr.readline().startswith("stopping arn:")
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=DEADLINE) == 130
        assert run.stderr.read().startswith("abandoned arn:")
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    (summary,) = Pipeline(name="abandoned", sagemaker_session=sess).list_executions()["PipelineExecutionSummaries"]
    assert summary["PipelineExecutionStatus"] == "Failed"
    assert f"(pid {run.pid} " in summary["PipelineExecutionFailureReason"]
    pid = int(pid_file.read_text())
    wait_until(lambda: not Path(f"/proc/{pid}").exists()
               or Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "Z", "the script to end with its driver")


def test_run_in_a_terminal_draws_the_live_table(sess, tmp_path):
    definition = tmp_path / "terminal.json"
    definition.write_text(two_step_pipeline(sess, tmp_path).definition())
    leader, follower = pty.openpty()
    run = subprocess.Popen([sys.executable, "-m", "sluice.cli", "pipeline", "run", str(definition)],
                           stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
                           env={**os.environ, "COLUMNS": "120"})
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process has ended
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    assert run.wait(timeout=DEADLINE) == 0
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output.decode())  # the colours and cursor moves out
    assert "┃ Step" in text and "┃ Status" in text  # the table, not progress lines
    assert "Work: Succeeded" not in text
    final = text[text.rindex("┃ Step"):]
    assert [r[:3] for r in rows(final.replace("\r", ""))[-2:]] == [["Work", "Processing", "Succeeded"],
                                                                   ["Use", "Processing", "Succeeded"]]


def render(renderable, width: int = 200) -> tuple[str, str]:
    """``renderable`` drawn on a recording terminal: (plain text, text with its ANSI colours)."""
    console = Console(record=True, force_terminal=True, color_system="standard", width=width)
    console.print(renderable)
    return console.export_text(clear=False), console.export_text(styles=True)


def test_the_live_table_shows_each_started_step_with_its_state(sess, tmp_path):
    pipeline = two_step_pipeline(sess, tmp_path, name="table")
    pipeline.upsert(role_arn=ROLE)
    failed = finished(pipeline, parameters={"Mode": "fail"})
    types = {"Work": "Processing", "Use": "Processing"}

    plain, coloured = render(steps_table(failed.describe(), failed.list_steps(), types))
    assert plain.splitlines()[0].split() == [f"execution-{failed.execution_id}", "Failed"]
    ((name, kind, status, attempts, elapsed, note),) = rows(plain)
    assert (name, kind, status, attempts) == ("Work", "Processing", "Failed", "1")
    assert elapsed.endswith("s") and note.startswith("ProcessingJob ") and "ended Failed" in note
    assert "\x1b[31mFailed" in coloured  # a failed step is red

    reran = pipeline.start(execution_display_name="second-try")
    reran.wait()
    partial = pipeline.start(selective_execution_config=SelectiveExecutionConfig(
        selected_steps=["Use"], source_pipeline_execution_arn=reran.arn))
    partial.wait()
    plain, coloured = render(steps_table(partial.describe(), partial.list_steps(), types))
    assert plain.splitlines()[0].split() == [f"execution-{partial.execution_id}", "Succeeded"]
    assert [r[:3] + r[5:] for r in rows(plain)] == [
        ["Work", "Processing", "Succeeded", f"reused from {reran.execution_id}"],
        ["Use", "Processing", "Succeeded", ""]]
    assert "\x1b[32mSucceeded" in coloured
    listing, _ = render(steps_listing(partial.list_steps(), types))
    assert rows(listing)[0][6] == f"{reran.execution_id} (selective)"
    titled, _ = render(steps_table(reran.describe(), reran.list_steps(), types))
    assert titled.splitlines()[0].split() == ["second-try", f"({reran.execution_id})", "Succeeded"]


def test_a_bracketed_failure_reason_is_shown_as_written(sess, tmp_path):
    pipeline = Pipeline(name="brackets", steps=[FailStep(name="Odd", error_message="[bold]x[/] and [/unclosed]")],
                        sagemaker_session=sess)
    pipeline.upsert(role_arn=ROLE)
    execution = finished(pipeline)
    plain, _ = render(steps_table(execution.describe(), execution.list_steps()))
    assert rows(plain) == [["Odd", "Fail", "Failed", "1", rows(plain)[0][4], "[bold]x[/] and [/unclosed]"]]
    # (without the definition's types, the Type column is the kind the step's Metadata names)


def test_watch_execution_draws_until_the_execution_ends(sess, tmp_path):
    pipeline = two_step_pipeline(sess, tmp_path, name="watched")
    pipeline.upsert(role_arn=ROLE)
    execution = pipeline.start()
    console = Console(record=True, force_terminal=True, width=160)
    assert watch_execution(execution, show=True, console=console) is True
    final = console.export_text()
    final = final[final.rindex(f"execution-{execution.execution_id}"):]
    assert final.splitlines()[0].split()[-1] == "Succeeded"
    assert [r[:3] for r in rows(final)] == [["Work", "Processing", "Succeeded"], ["Use", "Processing", "Succeeded"]]
