"""``sluice.tuner``: the SDK v2 ``HyperparameterTuner``, running hyperparameter tuning jobs locally.

``fit()`` does what the SDK does: it prepares the estimator's training job under the tuning job's name
(the code bundle lands in ``<bucket>/<tuning-job>/source/``), keeps the estimator's hyperparameters that
are not tuned as static ones, and sends a ``CreateHyperParameterTuningJob`` request. The engine
(:mod:`sluice.runtime.tuning`) runs each trial as a real training job, ``max_parallel_jobs`` at a time.

Strategies: ``Bayesian`` (TPE, through optuna), ``Random`` and ``Grid``; ``Hyperband`` is refused for now.
See ``docs/tuning.md`` for what each does here and where sluice had to choose.
"""

from __future__ import annotations

import contextlib
import json
import logging
from enum import Enum
from typing import TYPE_CHECKING, Any

from sluice.errors import ExecutionError, SpecError
from sluice.estimator import Estimator, EstimatorBase, Framework
from sluice.jobs.naming import base_name_from_image
from sluice.jobs.tuning import config_problems, tuning_job_name, with_datetimes
from sluice.parameter import CategoricalParameter, ContinuousParameter, IntegerParameter, ParameterRange
from sluice.session import Session, _check_status
from sluice.workflow.pipeline_context import runnable_by_pipeline

if TYPE_CHECKING:
    import pandas as pd

    from sluice.runtime.tuning import RunningTuningJob

__all__ = [
    "CategoricalParameter",
    "ContinuousParameter",
    "HyperparameterTuner",
    "HyperparameterTuningJobAnalytics",
    "IntegerParameter",
    "TuningJobCompletionCriteriaConfig",
    "WarmStartConfig",
    "WarmStartTypes",
]

log = logging.getLogger("sluice")

_RANGE_TYPES = {"Continuous": ContinuousParameter, "Integer": IntegerParameter, "Categorical": CategoricalParameter}


class WarmStartTypes(Enum):
    """How a tuning job learns from its parents (sluice seeds the Bayesian strategy with their results)."""

    IDENTICAL_DATA_AND_ALGORITHM = "IdenticalDataAndAlgorithm"
    TRANSFER_LEARNING = "TransferLearning"


class WarmStartConfig:
    """Parent tuning jobs (up to 5) whose results seed this one."""

    def __init__(self, warm_start_type: WarmStartTypes | str, parents: Any) -> None:
        if isinstance(warm_start_type, str):
            try:
                warm_start_type = WarmStartTypes(warm_start_type)
            except ValueError:
                raise SpecError(f"warm_start_type {warm_start_type!r} must be one of "
                                f"{', '.join(t.value for t in WarmStartTypes)}.") from None
        if not parents:
            raise SpecError("WarmStartConfig needs at least one parent tuning job name.")
        self.type = warm_start_type
        self.parents = {parents} if isinstance(parents, str) else set(parents)

    @classmethod
    def from_job_desc(cls, warm_start_config: dict[str, Any] | None) -> WarmStartConfig | None:
        if not warm_start_config or not warm_start_config.get("ParentHyperParameterTuningJobs"):
            return None
        return cls(WarmStartTypes(warm_start_config["WarmStartType"]),
                   [p["HyperParameterTuningJobName"] for p in warm_start_config["ParentHyperParameterTuningJobs"]])

    def to_input_req(self) -> dict[str, Any]:
        return {"WarmStartType": self.type.value,
                "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": p} for p in sorted(self.parents)]}


class TuningJobCompletionCriteriaConfig:
    """When to end a tuning job before ``max_jobs``: a target objective value, or no improvement for a while."""

    def __init__(self, max_number_training_jobs_not_improving: int | None = None,
                 complete_on_convergence: bool | None = None,
                 target_objective_metric_value: float | None = None) -> None:
        self.max_number_training_jobs_not_improving = max_number_training_jobs_not_improving
        self.complete_on_convergence = complete_on_convergence
        self.target_objective_metric_value = target_objective_metric_value

    @classmethod
    def from_job_desc(
        cls, completion_criteria_config: dict[str, Any] | None,
    ) -> TuningJobCompletionCriteriaConfig | None:
        if not completion_criteria_config:
            return None
        convergence = (completion_criteria_config.get("ConvergenceDetected") or {}).get("CompleteOnConvergence")
        return cls(
            (completion_criteria_config.get("BestObjectiveNotImproving") or {}).get(
                "MaxNumberOfTrainingJobsNotImproving"),
            None if convergence is None else convergence == "Enabled",
            completion_criteria_config.get("TargetObjectiveMetricValue"),
        )

    def to_input_req(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.max_number_training_jobs_not_improving is not None:
            out["BestObjectiveNotImproving"] = {
                "MaxNumberOfTrainingJobsNotImproving": self.max_number_training_jobs_not_improving}
        if self.target_objective_metric_value is not None:
            out["TargetObjectiveMetricValue"] = float(self.target_objective_metric_value)
        if self.complete_on_convergence is not None:
            out["ConvergenceDetected"] = {
                "CompleteOnConvergence": "Enabled" if self.complete_on_convergence else "Disabled"}
        return out


class _TuningJob:
    """A started tuning job: ``describe()``, ``wait()``, ``stop()``."""

    def __init__(self, sagemaker_session: Session, tuning_job_name: str,
                 running: RunningTuningJob | None = None) -> None:
        self.sagemaker_session = sagemaker_session
        self.name = tuning_job_name
        self._running = running

    def describe(self) -> dict[str, Any]:
        return self.sagemaker_session.describe_tuning_job(self.name)

    def wait(self) -> dict[str, Any]:
        """Until the tuning job ends; raises if it failed, as the SDK does (``Stopped`` only warns)."""
        if self._running is not None:
            self._running.wait()
            desc = self.describe()
            _check_status(desc, "HyperParameterTuningJobStatus", self.name)
            return desc
        return self.sagemaker_session.wait_for_tuning_job(self.name, poll=0.5)

    def stop(self) -> None:
        self.sagemaker_session.stop_tuning_job(self.name)


class HyperparameterTuner:
    """Runs training jobs of ``estimator`` with hyperparameters from ``hyperparameter_ranges``, keeping the
    best by ``objective_metric_name`` (a metric of ``metric_definitions``)."""

    TUNING_JOB_NAME_MAX_LENGTH = 32
    SAGEMAKER_ESTIMATOR_MODULE = "sagemaker_estimator_module"
    SAGEMAKER_ESTIMATOR_CLASS_NAME = "sagemaker_estimator_class_name"
    DEFAULT_ESTIMATOR_MODULE = "sluice.estimator"
    DEFAULT_ESTIMATOR_CLS_NAME = "Estimator"

    def __init__(
        self,
        estimator: EstimatorBase,
        objective_metric_name: str,
        hyperparameter_ranges: dict[str, ParameterRange],
        metric_definitions: list[dict[str, str]] | None = None,
        strategy: str = "Bayesian",
        objective_type: str = "Maximize",
        max_jobs: int | None = None,
        max_parallel_jobs: int = 1,
        max_runtime_in_seconds: int | None = None,
        tags: list[dict[str, str]] | None = None,
        base_tuning_job_name: str | None = None,
        warm_start_config: WarmStartConfig | None = None,
        strategy_config: Any = None,
        completion_criteria_config: TuningJobCompletionCriteriaConfig | dict[str, Any] | None = None,
        early_stopping_type: str = "Off",
        estimator_name: str | None = None,
        random_seed: int | None = None,
        autotune: bool = False,
        hyperparameters_to_keep_static: list[str] | None = None,
    ) -> None:
        if estimator_name is not None:
            raise SpecError("estimator_name (tuning several estimators in one job, HyperparameterTuner.create) is "
                            "not available in sluice yet; tune one estimator.")
        if autotune:
            raise SpecError("autotune is not available in sluice yet; give hyperparameter_ranges and a strategy.")
        if not hyperparameter_ranges:
            raise SpecError("Need to specify hyperparameter ranges, e.g. {'lr': ContinuousParameter(0.001, 0.1)}.")
        for name, rng in hyperparameter_ranges.items():
            if not isinstance(rng, ParameterRange):
                raise SpecError(f"hyperparameter range {name!r} is a {type(rng).__name__}; give a "
                                "ContinuousParameter, IntegerParameter or CategoricalParameter.")
        self.estimator = estimator
        self.objective_metric_name = objective_metric_name
        self._hyperparameter_ranges = dict(hyperparameter_ranges)
        self.metric_definitions = metric_definitions
        self.strategy = strategy
        self.strategy_config = strategy_config
        self.completion_criteria_config = completion_criteria_config
        self.objective_type = objective_type
        self.max_jobs = 1 if max_jobs is None and strategy != "Grid" else max_jobs
        self.max_parallel_jobs = max_parallel_jobs
        self.max_runtime_in_seconds = max_runtime_in_seconds
        self.tags = tags
        self.base_tuning_job_name = base_tuning_job_name
        self.warm_start_config = warm_start_config
        self.early_stopping_type = early_stopping_type
        self.random_seed = random_seed
        self.autotune = autotune
        self.hyperparameters_to_keep_static = hyperparameters_to_keep_static
        self.estimator_name = estimator_name
        self.latest_tuning_job: _TuningJob | None = None
        self._current_job_name: str | None = None
        self._check()

    # ---- the SDK's surface ------------------------------------------------------------------
    @property
    def sagemaker_session(self) -> Session:
        return self.estimator.sagemaker_session

    def hyperparameter_ranges(self) -> dict[str, list[dict[str, Any]]]:
        """The ranges as the request's ``ParameterRanges`` (categorical values JSON-encoded for frameworks)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for kind in ParameterRange.__all_types__:
            entries = []
            for name, rng in self._hyperparameter_ranges.items():
                if rng.__name__ != kind:
                    continue
                if isinstance(rng, CategoricalParameter) and isinstance(self.estimator, Framework):
                    entries.append(rng.as_json_range(name))
                else:
                    entries.append(rng.as_tuning_range(name))
            out[f"{kind}ParameterRanges"] = entries
        return out

    @runnable_by_pipeline
    def fit(self, inputs: Any = None, job_name: str | None = None, include_cls_metadata: bool = False,
            estimator_kwargs: dict[str, Any] | None = None, wait: bool = True, **kwargs: Any) -> None:
        """Start the tuning job on ``inputs`` (as ``Estimator.fit`` takes them); with ``wait``, until it ends."""
        from sluice.runtime.tuning import start_tuning_job

        if estimator_kwargs:
            raise SpecError("estimator_kwargs applies to tuners of several estimators, which sluice does not have "
                            "yet; pass inputs directly.")
        self._check()
        self._current_job_name = job_name or tuning_job_name(
            self.base_tuning_job_name
            or base_name_from_image(self.estimator.training_image_uri(), default="tuning-job"))
        request = self._build_request(inputs, include_cls_metadata)
        if self.sagemaker_session._intercept_create_request(request, "create_tuning_job"):
            return
        running = start_tuning_job(request, self.sagemaker_session.config)
        self.latest_tuning_job = _TuningJob(self.sagemaker_session, self._current_job_name, running)
        if wait:
            self.latest_tuning_job.wait()

    def wait(self) -> None:
        self._ensure_last_tuning_job().wait()

    def describe(self) -> dict[str, Any]:
        """The ``DescribeHyperParameterTuningJob`` record of the latest tuning job."""
        return self._ensure_last_tuning_job().describe()

    def stop_tuning_job(self) -> None:
        self._ensure_last_tuning_job().stop()

    def best_training_job(self) -> str:
        """The name of the completed training job with the best objective value."""
        return self._get_best_training_job()["TrainingJobName"]

    def best_estimator(self, best_training_job: dict[str, Any] | None = None) -> EstimatorBase:
        """An estimator attached to the best training job (``model_data`` is its model)."""
        name = (best_training_job or self._get_best_training_job())["TrainingJobName"]
        return type(self.estimator).attach(name, sagemaker_session=self.sagemaker_session)

    def analytics(self) -> HyperparameterTuningJobAnalytics:
        return HyperparameterTuningJobAnalytics(self._ensure_last_tuning_job().name, self.sagemaker_session)

    def identical_dataset_and_algorithm_tuner(self, additional_parents: set[str] | None = None) -> HyperparameterTuner:
        """A copy of this tuner warm-started from this tuning job (and ``additional_parents``)."""
        return self._warm_started(WarmStartTypes.IDENTICAL_DATA_AND_ALGORITHM, additional_parents)

    def transfer_learning_tuner(self, additional_parents: set[str] | None = None,
                                estimator: EstimatorBase | None = None) -> HyperparameterTuner:
        """A copy of this tuner (optionally with another estimator) warm-started from this tuning job."""
        return self._warm_started(WarmStartTypes.TRANSFER_LEARNING, additional_parents, estimator)

    @classmethod
    def attach(cls, tuning_job_name: str, sagemaker_session: Session | None = None,
               job_details: dict[str, Any] | None = None, estimator_cls: Any = None) -> HyperparameterTuner:
        """A tuner for an existing tuning job, rebuilt from its record (any process can do this)."""
        sess = sagemaker_session or Session()
        desc = job_details or sess.describe_tuning_job(tuning_job_name)
        config, definition = desc["HyperParameterTuningJobConfig"], desc["TrainingJobDefinition"]
        algo, resources = definition["AlgorithmSpecification"], definition.get("ResourceConfig") or {}
        static = {k: v for k, v in (definition.get("StaticHyperParameters") or {}).items()
                  if not k.startswith("sagemaker_") and k != "_tuning_objective_metric"}
        estimator = Estimator(image_uri=algo.get("TrainingImage", ""), role=definition.get("RoleArn"),
                              instance_count=resources.get("InstanceCount", 1),
                              instance_type=resources.get("InstanceType", "ml.m5.xlarge"),
                              volume_size=resources.get("VolumeSizeInGB", 30), input_mode=algo["TrainingInputMode"],
                              output_path=definition["OutputDataConfig"]["S3OutputPath"],
                              max_run=definition["StoppingCondition"].get("MaxRuntimeInSeconds", 24 * 60 * 60),
                              metric_definitions=algo.get("MetricDefinitions"), hyperparameters=static,
                              sagemaker_session=sess)
        ranges: dict[str, ParameterRange] = {}
        for kind, range_cls in _RANGE_TYPES.items():
            for raw in (config.get("ParameterRanges") or {}).get(f"{kind}ParameterRanges") or []:
                if range_cls is CategoricalParameter:
                    ranges[raw["Name"]] = CategoricalParameter(raw["Values"])
                else:
                    cast = float if range_cls is ContinuousParameter else int
                    ranges[raw["Name"]] = range_cls(cast(raw["MinValue"]), cast(raw["MaxValue"]),
                                                    raw.get("ScalingType", "Auto"))
        limits, objective = config["ResourceLimits"], config["HyperParameterTuningJobObjective"]
        tuner = cls(
            estimator, objective["MetricName"], ranges, strategy=config["Strategy"], objective_type=objective["Type"],
            max_jobs=limits.get("MaxNumberOfTrainingJobs"), max_parallel_jobs=limits["MaxParallelTrainingJobs"],
            max_runtime_in_seconds=limits.get("MaxRuntimeInSeconds"),
            warm_start_config=WarmStartConfig.from_job_desc(desc.get("WarmStartConfig")),
            strategy_config=config.get("StrategyConfig"),
            completion_criteria_config=TuningJobCompletionCriteriaConfig.from_job_desc(
                config.get("TuningJobCompletionCriteria")),
            early_stopping_type=config.get("TrainingJobEarlyStoppingType", "Off"),
            random_seed=config.get("RandomSeed"),
        )
        tuner.latest_tuning_job = _TuningJob(sess, tuning_job_name)
        tuner._current_job_name = tuning_job_name
        return tuner

    # ---- building the request ---------------------------------------------------------------
    def _metric_definitions(self) -> list[dict[str, str]]:
        return list(self.metric_definitions or self.estimator.metric_definitions or [])

    def _defined_metrics(self) -> list[dict[str, str]]:
        """The metrics the trials will report: the request's, or, for an estimator with no entry point and no
        definitions, those the service supplies for its image's built-in algorithm (the engine fills them in;
        the request carries none, as the SDK sends none)."""
        defined = self._metric_definitions()
        if defined or getattr(self.estimator, "entry_point", None):
            return defined
        image = self.estimator.training_image_uri()
        if not isinstance(image, str):
            return defined  # a pipeline parameter's image is known only when the pipeline runs
        from sluice.runtime.algorithms import builtin_metric_definitions

        return builtin_metric_definitions(image, self.sagemaker_session.config)

    def _tuning_config(self) -> dict[str, Any]:
        limits: dict[str, Any] = {"MaxParallelTrainingJobs": self.max_parallel_jobs}
        if self.max_jobs is not None:
            limits["MaxNumberOfTrainingJobs"] = self.max_jobs
        if self.max_runtime_in_seconds is not None:
            limits["MaxRuntimeInSeconds"] = self.max_runtime_in_seconds
        config: dict[str, Any] = {
            "Strategy": self.strategy,
            "HyperParameterTuningJobObjective": {"Type": self.objective_type, "MetricName": self.objective_metric_name},
            "ResourceLimits": limits,
            "ParameterRanges": self.hyperparameter_ranges(),
            "TrainingJobEarlyStoppingType": self.early_stopping_type,
        }
        if self.strategy_config is not None:
            config["StrategyConfig"] = (self.strategy_config.to_input_req()
                                        if hasattr(self.strategy_config, "to_input_req") else self.strategy_config)
        if self.random_seed is not None:
            config["RandomSeed"] = self.random_seed
        criteria = self.completion_criteria_config
        if criteria is not None:
            config["TuningJobCompletionCriteria"] = (criteria.to_input_req() if hasattr(criteria, "to_input_req")
                                                     else dict(criteria))
        return config

    def _check(self) -> None:
        """The tuning job's rules, before any code is uploaded or any job is recorded."""
        problems, _, _ = config_problems(self._tuning_config(), self._defined_metrics())
        if problems:
            lines = "\n".join(f"  - {p}" for p in problems)
            raise SpecError(f"HyperparameterTuner: fix these first:\n{lines}")

    def _build_request(self, inputs: Any, include_cls_metadata: bool) -> dict[str, Any]:
        est = self.estimator
        est._current_job_name = self._current_job_name  # the SDK prepares the estimator under the tuning name
        training = est._build_request(inputs, None)
        algo = training["AlgorithmSpecification"]
        if algo.get("ContainerEntrypoint") or algo.get("ContainerArguments"):
            raise SpecError("a tuning job's training definition has no ContainerEntrypoint or ContainerArguments "
                            "(HyperParameterAlgorithmSpecification); give the estimator an entry_point instead.")
        static = {k: v for k, v in (training.get("HyperParameters") or {}).items()
                  if k not in self._hyperparameter_ranges}
        if include_cls_metadata or isinstance(est, Framework):
            static[self.SAGEMAKER_ESTIMATOR_CLASS_NAME] = json.dumps(type(est).__name__)
            static[self.SAGEMAKER_ESTIMATOR_MODULE] = json.dumps(type(est).__module__)
        definition_algo: dict[str, Any] = {"TrainingImage": algo.get("TrainingImage", ""),
                                           "TrainingInputMode": algo["TrainingInputMode"]}
        metrics = self._metric_definitions()
        if metrics:
            definition_algo["MetricDefinitions"] = metrics
        definition: dict[str, Any] = {
            "AlgorithmSpecification": definition_algo,
            "RoleArn": training["RoleArn"],
            "OutputDataConfig": training["OutputDataConfig"],
            "ResourceConfig": training["ResourceConfig"],
            "StoppingCondition": training["StoppingCondition"],
            "StaticHyperParameters": static,
        }
        for key in ("InputDataConfig", "VpcConfig", "EnableNetworkIsolation", "EnableManagedSpotTraining",
                    "CheckpointConfig", "RetryStrategy", "Environment"):
            if key in training:
                definition[key] = training[key]
        request: dict[str, Any] = {
            "HyperParameterTuningJobName": self._current_job_name,
            "HyperParameterTuningJobConfig": self._tuning_config(),
            "TrainingJobDefinition": definition,
        }
        if self.warm_start_config is not None:
            request["WarmStartConfig"] = self.warm_start_config.to_input_req()
        if self.tags:
            request["Tags"] = self.tags
        return request

    def _ensure_last_tuning_job(self) -> _TuningJob:
        if self.latest_tuning_job is None:
            raise SpecError("this tuner has not started a tuning job: call fit() first, or attach() to one.")
        return self.latest_tuning_job

    def _get_best_training_job(self) -> dict[str, Any]:
        desc = self.describe()
        best = desc.get("BestTrainingJob")
        if best is None:
            counters = desc["TrainingJobStatusCounters"]
            raise ExecutionError(
                f"tuning job {desc['HyperParameterTuningJobName']!r} ({desc['HyperParameterTuningJobStatus']}) has "
                f"no completed training job with a value of {self.objective_metric_name!r} yet (training jobs: "
                f"{', '.join(f'{k} {v}' for k, v in counters.items() if v) or 'none'}); wait() for it, or look at "
                "analytics().dataframe() for what happened.")
        return best

    def _warm_started(self, kind: WarmStartTypes, additional_parents: set[str] | None,
                      estimator: EstimatorBase | None = None) -> HyperparameterTuner:
        parents = {self._ensure_last_tuning_job().name, *(additional_parents or set())}
        return HyperparameterTuner(
            estimator or self.estimator, self.objective_metric_name, self._hyperparameter_ranges,
            metric_definitions=self.metric_definitions, strategy=self.strategy, objective_type=self.objective_type,
            max_jobs=self.max_jobs, max_parallel_jobs=self.max_parallel_jobs,
            max_runtime_in_seconds=self.max_runtime_in_seconds, tags=self.tags,
            base_tuning_job_name=self.base_tuning_job_name, warm_start_config=WarmStartConfig(kind, parents),
            strategy_config=self.strategy_config, completion_criteria_config=self.completion_criteria_config,
            early_stopping_type=self.early_stopping_type, random_seed=self.random_seed)


class HyperparameterTuningJobAnalytics:
    """A tuning job's trials as a table, as ``sagemaker.analytics.HyperparameterTuningJobAnalytics``."""

    def __init__(self, hyperparameter_tuning_job_name: str, sagemaker_session: Session | None = None) -> None:
        self.sagemaker_session = sagemaker_session or Session()
        self.name = hyperparameter_tuning_job_name
        self._tuning_job_describe_result: dict[str, Any] | None = None
        self._training_job_summaries: list[dict[str, Any]] | None = None
        self._dataframe: pd.DataFrame | None = None

    def __repr__(self) -> str:
        return f"<sluice.HyperparameterTuningJobAnalytics for {self.name}>"

    def clear_cache(self) -> None:
        self._tuning_job_describe_result = None
        self._training_job_summaries = None
        self._dataframe = None

    def description(self, force_refresh: bool = False) -> dict[str, Any]:
        if force_refresh or self._tuning_job_describe_result is None:
            self._tuning_job_describe_result = self.sagemaker_session.describe_tuning_job(self.name)
        return self._tuning_job_describe_result

    @property
    def tuning_ranges(self) -> dict[str, dict[str, Any]]:
        """Each tuned hyperparameter's range, by name."""
        ranges = self.description()["HyperParameterTuningJobConfig"]["ParameterRanges"]
        return {r["Name"]: r for kind in ("ContinuousParameterRanges", "IntegerParameterRanges",
                                          "CategoricalParameterRanges") for r in ranges.get(kind) or []}

    def training_job_summaries(self, force_refresh: bool = False) -> list[dict[str, Any]]:
        """``ListTrainingJobsForHyperParameterTuningJob``'s summaries, every page, sorted by name."""
        from sluice.runtime.tuning import list_training_jobs_for_tuning_job

        if force_refresh or self._training_job_summaries is None:
            rows = list_training_jobs_for_tuning_job(self.sagemaker_session.metadata, self.name)
            self._training_job_summaries = [with_datetimes(s) for s in rows]
        return self._training_job_summaries

    def dataframe(self, force_refresh: bool = False) -> pd.DataFrame:
        """One row per training job: its tuned hyperparameters, name, status, objective value and times."""
        try:
            import pandas as pd
        except ImportError:
            raise SpecError("analytics().dataframe() needs pandas: pip install pandas") from None
        if force_refresh or self._dataframe is None:
            self._dataframe = pd.DataFrame([_reshape(s) for s in self.training_job_summaries(force_refresh)])
        return self._dataframe


def _reshape(summary: dict[str, Any]) -> dict[str, Any]:
    """One summary as a dataframe row, exactly as the SDK's analytics builds it."""
    out: dict[str, Any] = {}
    for key, value in summary["TunedHyperParameters"].items():
        with contextlib.suppress(TypeError, ValueError):  # the SDK: numbers as floats, the rest as they are
            value = float(value)
        out[key] = value
    out["TrainingJobName"] = summary["TrainingJobName"]
    out["TrainingJobStatus"] = summary["TrainingJobStatus"]
    out["FinalObjectiveValue"] = summary.get("FinalHyperParameterTuningJobObjectiveMetric", {}).get("Value")
    start, end = summary.get("TrainingStartTime"), summary.get("TrainingEndTime")
    out["TrainingStartTime"] = start
    out["TrainingEndTime"] = end
    if start and end:
        out["TrainingElapsedTimeSeconds"] = (end - start).total_seconds()
    if "TrainingJobDefinitionName" in summary:
        out["TrainingJobDefinitionName"] = summary["TrainingJobDefinitionName"]
    return out

