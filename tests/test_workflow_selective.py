"""Selective execution (contract 5.12): only the selected steps run; the others' outputs come from a source
execution, and a selection that cannot run is refused before anything starts."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

import sluice
from sluice.errors import PipelineError
from sluice.processing import ProcessingInput, ProcessingOutput, ScriptProcessor
from sluice.workflow.parameters import ParameterString
from sluice.workflow.pipeline import Pipeline
from sluice.workflow.pipeline_context import PipelineSession
from sluice.workflow.selective_execution_config import SelectiveExecutionConfig
from sluice.workflow.steps import ProcessingStep

ROLE = sluice.get_execution_role()


@pytest.fixture
def sess(sluice_home: Path) -> PipelineSession:
    return PipelineSession()


def processor(sess: PipelineSession) -> ScriptProcessor:
    return ScriptProcessor(command=["python3"], image_uri=None, role=ROLE, instance_count=1,
                           instance_type="ml.m5.xlarge", sagemaker_session=sess)


def chain(sess: PipelineSession, tmp_path: Path, fail_last: bool = False) -> Pipeline:
    """A -> B -> C: A writes a marker, B copies it with its own tag appended, C checks it (or fails)."""
    a = tmp_path / "a.py"
    a.write_text("import pathlib, sys\n"
                 "out = pathlib.Path('/opt/ml/processing/out'); out.mkdir(parents=True, exist_ok=True)\n"
                 "(out / 'v.txt').write_text('A-' + sys.argv[2])\n")
    b = tmp_path / "b.py"
    b.write_text("import pathlib\n"
                 "v = pathlib.Path('/opt/ml/processing/in/v.txt').read_text()\n"
                 "out = pathlib.Path('/opt/ml/processing/out'); out.mkdir(parents=True, exist_ok=True)\n"
                 "(out / 'v.txt').write_text(v + '-B')\n")
    c = tmp_path / "c.py"
    c.write_text("import pathlib, sys\n"
                 "v = pathlib.Path('/opt/ml/processing/in/v.txt').read_text()\n"
                 "print('C saw', v)\n"
                 f"sys.exit(1 if {fail_last!r} else 0)\n")
    tag = ParameterString(name="Tag", default_value="one")
    out = [ProcessingOutput(output_name="out", source="/opt/ml/processing/out")]
    step_a = ProcessingStep(name="A", step_args=processor(sess).run(code=str(a), outputs=out, arguments=["--tag", tag]))
    step_b = ProcessingStep(name="B", step_args=processor(sess).run(
        code=str(b), outputs=out, inputs=[ProcessingInput(
            source=step_a.properties.ProcessingOutputConfig.Outputs["out"].S3Output.S3Uri,
            destination="/opt/ml/processing/in")]))
    step_c = ProcessingStep(name="C", step_args=processor(sess).run(
        code=str(c), inputs=[ProcessingInput(
            source=step_b.properties.ProcessingOutputConfig.Outputs["out"].S3Output.S3Uri,
            destination="/opt/ml/processing/in")]))
    return Pipeline(name="chain", parameters=[tag], steps=[step_a, step_b, step_c], sagemaker_session=sess)


def run(pipeline: Pipeline, **kwargs):
    execution = pipeline.start(**kwargs)
    with contextlib.suppress(PipelineError):
        execution.wait()
    return execution


def jobs_of(execution) -> list[str]:
    return [j.name for j in sluice.Session().metadata.list_jobs(kind="ProcessingJob", limit=1000)
            if execution.execution_id in j.name]


def test_selected_step_reruns_reading_the_source_executions_outputs(sess, tmp_path):
    pipeline = chain(sess, tmp_path)
    pipeline.upsert(role_arn=ROLE)
    first = run(pipeline)
    assert first.describe()["PipelineExecutionStatus"] == "Succeeded"
    source_b = {s["StepName"]: s for s in first.list_steps()}["B"]

    second = run(pipeline, selective_execution_config=SelectiveExecutionConfig(
        selected_steps=["C"], source_pipeline_execution_arn=first.arn))
    desc = second.describe()
    assert desc["PipelineExecutionStatus"] == "Succeeded", desc.get("FailureReason")
    assert desc["SelectiveExecutionConfig"] == {"SourcePipelineExecutionArn": first.arn,
                                                "SelectedSteps": [{"StepName": "C"}]}
    steps = {s["StepName"]: s for s in second.list_steps()}
    assert steps["A"]["SelectiveExecutionResult"] == {"SourcePipelineExecutionArn": first.arn}
    assert steps["B"]["Metadata"] == source_b["Metadata"]  # the source's job, not a new one
    assert "SelectiveExecutionResult" not in steps["C"]
    assert len(jobs_of(second)) == 1  # only C ran
    status = sluice.Session().metadata.get_job("ProcessingJob", jobs_of(second)[0]).record["ProcessingJobStatus"]
    assert status == "Completed"


def test_latest_execution_is_the_default_source(sess, tmp_path):
    pipeline = chain(sess, tmp_path, fail_last=True)
    pipeline.upsert(role_arn=ROLE)
    failed = run(pipeline)
    assert failed.describe()["PipelineExecutionStatus"] == "Failed"
    fixed = chain(sess, tmp_path, fail_last=False)
    fixed.upsert(role_arn=ROLE)
    retried = run(fixed, selective_execution_config=SelectiveExecutionConfig(selected_steps=["C"]))
    assert retried.describe()["PipelineExecutionStatus"] == "Succeeded"
    assert retried.describe()["SelectiveExecutionConfig"]["SourcePipelineExecutionArn"] == failed.arn


def test_selection_needing_a_step_that_did_not_succeed_is_refused_before_anything_runs(sess, tmp_path):
    pipeline = chain(sess, tmp_path, fail_last=True)
    pipeline.upsert(role_arn=ROLE)
    failed = run(pipeline)
    before = len(sluice.Session().metadata.list_jobs(limit=1000))
    # B lies on the path between A and C, so selecting A and C without B breaks the service's path rule.
    with pytest.raises(PipelineError, match="between selected steps 'A' and 'C'"):
        pipeline.start(selective_execution_config=SelectiveExecutionConfig(
            selected_steps=["A", "C"], source_pipeline_execution_arn=failed.arn))
    with pytest.raises(PipelineError, match="'Nope' is not a step"):
        pipeline.start(selective_execution_config=SelectiveExecutionConfig(
            selected_steps=["Nope"], source_pipeline_execution_arn=failed.arn))
    assert len(sluice.Session().metadata.list_jobs(limit=1000)) == before


def test_a_dependency_that_failed_in_the_source_is_refused(sess, tmp_path):
    pipeline = chain(sess, tmp_path)
    pipeline.upsert(role_arn=ROLE)
    full = run(pipeline, parameters={"Tag": "x"})
    # A selective run of A alone is an execution in which B never ran: C cannot be selected from it.
    only_a = run(pipeline, selective_execution_config=SelectiveExecutionConfig(
        selected_steps=["A"], source_pipeline_execution_arn=full.arn))
    assert only_a.describe()["PipelineExecutionStatus"] == "Succeeded"
    assert {s["StepName"] for s in only_a.list_steps()} == {"A"}  # B and C are downstream: not run
    with pytest.raises(PipelineError, match="needs step 'B', which did not succeed"):
        pipeline.start(selective_execution_config=SelectiveExecutionConfig(
            selected_steps=["C"], source_pipeline_execution_arn=only_a.arn))
    other = chain(sess, tmp_path)
    other.name = "other"
    other.upsert(role_arn=ROLE)
    with pytest.raises(PipelineError, match="is an execution of pipeline 'chain'"):
        other.start(selective_execution_config=SelectiveExecutionConfig(
            selected_steps=["C"], source_pipeline_execution_arn=only_a.arn))
