"""FrameworkProcessor (source_dir, requirements.txt, runproc.sh) and SKLearnProcessor, as the SDK lays them out."""

from __future__ import annotations

import base64
import hashlib
import json
import textwrap
import zipfile
from pathlib import Path

import pytest

import sluice
from sluice import image_uris
from sluice.processing import FrameworkProcessor, ProcessingInput, ProcessingOutput
from sluice.s3 import S3Downloader
from sluice.sklearn.processing import SKLearnProcessor


def make_wheel(dest: Path, name: str, version: str, module_source: str) -> Path:
    """A minimal pure-Python wheel, so requirements.txt can be installed with no network."""
    wheel = dest / f"{name}-{version}-py3-none-any.whl"
    files = {
        f"{name}.py": module_source,
        f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{name}-{version}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record_lines = []
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            data = text.encode()
            zf.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record_lines.append(f"{path},sha256={digest},{len(data)}")
        record_lines.append(f"{name}-{version}.dist-info/RECORD,,")
        zf.writestr(f"{name}-{version}.dist-info/RECORD", "\n".join(record_lines) + "\n")
    return wheel


@pytest.fixture
def sess(sluice_home: Path) -> sluice.Session:
    return sluice.Session()


def test_framework_processor_runs_source_dir_with_its_requirements(sess, tmp_path):
    wheel = make_wheel(tmp_path, "ndvi_helpers", "1.0", "def scale(x):\n    return x * 10\n")
    src = tmp_path / "src"
    src.mkdir()
    (src / "requirements.txt").write_text(f"{wheel}\n")
    (src / "common.py").write_text("GREETING = 'from source_dir'\n")
    (src / "main.py").write_text(textwrap.dedent("""
        import json, os, sys
        import common, ndvi_helpers
        os.makedirs("/opt/ml/processing/output/r", exist_ok=True)
        json.dump({"greeting": common.GREETING, "scaled": ndvi_helpers.scale(4), "argv": sys.argv[1:]},
                  open("/opt/ml/processing/output/r/result.json", "w"))
    """))
    bucket = sess.default_bucket()
    proc = FrameworkProcessor(estimator_cls=None, framework_version="1.2-1",
                              image_uri=image_uris.retrieve("sklearn", "us-east-1", version="1.2-1"),
                              role=sluice.get_execution_role(), instance_count=2, instance_type="ml.m5.large",
                              sagemaker_session=sess)
    proc.run(code="main.py", source_dir=str(src), arguments=["--k", "v"], logs=False,
             outputs=[ProcessingOutput(source="/opt/ml/processing/output/r", destination=f"s3://{bucket}/fw")])
    got = json.loads(S3Downloader.read_file(f"s3://{bucket}/fw/result.json", sagemaker_session=sess))
    assert got == {"greeting": "from source_dir", "scaled": 40, "argv": ["--k", "v"]}
    desc = proc.jobs[-1].describe()
    name = desc["ProcessingJobName"]
    assert desc["AppSpecification"]["ContainerEntrypoint"] == [
        "/bin/bash", "/opt/ml/processing/input/entrypoint/runproc.sh"]
    by_name = {i["InputName"]: i["S3Input"] for i in desc["ProcessingInputs"]}
    assert by_name["code"]["S3Uri"] == f"s3://{bucket}/{name}/source/sourcedir.tar.gz"
    assert by_name["entrypoint"]["S3Uri"] == f"s3://{bucket}/{name}/source/runproc.sh"
    # The requirements were installed once into sluice's cache, not into the interpreter.
    deps = list((sess.config.home / "deps").iterdir())
    assert len(deps) == 1 and (deps[0] / "ndvi_helpers.py").exists()


def test_sklearn_processor_uses_the_scikit_learn_environment(sess, tmp_path):
    code = tmp_path / "fit.py"
    code.write_text(textwrap.dedent("""
        import os, sklearn
        from sklearn.linear_model import LinearRegression
        m = LinearRegression().fit([[0], [1], [2]], [0, 2, 4])
        os.makedirs("/opt/ml/processing/output/m", exist_ok=True)
        open("/opt/ml/processing/output/m/coef.txt", "w").write(f"{m.coef_[0]:.1f}")
    """))
    bucket = sess.default_bucket()
    proc = SKLearnProcessor(framework_version="1.2-1", role=sluice.get_execution_role(),
                            instance_type="ml.m5.xlarge", instance_count=1, sagemaker_session=sess)
    assert proc.image_uri == "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    proc.run(code=str(code), logs=False,
             outputs=[ProcessingOutput(source="/opt/ml/processing/output/m", destination=f"s3://{bucket}/sk")])
    assert S3Downloader.read_file(f"s3://{bucket}/sk/coef.txt", sagemaker_session=sess) == "2.0"
    assert proc.jobs[-1].job_name.startswith("sagemaker-scikit-learn-")


def test_script_processor_refuses_a_directory_as_code(sess, tmp_path):
    from sluice.processing import ScriptProcessor

    proc = ScriptProcessor(command=["python3"], image_uri=None, role=sluice.get_execution_role(),
                           instance_count=1, instance_type="ml.m5.xlarge", sagemaker_session=sess)
    with pytest.raises(ValueError, match="FrameworkProcessor"):
        proc.run(code=str(tmp_path), logs=False)


def test_logs_without_wait_is_refused_as_the_sdk_refuses_it(sess, tmp_path):
    from sluice.processing import ScriptProcessor

    proc = ScriptProcessor(command=["python3"], image_uri=None, role=sluice.get_execution_role(),
                           instance_count=1, instance_type="ml.m5.xlarge", sagemaker_session=sess)
    with pytest.raises(ValueError, match="Logs can only be shown if wait is set to True"):
        proc.run(code="x.py", wait=False, logs=True,
                 inputs=[ProcessingInput(source="s3://b/x", destination="/opt/ml/processing/input/x")])
