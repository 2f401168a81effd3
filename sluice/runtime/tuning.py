"""Run a hyperparameter tuning job: trials are real training jobs, up to ``MaxParallelTrainingJobs`` at once.

:func:`start_tuning_job` checks everything first — the request, and one trial's ``CreateTrainingJob``
request built from it (schema, channels, image, and for a definition with no entry point, that the image has
a built-in algorithm to run) — then records the job and hands it to a :class:`TuningDriver` thread. A
definition with no entry point and no ``MetricDefinitions`` gets its image's built-in algorithm's definitions
first, as the service supplies them, so an objective such as ``validation:rmse`` is defined. The driver loops:

1. while fewer than ``MaxParallelTrainingJobs`` trials run and fewer than ``MaxNumberOfTrainingJobs`` were
   launched, ask the strategy for hyperparameters and start a training job with them (its record carries
   ``TuningJobArn`` from the first write). A trial refused by the instance quota while some of this tuning
   job's own trials run waits, with the same hyperparameters, until one of them ends: a tuning job never
   fails its trials because of itself, it runs fewer at once. Refused while none of its own run (other jobs
   hold the instances), the tuning job fails with ``ResourceLimitExceeded``;
2. wait until a trial ends (a watcher thread per trial wakes the loop at once) or a poll interval passes;
3. for an ended trial, read its objective from ``FinalMetricDataList``, tell the strategy, update the record;
4. with early stopping ``Auto``, apply the median rule to each running trial's objective series and stop the
   trials it condemns;
5. a stop request (from any process) or ``MaxRuntimeInSeconds`` stops every running trial.

A trial that fails, or ends without an objective value, is counted and the search goes on. The tuning job
ends ``Completed`` once its trials have ended, ``Failed`` if none produced an objective value, ``Stopped``
when stopped.

The trials' list (``ListTrainingJobsForHyperParameterTuningJob``) is read from the training jobs' own
records, so any process sees the same list the driver does.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sluice.config import Config
from sluice.errors import ResourceLimitExceeded, SluiceError, SpecError
from sluice.jobs.status import JobStatus, allowed_from
from sluice.jobs.training import KIND as TRAINING_KIND
from sluice.jobs.training import TrainingJobSpec, decode_hyperparameters
from sluice.jobs.tuning import (
    KIND,
    THREAD_PREFIX,
    Strategy,
    TuningJobSpec,
    best_training_job,
    describe_tuning_job,
    make_strategy,
    median_stopping_rule,
    objective_value,
    parse_ranges,
    status_counters,
    training_job_summary,
    trial_job_name,
)
from sluice.metadata import MetadataStore, open_metadata
from sluice.runtime.algorithms import builtin_metric_definitions
from sluice.runtime.environments import resolve_image
from sluice.runtime.processing import RunningJob
from sluice.runtime.training import check_runs_without_entry_point, start_training_job

__all__ = ["RunningTuningJob", "TuningDriver", "list_training_jobs_for_tuning_job", "start_tuning_job",
           "with_builtin_metric_definitions"]

log = logging.getLogger("sluice.runtime")

_ALL_ROWS = 1_000_000  # list_jobs needs a limit; a tuning job has at most this many trials


@dataclass
class RunningTuningJob:
    """A started tuning job and the thread that drives it."""

    name: str
    driver: TuningDriver

    def wait(self, timeout: float | None = None) -> bool:
        return self.driver.join(timeout)


@dataclass
class _Trial:
    number: int
    name: str
    tuned: dict[str, str]
    job: RunningJob
    stop_reason: str | None = None  # set when the median rule stopped it


def start_tuning_job(request: dict[str, Any], config: Config, *, poll_seconds: float = 0.2) -> RunningTuningJob:
    """Validate ``request`` (a ``CreateHyperParameterTuningJob`` dict), record the job and start tuning."""
    request = with_builtin_metric_definitions(request, config)
    spec = TuningJobSpec.from_request(request, config.storage.region)
    sample = spec.trial_request(trial_job_name(spec.name, 1), spec.sample_hyperparameters())
    try:
        trial_spec = TrainingJobSpec.from_request(sample, config, entry_point_required=False)
        environment = resolve_image(trial_spec.image_uri, config)
        check_runs_without_entry_point(trial_spec, environment)
    except SpecError as exc:  # keeps its class: ResourceLimitExceeded stays retryable for a pipeline step
        raise type(exc)(f"hyperparameter tuning job {spec.name!r} was not started: its training jobs would be "
                        f"refused.\n{exc}") from None
    environment.check()
    metadata = open_metadata(config.database_url)
    history = _warm_start_history(metadata, spec)
    record = describe_tuning_job(spec, str(JobStatus.IN_PROGRESS))
    metadata.create_job(KIND, spec.name, str(JobStatus.IN_PROGRESS), request, record)
    driver = TuningDriver(spec, config, metadata, record, history=history, poll_seconds=poll_seconds)
    driver.start()
    return RunningTuningJob(spec.name, driver)


def with_builtin_metric_definitions(request: dict[str, Any], config: Config) -> dict[str, Any]:
    """``request`` with its training definition's ``MetricDefinitions`` filled from the image's built-in
    algorithm, when the definition has neither an entry point nor definitions of its own.

    Why: the service supplies a built-in algorithm's metric definitions, so the SDK's classic example (the
    XGBoost image, no entry point, objective ``validation:rmse``, no ``metric_definitions``) names an objective
    that is defined. Any other request is returned as it is; an image sluice cannot resolve raises its error.
    """
    definition = request.get("TrainingJobDefinition")
    if not isinstance(definition, dict):
        return request
    algo = definition.get("AlgorithmSpecification")
    if not isinstance(algo, dict) or algo.get("MetricDefinitions") or not isinstance(algo.get("TrainingImage"), str):
        return request
    static = definition.get("StaticHyperParameters") or {}
    if isinstance(static, dict) and decode_hyperparameters(static).get("sagemaker_program"):
        return request
    definitions = builtin_metric_definitions(algo["TrainingImage"], config)
    if not definitions:
        return request
    filled = {**definition, "AlgorithmSpecification": {**algo, "MetricDefinitions": definitions}}
    return {**request, "TrainingJobDefinition": filled}


def list_training_jobs_for_tuning_job(metadata: MetadataStore, tuning_job_name: str) -> list[dict[str, Any]]:
    """``ListTrainingJobsForHyperParameterTuningJob``'s summaries (times as epoch seconds), sorted by name."""
    row = metadata.get_job(KIND, tuning_job_name)
    if row is None:
        raise SpecError(f"no hyperparameter tuning job named {tuning_job_name!r}; `sluice jobs list` shows the "
                        "jobs there are.")
    config = row.record["HyperParameterTuningJobConfig"]
    objective = config["HyperParameterTuningJobObjective"]
    tuned = [r.name for r in parse_ranges(config.get("ParameterRanges") or {}, [])]
    return _summaries(metadata, tuning_job_name, row.record["HyperParameterTuningJobArn"], tuned,
                      objective["MetricName"], objective["Type"])


def _summaries(metadata: MetadataStore, name: str, arn: str, tuned_names: Sequence[str], metric: str,
               objective_type: str) -> list[dict[str, Any]]:
    rows = metadata.list_jobs(TRAINING_KIND, name_contains=f"{name}-", limit=_ALL_ROWS)
    out = [training_job_summary(r.record, name, tuned_names, metric, objective_type)
           for r in rows if r.record.get("TuningJobArn") == arn]
    return sorted(out, key=lambda s: s["TrainingJobName"])


def _warm_start_history(metadata: MetadataStore, spec: TuningJobSpec) -> list[tuple[dict[str, str], float]]:
    """The parents' trials that reported the objective, to seed the Bayesian strategy with."""
    history: list[tuple[dict[str, str], float]] = []
    for parent in spec.warm_start_parents:
        row = metadata.get_job(KIND, parent)
        if row is None:
            raise SpecError(f"warm start parent {parent!r} is not a hyperparameter tuning job here; name an existing "
                            "one.")
        if not JobStatus(row.status).is_terminal:
            raise SpecError(f"warm start parent {parent!r} is still {row.status}; wait for it to end first.")
        for s in list_training_jobs_for_tuning_job(metadata, parent):
            if s["ObjectiveStatus"] == "Succeeded":
                history.append((s["TunedHyperParameters"], s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]))
    return history


class TuningDriver:
    """Launches and watches the trials of one tuning job and keeps its record in ``metadata`` current."""

    def __init__(self, spec: TuningJobSpec, config: Config, metadata: MetadataStore, record: dict[str, Any], *,
                 history: list[tuple[dict[str, str], float]] | None = None, poll_seconds: float = 0.2) -> None:
        self.spec, self.config, self.metadata, self.record = spec, config, metadata, record
        self.history = history or []
        self.poll_seconds = poll_seconds
        self.finished = threading.Event()
        self._ended: queue.Queue[str] = queue.Queue()
        self._running: dict[str, _Trial] = {}
        self._completed_series: list[list[float]] = []
        self._best: float | None = None
        self._not_improving = 0
        self._started = time.time()
        self._thread = threading.Thread(target=self._main, name=f"{THREAD_PREFIX}{spec.name}", daemon=False)

    def start(self) -> TuningDriver:
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)

    # ---- the loop ----------------------------------------------------------------------------
    def _main(self) -> None:
        try:
            self._drive()
        except BaseException as exc:  # a bug in the driver itself: never leave the job InProgress
            self._stop_all()
            self._drain()
            self._conclude(JobStatus.FAILED, f"InternalServerError: sluice tuning driver failed: {exc!r}")
            raise
        finally:
            self.finished.set()

    def _drive(self) -> None:
        spec = self.spec
        strategy = make_strategy(spec, self.history)
        deadline = time.monotonic() + spec.max_runtime_seconds if spec.max_runtime_seconds else None
        launched, exhausted = 0, False
        deferred: dict[str, str] | None = None  # the next trial's hyperparameters, waiting for an instance
        awaiting_end = False  # a trial was refused for want of instances: retry once one of ours has ended
        stop_reason: str | None = None
        failure: str | None = None
        next_stop_check = 0.0
        while True:
            now = time.monotonic()
            if stop_reason is None and failure is None:
                if deadline is not None and now >= deadline:
                    stop_reason = (f"MaxRuntimeExceeded: the tuning job ran longer than ResourceLimits."
                                   f"MaxRuntimeInSeconds={spec.max_runtime_seconds}; its running training jobs "
                                   "were stopped.")
                elif now >= next_stop_check:
                    next_stop_check = now + self.poll_seconds
                    if self.metadata.stop_requested(KIND, spec.name):
                        stop_reason = "StoppedByUser: stop was requested."
                if stop_reason is not None:
                    self._stop_all()
            while (stop_reason is None and failure is None and not exhausted and launched < spec.max_jobs
                   and len(self._running) < spec.max_parallel_jobs and not awaiting_end
                   and not self._criteria_met()):
                tuned = deferred if deferred is not None else strategy.suggest(launched + 1)
                if tuned is None:
                    exhausted = True
                    break
                deferred = None
                try:
                    self._launch(launched + 1, tuned)
                except ResourceLimitExceeded as exc:
                    if self._running:  # our own trials hold the instances: try again when one of them ends
                        deferred, awaiting_end = tuned, True
                        break
                    launched += 1
                    failure = (f"ResourceLimitExceeded: training job {launched:03d} of the tuning job could not "
                               f"start: {str(exc).removeprefix('ResourceLimitExceeded: ')}")
                    strategy.observe(launched, None)
                except SluiceError as exc:  # the definition was checked up front; this is the service's failure
                    launched += 1
                    failure = f"ClientError: training job {launched:03d} of the tuning job could not start: {exc}"
                    strategy.observe(launched, None)
                    self._stop_all()
                else:
                    launched += 1
                self._refresh()
            if not self._running:
                break
            try:
                name: str | None = self._ended.get(timeout=self.poll_seconds)
            except queue.Empty:
                name = None
            while name is not None:
                self._finish(self._running.pop(name), strategy)
                awaiting_end = False
                try:
                    name = self._ended.get_nowait()
                except queue.Empty:
                    name = None
            if spec.early_stopping and stop_reason is None and failure is None:
                self._apply_median_rule()
        summaries = self._refresh()
        if failure is not None:
            self._conclude(JobStatus.FAILED, failure)
        elif stop_reason is not None:
            self._conclude(JobStatus.STOPPED, None if stop_reason.startswith("StoppedByUser") else stop_reason)
        elif summaries and not any(s["ObjectiveStatus"] == "Succeeded" for s in summaries):
            first = next((s["FailureReason"] for s in summaries if s.get("FailureReason")), "no reason recorded")
            self._conclude(JobStatus.FAILED, f"No training job reported the objective metric "
                                             f"{spec.objective_metric!r}: all {len(summaries)} failed or ended "
                                             f"without it. The first reason: {first}")
        else:
            self._conclude(JobStatus.COMPLETED, None)

    # ---- trials ------------------------------------------------------------------------------
    def _launch(self, number: int, tuned: dict[str, str]) -> None:
        name = trial_job_name(self.spec.name, number)
        request = self.spec.trial_request(name, tuned)
        job = start_training_job(request, self.config, record_extras={"TuningJobArn": self.spec.arn})
        trial = _Trial(number, name, tuned, job)
        self._running[name] = trial

        def watch() -> None:
            job.wait()
            self._ended.put(name)

        threading.Thread(target=watch, name=f"{THREAD_PREFIX}watch-{name}", daemon=True).start()

    def _series(self, name: str) -> list[float]:
        """The objective's values in the order one host (the first to report) printed them."""
        points = self.metadata.metrics(TRAINING_KIND, name, self.spec.objective_metric)
        if not points:
            return []
        host = points[0].host
        return [p.value for p in points if p.host == host]

    def _finish(self, trial: _Trial, strategy: Strategy) -> None:
        row = self.metadata.get_job(TRAINING_KIND, trial.name)
        record = dict(row.record) if row is not None else {}
        status = record.get("TrainingJobStatus")
        value = objective_value(record, self.spec.objective_metric)
        if trial.stop_reason and status == str(JobStatus.STOPPED):
            transitions = list(record.get("SecondaryStatusTransitions") or [])
            transitions.append({"Status": "Stopped", "StartTime": record.get("TrainingEndTime", time.time()),
                                "StatusMessage": trial.stop_reason})
            record["SecondaryStatusTransitions"] = transitions
            self.metadata.update_job(TRAINING_KIND, trial.name, record=record)
        counted = status in (str(JobStatus.COMPLETED), str(JobStatus.STOPPED)) and value is not None
        strategy.observe(trial.number, value if counted else None)
        if status == str(JobStatus.COMPLETED) and value is not None:
            series = self._series(trial.name)
            if series:
                self._completed_series.append(series)
            improved = self._best is None or (value > self._best if self.spec.maximize else value < self._best)
            if improved:
                self._best, self._not_improving = value, 0
            else:
                self._not_improving += 1
        else:
            self._not_improving += 1
        self._refresh()

    def _apply_median_rule(self) -> None:
        for trial in self._running.values():
            if trial.stop_reason:
                continue
            verdict = median_stopping_rule(self._series(trial.name), self._completed_series, self.spec.maximize)
            if verdict.stop:
                trial.stop_reason = verdict.reason(self.spec.objective_metric)
                log.info("tuning job %s: training job %s %s", self.spec.name, trial.name, trial.stop_reason)
                _stop_training_job(self.metadata, trial.name)

    def _criteria_met(self) -> bool:
        """``TuningJobCompletionCriteria``: the target reached, or too many trials in a row without improving."""
        spec, best = self.spec, self._best
        if spec.target_value is not None and best is not None \
                and ((best >= spec.target_value) if spec.maximize else (best <= spec.target_value)):
            return True
        return spec.max_not_improving is not None and self._not_improving >= spec.max_not_improving

    def _stop_all(self) -> None:
        for trial in list(self._running.values()):
            _stop_training_job(self.metadata, trial.name)

    def _drain(self) -> None:
        for trial in list(self._running.values()):
            trial.job.wait()
        self._running.clear()

    # ---- recording ---------------------------------------------------------------------------
    def _refresh(self) -> list[dict[str, Any]]:
        """Recount the trials from their records and write the tuning job's record."""
        spec = self.spec
        summaries = _summaries(self.metadata, spec.name, spec.arn, spec.tuned_names, spec.objective_metric,
                               spec.objective_type)
        jobs, objectives = status_counters(summaries)
        extra: dict[str, Any] = {"TrainingJobStatusCounters": jobs, "ObjectiveStatusCounters": objectives,
                                 "TuningJobCompletionDetails": {
                                     "NumberOfTrainingJobsObjectiveNotImproving": self._not_improving}}
        best = best_training_job(summaries, spec.maximize)
        if best is not None:
            extra["BestTrainingJob"] = best
        self._update(extra)
        return summaries

    def _update(self, extra: dict[str, Any], status: JobStatus | None = None) -> bool:
        self.record.update(extra)
        self.record["LastModifiedTime"] = time.time()
        if status is not None:
            self.record["HyperParameterTuningJobStatus"] = str(status)
        return self.metadata.update_job(KIND, self.spec.name, record=self.record,
                                        status=str(status) if status else None,
                                        allowed_from=allowed_from(status) if status else None)

    def _conclude(self, status: JobStatus, reason: str | None) -> None:
        end = time.time()
        extra: dict[str, Any] = {"HyperParameterTuningEndTime": end,
                                 "ConsumedResources": {"RuntimeInSeconds": int(end - self._started)}}
        if reason:
            extra["FailureReason"] = reason
        self._update(extra, status)
        log.info("hyperparameter tuning job %s: %s", self.spec.name, status)


def _stop_training_job(metadata: MetadataStore, name: str) -> None:
    """Ask a trial to stop, as ``Session.stop_training_job`` does; a trial that already ended is left alone."""
    row = metadata.get_job(TRAINING_KIND, name)
    if row is None or JobStatus(row.status).is_terminal:
        return
    metadata.request_stop(TRAINING_KIND, name)
    metadata.update_job(TRAINING_KIND, name, status=str(JobStatus.STOPPING),
                        allowed_from=allowed_from(JobStatus.STOPPING))
