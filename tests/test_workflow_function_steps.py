"""``@step`` function steps run as real training jobs in the sandbox: results flow to later steps (as
DelayedReturn arguments and through JsonGet in conditions), ``execution.result()`` returns them, and an
exception in the function fails the execution with the exception in its reason."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from pathlib import Path

import pytest

import sluice
from sluice.errors import PipelineError
from sluice.processing import ProcessingOutput, ScriptProcessor
from sluice.workflow.condition_step import ConditionStep
from sluice.workflow.conditions import ConditionGreaterThan
from sluice.workflow.execution_variables import ExecutionVariables
from sluice.workflow.function_step import step
from sluice.workflow.functions import Join
from sluice.workflow.parameters import ParameterBoolean, ParameterFloat, ParameterInteger, ParameterString
from sluice.workflow.pipeline import Pipeline
from sluice.workflow.pipeline_context import PipelineSession
from sluice.workflow.retry import SageMakerJobExceptionTypeEnum, SageMakerJobStepRetryPolicy
from sluice.workflow.steps import ProcessingStep

ROLE = sluice.get_execution_role()


@pytest.fixture
def sess(sluice_home: Path) -> PipelineSession:
    return PipelineSession()


def run(pipeline: Pipeline, **start_kwargs):
    pipeline.upsert(role_arn=ROLE)
    return pipeline.start(**start_kwargs)


def stored_json(session, uri: str) -> dict:
    bucket, _, key = uri[len("s3://"):].partition("/")
    return json.loads(session.store.get_bytes(bucket, key))


# ---- functions from this (uninstalled) module: pickled by value, with the helpers and classes they use ----------

class Scale:
    def __init__(self, factor: int) -> None:
        self.factor = factor


def _squares(n: int) -> list[int]:
    return [i * i for i in range(n)]


@step(name="prepare", instance_type="ml.m5.large", keep_alive_period_in_seconds=60)
def prepare(n: int, scale: Scale) -> dict:
    return {"xs": [x * scale.factor for x in _squares(n)], "n": n, "n_type": type(n).__name__, "scale": scale}


@step(name="total")
def total(xs: list, n: int) -> int:
    return sum(xs) + n


def test_a_chain_passes_one_function_result_to_the_next_and_result_returns_each(sess):
    n = ParameterInteger("N", default_value=3)
    prepared = prepare(n, Scale(10))
    pipeline = Pipeline("chain", parameters=[n], steps=[total(prepared["xs"], prepared["n"])],
                        sagemaker_session=sess)
    execution = run(pipeline, parameters={"N": 4})

    # result() waits for the execution, as the SDK's does, then unpickles the return value
    prepared_value = execution.result("prepare")
    scale = prepared_value.pop("scale")
    assert prepared_value == {"xs": [0, 10, 40, 90], "n": 4, "n_type": "int"}
    assert isinstance(scale, Scale) and scale.factor == 10
    assert execution.result("total") == 144
    execution.wait()
    steps = {s["StepName"]: s for s in execution.list_steps()}
    assert {s["StepStatus"] for s in steps.values()} == {"Succeeded"}
    assert "TrainingJob" in steps["total"]["Metadata"]
    # where later steps' JsonGet reads it: <OutputDataConfig.S3OutputPath>/results.json under "Result"
    job = sess.describe_training_job(steps["total"]["Metadata"]["TrainingJob"]["Arn"].rsplit("/", 1)[-1])
    output_path = job["OutputDataConfig"]["S3OutputPath"]
    assert output_path.endswith(f"/chain/{execution.arn.rsplit('/', 1)[-1]}/total/results")
    assert stored_json(sess, f"{output_path}/results.json") == {"Result": 144, "Exception": None}
    not_json = stored_json(sess, output_path.replace("/total/results", "/prepare/results/results.json"))
    assert not_json["Result"] is None and "is not JSON serializable" in not_json["Exception"]
    prepare_job = sess.describe_training_job(steps["prepare"]["Metadata"]["TrainingJob"]["Arn"].rsplit("/", 1)[-1])
    assert prepare_job["ResourceConfig"] == {"VolumeSizeInGB": 30, "InstanceCount": 1, "InstanceType": "ml.m5.large",
                                             "KeepAlivePeriodInSeconds": 60}


@step(name="kinds")
def kinds(count: int, rate: float, flag: bool, label: str, run_id: str, out_uri: str) -> list:
    return [[type(v).__name__ for v in (count, rate, flag, label)], count, rate, flag, label, run_id, out_uri]


def test_parameters_execution_variables_and_step_properties_arrive_as_typed_values(sess, tmp_path):
    code = tmp_path / "write.py"
    code.write_text("print('ok')\n")
    processor = ScriptProcessor(command=["python3"], image_uri=None, role=ROLE, instance_count=1,
                                instance_type="ml.m5.xlarge", sagemaker_session=sess)
    write = ProcessingStep("write", step_args=processor.run(code=str(code), outputs=[
        ProcessingOutput(output_name="out", source="/opt/ml/processing/out")]))
    count, rate = ParameterInteger("Count", 2), ParameterFloat("Rate", 0.5)
    flag, label = ParameterBoolean("Flag", False), ParameterString("Label", "a")
    out_uri = write.properties.ProcessingOutputConfig.Outputs["out"].S3Output.S3Uri
    result = kinds(count, rate, flag, label, ExecutionVariables.PIPELINE_EXECUTION_ID, out_uri)
    pipeline = Pipeline("kinds", parameters=[count, rate, flag, label], steps=[write, result],
                        sagemaker_session=sess)
    execution = run(pipeline, parameters={"Count": 7, "Rate": 2.5, "Flag": True, "Label": "b"})
    types, *values, run_id, uri = execution.result("kinds")
    assert types == ["int", "float", "bool", "str"]
    assert values == [7, 2.5, True, "b"]
    assert run_id == execution.arn.rsplit("/", 1)[-1]
    write_record = next(s for s in execution.list_steps() if s["StepName"] == "write")
    job = sess.describe_processing_job(write_record["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[-1])
    assert uri == job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]


# ---- indexing results: into later steps and into a condition -------------------------------------------------

@step(name="split")
def split(n: int) -> dict:
    return {"items": [n, n * 10], "name": f"n{n}"}


@step(name="pick")
def pick(value: int, name: str) -> list:
    return [value, name]


@step(name="high")
def high(value: int) -> int:
    return value + 1


@step(name="low")
def low(value: int) -> int:
    return value - 1


@pytest.mark.parametrize(("n", "taken", "untaken"), [(3, "high", "low"), (1, "low", "high")])
def test_indexed_results_feed_later_steps_and_a_condition(sess, n, taken, untaken):
    parts = split(n)
    picked = pick(parts["items"][1], name=parts["name"])
    check = ConditionStep("Check", conditions=[ConditionGreaterThan(picked[0], 15)],
                          if_steps=[high(picked[0])], else_steps=[low(picked[0])])
    execution = run(Pipeline("index", steps=[check], sagemaker_session=sess))
    execution.wait()
    assert execution.result("pick") == [n * 10, f"n{n}"]
    assert execution.result(taken) == n * 10 + (1 if taken == "high" else -1)
    steps = {s["StepName"]: s for s in execution.list_steps()}
    assert steps["Check"]["Metadata"] == {"Condition": {"Outcome": n * 10 > 15}}
    assert untaken not in steps
    with pytest.raises(PipelineError, match=rf"step '{untaken}' did not run"):
        execution.result(untaken)
    with pytest.raises(PipelineError, match=r"'Check' is a Condition step, not a @step function step"):
        execution.result("Check")
    with pytest.raises(PipelineError, match=r"Invalid step name 'nope'"):
        execution.result("nope")


# ---- failure --------------------------------------------------------------------------------------------------

@step(name="explode", retry_policies=[SageMakerJobStepRetryPolicy(
    failure_reason_types=[SageMakerJobExceptionTypeEnum.INTERNAL_ERROR], max_attempts=3)])
def explode(n: int) -> int:
    raise ValueError(f"n={n} is not allowed")


@step(name="never")
def never(n: int) -> int:
    return n


def test_an_exception_in_the_function_fails_the_execution_with_its_type_and_message(sess):
    execution = run(Pipeline("boom", steps=[never(explode(5))], sagemaker_session=sess))
    with pytest.raises(PipelineError, match=r"Step 'explode' failed: .*ValueError\('n=5 is not allowed'\)"):
        execution.wait()
    steps = {s["StepName"]: s for s in execution.list_steps()}
    assert "never" not in steps
    failed = steps["explode"]
    assert failed["StepStatus"] == "Failed"
    assert "AlgorithmError: ValueError('n=5 is not allowed')" in failed["FailureReason"]
    assert failed["AttemptCount"] == 1  # the user's error is not retried, whatever the policy names
    with pytest.raises(PipelineError, match=r"'explode' is in Failed status, so it has no result.*ValueError"):
        execution.result("explode")


# ---- the environment: requirements and pre-execution commands -------------------------------------------------

def _wheel(directory: Path, name: str, body: str) -> Path:
    """A minimal pure-Python wheel, so pip installs it with no network and no build backend."""
    dist = f"{name}-1.0.dist-info"
    files = {f"{name}/__init__.py": body,
             f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join([*record, f"{dist}/RECORD,,"]) + "\n"
    wheel = directory / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


def test_requirements_are_installed_and_pre_execution_commands_run_before_the_function(sess, tmp_path):
    wheel = _wheel(tmp_path, "sluice_fn_dep", "VALUE = 42\n")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"--no-index\n{wheel}\n")
    marker = tmp_path / "pre-exec.txt"

    @step(name="uses-dep", dependencies=str(requirements),
          pre_execution_commands=[f"echo ready > {marker}"], environment_variables={"GREETING": "hi"})
    def uses_dep() -> list:
        import os

        import sluice_fn_dep

        with open(marker) as fh:
            return [sluice_fn_dep.VALUE, fh.read().strip(), os.environ["GREETING"]]

    execution = run(Pipeline("deps", steps=[uses_dep()], sagemaker_session=sess))
    assert execution.result("uses-dep") == [42, "ready", "hi"]


def test_a_failing_requirements_install_fails_the_step_with_pips_reason(sess, tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"--no-index\n{tmp_path / 'absent-1.0-py3-none-any.whl'}\n")

    @step(name="no-dep", dependencies=str(requirements))
    def no_dep() -> int:
        return 1

    execution = run(Pipeline("nodeps", steps=[no_dep()], sagemaker_session=sess))
    with pytest.raises(PipelineError, match=r"RuntimeEnvironmentError\(.pip install -r requirements.txt failed"):
        execution.wait()


# ---- refused before anything runs -----------------------------------------------------------------------------

def test_settings_sluice_cannot_honour_are_refused_where_they_are_written(sess, tmp_path):
    with pytest.raises(PipelineError, match=r"job_conda_env=.*sluice runs no images or conda"):
        step(job_conda_env="py311")
    with pytest.raises(PipelineError, match=r"conda environment, which sluice does not run.*requirements.txt"):
        step(dependencies="environment.yml")
    with pytest.raises(PipelineError, match=r"pre_execution_commands or pre_execution_script, not both"):
        step(pre_execution_commands=["true"], pre_execution_script="setup.sh")
    with pytest.raises(PipelineError, match=r"Join.*cannot receive.*compute Join or JsonGet values inside"):
        total(Join(on="/", values=["a", ExecutionVariables.PIPELINE_NAME]), 1)

    @step(name="missing-dep", dependencies=str(tmp_path / "nope.txt"))
    def missing() -> int:
        return 1

    with pytest.raises(PipelineError, match=r"no dependencies file named .*nope.txt"):
        Pipeline("refused", steps=[missing()], sagemaker_session=sess).definition()


# ---- against an S3-compatible endpoint ------------------------------------------------------------------------

def test_a_chain_runs_against_an_s3_endpoint(s3_home):
    session = PipelineSession()
    prepared = prepare(2, Scale(3))
    execution = run(Pipeline("chain-s3", steps=[total(prepared["xs"], 1)], sagemaker_session=session))
    assert execution.result("total") == 4


def test_an_imported_definition_the_runner_cannot_honour_fails_its_step_with_the_reason(sess):
    """A definition made elsewhere (the SDK, another machine) may name a conda env or lack its stored payload."""
    data = json.loads(Pipeline("elsewhere", steps=[never(1)], sagemaker_session=sess).definition())
    container_args = data["Steps"][0]["Arguments"]["AlgorithmSpecification"]["ContainerArguments"]
    with_conda = json.loads(json.dumps(data))
    conda_args = with_conda["Steps"][0]["Arguments"]["AlgorithmSpecification"]["ContainerArguments"]
    conda_args[conda_args.index("--pipeline_step_name"):0] = ["--job_conda_env", "py311"]
    unknown_build = json.loads(json.dumps(data))
    build_args = unknown_build["Steps"][0]["Arguments"]["AlgorithmSpecification"]["ContainerArguments"]
    build_args[container_args.index("--func_step_s3_dir") + 1] = "built-on-another-machine"
    for definition, reason in ((with_conda, r"--job_conda_env 'py311' names a conda environment"),
                               (unknown_build, r"the pickled function of step 'never' is missing")):
        imported = Pipeline.from_definition(definition, sagemaker_session=sess, name="elsewhere")
        with pytest.raises(PipelineError, match=reason):
            run(imported).wait()
