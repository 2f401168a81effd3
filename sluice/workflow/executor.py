"""A first pipeline executor: one scheduler loop over the parsed graph, steps on threads.

Scope (docs/pipelines.md, "What is next"): parameters, run-time expression resolution, Processing, Training,
Condition and Fail steps, and ``MaxParallelExecutionSteps``. Every other step type, caching, retries and
selective execution are refused by :func:`check_supported` before anything runs, so a pipeline never half
runs because a later step turns out to be unsupported.

Semantics follow the service (contract 5.10, 5.11, 5.14): a step starts as soon as its dependencies have
succeeded; the untaken branch of a condition and everything downstream of it never runs; when a step fails
(a FailStep included), running steps finish, no new step starts, and the execution ends ``Failed``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from sluice.config import ACCOUNT_ID
from sluice.errors import PipelineError
from sluice.workflow.conditions import ORDERING
from sluice.workflow.expressions import GET, JOIN, JSON_GET, Attr, parse_path, parse_reference, resolve_path
from sluice.workflow.graph import PipelineDefinition, StepSpec, StepType, dependencies, downstream
from sluice.workflow.validation import validate_overrides

__all__ = ["DEFAULT_MAX_PARALLEL", "PipelineExecution", "check_supported", "pipeline_arn"]

DEFAULT_MAX_PARALLEL = 50
SUPPORTED = (StepType.PROCESSING, StepType.TRAINING, StepType.CONDITION, StepType.FAIL)
_JOB_KINDS = {StepType.PROCESSING: "ProcessingJob", StepType.TRAINING: "TrainingJob"}


def pipeline_arn(name: str, region: str) -> str:
    """The ARN a pipeline of this name has (lower-cased, as the service spells it)."""
    return f"arn:aws:sagemaker:{region}:{ACCOUNT_ID}:pipeline/{name.lower()}"


def check_supported(definition: PipelineDefinition) -> None:
    """Refuse, before anything runs, every step this first executor cannot run faithfully (no stubs)."""
    problems = []
    for name, spec in definition.graph.items():
        if spec.type not in SUPPORTED:
            problems.append(f"step {name!r} is a {spec.type} step: running {spec.type} steps is not available "
                            "yet (this executor runs Processing, Training, Condition and Fail steps)")
        if spec.type is StepType.TRAINING and _is_function_step(spec):
            problems.append(f"step {name!r} is a @step function step: running function steps is not available "
                            "yet")
        if spec.cache_config is not None and spec.cache_config.enabled:
            problems.append(f"step {name!r} enables CacheConfig: step caching is not available yet")
        if spec.retry_policies:
            problems.append(f"step {name!r} has RetryPolicies: retries are not available yet")
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise PipelineError(f"The pipeline cannot be run yet; nothing was started:\n{lines}")


def _is_function_step(spec: StepSpec) -> bool:
    """A ``@step`` compiles to a Training step whose channels include the remote-function bootstrap scripts."""
    from sluice.workflow.function_step import RUNTIME_SCRIPTS_CHANNEL_NAME

    channels = spec.arguments.get("InputDataConfig")
    return isinstance(channels, list) and any(
        isinstance(c, Mapping) and c.get("ChannelName") == RUNTIME_SCRIPTS_CHANNEL_NAME for c in channels)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _job_name(execution_id: str, step: str) -> str:
    """A unique, valid job name (``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``) that still says which step it ran."""
    clean = re.sub(r"[^A-Za-z0-9]+", "-", step).strip("-")[:30] or "step"
    return f"pipelines-{execution_id}-{clean}-{secrets.token_hex(3)}"[:63].rstrip("-")


def _text(value: Any) -> str:
    """A value as it appears in a string on the wire: booleans as JSON spells them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _StepFailed(Exception):
    """A step ended without succeeding; ``status`` is the step status to record."""

    def __init__(self, reason: str, status: str = "Failed") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class PipelineExecution:
    """One run of a pipeline, driven on a background thread; shaped like the SDK's ``_PipelineExecution``."""

    def __init__(self, session: Any, pipeline_name: str, definition: PipelineDefinition,
                 parameters: Mapping[str, Any] | None = None, max_parallel: int | None = None,
                 display_name: str | None = None) -> None:
        check_supported(definition)
        self.values = validate_overrides(definition.parameters, parameters)
        self.session = session
        self.definition = definition
        self.pipeline_name = pipeline_name
        region = session.boto_region_name
        self.pipeline_arn = pipeline_arn(pipeline_name, region)
        self.execution_id = secrets.token_hex(6)
        self.arn = f"{self.pipeline_arn}/execution/{self.execution_id}"
        self.max_parallel = max_parallel or DEFAULT_MAX_PARALLEL
        self.display_name = display_name or f"execution-{self.execution_id}"
        self._start = _now()
        self._lock = threading.Lock()
        self._status = "Executing"
        self._failure: str | None = None
        self._end: dt.datetime | None = None
        self._steps: dict[str, dict[str, Any]] = {}
        self._records: dict[str, dict[str, Any]] = {}
        self._thread = threading.Thread(target=self._run, name=f"pipeline-{self.execution_id}", daemon=True)

    def start(self) -> PipelineExecution:
        self._thread.start()
        return self

    # ---- the SDK surface ------------------------------------------------------------------------------
    def wait(self, delay: int = 30, max_attempts: int = 60, timeout: float | None = None) -> None:
        """Block until the execution ends; like the SDK waiter, raise if it did not succeed."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise PipelineError(f"pipeline execution {self.arn} is still Executing after {timeout}s.")
        if self._status != "Succeeded":
            raise PipelineError(f"Waiter PipelineExecutionComplete failed: pipeline execution {self.arn} ended "
                                f"{self._status}: {self._failure}")

    def describe(self) -> dict[str, Any]:
        """A ``DescribePipelineExecution``-shaped record."""
        with self._lock:
            out: dict[str, Any] = {
                "PipelineArn": self.pipeline_arn, "PipelineExecutionArn": self.arn,
                "PipelineExecutionDisplayName": self.display_name, "PipelineExecutionStatus": self._status,
                "CreationTime": self._start, "LastModifiedTime": self._end or _now(),
                "ParallelismConfiguration": {"MaxParallelExecutionSteps": self.max_parallel},
            }
            if self._failure is not None:
                out["FailureReason"] = self._failure
        return out

    def list_steps(self) -> list[dict[str, Any]]:
        """``ListPipelineExecutionSteps``: the steps that started, most recently started first."""
        with self._lock:
            steps = [dict(s) for s in self._steps.values()]
        return sorted(steps, key=lambda s: s["StartTime"], reverse=True)

    # ---- scheduling -----------------------------------------------------------------------------------
    def _run(self) -> None:
        graph = self.definition.graph
        deps = {name: {d for d in wanted if d in graph} for name, wanted in dependencies(graph).items()}
        done: set[str] = set()
        skipped: set[str] = set()
        failed: list[str] = []
        running: dict[Future[Any], str] = {}
        try:
            with ThreadPoolExecutor(max_workers=self.max_parallel) as pool:
                while True:
                    if not failed:
                        for name in graph:
                            if name in done or name in skipped or name in running.values():
                                continue
                            if deps[name] & skipped:
                                skipped.add(name)
                                continue
                            if deps[name] <= done and len(running) < self.max_parallel:
                                self._mark(name, "Starting")
                                running[pool.submit(self._run_step, graph[name])] = name
                    if not running:
                        break
                    finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                    for future in finished:
                        name = running.pop(future)
                        try:
                            untaken = future.result()
                        except _StepFailed as exc:
                            self._mark(name, exc.status, failure=exc.reason)
                            failed.append(name)
                            continue
                        except Exception as exc:  # a bug or a refused request: the step fails, not the run loop
                            reason = f"{type(exc).__name__}: {exc}"
                            self._mark(name, "Failed", failure=reason)
                            failed.append(name)
                            continue
                        self._mark(name, "Succeeded")
                        done.add(name)
                        if untaken:
                            skipped.update(untaken)
                            skipped.update(downstream(graph, untaken))
        except Exception as exc:  # the scheduler itself broke: end Failed rather than hang Executing
            self._finish("Failed", f"InternalError: {type(exc).__name__}: {exc}")
            return
        if failed:
            first = failed[0]
            reason = self._steps[first].get("FailureReason", "")
            if graph[first].type is StepType.FAIL:
                self._finish("Failed", reason)
            else:
                self._finish("Failed", f"Step '{first}' failed: {reason}")
        else:
            self._finish("Succeeded", None)

    def _finish(self, status: str, failure: str | None) -> None:
        with self._lock:
            self._status = status
            self._failure = failure
            self._end = _now()

    def _mark(self, name: str, status: str, *, failure: str | None = None,
              metadata: dict[str, Any] | None = None) -> None:
        with self._lock:
            entry = self._steps.setdefault(name, {
                "StepName": name, "StartTime": _now(), "StepStatus": status, "AttemptCount": 1, "Metadata": {}})
            spec = self.definition.graph[name]
            if spec.display_name:
                entry["StepDisplayName"] = spec.display_name
            if spec.description:
                entry["StepDescription"] = spec.description
            entry["StepStatus"] = status
            if metadata:
                entry["Metadata"].update(metadata)
            if failure is not None:
                entry["FailureReason"] = failure
            if status in ("Succeeded", "Failed", "Stopped"):
                entry["EndTime"] = _now()

    # ---- running one step -----------------------------------------------------------------------------
    def _run_step(self, spec: StepSpec) -> list[str]:
        """Run ``spec``; returns the names of the condition branch not taken (empty for other steps)."""
        self._mark(spec.name, "Executing")
        if spec.type is StepType.CONDITION:
            outcome = all(self._condition(c) for c in spec.arguments.get("Conditions", []))
            self._mark(spec.name, "Executing", metadata={"Condition": {"Outcome": outcome}})
            return list(spec.else_steps if outcome else spec.if_steps)
        if spec.type is StepType.FAIL:
            message = self._resolve(spec.arguments.get("ErrorMessage", ""), {})
            message = _text(message) if message is not None else ""
            self._mark(spec.name, "Executing", metadata={"Fail": {"ErrorMessage": message}})
            raise _StepFailed(message)
        self._run_job(spec)
        return []

    def _run_job(self, spec: StepSpec) -> None:
        from sluice.metadata import open_metadata
        from sluice.runtime.processing import start_processing_job
        from sluice.runtime.training import start_training_job

        kind = _JOB_KINDS[spec.type]
        name = _job_name(self.execution_id, spec.name)
        variables = {"ProcessingJobName" if spec.type is StepType.PROCESSING else "TrainingJobName": name}
        request = self._resolve(spec.arguments, variables)
        _stringify(request, spec.type)
        request[f"{kind}Name"] = name
        request.setdefault("RoleArn", f"arn:aws:iam::{ACCOUNT_ID}:role/SluiceLocalExecutionRole")
        starter: Callable[..., Any] = (start_processing_job if spec.type is StepType.PROCESSING
                                       else start_training_job)
        config = self.session.config
        running = starter(request, config)
        row = open_metadata(config.database_url).get_job(kind, name)
        arn = (row.record.get(f"{kind}Arn") if row else None) or name
        self._mark(spec.name, "Executing", metadata={kind: {"Arn": arn}})
        running.wait()
        row = open_metadata(config.database_url).get_job(kind, name)
        if row is None:
            raise _StepFailed(f"{kind} {name} has no record")
        record = dict(row.record)
        with self._lock:
            self._records[spec.name] = record
        status = record.get(f"{kind}Status")
        if status != "Completed":
            reason = record.get("FailureReason") or "(no reason recorded)"
            raise _StepFailed(f"{kind} {name} ended {status}: {reason}",
                              "Stopped" if status == "Stopped" else "Failed")

    # ---- expressions ----------------------------------------------------------------------------------
    def _resolve(self, value: Any, variables: Mapping[str, str]) -> Any:
        """``value`` with every Get, Std:Join and Std:JsonGet replaced by what it evaluates to now."""
        if isinstance(value, Mapping):
            if len(value) == 1:
                key, inner = next(iter(value.items()))
                if key == GET and isinstance(inner, str):
                    return self._get(inner, variables)
                if key == JOIN and isinstance(inner, Mapping):
                    values = [self._resolve(v, variables) for v in inner.get("Values", [])]
                    return _text(inner.get("On", "")).join(_text(v) for v in values)
                if key == JSON_GET and isinstance(inner, Mapping):
                    return self._json_get(inner, variables)
            return {k: self._resolve(v, variables) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v, variables) for v in value]
        return value

    def _get(self, target: str, variables: Mapping[str, str]) -> Any:
        ref = parse_reference(target)
        if ref.namespace == "Parameters":
            return self.values[ref.name]
        if ref.namespace == "Execution":
            return self._execution_variable(ref.name, variables)
        if ref.namespace == "PipelineExperimentConfig":
            config = self.definition.experiment_config or {}
            default = self.pipeline_name if ref.name == "ExperimentName" else self.execution_id
            return self._resolve(config.get(ref.name, default), variables)
        with self._lock:
            record = self._records.get(ref.name)
        if record is None:
            raise PipelineError(f"{target}: step {ref.name!r} has no Describe record (it has not run)")
        try:
            return resolve_path(record, ref.path)
        except KeyError as exc:
            raise PipelineError(f"{target}: {exc.args[0]}") from None

    def _execution_variable(self, name: str, variables: Mapping[str, str]) -> Any:
        fixed = {"StartDateTime": self._start.isoformat(), "CurrentDateTime": _now().isoformat(),
                 "PipelineName": self.pipeline_name, "PipelineArn": self.pipeline_arn,
                 "PipelineExecutionId": self.execution_id, "PipelineExecutionArn": self.arn, **variables}
        if name not in fixed:
            raise PipelineError(f"Execution.{name} has no value in this step")
        return fixed[name]

    def _json_get(self, spec: Mapping[str, Any], variables: Mapping[str, str]) -> Any:
        """Read a JSON object from the store (a property file or an S3 URI) and follow its Path."""
        if "PropertyFile" in spec:
            target = spec["PropertyFile"].get(GET, "") if isinstance(spec["PropertyFile"], Mapping) else ""
            ref = parse_reference(target)
            step = self.definition.graph.get(ref.name)
            segment = ref.path[1] if len(ref.path) == 2 else None
            file_name = segment.name if isinstance(segment, Attr) else None
            declared = [p for p in (step.property_files if step else ()) if p.name == file_name]
            if not declared:
                raise PipelineError(f"JsonGet: {target} is not a property file the step declares")
            base = self._get(f"Steps.{ref.name}.ProcessingOutputConfig.Outputs['{declared[0].output_name}']"
                             ".S3Output.S3Uri", variables)
            uri = f"{str(base).rstrip('/')}/{declared[0].file_path.lstrip('/')}"
        else:
            uri = _text(self._resolve(spec.get("S3Uri"), variables))
        if not uri.startswith("s3://"):
            raise PipelineError(f"JsonGet: {uri!r} is not an s3:// URI")
        bucket, _, key = uri[5:].partition("/")
        try:
            data = json.loads(self.session.store.get_bytes(bucket, key))
        except Exception as exc:
            raise PipelineError(f"JsonGet: cannot read JSON from {uri}: {exc}") from None
        try:
            return resolve_path(data, parse_path(str(spec.get("Path", ""))))
        except KeyError as exc:
            raise PipelineError(f"JsonGet: {uri} has nothing at {spec.get('Path')!r}: {exc.args[0]}") from None

    def _condition(self, cond: Mapping[str, Any]) -> bool:
        """Evaluate one condition (contract 5.5); a top-level list of them is an AND."""
        kind = cond.get("Type")
        if kind == "Not":
            return not self._condition(cond["Condition"])
        if kind == "Or":
            return any(self._condition(c) for c in cond.get("Conditions", []))
        if kind == "In":
            query = self._resolve(cond.get("QueryValue"), {})
            return any(_equal(query, self._resolve(v, {})) for v in cond.get("Values", []))
        left = self._resolve(cond.get("LeftValue"), {})
        right = self._resolve(cond.get("RightValue"), {})
        if kind == "Equals":
            return _equal(left, right)
        if kind in ORDERING:
            ops: dict[str, Callable[[Any, Any], bool]] = {
                "GreaterThan": lambda a, b: a > b, "GreaterThanOrEqualTo": lambda a, b: a >= b,
                "LessThan": lambda a, b: a < b, "LessThanOrEqualTo": lambda a, b: a <= b}
            try:
                return ops[str(kind)](left, right)
            except TypeError:
                raise PipelineError(f"{kind} cannot compare {left!r} with {right!r}") from None
        raise PipelineError(f"condition type {kind!r} is not one sluice knows")


def _equal(a: Any, b: Any) -> bool:
    """Equals as the service compares: an integer and a float are the same kind, a bool is not a number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _stringify(request: dict[str, Any], step_type: StepType) -> None:
    """Values the job APIs take as strings (arguments, environment, hyperparameters) sent as strings."""
    app = request.get("AppSpecification")
    if isinstance(app, dict) and isinstance(app.get("ContainerArguments"), list):
        app["ContainerArguments"] = [_text(v) for v in app["ContainerArguments"]]
    for key in ("Environment", "HyperParameters"):
        if isinstance(request.get(key), dict):
            request[key] = {k: _text(v) for k, v in request[key].items()}
