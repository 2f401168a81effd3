"""Rebuilt pipelines keep their step arguments, so a re-run can be a cache hit (SDK issue #2736): ``@step``
payloads and a ModelStep's repacked model are stored where their content decides the path.

A ``@step`` payload's folder is a digest of the function and its arguments that is the same in every process:
cloudpickle's own bytes are not (set literals and set arguments follow the per-process string hash; classes
pickled by value get a random per-process id). The cross-process tests run a user's script twice, under two
different hash seeds, as re-running it would. Keys are computed against the embedded store; one rebuilt
pipeline is run to show the runner finds the first build's payload.
"""

from __future__ import annotations

import copy
import io
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

import sluice
from sluice.model import Model
from sluice.session import Session
from sluice.storage import S3Uri
from sluice.workflow.cache import cache_key
from sluice.workflow.function_step import step
from sluice.workflow.graph import CacheSpec, StepSpec, StepType, parse_definition
from sluice.workflow.model_step import ModelStep
from sluice.workflow.pipeline import Pipeline
from sluice.workflow.pipeline_context import PipelineSession
from sluice.workflow.runners.function import parse_container_arguments

BUCKET = "stable-bucket"
ROLE = "arn:aws:iam::111111111111:role/R"
XGB = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
DIGEST = re.compile(r"[0-9a-f]{64}")


def _steps(definition: str) -> dict[str, Any]:
    return {name: spec.arguments for name, spec in parse_definition(definition).graph.items()}


def _container_args(arguments: dict[str, Any]) -> list[Any]:
    return arguments["AlgorithmSpecification"]["ContainerArguments"]


def _payload_dir(arguments: dict[str, Any]) -> str:
    args = _container_args(arguments)
    return args[args.index("--func_step_s3_dir") + 1]


def _without_payload_dir(arguments: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(arguments)
    args = _container_args(out)
    args[args.index("--func_step_s3_dir") + 1] = "<payload>"
    return out


def _resolved(value: Any, execution_id: str) -> Any:
    """The arguments as the executor hands them to the runner: the execution id filled in, an upstream step's
    output path as a reused (cached) run of it would give it."""
    if isinstance(value, dict):
        if "Get" in value:
            name = value["Get"]
            return execution_id if name == "Execution.PipelineExecutionId" else f"s3://{BUCKET}/earlier-run/{name}"
        if "Std:Join" in value:
            join = value["Std:Join"]
            return join["On"].join(str(_resolved(v, execution_id)) for v in join["Values"])
        return {k: _resolved(v, execution_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v, execution_id) for v in value]
    return value


def _key(arguments: dict[str, Any], step_name: str, execution_id: str) -> str:
    """The step's cache key for one execution, over the stored payload's bytes (what the executor computes)."""
    spec = StepSpec(step_name, StepType.TRAINING, arguments, cache_config=CacheSpec(True, "P30D"))
    key = cache_key(spec, _resolved(arguments, execution_id), Session().store)
    assert key is not None and any(part.startswith("code:") for part in key.parts)  # the payload is keyed
    return key.digest


# ---- one process, fresh calls each build ------------------------------------------------------------------

class Scale:
    def __init__(self, factor: int) -> None:
        self.factor = factor


@step(name="prepare")
def prepare(n: int, scale: Scale) -> dict:
    sizes = {"small", "medium", "large", "huge"}  # a set literal: a frozenset constant in the pickled code
    return {"xs": [i * scale.factor for i in range(n)], "sizes": sorted(sizes)}


@step(name="total")
def total(xs: list, tags: set, weights: Any) -> float:
    return sum(xs) * weights.value + len(tags)


def build_function_pipeline(factor: int = 10) -> Pipeline:
    """What a notebook does when its cells run again: the class of an argument is defined anew, each
    decorated function is called again."""

    class Weights:  # a new class object on every build (cloudpickle gives each one a new random id)
        def __init__(self, value: float) -> None:
            self.value = value

    prepared = prepare(3, Scale(factor))
    result = total(prepared["xs"], {"red", "green", "blue", "cyan"}, Weights(0.5))
    return Pipeline("fn-stable", steps=[result], sagemaker_session=PipelineSession(default_bucket=BUCKET))


def test_rebuilding_a_pipeline_of_step_functions_gives_identical_definitions(sluice_home):
    first = build_function_pipeline().definition()
    assert build_function_pipeline().definition() == first
    steps = _steps(first)
    for name in ("prepare", "total"):
        folder = _payload_dir(steps[name])
        assert DIGEST.fullmatch(folder), folder  # the payload's content, not the build time
        invocation = parse_container_arguments(_container_args(steps[name]))  # as the runner reads them
        assert invocation.payload_prefix == f"s3://{BUCKET}/fn-stable/{name}/{folder}"
        where = S3Uri.parse(f"{invocation.payload_prefix}/function/payload.pkl")
        assert Session().store.exists(where.bucket, where.key)
    assert _payload_dir(steps["prepare"]) != _payload_dir(steps["total"])


def test_a_changed_argument_moves_only_that_steps_payload_and_key(sluice_home):
    before = _steps(build_function_pipeline(factor=10).definition())
    after = _steps(build_function_pipeline(factor=11).definition())
    assert after["total"] == before["total"]
    assert _payload_dir(after["prepare"]) != _payload_dir(before["prepare"])
    assert _without_payload_dir(after["prepare"]) == _without_payload_dir(before["prepare"])
    assert _key(after["total"], "total", "run-2") == _key(before["total"], "total", "run-1")
    assert _key(after["prepare"], "prepare", "run-2") != _key(before["prepare"], "prepare", "run-1")


# ---- a script run again in a new process --------------------------------------------------------------------

HELPERS = '''
import enum


class Scale:
    def __init__(self, factor: int) -> None:
        self.factor = factor


class Unit(enum.Enum):
    METRE = "m"
'''

SCRIPT = '''
from helpers import Scale, Unit

from sluice.workflow.function_step import step
from sluice.workflow.pipeline import Pipeline
from sluice.workflow.pipeline_context import PipelineSession


@step(name="prepare")
def prepare(n: int, scale: Scale) -> dict:
    sizes = {"small", "medium", "large", "huge", "giant"}
    return {"xs": [i * scale.factor for i in range(n)], "sizes": sorted(sizes)}


@step(name="total")
def total(xs: list, tags: set, unit: Unit) -> str:
    return f"{sum(xs)} {unit.value} {len(tags)}"


prepared = prepare(3, Scale(10))
result = total(prepared["xs"], {"red", "green", "blue", "cyan"}, Unit.METRE)
pipeline = Pipeline("rerun", steps=[result], sagemaker_session=PipelineSession(default_bucket="<bucket>"))
print(pipeline.definition())
'''.replace("<bucket>", BUCKET)


@pytest.fixture
def script(tmp_path: Path) -> Path:
    """A user's pipeline script beside a helper module of its own (both pickled by value)."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "helpers.py").write_text(HELPERS)
    (project / "pipeline.py").write_text(SCRIPT)
    return project / "pipeline.py"


def run_script(script: Path, hash_seed: str) -> str:
    """Run the script as its user would, in a new interpreter; the definition it prints."""
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run([sys.executable, str(script)], cwd=script.parent, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _stored(arguments: dict[str, Any]) -> dict[str, bytes]:
    """Every object of the step's payload folder, by key."""
    prefix = S3Uri.parse(parse_container_arguments(_container_args(arguments)).payload_prefix + "/")
    store = Session().store
    return {o.key: store.get_bytes(prefix.bucket, o.key) for o in store.list(prefix.bucket, prefix.key)}


def test_a_script_run_again_in_a_new_process_builds_the_same_definition_and_cache_keys(sluice_home, script):
    first = run_script(script, hash_seed="1")
    steps = _steps(first)
    stored = {name: _stored(arguments) for name, arguments in steps.items()}
    assert {len(objects) for objects in stored.values()} == {2}  # function/ and arguments/payload.pkl
    keys = {name: _key(arguments, name, "run-1") for name, arguments in steps.items()}

    again = run_script(script, hash_seed="2")  # other string hashes, other class ids: other cloudpickle bytes
    assert again == first
    assert {name: _stored(arguments) for name, arguments in steps.items()} == stored  # the first build's bytes
    assert {name: _key(arguments, name, "run-2") for name, arguments in steps.items()} == keys  # a hit

    sess = PipelineSession(default_bucket=BUCKET)  # the rebuilt definition runs, from the first build's payload
    rebuilt = Pipeline.from_definition(again, sagemaker_session=sess, name="rerun")
    rebuilt.upsert(role_arn=sluice.get_execution_role())
    assert rebuilt.start().result("total") == "30 m 4"


def test_a_changed_function_body_changes_only_that_steps_arguments_and_key(sluice_home, script):
    before = _steps(run_script(script, hash_seed="1"))
    source = script.read_text()
    script.write_text(source.replace('return f"{sum(xs)} {unit.value}', 'return f"{sum(xs) * 2} {unit.value}'))
    after = _steps(run_script(script, hash_seed="2"))
    assert after["prepare"] == before["prepare"]
    assert _payload_dir(after["total"]) != _payload_dir(before["total"])
    assert _without_payload_dir(after["total"]) == _without_payload_dir(before["total"])
    assert _key(after["prepare"], "prepare", "run-2") == _key(before["prepare"], "prepare", "run-1")
    assert _key(after["total"], "total", "run-2") != _key(before["total"], "total", "run-1")


# ---- a ModelStep whose model is repacked with its inference code ---------------------------------------------

def _tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


@pytest.fixture
def model_project(sluice_home: Path, tmp_path: Path) -> Path:
    """Trained weights already in the bucket, and two models' inference code in local directories."""
    Session(default_bucket=BUCKET).default_bucket()
    Session().store.put(BUCKET, "trained/model.tar.gz", _tar_gz({"model.bin": b"weights-v1"}))
    for name in ("serve", "batch"):
        code = tmp_path / "project" / name
        code.mkdir(parents=True)
        (code / "inference.py").write_text(f"def model_fn(model_dir):\n    return {name!r}\n")
        (code / "requirements.txt").write_text("numpy\n")
    return tmp_path / "project"


def build_model_pipeline(project: Path) -> Pipeline:
    """Two ModelSteps, each model with its own entry_point and the same fixed model_data."""
    session = PipelineSession(default_bucket=BUCKET)
    steps = []
    for name in ("serve", "batch"):
        model = Model(image_uri=XGB, model_data=f"s3://{BUCKET}/trained/model.tar.gz", role=ROLE,
                      entry_point="inference.py", source_dir=str(project / name), sagemaker_session=session)
        steps.append(ModelStep(name.title(), step_args=model.create(instance_type="ml.m5.large")))
    return Pipeline("served", steps=steps, sagemaker_session=session)


def _model_data(arguments: dict[str, Any]) -> str:
    return arguments["PrimaryContainer"]["ModelDataUrl"]


def test_a_model_step_with_entry_point_and_fixed_model_data_is_rebuilt_identically(model_project):
    first = build_model_pipeline(model_project).definition()
    code = model_project / "serve" / "inference.py"
    os.utime(code, (1_000_000_000, 1_000_000_000))  # a checkout touches the file; its bytes are the same
    assert build_model_pipeline(model_project).definition() == first
    steps = _steps(first)
    url = _model_data(steps["Serve-CreateModel"])
    assert re.fullmatch(rf"s3://{BUCKET}/model/[0-9a-f]{{64}}/model\.tar\.gz", url), url
    assert url != _model_data(steps["Batch-CreateModel"])
    where = S3Uri.parse(url)
    with tarfile.open(fileobj=io.BytesIO(Session().store.get_bytes(where.bucket, where.key))) as tar:
        assert sorted(tar.getnames()) == ["code/inference.py", "code/requirements.txt", "model.bin"]
        assert tar.extractfile("model.bin").read() == b"weights-v1"
        assert tar.extractfile("code/inference.py").read() == code.read_bytes()
    assert steps["Serve-CreateModel"]["PrimaryContainer"]["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"


def test_changed_inference_code_changes_only_that_models_data_url(model_project):
    before = _steps(build_model_pipeline(model_project).definition())
    (model_project / "serve" / "inference.py").write_text("def model_fn(model_dir):\n    return 'v2'\n")
    after = _steps(build_model_pipeline(model_project).definition())
    assert after["Batch-CreateModel"] == before["Batch-CreateModel"]
    assert _model_data(after["Serve-CreateModel"]) != _model_data(before["Serve-CreateModel"])
    after["Serve-CreateModel"]["PrimaryContainer"].pop("ModelDataUrl")
    before["Serve-CreateModel"]["PrimaryContainer"].pop("ModelDataUrl")
    assert after["Serve-CreateModel"] == before["Serve-CreateModel"]
