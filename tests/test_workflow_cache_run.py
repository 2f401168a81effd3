"""The step cache through the executor: a re-run reuses the earlier run, new bytes at the same path do not,
and ``execution.explain(step)`` says which happened and why."""

from __future__ import annotations

from pathlib import Path

import pytest

import sluice
from sluice.errors import PipelineError
from sluice.workflow.pipeline_context import PipelineSession
from tests.pipelines import cached_pipeline, run_pipeline


@pytest.fixture
def sess(sluice_home: Path) -> PipelineSession:
    session = PipelineSession()
    session.upload_string_as_file_body("3\n", session.default_bucket(), "raw/n.txt")
    return session


def processing_jobs(execution) -> list[str]:
    return [j.name for j in sluice.Session().metadata.list_jobs(kind="ProcessingJob", limit=1000)
            if execution.execution_id in j.name]


def test_a_rerun_reuses_the_cached_step_and_downstream_reads_its_outputs(sess, tmp_path):
    first = run_pipeline(cached_pipeline(sess, tmp_path))
    assert first.explain("Double").outcome.value == "no-earlier-run"
    second = run_pipeline(cached_pipeline(sess, tmp_path))  # rebuilt from scratch, as a re-run script would
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
    first = run_pipeline(cached_pipeline(sess, tmp_path))
    sess.upload_string_as_file_body("5\n", sess.default_bucket(), "raw/n.txt")
    second = run_pipeline(cached_pipeline(sess, tmp_path))
    steps = {s["StepName"]: s for s in second.list_steps()}
    assert "CacheHitResult" not in steps["Double"]
    assert len(processing_jobs(second)) == 2
    explained = second.explain("Double")
    assert explained.outcome.value == "changed"
    assert "raw/n.txt" in str(explained), str(explained)
    third = run_pipeline(cached_pipeline(sess, tmp_path))  # the new bytes are now cached in their turn
    assert {s["StepName"]: s for s in third.list_steps()}["Double"]["CacheHitResult"] == {
        "SourcePipelineExecutionArn": second.arn}
    assert first.arn != second.arn


def test_explaining_a_step_that_did_not_run_or_does_not_exist_is_refused(sess, tmp_path):
    execution = run_pipeline(cached_pipeline(sess, tmp_path))
    with pytest.raises(PipelineError, match="no step 'Nope'"):
        execution.explain("Nope")
    assert execution.explain("Report").outcome.value == "disabled"
