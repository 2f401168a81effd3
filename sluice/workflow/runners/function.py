"""The runner for ``@step`` function steps: the function runs as a real training job, in the sandbox.

A function step is a Training step shaped as the SDK's remote-function job (see
:mod:`sluice.workflow.function_step`). Its instance runs sandboxed and cannot reach the store, so this
runner moves everything in and out around an ordinary training job:

1. it reads the step's container arguments, which the scheduler has resolved: where the pickled function
   and arguments are (``--s3_base_uri``, ``--pipeline_step_name``, ``--func_step_s3_dir``) and the values
   of the pipeline variables among the arguments (``--property_references``);
2. it fills in the argument placeholders: a :class:`PipelineVariableRef` gets its referenced value
   (turned back into the parameter's type), a :class:`DelayedReturnRef` gets the earlier step's stored
   return value (``<its S3OutputPath>/payload.pkl``), indexed as the ``[...]`` path says;
3. it stores the function and the filled arguments under ``<s3 base>/<execution>/<step>/invocation/``, adds
   that prefix as the ``sluice_function_invocation`` channel, and uploads sluice's bootstrap scripts
   (:mod:`sluice.workflow.remote_function`) to the ``sagemaker_remote_function_bootstrap`` channel;
4. it runs the job (:func:`~sluice.workflow.runners.jobs.run_job`): the image's environment (the current
   interpreter without ``image_uri``), quotas, the sandbox, stop and timeout all apply as for any job;
5. it copies ``results.json`` and ``payload.pkl`` out of the job's ``output.tar.gz`` to
   ``<OutputDataConfig.S3OutputPath>/``, where ``Std:JsonGet`` on the step's result, later steps'
   ``DelayedReturn`` arguments and :func:`load_function_result` read them.

An exception in the function fails the job with ``repr(exception)`` as its FailureReason (after
``AlgorithmError:``), a user error that retry policies do not retry.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sluice.errors import PipelineError, StorageError
from sluice.storage import S3Uri
from sluice.workflow.function_step import (
    RUNTIME_SCRIPTS_CHANNEL_NAME,
    DelayedReturnRef,
    PipelineVariableRef,
    _dumps,
    local_modules,
)
from sluice.workflow.graph import StepSpec, StepType, parse_definition
from sluice.workflow.remote_function import (
    ARGUMENTS_FILE,
    FUNCTION_FILE,
    INVOCATION_CHANNEL_NAME,
    JSON_RESULTS_FILE,
    RESULT_FILE,
    bootstrap_files,
)
from sluice.workflow.runners.base import StepContext, StepFailed, StepOutcome
from sluice.workflow.runners.jobs import run_job

__all__ = ["Invocation", "is_function_step", "load_function_result", "parse_container_arguments",
           "run_function_step"]

_KIND = "TrainingJob"
_REQUIRED_FLAGS = ("s3_base_uri", "pipeline_step_name", "pipeline_execution_id", "func_step_s3_dir")


def is_function_step(spec: StepSpec) -> bool:
    """A ``@step`` compiles to a Training step whose channels include the remote-function bootstrap scripts."""
    if spec.type is not StepType.TRAINING or not isinstance(spec.arguments, Mapping):
        return False
    channels = spec.arguments.get("InputDataConfig")
    return isinstance(channels, list) and any(
        isinstance(c, Mapping) and c.get("ChannelName") == RUNTIME_SCRIPTS_CHANNEL_NAME for c in channels)


@dataclass(frozen=True)
class Invocation:
    """What a function step's resolved container arguments say about this run of it."""

    s3_base_uri: str
    step_name: str
    execution_id: str
    func_step_s3_dir: str
    property_references: Mapping[str, Any]
    job_conda_env: str | None = None

    @property
    def payload_prefix(self) -> str:
        """Where ``definition()`` pickled the function and its arguments."""
        return f"{self.s3_base_uri.rstrip('/')}/{self.step_name}/{self.func_step_s3_dir}"

    @property
    def invocation_prefix(self) -> str:
        """Where this execution's filled-in payload goes (beside the SDK's ``results/`` and ``exception/``)."""
        return f"{self.s3_base_uri.rstrip('/')}/{self.execution_id}/{self.step_name}/invocation/"


def parse_container_arguments(arguments: Any) -> Invocation:
    """Read ``--flag value`` pairs; ``--property_references`` takes the key/value pairs after it, to the end."""
    if not isinstance(arguments, list):
        raise _client_error("the step's AlgorithmSpecification.ContainerArguments is not a list; it is not a "
                            "@step function step's definition.")
    flags: dict[str, Any] = {}
    references: dict[str, Any] = {}
    i = 0
    while i < len(arguments):
        token = str(arguments[i])
        if token == "--property_references":
            rest = arguments[i + 1:]
            if len(rest) % 2:
                raise _client_error(f"--property_references needs name/value pairs; it has {len(rest)} items.")
            references = {str(rest[j]): rest[j + 1] for j in range(0, len(rest), 2)}
            break
        if token.startswith("--") and i + 1 < len(arguments):
            flags[token[2:]] = arguments[i + 1]
            i += 2
        else:
            i += 1
    missing = [f"--{f}" for f in _REQUIRED_FLAGS if not flags.get(f)]
    if missing:
        raise _client_error(f"the step's ContainerArguments lack {', '.join(missing)}, which a @step function step's "
                            "definition always has; rebuild the definition with Pipeline.definition().")
    return Invocation(s3_base_uri=str(flags["s3_base_uri"]), step_name=str(flags["pipeline_step_name"]),
                      execution_id=str(flags["pipeline_execution_id"]),
                      func_step_s3_dir=str(flags["func_step_s3_dir"]), property_references=references,
                      job_conda_env=str(flags["job_conda_env"]) if flags.get("job_conda_env") else None)


def _client_error(message: str) -> StepFailed:
    return StepFailed(f"ClientError: {message}", failure_type=None)


def run_function_step(ctx: StepContext, request: dict[str, Any]) -> StepOutcome:
    """Run one attempt of a function step (``request`` already resolved) and store its result."""
    from sluice.runtime.training import start_training_job

    algorithm = request.get("AlgorithmSpecification") or {}
    invocation = parse_container_arguments(algorithm.get("ContainerArguments"))
    if invocation.job_conda_env:
        raise _client_error(f"--job_conda_env {invocation.job_conda_env!r} names a conda environment inside the "
                            "job's image; sluice runs no images or conda. Remove job_conda_env from the step.")
    store = ctx.session.store
    output_path = str((request.get("OutputDataConfig") or {}).get("S3OutputPath") or "").rstrip("/")
    if not output_path.startswith("s3://"):
        raise _client_error(f"OutputDataConfig.S3OutputPath {output_path!r} is not an s3:// URI.")
    _upload_bootstrap(store, request)
    _prepare_invocation(store, invocation)
    channels = [c for c in request.get("InputDataConfig") or [] if c.get("ChannelName") != INVOCATION_CHANNEL_NAME]
    channels.append({"ChannelName": INVOCATION_CHANNEL_NAME, "DataSource": {"S3DataSource": {
        "S3Uri": invocation.invocation_prefix, "S3DataType": "S3Prefix",
        "S3DataDistributionType": "FullyReplicated"}}})
    request["InputDataConfig"] = channels
    outcome = run_job(ctx, request, _KIND, start_training_job)
    _publish_results(store, output_path, str(request[f"{_KIND}Name"]), invocation.step_name)
    return outcome


def _upload_bootstrap(store: Any, request: Mapping[str, Any]) -> None:
    """sluice's job driver and invoker, at the bootstrap channel's prefix (written only when they differ)."""
    channel = next((c for c in request.get("InputDataConfig") or []
                    if c.get("ChannelName") == RUNTIME_SCRIPTS_CHANNEL_NAME), None)
    uri = ((channel or {}).get("DataSource") or {}).get("S3DataSource", {}).get("S3Uri")
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise _client_error(f"the step has no {RUNTIME_SCRIPTS_CHANNEL_NAME} channel with an s3:// S3Uri; it is not "
                            "a @step function step's definition.")
    prefix = S3Uri.parse(uri)
    if not store.bucket_exists(prefix.bucket):
        store.create_bucket(prefix.bucket)
    for name, body in bootstrap_files().items():
        key = f"{prefix.key.rstrip('/')}/{name}" if prefix.key else name
        try:
            if store.get_bytes(prefix.bucket, key) == body:
                continue
        except StorageError:
            pass
        store.put(prefix.bucket, key, body)


def _prepare_invocation(store: Any, invocation: Invocation) -> None:
    """Store the function and its arguments, placeholders filled, where the invocation channel reads them."""
    source = S3Uri.parse(invocation.payload_prefix)
    target = S3Uri.parse(invocation.invocation_prefix)
    try:
        function = store.get_bytes(source.bucket, f"{source.key}/function/payload.pkl")
        stored_arguments = store.get_bytes(source.bucket, f"{source.key}/arguments/payload.pkl")
    except StorageError as exc:
        raise _client_error(f"the pickled function of step {invocation.step_name!r} is missing from "
                            f"{invocation.payload_prefix}/ ({exc}); Pipeline.definition() stores it there, so "
                            "upsert the pipeline again from Python.") from None
    try:
        args, kwargs = pickle.loads(stored_arguments)
    except Exception as exc:
        raise _client_error(f"the arguments of step {invocation.step_name!r} cannot be loaded here ({exc!r}); the "
                            "modules their values come from must be importable in the process running the "
                            "pipeline.") from None
    filler = _Filler(store, invocation)
    filled = (filler.fill(args), filler.fill(kwargs))
    try:
        body = _dumps(filled, local_modules())
    except Exception as exc:
        raise _client_error(f"the arguments of step {invocation.step_name!r} cannot be pickled once filled in "
                            f"({exc!r}).") from None
    store.put(target.bucket, f"{target.key}{FUNCTION_FILE}", function)
    store.put(target.bucket, f"{target.key}{ARGUMENTS_FILE}", body)


class _Filler:
    """Replaces the placeholders in a step's arguments with their values for this execution."""

    def __init__(self, store: Any, invocation: Invocation) -> None:
        self.store = store
        self.invocation = invocation
        self._results: dict[str, Any] = {}

    def fill(self, value: Any) -> Any:
        if isinstance(value, PipelineVariableRef):
            return self._variable(value)
        if isinstance(value, DelayedReturnRef):
            return self._delayed_return(value)
        if type(value) is dict:
            return {k: self.fill(v) for k, v in value.items()}
        if type(value) in (list, tuple):
            return type(value)(self.fill(v) for v in value)
        return value

    def _variable(self, ref: PipelineVariableRef) -> Any:
        target = ref.expr.get("Get") if isinstance(ref.expr, Mapping) else None
        refs = self.invocation.property_references
        if not isinstance(target, str) or target not in refs:
            raise _client_error(f"step {self.invocation.step_name!r} passes {ref.expr} to its function, but its "
                                "--property_references give no value for it; rebuild the definition with "
                                "Pipeline.definition().")
        return _typed(refs[target], ref.kind, target, self.invocation.step_name)

    def _delayed_return(self, ref: DelayedReturnRef) -> Any:
        key = f"Steps.{ref.step_name}.OutputDataConfig.S3OutputPath"
        uri = self.invocation.property_references.get(key)
        if not isinstance(uri, str) or not uri.startswith("s3://"):
            raise _client_error(f"step {self.invocation.step_name!r} reads the result of step {ref.step_name!r}, but "
                                f"its --property_references give no {key}.")
        if uri not in self._results:
            location = S3Uri.parse(f"{uri.rstrip('/')}/{RESULT_FILE}")
            try:
                data = self.store.get_bytes(location.bucket, location.key)
            except StorageError:
                raise _client_error(f"step {ref.step_name!r} has no stored result at {location}; it must succeed "
                                    f"before step {self.invocation.step_name!r} runs.") from None
            try:
                self._results[uri] = pickle.loads(data)
            except Exception as exc:
                raise _client_error(f"the result of step {ref.step_name!r} ({location}) cannot be loaded here "
                                    f"({exc!r}).") from None
        value = self._results[uri]
        for _, item in ref.reference_path:
            try:
                value = value[item]
            except (KeyError, IndexError, TypeError) as exc:
                raise _client_error(f"step {self.invocation.step_name!r} reads [{item!r}] of step "
                                    f"{ref.step_name!r}'s result, which has none ({type(exc).__name__}: {exc}).") \
                    from None
        return value


def _typed(value: Any, kind: str | None, target: str, step: str) -> Any:
    """A referenced value, which arrives as a string, as its parameter's type (the SDK's resolvers)."""
    try:
        if kind == "Integer":
            return value if isinstance(value, int) and not isinstance(value, bool) else int(str(value))
        if kind == "Float":
            return float(value)
        if kind == "Boolean":
            return value if isinstance(value, bool) else str(value).lower() == "true"
    except (TypeError, ValueError):
        raise _client_error(f"step {step!r}: {target} is {value!r}, not a valid {kind}.") from None
    return value


def _publish_results(store: Any, output_path: str, job: str, step: str) -> None:
    """Copy ``results.json`` and ``payload.pkl`` from the job's ``output.tar.gz`` to ``<S3OutputPath>/``."""
    archive = S3Uri.parse(f"{output_path}/{job}/output/output.tar.gz")
    wanted = {JSON_RESULTS_FILE: b"", RESULT_FILE: b""}
    try:
        data = store.get_bytes(archive.bucket, archive.key)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for name in wanted:
                member = tar.extractfile(name)
                if member is None:
                    raise KeyError(name)
                wanted[name] = member.read()
    except (StorageError, KeyError, tarfile.TarError) as exc:
        raise _client_error(f"the function of step {step!r} left no result: job {job} completed without writing "
                            f"{JSON_RESULTS_FILE} and {RESULT_FILE} ({exc}).") from None
    out = S3Uri.parse(output_path)
    for name, body in wanted.items():
        store.put(out.bucket, f"{out.key}/{name}" if out.key else name, body)


class _Execution(Protocol):
    """What :func:`load_function_result` needs of a pipeline execution (``sluice.workflow.execution``)."""

    config: Any
    execution_id: str

    @property
    def request(self) -> dict[str, Any]: ...

    def step_records(self) -> dict[str, dict[str, Any]]: ...

    def join(self, timeout: float | None) -> bool: ...


def load_function_result(execution: _Execution, step_name: str) -> Any:
    """What ``execution.result(step_name)`` returns: the function step's return value, unpickled.

    As the SDK does, it first waits for the execution to end. Refused with a PipelineError naming the cause
    when the pipeline has no such step, the step is not a function step, it did not succeed, or it stored
    no result.
    """
    from sluice.storage import store_for

    definition = parse_definition(execution.request["PipelineDefinition"])
    spec = definition.graph.get(step_name)
    if spec is None:
        raise PipelineError(f"Invalid step name {step_name!r}: the pipeline's steps are "
                            f"{', '.join(definition.graph) or '(none)'}.")
    if not is_function_step(spec):
        raise PipelineError(f"step {step_name!r} is a {spec.type} step, not a @step function step; result() can "
                            "only be used on function steps. Read other steps' outputs with list_steps().")
    execution.join(None)
    record = execution.step_records().get(step_name)
    if record is None:
        raise PipelineError(f"step {step_name!r} did not run in execution {execution.execution_id} (a step before it "
                            "failed, or a condition skipped it), so it has no result.")
    status = record.get("StepStatus")
    if status != "Succeeded":
        reason = record.get("FailureReason")
        raise PipelineError(f"Pipeline step {step_name!r} is in {status} status, so it has no result"
                            + (f": {reason}" if reason else "."))
    output_path = ((record.get("Properties") or {}).get("OutputDataConfig") or {}).get("S3OutputPath")
    if not isinstance(output_path, str) or not output_path.startswith("s3://"):
        raise PipelineError(f"step {step_name!r} has no recorded OutputDataConfig.S3OutputPath, so its result "
                            "cannot be found.")
    location = S3Uri.parse(f"{output_path.rstrip('/')}/{RESULT_FILE}")
    try:
        data = store_for(execution.config).get_bytes(location.bucket, location.key)
    except StorageError as exc:
        raise PipelineError(f"step {step_name!r} has no result at {location} ({exc}).") from None
    return pickle.loads(data)
