"""A small cached pipeline that several test files run: the store, the cache and the record see it alike."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import sluice
from sluice.errors import PipelineError
from sluice.processing import ProcessingInput, ProcessingOutput, ScriptProcessor
from sluice.workflow.pipeline import Pipeline
from sluice.workflow.steps import CacheConfig, ProcessingStep

ROLE = sluice.get_execution_role()


def cached_pipeline(sess: Any, tmp_path: Path, name: str = "cached") -> Pipeline:
    """Double (cached) writes twice the number in ``s3://<default bucket>/raw/n.txt``; Report (not cached) prints
    what it got from Double's output."""
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
    return Pipeline(name=name, steps=[step_double, step_report], sagemaker_session=sess)


def run_pipeline(pipeline: Pipeline) -> Any:
    """Upsert, start and wait; the execution must succeed (the assertion shows its record if not)."""
    pipeline.upsert(role_arn=ROLE)
    execution = pipeline.start()
    with contextlib.suppress(PipelineError):  # a Failed run raises; the assertion below says why
        execution.wait()
    assert execution.describe()["PipelineExecutionStatus"] == "Succeeded", execution.describe()
    return execution
