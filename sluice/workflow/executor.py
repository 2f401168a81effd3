"""The pipeline executor: one scheduler over the parsed graph, each step's attempts on a worker thread.

Semantics follow the service (contract 5.8-5.14):

- a step starts as soon as its dependencies have succeeded, up to ``MaxParallelExecutionSteps`` at once;
- the untaken branch of a condition and everything downstream of it never runs;
- when a step fails (a FailStep included), running steps finish, no new step starts, and the execution
  ends ``Failed`` with the reason;
- ``RetryPolicies`` retry a failed attempt whose cause is one of the policy's exception types, after
  ``IntervalSeconds * BackoffRate ** (retry - 1)`` seconds, up to ``MaxAttempts`` retries (Step Functions'
  meaning: 0 never retries) or until ``ExpireAfterMin`` minutes after the first attempt; a failure of the
  user's own code is never retried;
- ``CacheConfig`` reuses the newest successful run of the same step of the same pipeline whose cache key
  (:mod:`sluice.workflow.cache`: the service's per-type attributes plus the bytes of inputs and code) is
  equal, within ``ExpireAfter``;
- ``SelectiveExecutionConfig`` runs only the selected steps and takes the other steps' outputs from a
  source execution;
- a stop request (from any process) stops running jobs, starts nothing new, and ends ``Stopped``.

Every step and the execution are recorded in the metadata store as they change
(:mod:`sluice.workflow.execution` reads them). Everything that can be checked before a step runs is
checked in :class:`ExecutionDriver`'s constructor, so a refused start runs nothing and records nothing.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from sluice.errors import PipelineError, SluiceError
from sluice.workflow.conditions import ORDERING
from sluice.workflow.execution import (
    EXECUTION_KIND,
    TERMINAL,
    LocalPipelineExecution,
    PipelineExecution,
    execution_arn,
    open_execution,
    parse_execution_arn,
    pipeline_arn,
)
from sluice.workflow.expressions import GET, JOIN, JSON_GET, Attr, parse_path, parse_reference, resolve_path
from sluice.workflow.graph import (
    PipelineDefinition,
    RetrySpec,
    StepSpec,
    StepType,
    dependencies,
    downstream,
    upstream,
)
from sluice.workflow.runners.base import (
    StepContext,
    StepFailed,
    StepOutcome,
    job_name,
    stringify_map,
    wire_text,
)
from sluice.workflow.validation import validate_overrides, validate_selection

__all__ = [
    "DEFAULT_MAX_PARALLEL",
    "ExecutionDriver",
    "check_supported",
    "parse_execution_arn",
    "pipeline_arn",
    "start_execution",
]

DEFAULT_MAX_PARALLEL = 50
_SCHEDULER_TICK = 0.25
_JOB_NAME_VARIABLES = {
    StepType.PROCESSING: "ProcessingJobName", StepType.TRAINING: "TrainingJobName",
    StepType.TRANSFORM: "TransformJobName", StepType.TUNING: "TuningJobName",
}


def _is_function_step(spec: StepSpec) -> bool:
    """A ``@step`` compiles to a Training step whose channels include the remote-function bootstrap scripts."""
    from sluice.workflow.function_step import RUNTIME_SCRIPTS_CHANNEL_NAME

    channels = spec.arguments.get("InputDataConfig") if isinstance(spec.arguments, Mapping) else None
    return isinstance(channels, list) and any(
        isinstance(c, Mapping) and c.get("ChannelName") == RUNTIME_SCRIPTS_CHANNEL_NAME for c in channels)


def _runner_for(spec: StepSpec) -> Callable[[StepContext, dict[str, Any]], StepOutcome] | None:
    from sluice.workflow.runners import RUNNERS

    if spec.type is StepType.TRAINING and _is_function_step(spec):
        try:
            from sluice.workflow.runners.function import run_function_step
        except ModuleNotFoundError:
            return None
        return run_function_step
    return RUNNERS.get(spec.type)


def _images(spec: StepSpec) -> list[str]:
    """The image URIs a step names as plain strings (an expression is resolved, and checked, when it runs)."""
    args = spec.arguments if isinstance(spec.arguments, Mapping) else {}
    found: list[Any] = []
    if spec.type is StepType.PROCESSING:
        found.append((args.get("AppSpecification") or {}).get("ImageUri"))
    elif spec.type is StepType.TRAINING:
        found.append((args.get("AlgorithmSpecification") or {}).get("TrainingImage"))
    elif spec.type is StepType.TUNING:
        definitions = [args.get("TrainingJobDefinition") or {}, *(args.get("TrainingJobDefinitions") or [])]
        found += [(d.get("AlgorithmSpecification") or {}).get("TrainingImage") for d in definitions
                  if isinstance(d, Mapping)]
    elif spec.type is StepType.CREATE_MODEL:
        containers = [args.get("PrimaryContainer") or {}, *(args.get("Containers") or [])]
        found += [c.get("Image") for c in containers if isinstance(c, Mapping)]
    return [image for image in found if isinstance(image, str) and image]


def check_supported(definition: PipelineDefinition, config: Any = None) -> None:
    """Refuse, before anything runs, every step sluice cannot run faithfully, malformed cache settings, and
    images that map to no environment (or to one missing packages), so a pipeline never fails half-way for
    a reason that was knowable at start."""
    from sluice.runtime.environments import resolve_image
    from sluice.workflow.cache import check_cache_config

    problems = []
    checked: dict[str, str | None] = {}
    for name, spec in definition.graph.items():
        if spec.type not in (StepType.CONDITION, StepType.FAIL) and _runner_for(spec) is None:
            problems.append(f"step {name!r} is a {spec.type} step, which sluice cannot run (it runs Processing, "
                            "Training, Tuning, Transform, Model, RegisterModel, Lambda, Condition, Fail and @step "
                            "function steps)")
        problems.extend(f"step {name!r}: {p}" for p in check_cache_config(spec))
        for image in _images(spec) if config is not None else []:
            if image not in checked:
                try:
                    resolve_image(image, config).check()
                    checked[image] = None
                except SluiceError as exc:
                    checked[image] = str(exc)
            if checked[image]:
                problems.append(f"step {name!r}: {checked[image]}")
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise PipelineError(f"The pipeline cannot be run; nothing was started:\n{lines}")


class ExecutionDriver:
    """Checks, records and drives one execution of a pipeline; :meth:`start` returns its handle."""

    def __init__(self, session: Any, pipeline_name: str, definition: PipelineDefinition, definition_text: str,
                 parameters: Mapping[str, Any] | None = None, max_parallel: int | None = None,
                 display_name: str | None = None, description: str | None = None,
                 selective: Mapping[str, Any] | None = None) -> None:
        check_supported(definition, session.config)
        self.values = validate_overrides(definition.parameters, parameters)
        self.session = session
        self.config = session.config
        self.store = session.store
        self.definition = definition
        self.graph = definition.graph
        self.pipeline_name = pipeline_name
        region = session.boto_region_name
        self.pipeline_arn = pipeline_arn(pipeline_name, region)
        self.execution_id = secrets.token_hex(6)
        self.arn = execution_arn(pipeline_name, region, self.execution_id)
        self.max_parallel = max_parallel or DEFAULT_MAX_PARALLEL
        if isinstance(self.max_parallel, bool) or not isinstance(self.max_parallel, int) or self.max_parallel < 1:
            raise PipelineError(f"MaxParallelExecutionSteps must be a positive integer, not {max_parallel!r}.")
        self.display_name = display_name or f"execution-{self.execution_id}"
        self.selected: set[str] | None = None
        self.reused: set[str] = set()
        self.source_records: dict[str, dict[str, Any]] = {}
        if selective is not None:
            self._prepare_selection(selective)
        self._start = time.time()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._steps: dict[str, dict[str, Any]] = {}
        self._properties: dict[str, Mapping[str, Any]] = {}
        self._metadata = session.metadata
        self._thread = threading.Thread(target=self._run, name=f"pipeline-{self.execution_id}", daemon=True)
        self._record_start(definition_text, description, selective)

    # ---- start ----------------------------------------------------------------------------------------
    def _prepare_selection(self, selective: Mapping[str, Any]) -> None:
        selected = [s.get("StepName") for s in selective.get("SelectedSteps", []) if isinstance(s, Mapping)]
        validate_selection(self.graph, selected)
        source_arn = selective.get("SourcePipelineExecutionArn")
        if not source_arn:
            from sluice.workflow.execution import list_executions

            ended = [e for e in list_executions(self.config, self.pipeline_name, limit=1000)
                     if e["PipelineExecutionStatus"] in TERMINAL]
            if not ended:
                raise PipelineError(f"selective execution: pipeline {self.pipeline_name!r} has no ended execution "
                                    "to take the unselected steps from; run the whole pipeline first.")
            source_arn = ended[0]["PipelineExecutionArn"]
        source = open_execution(self.config, str(source_arn))
        if source.pipeline_name != self.pipeline_name:
            raise PipelineError(f"selective execution: {source_arn} is an execution of pipeline "
                                f"{source.pipeline_name!r}, not {self.pipeline_name!r}.")
        status = source.describe()["PipelineExecutionStatus"]
        if status not in TERMINAL:
            raise PipelineError(f"selective execution: the source execution {source_arn} is still {status}; "
                                "it must have ended (Succeeded, Failed or Stopped).")
        records = source.step_records()
        deps = dependencies(self.graph)
        problems = []
        for name in selected:
            for dep in sorted(deps[name]):
                if dep in self.graph and dep not in selected:
                    rec = records.get(dep)
                    if rec is None or rec.get("StepStatus") != "Succeeded":
                        problems.append(f"selected step {name!r} needs step {dep!r}, which did not succeed in "
                                        f"{source_arn}; select {dep!r} too")
        if problems:
            lines = "\n".join(f"  - {p}" for p in problems)
            raise PipelineError(f"The step selection cannot run; nothing was started:\n{lines}")
        self.selected = set(selected)
        self.reused = upstream(self.graph, selected) - self.selected
        self.source_records = records
        self.source_arn = source.arn

    def _record_start(self, definition_text: str, description: str | None,
                      selective: Mapping[str, Any] | None) -> None:
        request = {
            "PipelineName": self.pipeline_name, "PipelineDefinition": definition_text,
            "PipelineParameters": [{"Name": k, "Value": wire_text(v)} for k, v in self.values.items()],
            "ParallelismConfiguration": {"MaxParallelExecutionSteps": self.max_parallel},
        }
        record: dict[str, Any] = {
            "PipelineArn": self.pipeline_arn, "PipelineExecutionArn": self.arn,
            "PipelineExecutionDisplayName": self.display_name, "PipelineExecutionStatus": "Executing",
            "CreationTime": self._start, "LastModifiedTime": self._start,
            "ParallelismConfiguration": {"MaxParallelExecutionSteps": self.max_parallel},
            "PipelineExperimentConfig": {"ExperimentName": self.pipeline_name, "TrialName": self.execution_id},
        }
        if description:
            record["PipelineExecutionDescription"] = description
        if selective is not None:
            config = {"SourcePipelineExecutionArn": self.source_arn,
                      "SelectedSteps": [{"StepName": s} for s in sorted(self.selected or ())]}
            request["SelectiveExecutionConfig"] = config
            record["SelectiveExecutionConfig"] = config
        self._record = record
        self._metadata.create_job(EXECUTION_KIND, self.execution_id, "Executing", request, record)

    def _say(self, line: str) -> None:
        """SDK local mode prints an execution's start, each step and its end; under a LocalPipelineSession so
        does sluice (the blog's walkthrough shows these lines), and nothing under any other session."""
        if getattr(self.session, "local_mode", False):
            print(line, flush=True)

    def start(self) -> PipelineExecution:
        """Start driving the execution on a background thread and return its handle.

        Under a ``LocalPipelineSession`` this returns only when the execution has ended, and the handle is a
        :class:`LocalPipelineExecution`, as SDK local mode's ``start()`` runs the pipeline in the call; code
        written for local mode (``execution = pipeline.start()`` then ``execution.list_steps()``) runs as is.
        """
        self._say(f"Starting execution for pipeline {self.pipeline_name}. Execution ID is {self.execution_id}")
        self._thread.start()
        if getattr(self.session, "local_mode", False):
            self._thread.join()
            return LocalPipelineExecution(self.config, self.execution_id, session=self.session,
                                          local_thread=self._thread)
        return PipelineExecution(self.config, self.execution_id, session=self.session, local_thread=self._thread)

    # ---- scheduling -----------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._schedule()
        except Exception as exc:  # the scheduler itself broke: end Failed rather than hang Executing
            self._finish("Failed", f"InternalError: {type(exc).__name__}: {exc}")

    def _schedule(self) -> None:
        graph = self.graph
        waiting_on = {name: {d for d in wanted if d in graph} for name, wanted in dependencies(graph).items()}
        dependents: dict[str, list[str]] = {name: [] for name in graph}
        for name, deps in waiting_on.items():
            for dep in deps:
                dependents[dep].append(name)
        ready: list[str] = [name for name in graph if not waiting_on[name]]
        finished: set[str] = set()
        skipped: set[str] = set()
        failed: list[str] = []
        running: dict[Future[StepOutcome | None], str] = {}

        def release(name: str) -> None:
            for child in dependents[name]:
                waiting_on[child].discard(name)
                if not waiting_on[child] and child not in skipped:
                    ready.append(child)

        def skip(names: set[str]) -> None:
            skipped.update(names)

        with ThreadPoolExecutor(max_workers=self.max_parallel, thread_name_prefix=f"step-{self.execution_id}") \
                as pool:
            next_stop_check = 0.0
            while True:
                if time.monotonic() >= next_stop_check:  # a store read: at most once a tick
                    next_stop_check = time.monotonic() + _SCHEDULER_TICK
                    if self._stop_requested():
                        self._stop.set()
                if not failed and not self._stop.is_set():
                    while ready and len(running) < self.max_parallel:
                        name = ready.pop(0)
                        if name in skipped or name in finished:
                            continue
                        if self.selected is not None and name not in self.selected:
                            reused = self._reuse_from_source(name) if name in self.reused else None
                            finished.add(name)
                            if reused is None:
                                skip({name} | downstream(graph, [name]))
                                continue
                            if reused:
                                skip(set(reused) | downstream(graph, reused))
                            release(name)
                            continue
                        self._mark(name, "Starting", write=False)
                        self._say(f"Starting pipeline step: '{name}'")
                        running[pool.submit(self._run_and_record, graph[name])] = name
                if not running:
                    break
                done, _ = wait(list(running), timeout=_SCHEDULER_TICK, return_when=FIRST_COMPLETED)
                for future in done:
                    name = running.pop(future)
                    finished.add(name)
                    try:
                        outcome = future.result()
                    except StepFailed as exc:  # recorded by the worker
                        if exc.status != "Stopped":
                            failed.append(name)
                        continue
                    assert outcome is not None
                    if outcome.untaken:
                        skip(set(outcome.untaken) | downstream(graph, outcome.untaken))
                    release(name)
        if failed:
            first = failed[0]
            reason = self._steps[first].get("FailureReason", "")
            if graph[first].type is StepType.FAIL:
                self._finish("Failed", reason)
            else:
                self._finish("Failed", f"Step '{first}' failed: {reason}")
        elif self._stop.is_set():
            self._finish("Stopped", None)
        else:
            self._finish("Succeeded", None)

    def _stop_requested(self) -> bool:
        if self._stop.is_set():
            return True
        return self._metadata.stop_requested(EXECUTION_KIND, self.execution_id)

    def _reuse_from_source(self, name: str) -> list[str] | None:
        """An unselected step: copy its record from the source execution. Returns the condition branch it did
        not take (empty when none), or None when the source has no successful run of it (it is skipped)."""
        record = self.source_records.get(name)
        if record is None or record.get("StepStatus") != "Succeeded":
            return None
        copied = dict(record)
        copied["SelectiveExecutionResult"] = {"SourcePipelineExecutionArn": self.source_arn}
        with self._lock:
            self._steps[name] = copied
            self._properties[name] = record.get("Properties") or {}
        self._metadata.put_step(self.execution_id, name, "Succeeded", copied)
        spec = self.graph[name]
        if spec.type is StepType.CONDITION:
            outcome = (record.get("Metadata") or {}).get("Condition", {}).get("Outcome")
            return list(spec.else_steps if outcome else spec.if_steps)
        return []

    def _finish(self, status: str, failure: str | None) -> None:
        failed_step = next((n for n, e in self._steps.items() if e.get("StepStatus") == "Failed"), None)
        self._say(f"Pipeline execution {self.execution_id} {status.upper()}"
                  + (f" because step '{failed_step}' failed." if status == "Failed" and failed_step else ""))
        record = dict(self._record, PipelineExecutionStatus=status, LastModifiedTime=time.time())
        if failure is not None:
            record["FailureReason"] = failure
        self._record = record
        self._metadata.update_job(EXECUTION_KIND, self.execution_id, record=record, status=status)

    def _mark(self, name: str, status: str, *, failure: str | None = None,
              metadata: Mapping[str, Any] | None = None, write: bool = True, **fields: Any) -> None:
        """Update a step's record in memory and, with ``write``, in the store (a step is written when it starts
        executing, when its job exists, after a failed attempt, and when it ends; changes in between ride along
        with the next write, which keeps a 1,000-step pipeline's scheduling off the database)."""
        with self._lock:
            entry = self._steps.get(name)
            if entry is None:
                spec = self.graph[name]
                entry = {"StepName": name, "StartTime": time.time(), "StepStatus": status, "AttemptCount": 0,
                         "Metadata": {}}
                if spec.display_name:
                    entry["StepDisplayName"] = spec.display_name
                if spec.description:
                    entry["StepDescription"] = spec.description
                self._steps[name] = entry
            entry["StepStatus"] = status
            if metadata:
                entry["Metadata"].update(metadata)
            if failure is not None:
                entry["FailureReason"] = failure
            entry.update(fields)
            if status in ("Succeeded", "Failed", "Stopped"):
                entry["EndTime"] = time.time()
            snapshot = json.loads(json.dumps(entry, default=str)) if write else None
        if snapshot is not None:
            self._metadata.put_step(self.execution_id, name, status, snapshot)

    # ---- running one step -----------------------------------------------------------------------------
    def _run_and_record(self, spec: StepSpec) -> StepOutcome:
        """Run ``spec`` on this worker thread and record how it ended (so the scheduler thread never writes)."""
        try:
            outcome = self._run_step(spec)
        except StepFailed as exc:
            self._mark(spec.name, exc.status, failure=exc.reason)
            self._say(f"Pipeline step '{spec.name}' {exc.status.upper()}. Failure message is: {exc.reason}")
            raise
        except Exception as exc:  # a bug or a refused request: the step fails, not the scheduler
            reason = f"{type(exc).__name__}: {exc}"
            self._mark(spec.name, "Failed", failure=reason)
            self._say(f"Pipeline step '{spec.name}' FAILED. Failure message is: {reason}")
            raise StepFailed(reason) from exc
        self._mark(spec.name, "Succeeded")
        self._say(f"Pipeline step '{spec.name}' SUCCEEDED.")
        return outcome

    def _run_step(self, spec: StepSpec) -> StepOutcome:
        """Run ``spec`` to its end: cache lookup, then attempts under its retry policies."""
        if spec.type is StepType.CONDITION:
            self._mark(spec.name, "Executing", AttemptCount=1, write=False)
            outcome = all(self._condition(c) for c in spec.arguments.get("Conditions", []))
            self._mark(spec.name, "Executing", metadata={"Condition": {"Outcome": outcome}}, write=False)
            with self._lock:
                self._properties[spec.name] = {"Outcome": outcome}
            return StepOutcome(properties={"Outcome": outcome},
                               untaken=tuple(spec.else_steps if outcome else spec.if_steps))
        if spec.type is StepType.FAIL:
            self._mark(spec.name, "Executing", AttemptCount=1, write=False)
            message = self._resolve(spec.arguments.get("ErrorMessage", ""), {})
            message = wire_text(message) if message is not None else ""
            self._mark(spec.name, "Executing", metadata={"Fail": {"ErrorMessage": message}}, write=False)
            raise StepFailed(message)
        runner = _runner_for(spec)
        assert runner is not None  # check_supported refused the others
        variable = _JOB_NAME_VARIABLES.get(spec.type)
        request = self._resolve(spec.arguments, {variable: "<job name>"} if variable else {})
        if spec.type in _JOB_NAME_VARIABLES:
            _stringify(request)
        key = self._cache_lookup(spec, request)
        if isinstance(key, StepOutcome):
            return key
        first_attempt = time.monotonic()
        retries: dict[int, int] = {}
        attempt = 0
        while True:
            attempt += 1
            name = job_name(self.execution_id, spec.name)
            attempt_request = self._resolve(spec.arguments, {variable: name} if variable else {})
            if spec.type in _JOB_NAME_VARIABLES:
                _stringify(attempt_request)
            context = StepContext(session=self.session, config=self.config, pipeline_name=self.pipeline_name,
                                  execution_id=self.execution_id, execution_arn=self.arn, spec=spec, job_name=name,
                                  stop=self._stop,
                                  record_metadata=lambda m, n=spec.name: self._mark(n, "Executing", metadata=m))
            self._mark(spec.name, "Executing", AttemptCount=attempt)
            try:
                outcome = runner(context, attempt_request)
            except StepFailed as exc:
                self._note_attempt(spec.name, attempt, exc.reason, exc.failure_type)
                delay = self._retry_delay(spec.retry_policies, exc, retries, first_attempt)
                if delay is None:
                    raise
                if self._stop.wait(delay):
                    raise StepFailed(f"{exc.reason} (not retried: the execution was stopped)", "Stopped") from None
                continue
            with self._lock:
                self._properties[spec.name] = outcome.properties
            self._mark(spec.name, "Executing", metadata=outcome.metadata, Properties=dict(outcome.properties),
                       write=False)
            if key is not None:
                self._metadata.add_cache_entry(self.pipeline_name, spec.name, key.digest, key.parts, self.arn,
                                               self._steps_snapshot(spec.name))
            return outcome

    def _note_attempt(self, name: str, attempt: int, reason: str, failure_type: str | None) -> None:
        with self._lock:
            attempts = list(self._steps.get(name, {}).get("Attempts", []))
        attempts.append({"Attempt": attempt, "EndTime": time.time(), "FailureReason": reason,
                         "FailureType": failure_type})
        self._mark(name, "Executing", Attempts=attempts)

    @staticmethod
    def _retry_delay(policies: tuple[RetrySpec, ...], failure: StepFailed, retries: dict[int, int],
                     first_attempt: float, now: float | None = None) -> float | None:
        """Seconds to wait before the next attempt, or None when no policy retries this failure.

        ``retries`` counts the retries each policy (by index) has granted so far; ``first_attempt`` and ``now``
        are ``time.monotonic()`` readings.
        """
        now = time.monotonic() if now is None else now
        if failure.status == "Stopped" or failure.failure_type is None:
            return None
        for index, policy in enumerate(policies):
            if failure.failure_type not in policy.exception_types:
                continue
            done = retries.get(index, 0)
            limit = policy.max_attempts
            if limit is not None and done >= limit:
                return None
            if limit is None and policy.expire_after_min is None and done >= (policy.effective_max_attempts or 0):
                return None
            delay = policy.effective_interval_seconds * policy.effective_backoff_rate ** done
            if policy.expire_after_min is not None and \
                    now + delay - first_attempt > policy.expire_after_min * 60:
                return None
            retries[index] = done + 1
            return float(delay)
        return None

    def _steps_snapshot(self, name: str) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._steps[name], default=str))

    def _cache_lookup(self, spec: StepSpec, request: dict[str, Any]) -> Any:
        """A StepOutcome copied from a cache hit; else the step's cache key (None when caching is off)."""
        if spec.cache_config is None or not spec.cache_config.enabled:
            return None
        from sluice.workflow.cache import cache_key, parse_expire_after

        key = cache_key(spec, request, self.store, metadata=self._metadata)
        if key is None:
            return None
        self._mark(spec.name, "Executing", CacheKey={"Digest": key.digest, "Parts": key.parts}, write=False)
        window = parse_expire_after(spec.cache_config.expire_after) if spec.cache_config.expire_after else None
        not_before = time.time() - window if window is not None else None
        hits = self._metadata.cache_entries(self.pipeline_name, spec.name, key=key.digest, not_before=not_before,
                                            limit=1)
        if not hits:
            return key
        hit = hits[0]
        properties = hit.record.get("Properties") or {}
        with self._lock:
            self._properties[spec.name] = properties
        self._mark(spec.name, "Executing", metadata=hit.record.get("Metadata") or {}, Properties=properties,
                   CacheHitResult={"SourcePipelineExecutionArn": hit.execution_arn},
                   AttemptCount=hit.record.get("AttemptCount", 1), write=False)
        return StepOutcome(properties=properties, metadata=hit.record.get("Metadata") or {})

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
                    return wire_text(inner.get("On", "")).join(wire_text(v) for v in values)
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
            record = self._properties.get(ref.name)
        if record is None:
            raise PipelineError(f"{target}: step {ref.name!r} has no Describe record (it has not run)")
        try:
            return resolve_path(record, ref.path)
        except KeyError as exc:
            raise PipelineError(f"{target}: {exc.args[0]}") from None

    def _execution_variable(self, name: str, variables: Mapping[str, str]) -> Any:
        import datetime as dt

        fixed = {"StartDateTime": dt.datetime.fromtimestamp(self._start, dt.UTC).isoformat(),
                 "CurrentDateTime": dt.datetime.now(dt.UTC).isoformat(),
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
            step = self.graph.get(ref.name)
            segment = ref.path[1] if len(ref.path) == 2 else None
            file_name = segment.name if isinstance(segment, Attr) else None
            declared = [p for p in (step.property_files if step else ()) if p.name == file_name]
            if not declared:
                raise PipelineError(f"JsonGet: {target} is not a property file the step declares")
            base = self._get(f"Steps.{ref.name}.ProcessingOutputConfig.Outputs['{declared[0].output_name}']"
                             ".S3Output.S3Uri", variables)
            uri = f"{str(base).rstrip('/')}/{declared[0].file_path.lstrip('/')}"
        else:
            uri = wire_text(self._resolve(spec.get("S3Uri"), variables))
        if not uri.startswith("s3://"):
            raise PipelineError(f"JsonGet: {uri!r} is not an s3:// URI")
        bucket, _, key = uri[5:].partition("/")
        try:
            data = json.loads(self.store.get_bytes(bucket, key))
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


def _stringify(request: Any) -> None:
    """Values the job APIs take as strings (arguments, environment, hyperparameters) sent as strings.

    Only for job steps: a Lambda event or a Model request keeps the types it was given."""
    if not isinstance(request, dict):
        return
    app = request.get("AppSpecification")
    if isinstance(app, dict) and isinstance(app.get("ContainerArguments"), list):
        app["ContainerArguments"] = [wire_text(v) for v in app["ContainerArguments"]]
    for key in ("Environment", "HyperParameters", "StaticHyperParameters"):
        stringify_map(request, key)


def start_execution(session: Any, pipeline_name: str, definition_text: str, definition: PipelineDefinition,
                    **kwargs: Any) -> PipelineExecution:
    """Check, record and start one execution; returns its handle (see :class:`ExecutionDriver`)."""
    return ExecutionDriver(session, pipeline_name, definition, definition_text, **kwargs).start()

