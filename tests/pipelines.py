"""What several pipeline test files share: a small cached pipeline, and a tiny model that carries its own
inference handlers."""

from __future__ import annotations

import contextlib
import textwrap
from pathlib import Path
from typing import Any

import sluice
from sluice.errors import PipelineError
from sluice.processing import ProcessingInput, ProcessingOutput, ScriptProcessor
from sluice.workflow.pipeline import Pipeline
from sluice.workflow.steps import CacheConfig, ProcessingStep

ROLE = sluice.get_execution_role()

# Trains a one-feature classifier and packs its own inference handlers into the model, as a user's script would.
TRAIN = textwrap.dedent(
    """
    import pathlib, shutil
    import joblib, numpy as np
    from sklearn.linear_model import LogisticRegression
    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1]))
    joblib.dump(model, "/opt/ml/model/model.joblib")
    pathlib.Path("/opt/ml/model/code").mkdir()
    shutil.copy(pathlib.Path(__file__).with_name("inference.py"), "/opt/ml/model/code/inference.py")
    """
)
INFERENCE = textwrap.dedent(
    """
    import io, os, joblib, numpy as np
    def model_fn(model_dir):
        return joblib.load(os.path.join(model_dir, "model.joblib"))
    def input_fn(body, content_type):
        return np.loadtxt(io.StringIO(body.decode() if isinstance(body, bytes) else body), delimiter=",", ndmin=2)
    def predict_fn(data, model):
        return model.predict(data)
    def output_fn(prediction, accept):
        return "".join(f"{int(p)}\\n" for p in prediction), "text/csv"
    """
)


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
