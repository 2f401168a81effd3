"""The step cache through the executor: a re-run reuses the earlier run, new bytes at the same path do not,
and ``execution.explain(step)`` says which happened and why."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

import sluice
from sluice.errors import PipelineError
from sluice.processing import ProcessingInput, ProcessingOutput, ScriptProcessor
from sluice.workflow.pipeline import Pipeline
from sluice.workflow.pipeline_context import PipelineSession
from sluice.workflow.steps import CacheConfig, ProcessingStep

ROLE = sluice.get_execution_role()


@pytest.fixture
def sess(sluice_home: Path) -> PipelineSession:
    session = PipelineSession()
    session.upload_string_as_file_body("3\n", session.default_bucket(), "raw/n.txt")
    return session


def build(sess: PipelineSession, tmp_path: Path) -> Pipeline:
    """Double (cached) reads raw/n.txt and writes twice its value; Report (not cached) prints what it got."""
    double = tmp_path / "double.py"
    double.write_text("import pathlib\n"
                      "n = int(pathlib.Path('/opt/ml/processing/in/n.txt').read_text())\n"
                      "out = pathlib.Path('/opt/ml/processing/out'); out.mkdir(parents=True, exist_ok=True)\n"
                      "(out / 'n.txt').write_text(str(2 * n))\n")
    report = tmp_path / "report.py"
    report.write_text("import pathlib\nprint('got', pathlib.Path('/opt/ml/processing/in/n.txt').read_text())\n")

    def processor() -> ScriptProcessor:
        return ScriptProcessor(command=["python3"], image_uri=None, role=ROLE, instance_count=1,
                               instance_type="ml.m5.xlarge", sagemaker_session=sess)

    step_double = ProcessingStep(
        name="Double", cache_config=CacheConfig(enable_caching=True, expire_after="P1D"),
        step_args=processor().run(code=str(double), inputs=[ProcessingInput(
            source=f"s3://{sess.default_bucket()}/raw", destination="/opt/ml/processing/in")],
            outputs=[ProcessingOutput(output_name="out", source="/opt/ml/processing/out")]))
    step_report = ProcessingStep(name="Report", step_args=processor().run(code=str(report), inputs=[ProcessingInput(
        source=step_double.properties.ProcessingOutputConfig.Outputs["out"].S3Output.S3Uri,
        destination="/opt/ml/processing/in")]))
    return Pipeline(name="cached", steps=[step_double, step_report], sagemaker_session=sess)


def run(pipeline: Pipeline):
    pipeline.upsert(role_arn=ROLE)
    execution = pipeline.start()
    with contextlib.suppress(PipelineError):
        execution.wait()
    assert execution.describe()["PipelineExecutionStatus"] == "Succeeded", execution.describe()
    return execution


def processing_jobs(execution) -> list[str]:
    return [j.name for j in sluice.Session().metadata.list_jobs(kind="ProcessingJob", limit=1000)
            if execution.execution_id in j.name]


def test_a_rerun_reuses_the_cached_step_and_downstream_reads_its_outputs(sess, tmp_path):
    first = run(build(sess, tmp_path))
    assert first.explain("Double").outcome.value == "no-earlier-run"
    second = run(build(sess, tmp_path))  # rebuilt from scratch, as a user re-running their script would
    steps = {s["StepName"]: s for s in second.list_steps()}
    assert steps["Double"]["CacheHitResult"] == {"SourcePipelineExecutionArn": first.arn}
    assert steps["Double"]["StepStatus"] == "Succeeded"
    assert "CacheHitResult" not in steps["Report"]  # not cached: it ran again
    assert [j.split(f"{second.execution_id}-")[1].rsplit("-", 1)[0] for j in processing_jobs(second)] == ["Report"]
    # Report read the cached run's output: the first execution's S3 prefix.
    report_job = sluice.Session().metadata.get_job("ProcessingJob", processing_jobs(second)[0]).record
    source = report_job["ProcessingInputs"][0]["S3Input"]["S3Uri"]
    assert first.execution_id in source and second.execution_id not in source
    explained = second.explain("Double")
    assert explained.hit and first.arn in str(explained)


def test_new_bytes_at_the_same_path_miss_and_explain_names_the_object(sess, tmp_path):
    first = run(build(sess, tmp_path))
    sess.upload_string_as_file_body("5\n", sess.default_bucket(), "raw/n.txt")
    second = run(build(sess, tmp_path))
    steps = {s["StepName"]: s for s in second.list_steps()}
    assert "CacheHitResult" not in steps["Double"]
    assert len(processing_jobs(second)) == 2
    explained = second.explain("Double")
    assert explained.outcome.value == "changed"
    assert "raw/n.txt" in str(explained), str(explained)
    third = run(build(sess, tmp_path))  # the new bytes are now cached in their turn
    assert {s["StepName"]: s for s in third.list_steps()}["Double"]["CacheHitResult"] == {
        "SourcePipelineExecutionArn": second.arn}
    assert first.arn != second.arn


def test_explaining_a_step_that_did_not_run_or_does_not_exist_is_refused(sess, tmp_path):
    execution = run(build(sess, tmp_path))
    with pytest.raises(PipelineError, match="no step 'Nope'"):
        execution.explain("Nope")
    assert execution.explain("Report").outcome.value == "disabled"
