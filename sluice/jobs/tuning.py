"""``CreateHyperParameterTuningJob`` requests: the rules, the search space, the strategies and the records.

Everything here is pure (no processes, no database): the runtime's tuning driver
(:mod:`sluice.runtime.tuning`) asks a :class:`Strategy` what to try, builds each trial's
``CreateTrainingJob`` request with :meth:`TuningJobSpec.trial_request`, and keeps the
``DescribeHyperParameterTuningJob`` record with the functions at the bottom.

Strategies, as sluice runs them:

- ``Random``: every value drawn independently, uniform on the range's scale (``Logarithmic``: log-uniform,
  ``ReverseLogarithmic``: log-uniform in ``1 - x``; ``Auto`` is linear). Seeded by ``RandomSeed``.
- ``Grid``: categorical ranges only (the service's rule); every combination once, in the order the ranges
  and values were given.
- ``Bayesian``: Tree-structured Parzen Estimators (optuna's ``TPESampler``) through optuna's ask-and-tell
  interface. TPE is a Bayesian optimisation method; SageMaker's own uses Gaussian processes, whose optuna
  implementation needs torch, which sluice does not install. Seeded by ``RandomSeed``; with one job at a
  time the suggestions are reproducible.
- ``Hyperband``: not available yet; refused with the list of supported strategies.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
import random
import secrets
import statistics
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sluice.config import ACCOUNT_ID
from sluice.errors import SpecError
from sluice.jobs.schema import validate_request

__all__ = [
    "KIND",
    "SUPPORTED_STRATEGIES",
    "THREAD_PREFIX",
    "CategoricalRange",
    "ContinuousRange",
    "EarlyStoppingVerdict",
    "IntegerRange",
    "Strategy",
    "TuningJobSpec",
    "best_training_job",
    "config_problems",
    "describe_tuning_job",
    "make_strategy",
    "median_stopping_rule",
    "objective_value",
    "parse_ranges",
    "status_counters",
    "training_job_summary",
    "trial_job_name",
    "tuning_job_name",
    "with_datetimes",
]

log = logging.getLogger("sluice")

KIND = "HyperParameterTuningJob"
NAME_MAX_LENGTH = 32
SUPPORTED_STRATEGIES = ("Bayesian", "Random", "Grid")
#: The median stopping rule looks at a trial only once it has reported this many objective values ...
EARLY_STOPPING_MIN_STEPS = 3
#: ... and only once this many trials have completed with an objective to compare against.
EARLY_STOPPING_MIN_COMPLETED = 2

_RANGE_KEYS = ("ContinuousParameterRanges", "IntegerParameterRanges", "CategoricalParameterRanges")
_SCALINGS = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")


# ---- names -------------------------------------------------------------------------------------------
_name_lock = threading.Lock()
_last_ms = 0


def tuning_job_name(base: str) -> str:
    """``<base>-<yymmdd-HHMMSS-mmm>`` within the API's 32 characters, unique within this process.

    The SDK uses a minute-resolution stamp for tuning jobs (``name_from_base(..., short=True)``), so two jobs
    started in the same minute collide; sluice keeps milliseconds and shortens the base instead.
    """
    global _last_ms
    with _name_lock:
        ms = max(int(time.time() * 1000), _last_ms + 1)
        _last_ms = ms
    stamp = time.strftime("%y%m%d-%H%M%S", time.gmtime(ms / 1000)) + f"-{ms % 1000:03d}"
    trimmed = base[: NAME_MAX_LENGTH - len(stamp) - 1].rstrip("-")
    return f"{trimmed}-{stamp}" if trimmed else stamp


def trial_job_name(tuning_name: str, number: int) -> str:
    """A trial's training job name as SageMaker makes it: ``<tuning-job>-<NNN>-<8 hex>``."""
    return f"{tuning_name}-{number:03d}-{secrets.token_hex(4)}"


# ---- the search space --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ContinuousRange:
    name: str
    low: float
    high: float
    scaling: str = "Auto"

    def format(self, value: float) -> str:
        return repr(float(value))


@dataclass(frozen=True)
class IntegerRange:
    name: str
    low: int
    high: int
    scaling: str = "Auto"

    def format(self, value: int) -> str:
        return str(int(value))


@dataclass(frozen=True)
class CategoricalRange:
    name: str
    values: tuple[str, ...]


Range = ContinuousRange | IntegerRange | CategoricalRange


def _number(text: Any, kind: type, where: str, problems: list[str]) -> Any:
    try:
        value = kind(text) if kind is float else int(str(text))
    except (TypeError, ValueError):
        problems.append(f"{where}: {text!r} is not {'a number' if kind is float else 'an integer'}.")
        return None
    if kind is float and not math.isfinite(value):
        problems.append(f"{where}: {text!r} is not a finite number.")
        return None
    return value


def parse_ranges(ranges: Mapping[str, Any], problems: list[str]) -> list[Range]:
    """The request's ``ParameterRanges`` as typed ranges, with the service's rules on bounds and scaling."""
    out: list[Range] = []
    seen: set[str] = set()
    for key in _RANGE_KEYS:
        for i, raw in enumerate(ranges.get(key) or []):
            name = raw.get("Name", "")
            where = f"ParameterRanges.{key}[{i}] ({name!r})"
            if name in seen:
                problems.append(f"{where}: hyperparameter {name!r} has more than one range; give it one.")
                continue
            seen.add(name)
            if key == "CategoricalParameterRanges":
                values = tuple(str(v) for v in raw.get("Values") or [])
                if not values:
                    problems.append(f"{where}: Values must hold at least one value.")
                    continue
                out.append(CategoricalRange(name, values))
                continue
            kind = float if key == "ContinuousParameterRanges" else int
            low = _number(raw.get("MinValue"), kind, f"{where}.MinValue", problems)
            high = _number(raw.get("MaxValue"), kind, f"{where}.MaxValue", problems)
            scaling = raw.get("ScalingType") or "Auto"
            if low is None or high is None:
                continue
            if low > high:
                problems.append(f"{where}: MinValue {low} is greater than MaxValue {high}; swap them.")
                continue
            if scaling == "Logarithmic" and low <= 0:
                problems.append(f"{where}: Logarithmic scaling needs a range of values greater than 0 (MinValue is "
                                f"{low}); use Linear, or raise MinValue.")
                continue
            if scaling == "ReverseLogarithmic":
                if kind is int:
                    problems.append(f"{where}: ReverseLogarithmic scaling is supported for continuous ranges only; "
                                    "use Linear or Logarithmic.")
                    continue
                if not (low >= 0 and high < 1):
                    problems.append(f"{where}: ReverseLogarithmic scaling needs a range entirely within 0 <= x < 1.0 "
                                    f"(it is [{low}, {high}]).")
                    continue
            out.append(ContinuousRange(name, low, high, scaling) if kind is float
                       else IntegerRange(name, low, high, scaling))
    return out


def _metric_names(metric_definitions: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(m.get("Name")) for m in metric_definitions or []]


def objective_problem(metric_name: str, metric_definitions: Sequence[Mapping[str, Any]]) -> str | None:
    """Why ``metric_name`` cannot be the objective, or None: it must be one of the defined metrics."""
    names = _metric_names(metric_definitions)
    if metric_name in names:
        return None
    if not names:
        return (f"the objective metric {metric_name!r} is not defined: there are no metric_definitions. Add "
                f"{{'Name': {metric_name!r}, 'Regex': '...'}} to the estimator's or the tuner's metric_definitions, "
                "with a regex whose first group captures the value in the script's logs.")
    return (f"the objective metric {metric_name!r} is not among the defined metrics "
            f"({', '.join(repr(n) for n in names)}); use one of them, or add a definition for it to "
            "metric_definitions.")


def config_problems(
    config: Mapping[str, Any], metric_definitions: Sequence[Mapping[str, Any]],
    static_hyperparameters: Mapping[str, Any] | None = None,
) -> tuple[list[str], list[Range], int | None]:
    """The service's rules on a ``HyperParameterTuningJobConfig``: (problems, ranges, number of jobs to run).

    Shared by :class:`TuningJobSpec` and the ``HyperparameterTuner`` facade, so bad arguments are refused
    before any code is uploaded, in the same words either way.
    """
    problems: list[str] = []
    strategy = config.get("Strategy")
    if strategy == "Hyperband":
        problems.append(f"strategy 'Hyperband' is not available in sluice yet; use one of "
                        f"{', '.join(SUPPORTED_STRATEGIES)}.")
    elif strategy not in SUPPORTED_STRATEGIES:
        problems.append(f"strategy {strategy!r} is not a tuning strategy; use one of "
                        f"{', '.join(SUPPORTED_STRATEGIES)}.")
    objective = config.get("HyperParameterTuningJobObjective") or {}
    if objective.get("Type") not in ("Maximize", "Minimize"):
        problems.append(f"the objective type {objective.get('Type')!r} must be 'Maximize' or 'Minimize'.")
    if not objective.get("MetricName"):
        problems.append("the tuning job has no objective metric: set HyperParameterTuningJobObjective "
                        "(objective_metric_name and objective_type).")
    else:
        missing = objective_problem(objective["MetricName"], metric_definitions)
        if missing:
            problems.append(missing)
    early = config.get("TrainingJobEarlyStoppingType", "Off")
    if early not in ("Off", "Auto"):
        problems.append(f"early_stopping_type {early!r} must be 'Off' or 'Auto'.")
    raw_ranges = config.get("ParameterRanges") or {}
    if raw_ranges.get("AutoParameters"):
        problems.append("AutoParameters (autotune) are not available in sluice yet; give explicit ranges.")
    ranges = parse_ranges(raw_ranges, problems)
    if not ranges and not raw_ranges.get("AutoParameters"):
        problems.append("no hyperparameter ranges to tune: give at least one ContinuousParameter, IntegerParameter "
                        "or CategoricalParameter.")
    both = sorted(r.name for r in ranges if r.name in (static_hyperparameters or {}))
    if both:
        problems.append(f"hyperparameters {', '.join(both)} are both static and tuned; remove them from the static "
                        "hyperparameters.")
    limits = config.get("ResourceLimits") or {}
    max_jobs = limits.get("MaxNumberOfTrainingJobs")
    if strategy == "Grid":
        numeric = [r.name for r in ranges if not isinstance(r, CategoricalRange)]
        if numeric:
            problems.append(f"the Grid strategy takes categorical ranges only, and {', '.join(numeric)} "
                            f"{'is' if len(numeric) == 1 else 'are'} not; use CategoricalParameter for "
                            f"{'it' if len(numeric) == 1 else 'them'}, or strategy 'Random' or 'Bayesian'.")
        else:
            size = math.prod(len(r.values) for r in ranges if isinstance(r, CategoricalRange)) if ranges else 0
            if max_jobs is not None and max_jobs < size:
                problems.append(f"the grid has {size} combinations but max_jobs (MaxNumberOfTrainingJobs) is "
                                f"{max_jobs}; a Grid search runs every combination, so raise max_jobs to {size} or "
                                "leave it unset.")
            max_jobs = size
    elif max_jobs is None:
        problems.append(f"ResourceLimits.MaxNumberOfTrainingJobs is required for the {strategy} strategy "
                        "(max_jobs).")
    return problems, ranges, max_jobs


def _raise(name: str, problems: list[str]) -> None:
    lines = "\n".join(f"  - {p}" for p in problems)
    raise SpecError(f"hyperparameter tuning job {name!r} was not started; fix these first:\n{lines}")


# ---- the request -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TuningJobSpec:
    """A validated tuning job. Build it with :meth:`from_request`."""

    name: str
    request: dict[str, Any]
    strategy: str
    objective_metric: str
    objective_type: str
    ranges: tuple[Range, ...]
    max_jobs: int
    max_parallel_jobs: int
    definition: dict[str, Any]
    early_stopping: bool = False
    max_runtime_seconds: int | None = None
    random_seed: int | None = None
    target_value: float | None = None
    max_not_improving: int | None = None
    warm_start_parents: tuple[str, ...] = ()
    region: str = "us-east-1"
    tags: tuple[dict[str, str], ...] = field(default_factory=tuple)

    kind = KIND

    @property
    def arn(self) -> str:
        return f"arn:aws:sagemaker:{self.region}:{ACCOUNT_ID}:hyper-parameter-tuning-job/{self.name.lower()}"

    @property
    def maximize(self) -> bool:
        return self.objective_type == "Maximize"

    @property
    def tuned_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.ranges)

    @classmethod
    def from_request(cls, request: dict[str, Any], region: str = "us-east-1") -> TuningJobSpec:
        """Validate against botocore's model, then the service's rules; every problem in one SpecError."""
        validate_request("CreateHyperParameterTuningJob", request)
        name = request["HyperParameterTuningJobName"]
        config = request["HyperParameterTuningJobConfig"]
        definition = request.get("TrainingJobDefinition")
        problems: list[str] = []
        if request.get("TrainingJobDefinitions"):
            problems.append("TrainingJobDefinitions (several algorithms in one tuning job) are not available in "
                            "sluice yet; tune one TrainingJobDefinition.")
        if not definition:
            problems.append("the request has no TrainingJobDefinition: give the training job to tune.")
            _raise(name, problems)
        assert definition is not None
        if request.get("Autotune"):
            problems.append("Autotune is not available in sluice yet; give the strategy and ranges explicitly.")
        algo = definition["AlgorithmSpecification"]
        if algo.get("AlgorithmName"):
            problems.append(f"AlgorithmSpecification.AlgorithmName {algo['AlgorithmName']!r}: sluice runs no "
                            "algorithm resources; use a script-mode estimator (entry_point).")
        if definition.get("HyperParameterRanges") and not config.get("ParameterRanges"):
            config = {**config, "ParameterRanges": definition["HyperParameterRanges"]}
        if definition.get("TuningObjective") and not config.get("HyperParameterTuningJobObjective"):
            config = {**config, "HyperParameterTuningJobObjective": definition["TuningObjective"]}
        rules, ranges, max_jobs = config_problems(config, algo.get("MetricDefinitions") or [],
                                                  definition.get("StaticHyperParameters"))
        problems.extend(rules)
        if not definition.get("ResourceConfig"):
            hptrc = definition.get("HyperParameterTuningResourceConfig") or {}
            if hptrc.get("InstanceConfigs") or not hptrc.get("InstanceType"):
                problems.append("TrainingJobDefinition needs ResourceConfig (InstanceType, InstanceCount); "
                                "HyperParameterTuningResourceConfig.InstanceConfigs is not available in sluice yet.")
        completion = config.get("TuningJobCompletionCriteria") or {}
        if (completion.get("ConvergenceDetected") or {}).get("CompleteOnConvergence") == "Enabled":
            log.warning("tuning job %s: CompleteOnConvergence has no local equivalent; sluice runs until the other "
                        "criteria or max_jobs end the tuning job.", name)
        if problems:
            _raise(name, problems)
        assert max_jobs is not None
        limits = config["ResourceLimits"]
        warm = request.get("WarmStartConfig") or {}
        objective = config["HyperParameterTuningJobObjective"]
        return cls(
            name=name,
            request=request,
            strategy=config["Strategy"],
            objective_metric=objective["MetricName"],
            objective_type=objective["Type"],
            ranges=tuple(ranges),
            max_jobs=int(max_jobs),
            max_parallel_jobs=int(limits["MaxParallelTrainingJobs"]),
            definition=definition,
            early_stopping=config.get("TrainingJobEarlyStoppingType", "Off") == "Auto",
            max_runtime_seconds=limits.get("MaxRuntimeInSeconds"),
            random_seed=config.get("RandomSeed"),
            target_value=completion.get("TargetObjectiveMetricValue"),
            max_not_improving=(completion.get("BestObjectiveNotImproving") or {}).get(
                "MaxNumberOfTrainingJobsNotImproving"),
            warm_start_parents=tuple(p["HyperParameterTuningJobName"]
                                     for p in warm.get("ParentHyperParameterTuningJobs") or []),
            region=region,
            tags=tuple(request.get("Tags") or ()),
        )

    def sample_hyperparameters(self) -> dict[str, str]:
        """One valid assignment (each range's lower end or first value), to check a trial's request early."""
        return {r.name: r.values[0] if isinstance(r, CategoricalRange) else r.format(r.low) for r in self.ranges}

    def trial_request(self, trial_name: str, tuned: Mapping[str, str]) -> dict[str, Any]:
        """The ``CreateTrainingJob`` request of one trial: the definition, its static and tuned hyperparameters.

        As the service does, the trial also gets ``_tuning_objective_metric`` (the training toolkit keeps it out
        of the script's arguments) and the tuning job's tags. A checkpoint URI gets the trial's name appended
        (sluice's choice) so that trials running at once never read each other's checkpoints.
        """
        d = self.definition
        src = d["AlgorithmSpecification"]
        algo: dict[str, Any] = {"TrainingInputMode": src["TrainingInputMode"], "EnableSageMakerMetricsTimeSeries": True}
        for key in ("TrainingImage", "AlgorithmName", "MetricDefinitions"):
            if src.get(key):
                algo[key] = src[key]
        hps = {**(d.get("StaticHyperParameters") or {}), **tuned, "_tuning_objective_metric": self.objective_metric}
        resources = d.get("ResourceConfig") or {
            k: v for k, v in (d.get("HyperParameterTuningResourceConfig") or {}).items()
            if k in ("InstanceType", "InstanceCount", "VolumeSizeInGB", "VolumeKmsKeyId")
        }
        request: dict[str, Any] = {
            "TrainingJobName": trial_name,
            "AlgorithmSpecification": algo,
            "RoleArn": d["RoleArn"],
            "HyperParameters": hps,
            "OutputDataConfig": d["OutputDataConfig"],
            "ResourceConfig": resources,
            "StoppingCondition": d["StoppingCondition"],
        }
        for key in ("InputDataConfig", "VpcConfig", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
                    "EnableManagedSpotTraining", "RetryStrategy", "Environment"):
            if key in d:
                request[key] = d[key]
        if d.get("CheckpointConfig"):
            checkpoint = dict(d["CheckpointConfig"])
            checkpoint["S3Uri"] = f"{checkpoint['S3Uri'].rstrip('/')}/{trial_name}"
            request["CheckpointConfig"] = checkpoint
        if self.tags:
            request["Tags"] = list(self.tags)
        return request


# ---- strategies --------------------------------------------------------------------------------------
class Strategy(ABC):
    """What to try next. ``suggest`` gives trial ``number`` its tuned hyperparameters (strings, as the API
    passes them), or None when the strategy has nothing left; ``observe`` reports the trial's objective value
    (None: the trial failed or reported no objective)."""

    @abstractmethod
    def suggest(self, number: int) -> dict[str, str] | None: ...

    def observe(self, number: int, value: float | None) -> None:  # noqa: B027 - optional hook
        """Random and Grid search do not learn from results."""


def _sample(r: Range, rng: random.Random) -> str:
    if isinstance(r, CategoricalRange):
        return rng.choice(r.values)
    if isinstance(r, IntegerRange):
        if r.scaling == "Logarithmic":
            value = math.floor(math.exp(rng.uniform(math.log(r.low), math.log(r.high + 1))))
            return r.format(min(max(value, r.low), r.high))
        return r.format(rng.randint(r.low, r.high))
    if r.scaling == "Logarithmic":
        return r.format(math.exp(rng.uniform(math.log(r.low), math.log(r.high))))
    if r.scaling == "ReverseLogarithmic":
        return r.format(1 - math.exp(rng.uniform(math.log(1 - r.high), math.log(1 - r.low))))
    return r.format(rng.uniform(r.low, r.high))


class RandomStrategy(Strategy):
    """Independent draws; ``seed`` makes the sequence repeatable."""

    def __init__(self, ranges: Sequence[Range], seed: int | None) -> None:
        self.ranges = tuple(ranges)
        self.rng = random.Random(seed)

    def suggest(self, number: int) -> dict[str, str] | None:
        return {r.name: _sample(r, self.rng) for r in self.ranges}


class GridStrategy(Strategy):
    """Every combination of the categorical values, once each."""

    def __init__(self, ranges: Sequence[Range]) -> None:
        cats = [r for r in ranges if isinstance(r, CategoricalRange)]
        self.names = [r.name for r in cats]
        self._points = iter(itertools.product(*(r.values for r in cats)))

    def suggest(self, number: int) -> dict[str, str] | None:
        point = next(self._points, None)
        return None if point is None else dict(zip(self.names, point, strict=True))


class _QuietOptunaInTuningThreads(logging.Filter):
    """optuna announces every study and trial at INFO; sluice keeps its own record, so drop those lines when
    they come from a tuning driver's thread (a user's own optuna studies keep their logs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or not threading.current_thread().name.startswith(THREAD_PREFIX)


THREAD_PREFIX = "sluice-tuning-"
_optuna_quieted = False


class BayesianStrategy(Strategy):
    """TPE through optuna's ask-and-tell interface.

    The first ``min(10, max(2, max_jobs // 4))`` trials are random (TPE needs some observations before its
    model means anything; optuna's default of 10 would make a small tuning job purely random). Observations
    from warm-start parents count towards those.
    """

    def __init__(self, ranges: Sequence[Range], maximize: bool, seed: int | None, max_jobs: int,
                 history: Sequence[tuple[Mapping[str, str], float]] = ()) -> None:
        global _optuna_quieted
        import optuna
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if not _optuna_quieted:  # on optuna's own handler: its records come from many module loggers
            for handler in logging.getLogger("optuna").handlers:
                handler.addFilter(_QuietOptunaInTuningThreads())
            _optuna_quieted = True
        self.ranges = tuple(ranges)
        self._optuna = optuna
        self.distributions: dict[str, Any] = {}
        for r in self.ranges:
            if isinstance(r, CategoricalRange):
                self.distributions[r.name] = CategoricalDistribution(list(r.values))
            elif isinstance(r, IntegerRange):
                self.distributions[r.name] = IntDistribution(r.low, r.high, log=r.scaling == "Logarithmic")
            elif r.scaling == "ReverseLogarithmic":  # searched as 1 - x, log-scaled
                self.distributions[r.name] = FloatDistribution(1 - r.high, 1 - r.low, log=True)
            else:
                self.distributions[r.name] = FloatDistribution(r.low, r.high, log=r.scaling == "Logarithmic")
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, max_jobs // 4)))
        self.study = optuna.create_study(direction="maximize" if maximize else "minimize", sampler=sampler)
        self._pending: dict[int, Any] = {}
        for tuned, value in history:
            params = self._internal(tuned)
            if params is not None:
                self.study.add_trial(optuna.trial.create_trial(params=params, distributions=self.distributions,
                                                               value=value))

    def _internal(self, tuned: Mapping[str, str]) -> dict[str, Any] | None:
        """A parent's hyperparameter strings as this study's parameters; None if they do not fit its ranges."""
        params: dict[str, Any] = {}
        try:
            for r in self.ranges:
                raw = tuned[r.name]
                if isinstance(r, CategoricalRange):
                    if raw not in r.values:
                        return None
                    params[r.name] = raw
                    continue
                value = int(float(raw)) if isinstance(r, IntegerRange) else float(raw)
                if not r.low <= value <= r.high:
                    return None
                params[r.name] = 1 - value if r.scaling == "ReverseLogarithmic" else value
        except (KeyError, ValueError):
            return None
        return params

    def suggest(self, number: int) -> dict[str, str] | None:
        trial = self.study.ask(self.distributions)
        self._pending[number] = trial
        out: dict[str, str] = {}
        for r in self.ranges:
            value = trial.params[r.name]
            if isinstance(r, CategoricalRange):
                out[r.name] = str(value)
            elif isinstance(r, ContinuousRange) and r.scaling == "ReverseLogarithmic":
                out[r.name] = r.format(1 - value)
            else:
                out[r.name] = r.format(value)
        return out

    def observe(self, number: int, value: float | None) -> None:
        trial = self._pending.pop(number, None)
        if trial is None:
            return
        if value is None or not math.isfinite(value):
            self.study.tell(trial, state=self._optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(trial, value)


def make_strategy(spec: TuningJobSpec, history: Sequence[tuple[Mapping[str, str], float]] = ()) -> Strategy:
    """The strategy ``spec`` names; ``history`` (warm-start parents' results) seeds the Bayesian one."""
    if spec.strategy == "Grid":
        return GridStrategy(spec.ranges)
    if spec.strategy == "Random":
        return RandomStrategy(spec.ranges, spec.random_seed)
    return BayesianStrategy(spec.ranges, spec.maximize, spec.random_seed, spec.max_jobs, history)


# ---- early stopping ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class EarlyStoppingVerdict:
    stop: bool
    steps: int = 0
    best: float | None = None
    median: float | None = None

    def reason(self, metric: str) -> str:
        return (f"stopped early by the tuning job's median rule: after {self.steps} values of {metric}, its best "
                f"({self.best:g}) was worse than the median ({self.median:g}) of the completed training jobs' running "
                f"averages over as many values.")


def median_stopping_rule(
    series: Sequence[float], completed: Sequence[Sequence[float]], maximize: bool,
    min_steps: int = EARLY_STOPPING_MIN_STEPS, min_completed: int = EARLY_STOPPING_MIN_COMPLETED,
) -> EarlyStoppingVerdict:
    """Stop a running trial whose best value after ``k`` reports is worse than the median, over completed
    trials, of their running average of their first ``k`` reports (all of them, if they reported fewer).

    This is the rule SageMaker documents for ``TrainingJobEarlyStoppingType='Auto'``; the minimums are
    sluice's choice, so that one noisy early trial cannot stop the rest.
    """
    k = len(series)
    peers = [c for c in completed if c]
    if k < min_steps or len(peers) < min_completed:
        return EarlyStoppingVerdict(False, k)
    median = statistics.median(statistics.fmean(c[:k]) for c in peers)
    best = max(series) if maximize else min(series)
    worse = best < median if maximize else best > median
    return EarlyStoppingVerdict(worse, k, best, median)


# ---- records -----------------------------------------------------------------------------------------
def describe_tuning_job(spec: TuningJobSpec, status: str) -> dict[str, Any]:
    """The initial ``DescribeHyperParameterTuningJob``-shaped record of ``spec``."""
    now = time.time()
    config = dict(spec.request["HyperParameterTuningJobConfig"])
    record: dict[str, Any] = {
        "HyperParameterTuningJobName": spec.name,
        "HyperParameterTuningJobArn": spec.arn,
        "HyperParameterTuningJobConfig": config,
        "TrainingJobDefinition": spec.definition,
        "HyperParameterTuningJobStatus": status,
        "CreationTime": now,
        "LastModifiedTime": now,
        "TrainingJobStatusCounters": status_counters([])[0],
        "ObjectiveStatusCounters": status_counters([])[1],
    }
    if spec.request.get("WarmStartConfig"):
        record["WarmStartConfig"] = spec.request["WarmStartConfig"]
    return record


def objective_value(record: Mapping[str, Any], metric: str) -> float | None:
    """The objective's final value in a training record (``FinalMetricDataList``), if it was reported."""
    for item in record.get("FinalMetricDataList") or []:
        if item.get("MetricName") == metric:
            value = item.get("Value")
            if isinstance(value, int | float) and math.isfinite(value):
                return float(value)
    return None


def training_job_summary(record: Mapping[str, Any], tuning_name: str, tuned_names: Sequence[str], metric: str,
                         objective_type: str) -> dict[str, Any]:
    """A ``HyperParameterTrainingJobSummary`` of one trial's training record.

    The objective counts (``ObjectiveStatus: Succeeded``) when the job completed, or was stopped, having
    reported it; a failed job, or one that never printed the metric, has ``ObjectiveStatus: Failed``.
    """
    status = record.get("TrainingJobStatus", "InProgress")
    hps = record.get("HyperParameters") or {}
    summary: dict[str, Any] = {
        "TrainingJobName": record["TrainingJobName"],
        "TrainingJobArn": record["TrainingJobArn"],
        "TuningJobName": tuning_name,
        "CreationTime": record.get("CreationTime"),
        "TrainingJobStatus": status,
        "TunedHyperParameters": {k: hps[k] for k in tuned_names if k in hps},
    }
    for key in ("TrainingStartTime", "TrainingEndTime", "FailureReason"):
        if record.get(key) is not None:
            summary[key] = record[key]
    value = objective_value(record, metric)
    if status in ("InProgress", "Stopping"):
        summary["ObjectiveStatus"] = "Pending"
    elif status in ("Completed", "Stopped") and value is not None:
        summary["ObjectiveStatus"] = "Succeeded"
        summary["FinalHyperParameterTuningJobObjectiveMetric"] = {"Type": objective_type, "MetricName": metric,
                                                                  "Value": value}
    else:
        summary["ObjectiveStatus"] = "Failed"
        if status == "Completed" and "FailureReason" not in summary:
            summary["FailureReason"] = (f"the training job completed without reporting the objective metric "
                                        f"{metric!r}; check its regex in metric_definitions against the logs.")
    return summary


def status_counters(summaries: Sequence[Mapping[str, Any]]) -> tuple[dict[str, int], dict[str, int]]:
    """``TrainingJobStatusCounters`` and ``ObjectiveStatusCounters`` over the trials' summaries."""
    jobs = {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
    objectives = {"Succeeded": 0, "Pending": 0, "Failed": 0}
    for s in summaries:
        status = s["TrainingJobStatus"]
        if status in ("InProgress", "Stopping"):
            jobs["InProgress"] += 1
        elif status == "Failed":
            retryable = str(s.get("FailureReason", "")).startswith("InternalServerError")
            jobs["RetryableError" if retryable else "NonRetryableError"] += 1
        elif status in jobs:
            jobs[status] += 1
        objectives[s["ObjectiveStatus"]] += 1
    return jobs, objectives


def best_training_job(summaries: Sequence[Mapping[str, Any]], maximize: bool) -> dict[str, Any] | None:
    """The completed trial with the best objective (the earliest-launched one on a tie), or None."""
    best: Mapping[str, Any] | None = None
    for s in sorted(summaries, key=lambda s: s["TrainingJobName"]):
        if s["TrainingJobStatus"] != "Completed" or s["ObjectiveStatus"] != "Succeeded":
            continue
        value = s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
        if best is None:
            best = s
            continue
        current = best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
        if (value > current) if maximize else (value < current):
            best = s
    return dict(best) if best is not None else None


_TIME_KEYS = ("CreationTime", "LastModifiedTime", "HyperParameterTuningEndTime", "TrainingStartTime",
              "TrainingEndTime", "ConvergenceDetectedTime")


def with_datetimes(record: Mapping[str, Any]) -> dict[str, Any]:
    """Epoch seconds as timezone-aware datetimes, at every level, as boto returns them."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key in _TIME_KEYS and isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = dt.datetime.fromtimestamp(value, tz=dt.UTC)
        elif isinstance(value, Mapping) and key in ("BestTrainingJob", "OverallBestTrainingJob",
                                                     "TuningJobCompletionDetails"):
            out[key] = with_datetimes(value)
        else:
            out[key] = value
    return out
