"""Hyperparameter tuning jobs through the public API: real training jobs of a script whose objective is a known
function of its hyperparameters, ``score = -(x - 2)^2 - (y - 1)^2``."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import sluice
from sluice.errors import ExecutionError, SpecError
from sluice.estimator import Estimator
from sluice.parameter import CategoricalParameter as ParamCategorical
from sluice.tuner import (
    CategoricalParameter,
    ContinuousParameter,
    HyperparameterTuner,
    IntegerParameter,
    TuningJobCompletionCriteriaConfig,
)

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
METRICS = [{"Name": "score", "Regex": r"score=(-?[0-9.]+(?:e-?[0-9]+)?)"}, {"Name": "loss", "Regex": r"loss=([0-9.]+)"}]

# The trial script. ``kind`` picks a behaviour: "ok" prints the score once; "fail" exits non-zero; "silent"
# completes without printing the objective; "good"/"fine"/"bad" print a series of scores, "bad" slowly.
# ``work`` is the script's own short work (seconds). Each run appends start/end lines to $EVENT_LOG.
TRIAL_SCRIPT = textwrap.dedent(
    """
    import argparse, os, sys, time
    p = argparse.ArgumentParser()
    p.add_argument("-x", type=float, default=2.0)  # one-letter names get one dash, as the toolkit passes them
    p.add_argument("-y", type=float, default=1.0)
    p.add_argument("--kind", default="ok")
    p.add_argument("--work", type=float, default=0.0)
    a, _ = p.parse_known_args()
    job = os.environ["TRAINING_JOB_NAME"]

    def event(what):
        if os.environ.get("EVENT_LOG"):
            with open(os.environ["EVENT_LOG"], "a") as f:
                f.write(f"{what} {job} {time.monotonic_ns()}\\n")

    event("start")
    if a.kind.startswith('"'):
        sys.exit("the framework toolkit should have decoded the JSON-encoded value")
    if a.kind == "fail":
        sys.exit(3)
    if a.kind in ("good", "fine", "bad"):
        base = {"good": 10.0, "fine": 9.0, "bad": 0.0}[a.kind]
        steps, pause = (100, 0.1) if a.kind == "bad" else (4, 0.0)
        for step in range(steps):
            print(f"score={base + (step if a.kind != 'bad' else 0):.1f}", flush=True)
            time.sleep(pause)
    else:
        wait_for = int(os.environ.get("WAIT_FOR_ENDS", "0"))
        if a.work >= 1.0 and wait_for:  # the slow trial: hold the slot until the others have ended (or 60 s)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                lines = open(os.environ["EVENT_LOG"]).read().splitlines()
                if sum(line.startswith("end ") for line in lines) >= wait_for:
                    break
                time.sleep(0.01)
        else:
            time.sleep(a.work)
        if a.kind != "silent":
            print(f"loss=1.0 score={-(a.x - 2) ** 2 - (a.y - 1) ** 2:.6f}")
    event("end")
    """
)


@pytest.fixture
def sess(sluice_home: Path) -> sluice.Session:
    return sluice.Session()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text(TRIAL_SCRIPT)
    return src


def estimator(sess: sluice.Session, src: Path, **kw: Any) -> Estimator:
    defaults: dict[str, Any] = dict(
        image_uri=SKLEARN_IMAGE, entry_point="train.py", source_dir=str(src), role=sluice.get_execution_role(),
        instance_count=1, instance_type="ml.m5.xlarge", output_path=f"s3://{sess.default_bucket()}/models",
        metric_definitions=METRICS, sagemaker_session=sess)
    defaults.update(kw)
    return Estimator(**defaults)


def score(x: float, y: float = 1.0) -> float:
    return -(x - 2) ** 2 - (y - 1) ** 2


def trials(tuner: HyperparameterTuner) -> list[dict[str, Any]]:
    return tuner.analytics().training_job_summaries(force_refresh=True)


def objective(summary: dict[str, Any]) -> float | None:
    return summary.get("FinalHyperParameterTuningJobObjectiveMetric", {}).get("Value")


def _unknown_members(value: Any, shape: Any, path: str = "") -> list[str]:
    """Keys of ``value`` that botocore's shape does not have, recursively."""
    if shape.type_name == "structure" and isinstance(value, dict):
        out = []
        for key, item in value.items():
            if key not in shape.members:
                out.append(f"{path}.{key}")
            else:
                out.extend(_unknown_members(item, shape.members[key], f"{path}.{key}"))
        missing = [f"{path}.{m} (required)" for m in shape.required_members if m not in value]
        return out + missing
    if shape.type_name == "list" and isinstance(value, list):
        return [u for i, item in enumerate(value) for u in _unknown_members(item, shape.member, f"{path}[{i}]")]
    return []


def test_max_parallel_jobs_trials_really_run_at_once_and_the_best_is_the_argmax(sess, src, tmp_path, monkeypatch):
    events = tmp_path / "events.log"
    est = estimator(sess, src, hyperparameters={"work": 0.5, "kind": "ok"}, environment={"EVENT_LOG": str(events)})
    tuner = HyperparameterTuner(est, "score", {"x": ContinuousParameter(0, 4), "y": ContinuousParameter(0, 2)},
                                strategy="Random", max_jobs=4, max_parallel_jobs=2, random_seed=11)
    tuner.fit()

    # Event log: each trial's [start, end] interval, in monotonic nanoseconds.
    spans: dict[str, list[int]] = {}
    for line in events.read_text().splitlines():
        what, job, ns = line.split()
        spans.setdefault(job, [0, 0])[0 if what == "start" else 1] = int(ns)
    assert len(spans) == 4
    edges = sorted([(s, 1) for s, _ in spans.values()] + [(e, -1) for _, e in spans.values()])
    running, most = 0, 0
    for _, step in edges:
        running += step
        most = max(most, running)
    assert most == 2  # two at once, never three
    intervals = list(spans.values())
    assert any(a[0] < b[1] and b[0] < a[1] for i, a in enumerate(intervals) for b in intervals[i + 1:])

    desc = tuner.describe()
    assert desc["HyperParameterTuningJobStatus"] == "Completed"
    assert desc["TrainingJobStatusCounters"] == {"Completed": 4, "InProgress": 0, "RetryableError": 0,
                                                 "NonRetryableError": 0, "Stopped": 0}
    assert desc["ObjectiveStatusCounters"] == {"Succeeded": 4, "Pending": 0, "Failed": 0}
    summaries = trials(tuner)
    best = max(summaries, key=objective)
    assert tuner.best_training_job() == best["TrainingJobName"]
    tuned = best["TunedHyperParameters"]
    assert objective(best) == pytest.approx(score(float(tuned["x"]), float(tuned["y"])), abs=1e-5)
    assert desc["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"] == {
        "Type": "Maximize", "MetricName": "score", "Value": objective(best)}

    # Names as SageMaker makes them; each trial's record points at its tuning job; static hyperparameters kept.
    name = desc["HyperParameterTuningJobName"]
    assert len(name) <= 32 and name.startswith("sagemaker-scik")
    for s in summaries:
        assert re.fullmatch(rf"{name}-00[1-4]-[0-9a-f]{{8}}", s["TrainingJobName"])
        record = sess.describe_training_job(s["TrainingJobName"])
        assert record["TuningJobArn"] == desc["HyperParameterTuningJobArn"]
        assert record["HyperParameters"]["work"] == "0.5" and record["HyperParameters"]["kind"] == "ok"
        assert record["HyperParameters"]["_tuning_objective_metric"] == "score"
    assert sorted(s["TrainingJobName"][len(name) + 1:][:3] for s in summaries) == ["001", "002", "003", "004"]

    # The records have the API's shapes.
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    assert _unknown_members(desc, model.operation_model("DescribeHyperParameterTuningJob").output_shape) == []
    list_shape = model.operation_model("ListTrainingJobsForHyperParameterTuningJob").output_shape
    assert _unknown_members({"TrainingJobSummaries": summaries}, list_shape) == []

    # The best estimator is attached to the best job and has its model.
    best_est = tuner.best_estimator()
    assert best_est.latest_training_job.job_name == best["TrainingJobName"]
    assert best_est.model_data.endswith(f"/{best['TrainingJobName']}/output/model.tar.gz")


def test_a_new_trial_starts_as_soon_as_one_ends(sess, src, tmp_path):
    events = tmp_path / "events.log"
    # The slow trial holds its slot until the three others have ended: if the scheduler did not start trials
    # 3 and 4 in the slot trial 1 freed, they could not end first and the assertion below fails.
    est = estimator(sess, src, environment={"EVENT_LOG": str(events), "WAIT_FOR_ENDS": "3"})
    tuner = HyperparameterTuner(est, "score", {"work": CategoricalParameter([0.1, 1.5, 0.2, 0.3])}, strategy="Grid",
                                max_parallel_jobs=2)
    tuner.fit()
    by_work = {s["TunedHyperParameters"]["work"]: s["TrainingJobName"] for s in trials(tuner)}
    spans = {job: {} for job in by_work.values()}
    for line in events.read_text().splitlines():
        what, job, ns = line.split()
        spans[job][what] = int(ns)
    slow = spans[by_work["1.5"]]
    # Trials 3 and 4 ran in the slot trial 1 freed, while trial 2 was still running.
    for work in ("0.2", "0.3"):
        assert slow["start"] < spans[by_work[work]]["start"] < spans[by_work[work]]["end"] < slow["end"]


def test_analytics_dataframe_has_one_row_per_training_job(sess, src):
    est = estimator(sess, src, hyperparameters={"x": 100})  # a static value the tuned one replaces
    tuner = HyperparameterTuner(est, "score", {"x": ContinuousParameter(0, 4)}, strategy="Random",
                                max_jobs=3, max_parallel_jobs=3, random_seed=2)
    tuner.fit()
    df = tuner.analytics().dataframe()
    assert len(df) == 3
    assert list(df.columns) == ["x", "TrainingJobName", "TrainingJobStatus", "FinalObjectiveValue",
                                "TrainingStartTime", "TrainingEndTime", "TrainingElapsedTimeSeconds"]
    assert sorted(df["TrainingJobName"]) == sorted(s["TrainingJobName"] for s in trials(tuner))
    assert set(df["TrainingJobStatus"]) == {"Completed"}
    for _, row in df.iterrows():
        assert row["FinalObjectiveValue"] == pytest.approx(score(row["x"]), abs=1e-5)
        assert row["TrainingElapsedTimeSeconds"] == pytest.approx(
            (row["TrainingEndTime"] - row["TrainingStartTime"]).total_seconds())
    assert tuner.analytics().tuning_ranges == {"x": {"Name": "x", "MinValue": "0", "MaxValue": "4",
                                                     "ScalingType": "Auto"}}


def test_grid_runs_every_combination_once_and_minimize_picks_the_argmin(sess, src):
    tuner = HyperparameterTuner(estimator(sess, src), "score",
                                {"x": CategoricalParameter([0, 1, 3]), "y": CategoricalParameter(["0", "2"])},
                                strategy="Grid", objective_type="Minimize", max_parallel_jobs=3)
    assert tuner.max_jobs is None  # Grid: the grid's size
    tuner.fit()
    summaries = trials(tuner)
    combos = sorted((s["TunedHyperParameters"]["x"], s["TunedHyperParameters"]["y"]) for s in summaries)
    assert combos == [("0", "0"), ("0", "2"), ("1", "0"), ("1", "2"), ("3", "0"), ("3", "2")]
    worst = min(summaries, key=objective)  # Minimize: the lowest score wins
    assert objective(worst) == pytest.approx(score(0, 0))
    assert tuner.best_training_job() == worst["TrainingJobName"]
    assert tuner.describe()["HyperParameterTuningJobConfig"]["ResourceLimits"] == {"MaxParallelTrainingJobs": 3}


def test_bayesian_with_a_seed_is_reproducible_and_improves_on_its_first_trial(sess, src):
    def run() -> tuple[HyperparameterTuner, list[str]]:
        tuner = HyperparameterTuner(estimator(sess, src), "score", {"x": ContinuousParameter(-3.0, 7.0)},
                                    strategy="Bayesian", max_jobs=8, random_seed=7)
        tuner.fit()
        return tuner, [s["TunedHyperParameters"]["x"] for s in trials(tuner)]

    first, xs1 = run()
    _, xs2 = run()
    assert xs1 == xs2 and len(set(xs1)) == 8  # the same suggestions, in the same order
    summaries = trials(first)
    best = first.describe()["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    assert best > objective(summaries[0])
    assert best > -0.5  # close to the optimum at x = 2

    # A tuner warm-started from the first run seeds its search with the parent's results.
    child = first.identical_dataset_and_algorithm_tuner()
    child.max_jobs = 1
    child.fit()
    desc = child.describe()
    assert desc["HyperParameterTuningJobStatus"] == "Completed"
    assert desc["WarmStartConfig"] == {"WarmStartType": "IdenticalDataAndAlgorithm", "ParentHyperParameterTuningJobs": [
        {"HyperParameterTuningJobName": first.latest_tuning_job.name}]}


def test_framework_estimators_get_json_encoded_categorical_values_decoded_by_the_toolkit(sess, src):
    from sluice.sklearn import SKLearn

    est = SKLearn(entry_point="train.py", source_dir=str(src), framework_version="1.2-1",
                  role=sluice.get_execution_role(), instance_count=1, instance_type="ml.m5.large",
                  metric_definitions=METRICS, hyperparameters={"work": 0}, sagemaker_session=sess)
    tuner = HyperparameterTuner(est, "score", {"kind": CategoricalParameter(["ok"]), "x": CategoricalParameter([1, 3])},
                                strategy="Grid")
    tuner.fit()
    assert tuner.hyperparameter_ranges()["CategoricalParameterRanges"][0] == {"Name": "kind", "Values": ['"ok"']}
    static = tuner.describe()["TrainingJobDefinition"]["StaticHyperParameters"]
    assert static["sagemaker_estimator_class_name"] == '"SKLearn"' and static["work"] == "0"
    code = json.loads(static["sagemaker_submit_directory"])  # the code was uploaded once, under the tuning job
    assert code.endswith(f"/{tuner.latest_tuning_job.name}/source/sourcedir.tar.gz")
    assert [objective(s) for s in trials(tuner)] == [pytest.approx(-1.0), pytest.approx(-1.0)]


def test_a_failing_trial_does_not_fail_the_tuning_job(sess, src):
    ranges = {"kind": CategoricalParameter(["ok", "fail", "silent"]), "x": CategoricalParameter([1, 3])}
    tuner = HyperparameterTuner(estimator(sess, src), "score", ranges, strategy="Grid", max_parallel_jobs=2)
    tuner.fit()
    desc = tuner.describe()
    assert desc["HyperParameterTuningJobStatus"] == "Completed"
    assert desc["TrainingJobStatusCounters"]["Completed"] == 4  # ok and silent complete as training jobs ...
    assert desc["TrainingJobStatusCounters"]["NonRetryableError"] == 2
    assert desc["ObjectiveStatusCounters"] == {"Succeeded": 2, "Pending": 0, "Failed": 4}  # ... silent has no objective
    best = desc["BestTrainingJob"]
    assert best["TunedHyperParameters"]["kind"] == "ok"
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(-1.0)
    failed = [s for s in trials(tuner) if s["TrainingJobStatus"] == "Failed"]
    assert all(s["ObjectiveStatus"] == "Failed" and "exited with code 3" in s["FailureReason"] for s in failed)


def test_a_tuning_job_fails_only_when_no_trial_reports_the_objective(sess, src):
    tuner = HyperparameterTuner(estimator(sess, src), "score", {"kind": CategoricalParameter(["fail", "silent"])},
                                strategy="Grid", max_parallel_jobs=2)
    with pytest.raises(ExecutionError, match="No training job reported the objective metric 'score'"):
        tuner.fit()
    assert tuner.describe()["HyperParameterTuningJobStatus"] == "Failed"
    with pytest.raises(ExecutionError, match="no completed training job with a value of 'score'"):
        tuner.best_training_job()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(objective_metric_name="accuracy"), r"'accuracy' is not among the defined metrics \('score', 'loss'\)"),
        (dict(strategy="Grid"), "the Grid strategy takes categorical ranges only, and x is not"),
        (dict(strategy="Hyperband"), "'Hyperband' is not available in sluice yet; use one of Bayesian, Random, Grid"),
        (dict(strategy="Grid", hyperparameter_ranges={"kind": CategoricalParameter(["a", "b", "c"])}, max_jobs=2),
         "the grid has 3 combinations but max_jobs .* is 2"),
        (dict(early_stopping_type="Sometimes"), "early_stopping_type 'Sometimes' must be 'Off' or 'Auto'"),
    ],
)
def test_bad_tuning_arguments_are_refused_before_anything_runs(sess, src, kwargs, message):
    args: dict[str, Any] = dict(objective_metric_name="score", hyperparameter_ranges={"x": ContinuousParameter(0, 4)})
    args.update(kwargs)
    with pytest.raises(SpecError, match=message):
        HyperparameterTuner(estimator(sess, src), **args).fit()
    assert sess.metadata.list_jobs() == []
    assert sess.list_s3_files(sess.default_bucket(), "") == []  # not even the code was uploaded


def test_the_tuners_metric_definitions_define_the_objective_and_reach_the_training_jobs(sess, src):
    est = estimator(sess, src, metric_definitions=None)
    with pytest.raises(SpecError, match="there are no metric_definitions"):
        HyperparameterTuner(est, "score", {"x": ContinuousParameter(0, 4)})
    tuner = HyperparameterTuner(est, "score", {"x": ContinuousParameter(0, 4)}, strategy="Random",
                                metric_definitions=[METRICS[0]], random_seed=1)
    tuner.fit()
    job = sess.describe_training_job(tuner.best_training_job())
    assert job["AlgorithmSpecification"]["MetricDefinitions"] == [METRICS[0]]


def test_scaling_types_shape_random_sampling(sess, src):
    ranges = {"x": ContinuousParameter(1e-4, 1.0, scaling_type="Logarithmic"),
              "y": ContinuousParameter(0.9, 0.9999, scaling_type="ReverseLogarithmic"),
              "k": IntegerParameter(1, 1000, scaling_type="Logarithmic")}
    assert ranges["y"].as_tuning_range("y") == {"Name": "y", "MinValue": "0.9", "MaxValue": "0.9999",
                                                "ScalingType": "ReverseLogarithmic"}
    assert ParamCategorical([1, "b"]).as_tuning_range("c") == {"Name": "c", "Values": ["1", "b"]}
    tuner = HyperparameterTuner(estimator(sess, src), "score", ranges, strategy="Random", max_jobs=12,
                                max_parallel_jobs=2, random_seed=3)
    tuner.fit()
    values = [s["TunedHyperParameters"] for s in trials(tuner)]
    xs, ys, ks = ([float(v[n]) for v in values] for n in ("x", "y", "k"))
    assert all(1e-4 <= x <= 1 for x in xs) and all(0.9 <= y <= 0.9999 for y in ys) and all(1 <= k <= 1000 for k in ks)
    assert all(v["k"].isdigit() for v in values)
    # Linear sampling would put ~1% of x below 0.01, ~10% of y above 0.99 and ~3% of k below 32; log scales
    # put half or more there.
    assert sum(x < 0.01 for x in xs) >= 3
    assert sum(y > 0.99 for y in ys) >= 3
    assert sum(k < 32 for k in ks) >= 3
    with pytest.raises(SpecError, match="Logarithmic scaling needs a range of values greater than 0"):
        HyperparameterTuner(estimator(sess, src), "score", {"x": ContinuousParameter(0, 1, "Logarithmic")})


def test_early_stopping_auto_stops_a_clearly_bad_trial(sess, src):
    # Grid order is the values' order, one trial at a time: two good trials complete, then the bad one reports
    # 0.0 every 0.1 s for 10 s; after three values it is far below the median of the completed ones.
    tuner = HyperparameterTuner(estimator(sess, src), "score", {"kind": CategoricalParameter(["good", "fine", "bad"])},
                                strategy="Grid", early_stopping_type="Auto")
    tuner.fit()
    by_kind = {s["TunedHyperParameters"]["kind"]: s for s in trials(tuner)}
    assert by_kind["good"]["TrainingJobStatus"] == by_kind["fine"]["TrainingJobStatus"] == "Completed"
    bad = by_kind["bad"]
    assert bad["TrainingJobStatus"] == "Stopped"
    assert len(sess.training_job_metrics(bad["TrainingJobName"], "score")) < 100
    transitions = sess.describe_training_job(bad["TrainingJobName"])["SecondaryStatusTransitions"]
    assert "stopped early by the tuning job's median rule" in transitions[-1]["StatusMessage"]
    desc = tuner.describe()
    assert desc["HyperParameterTuningJobStatus"] == "Completed"
    assert desc["TrainingJobStatusCounters"]["Stopped"] == 1
    assert tuner.best_training_job() == by_kind["good"]["TrainingJobName"]


def test_completion_criteria_end_the_search_early(sess, src):
    tuner = HyperparameterTuner(estimator(sess, src), "score", {"x": CategoricalParameter([2, 0, 1, 3])},
                                strategy="Grid",
                                completion_criteria_config=TuningJobCompletionCriteriaConfig(
                                    target_objective_metric_value=0.0))
    tuner.fit()
    assert [s["TunedHyperParameters"]["x"] for s in trials(tuner)] == ["2"]  # x = 2 scores 0.0: target reached
    assert tuner.describe()["HyperParameterTuningJobStatus"] == "Completed"

    tuner = HyperparameterTuner(estimator(sess, src), "score", {"x": CategoricalParameter([2, 0, 1, 3, 4, 5])},
                                strategy="Grid",
                                completion_criteria_config=TuningJobCompletionCriteriaConfig(
                                    max_number_training_jobs_not_improving=3))
    tuner.fit()
    assert [s["TunedHyperParameters"]["x"] for s in trials(tuner)] == ["2", "0", "1", "3"]  # 3 without improving
    assert tuner.describe()["TuningJobCompletionDetails"] == {"NumberOfTrainingJobsObjectiveNotImproving": 3}


def test_describe_and_stop_from_another_process(sess, src):
    est = estimator(sess, src, hyperparameters={"work": 60})
    tuner = HyperparameterTuner(est, "score", {"x": ContinuousParameter(0, 4)}, strategy="Random", max_jobs=3,
                                max_parallel_jobs=1, base_tuning_job_name="slow")
    tuner.fit(wait=False)
    name = tuner.latest_tuning_job.name
    code = textwrap.dedent(f"""
        import json, sluice
        from sluice.tuner import HyperparameterTuner
        row = sluice.Session().metadata.get_job("HyperParameterTuningJob", {name!r})
        desc = HyperparameterTuner.attach({name!r}).describe()
        print(json.dumps({{"row": row.status, "status": desc["HyperParameterTuningJobStatus"],
                          "objective": desc["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"],
                          "creation": type(desc["CreationTime"]).__name__}}))
        sluice.Session().stop_tuning_job({name!r})
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen == {"row": "InProgress", "status": "InProgress",
                    "objective": {"Type": "Maximize", "MetricName": "score"}, "creation": "datetime"}
    tuner.wait()  # a Stopped tuning job warns, as the SDK does
    desc = tuner.describe()
    assert desc["HyperParameterTuningJobStatus"] == "Stopped"
    assert desc["TrainingJobStatusCounters"]["Completed"] == 0 and desc["TrainingJobStatusCounters"]["InProgress"] == 0
    assert all(s["TrainingJobStatus"] == "Stopped" for s in trials(tuner))
    assert isinstance(desc["HyperParameterTuningEndTime"], type(desc["CreationTime"]))
    assert not math.isnan(desc["ConsumedResources"]["RuntimeInSeconds"])


def test_the_tuner_module_pins_its_surface_and_the_sdk_signature():
    import inspect

    import sluice.tuner

    assert set(sluice.tuner.__all__) == {
        "CategoricalParameter", "ContinuousParameter", "HyperparameterTuner", "HyperparameterTuningJobAnalytics",
        "IntegerParameter", "TuningJobCompletionCriteriaConfig", "WarmStartConfig", "WarmStartTypes"}
    params = inspect.signature(HyperparameterTuner).parameters
    assert [(n, p.default) for n, p in params.items()][3:] == [
        ("metric_definitions", None), ("strategy", "Bayesian"), ("objective_type", "Maximize"), ("max_jobs", None),
        ("max_parallel_jobs", 1), ("max_runtime_in_seconds", None), ("tags", None), ("base_tuning_job_name", None),
        ("warm_start_config", None), ("strategy_config", None), ("completion_criteria_config", None),
        ("early_stopping_type", "Off"), ("estimator_name", None), ("random_seed", None), ("autotune", False),
        ("hyperparameters_to_keep_static", None)]
    assert list(inspect.signature(HyperparameterTuner.fit).parameters) == [
        "self", "inputs", "job_name", "include_cls_metadata", "estimator_kwargs", "wait", "kwargs"]
    code = ("import sys, sluice.tuner; "
            "print(sorted(m for m in ('botocore', 'optuna', 'pandas', 'ray', 'sqlalchemy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
