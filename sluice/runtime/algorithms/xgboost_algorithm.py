"""SageMaker's built-in XGBoost algorithm ("algorithm mode"): the program an instance runs when a job on the
XGBoost image names no entry point.

Why: code written for the managed service trains the built-in algorithm with hyperparameters and channels
alone (``Estimator(image_uri=<xgboost image>)``, ``set_hyperparameters(num_round=..., ...)``,
``fit({"train": ..., "validation": ...})``) and then reads ``xgboost-model`` out of ``model.tar.gz``. This
program keeps that contract, after the open-source sagemaker-xgboost-container:

- ``/opt/ml/input/config/hyperparameters.json`` (string values) is validated against the algorithm's table
  (``num_round`` required; unknown names refused; the old ``reg:linear`` runs as ``reg:squarederror``);
- ``/opt/ml/input/config/inputdataconfig.json`` must name a ``train`` channel, may name ``validation``; each
  is ``text/csv`` (label in the first column, no header) or ``text/libsvm`` (the default), in File mode or,
  for CSV, Pipe mode;
- every round is logged as ``[i]#011train-rmse:...#011validation-rmse:...`` (``#011`` is how CloudWatch
  shows the container's tab, and what the service's metric regexes match);
- the model is a pickled ``xgboost.Booster`` at ``/opt/ml/model/xgboost-model``;
- a problem the user can fix ends the job with ``/opt/ml/output/failure`` reading ``ClientError: ...``.

It runs in the image's interpreter, so it imports nothing from sluice and only the standard library at module
level: sluice imports :data:`METRIC_NAMES` from here without needing numpy or xgboost.
"""

from __future__ import annotations

import ast
import csv
import difflib
import io
import json
import os
import pickle
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["HYPERPARAMETERS", "METRIC_NAMES", "MODEL_FILE", "UserError", "main", "parse_channels",
           "parse_hyperparameters"]

MODEL_FILE = "xgboost-model"
TRAIN, VALIDATION = "train", "validation"
CSV, LIBSVM = "csv", "libsvm"

#: Evaluation metrics XGBoost computes itself, by the direction a tuning job should push them.
MAXIMIZE_METRICS = ("auc", "aucpr", "map", "ndcg")
MINIMIZE_METRICS = ("aft-nloglik", "cox-nloglik", "error", "gamma-deviance", "gamma-nloglik",
                    "interval-regression-accuracy", "logloss", "mae", "mape", "merror", "mlogloss", "mphe",
                    "poisson-nloglik", "rmse", "rmsle", "tweedie-nloglik")
METRIC_NAMES = MAXIMIZE_METRICS + MINIMIZE_METRICS
#: The container's own (Python-computed) metrics: known names, not available here yet.
_CONTAINER_ONLY_METRICS = ("accuracy", "balanced_accuracy", "f1", "f1_binary", "f1_macro", "mse", "precision",
                           "precision_macro", "precision_micro", "r2", "recall", "recall_macro", "recall_micro")
_THRESHOLD_METRICS = ("error", "ndcg", "map")  # may be written metric@t

_CONTENT_TYPES = {"csv": CSV, "text/csv": CSV, "libsvm": LIBSVM, "text/libsvm": LIBSVM, "text/x-libsvm": LIBSVM}
_OTHER_KNOWN_TYPES = ("parquet", "application/x-parquet", "recordio-protobuf", "application/x-recordio-protobuf")


class UserError(Exception):
    """A problem the user can fix (a hyperparameter, a channel, the data): reported as ``ClientError``."""


# ---- hyperparameters ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Hyperparameter:
    """One entry of the algorithm's table: how to parse the string and which values are allowed."""

    kind: str  # "int", "float", "str", "list" (comma-separated), "literal" (a Python tuple or nested list)
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    to_xgboost: bool = True  # passed on in the params of xgboost.train

    def describe_range(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        low = "(-inf" if self.low is None else ("(" if self.low_open else "[") + _num(self.low)
        high = "+inf)" if self.high is None else _num(self.high) + (")" if self.high_open else "]")
        return f"in {low}, {high}"

    def in_range(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.high_open and value == self.high)))


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _int(low: float | None = None, high: float | None = None, **kw: Any) -> Hyperparameter:
    return Hyperparameter("int", low, high, **kw)


def _float(low: float | None = None, high: float | None = None, **kw: Any) -> Hyperparameter:
    return Hyperparameter("float", low, high, **kw)


def _choice(*choices: str, **kw: Any) -> Hyperparameter:
    return Hyperparameter("str", choices=choices, **kw)


OBJECTIVES = ("binary:hinge", "binary:logistic", "binary:logitraw", "count:poisson", "multi:softmax",
              "multi:softprob", "rank:map", "rank:ndcg", "rank:pairwise", "reg:absoluteerror", "reg:gamma",
              "reg:linear", "reg:logistic", "reg:pseudohubererror", "reg:quantileerror", "reg:squarederror",
              "reg:squaredlogerror", "reg:tweedie", "survival:aft", "survival:cox")
_OBJECTIVE_ALIASES = {"reg:linear": "reg:squarederror"}  # the container accepts the name XGBoost deprecated

#: The built-in algorithm's hyperparameters (the container's table, plus ``silent`` which older images took).
HYPERPARAMETERS: dict[str, Hyperparameter] = {
    "num_round": _int(1, to_xgboost=False),
    "early_stopping_rounds": _int(1, to_xgboost=False),
    "csv_weights": _int(0, 1, to_xgboost=False),
    "_tuning_objective_metric": Hyperparameter("str", to_xgboost=False),
    "save_model_on_termination": _choice("true", "false", to_xgboost=False),
    "silent": _int(0, 1, to_xgboost=False),
    "verbosity": _int(0, 3),
    "booster": _choice("gbtree", "gblinear", "dart"),
    "nthread": _int(1),
    "eta": _float(0, 1),
    "gamma": _float(0),
    "max_depth": _int(0),
    "min_child_weight": _float(0),
    "max_delta_step": _float(0),
    "subsample": _float(0, 1, low_open=True),
    "colsample_bytree": _float(0, 1, low_open=True),
    "colsample_bylevel": _float(0, 1, low_open=True),
    "colsample_bynode": _float(0, 1, low_open=True),
    "lambda": _float(0),
    "alpha": _float(0),
    "lambda_bias": _float(0, 1),
    "tree_method": _choice("auto", "exact", "approx", "hist", "gpu_hist"),
    "sketch_eps": _float(0, 1, low_open=True, high_open=True),
    "scale_pos_weight": _float(0, low_open=True),
    "updater": Hyperparameter("list"),
    "dsplit": _choice("row", "col"),
    "refresh_leaf": _int(0, 1),
    "process_type": _choice("default", "update"),
    "grow_policy": _choice("depthwise", "lossguide"),
    "max_leaves": _int(0),
    "max_bin": _int(0),
    "predictor": _choice("auto", "cpu_predictor", "gpu_predictor"),
    "monotone_constraints": Hyperparameter("literal"),
    "interaction_constraints": Hyperparameter("literal"),
    "sample_type": _choice("uniform", "weighted"),
    "normalize_type": _choice("tree", "forest"),
    "rate_drop": _float(0, 1),
    "one_drop": _int(0, 1),
    "skip_drop": _float(0, 1),
    "tweedie_variance_power": _float(1, 2, low_open=True, high_open=True),
    "objective": _choice(*OBJECTIVES),
    "num_class": _int(2),
    "base_score": _float(0),
    "eval_metric": Hyperparameter("list"),
    "seed": _int(-(2**31), 2**31 - 1, low_open=True, high_open=True),
    "num_parallel_tree": _int(1),
    "aft_loss_distribution": _choice("normal", "logistic", "extreme"),
    "aft_loss_distribution_scale": _float(0),
    "single_precision_histogram": _choice("true", "false"),
    "deterministic_histogram": _choice("true", "false"),
    "sampling_method": _choice("uniform", "gradient_based"),
    "prob_buffer_row": _float(1, low_open=True),
    "max_cat_to_onehot": _int(1),
}
ALIASES = {"learning_rate": "eta", "min_split_loss": "gamma", "reg_lambda": "lambda", "reg_alpha": "alpha"}


@dataclass
class TrainingConfig:
    """Validated hyperparameters: what ``xgboost.train`` gets, and what the algorithm keeps for itself."""

    params: dict[str, Any]
    num_round: int
    early_stopping_rounds: int | None = None
    csv_weights: int = 0
    eval_metrics: list[str] = field(default_factory=list)


def _unquote(value: Any) -> str:
    """A hyperparameter as the string the user meant: the SDK may JSON-encode strings (``"\\"reg:linear\\""``)."""
    text = str(value).strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            decoded = json.loads(text)
        except ValueError:
            return text
        return str(decoded)
    return text


def _parse_one(name: str, spec: Hyperparameter, raw: Any) -> Any:
    text = _unquote(raw)
    if spec.kind in ("int", "float"):
        try:
            number = float(text)
        except ValueError:
            kind = "an integer" if spec.kind == "int" else "a number"
            raise UserError(f"Hyperparameter {name}: {text!r} is not a number; set it to {kind} "
                            f"{spec.describe_range()}.") from None
        if spec.kind == "int":
            if not number.is_integer():
                raise UserError(f"Hyperparameter {name}: {text!r} is not a whole number; set it to an integer "
                                f"{spec.describe_range()}.")
            number = int(number)
        if not spec.in_range(number):
            raise UserError(f"Hyperparameter {name}: {text} is not {spec.describe_range()}; change it.")
        return number
    if spec.kind == "list":
        return [part.strip() for part in text.split(",") if part.strip()]
    if spec.kind == "literal":
        try:
            ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise UserError(f"Hyperparameter {name}: {text!r} is not a literal list or tuple, e.g. (1,-1) or "
                            "[[0,1],[2,3]].") from None
        return text
    if spec.choices and text not in spec.choices:
        raise UserError(f"Hyperparameter {name}: {text!r} is not {spec.describe_range()}; use one of those.")
    return text


def _check_eval_metric(metric: str) -> None:
    name, _, threshold = metric.partition("@")
    if threshold:
        if name not in _THRESHOLD_METRICS:
            raise UserError(f"Hyperparameter eval_metric: {metric!r} has a threshold, which only "
                            f"{', '.join(_THRESHOLD_METRICS)} take (e.g. error@0.7).")
        try:
            float(threshold)
        except ValueError:
            raise UserError(f"Hyperparameter eval_metric: the threshold in {metric!r} must be a number, "
                            f"e.g. {name}@0.5.") from None
        return
    if name in _CONTAINER_ONLY_METRICS:
        raise UserError(f"Hyperparameter eval_metric: {name!r} is computed by SageMaker's container in Python and "
                        f"is not available in sluice yet; use one XGBoost computes: {', '.join(METRIC_NAMES)}.")
    if name not in METRIC_NAMES:
        raise UserError(f"Hyperparameter eval_metric: {name!r} is not a metric the algorithm knows; use one of "
                        f"{', '.join(METRIC_NAMES)}.")


def _objective_metric(value: str) -> str:
    """The metric of ``_tuning_objective_metric`` (``validation:auc`` → ``auc``), checked."""
    channel, sep, metric = value.partition(":")
    if not sep or channel not in (TRAIN, VALIDATION) or metric.partition("@")[0] not in METRIC_NAMES:
        raise UserError(f"_tuning_objective_metric {value!r} is not a metric of this algorithm; name one as "
                        f"train:<metric> or validation:<metric>, <metric> one of {', '.join(METRIC_NAMES)}.")
    return metric


def parse_hyperparameters(raw: Mapping[str, Any]) -> TrainingConfig:
    """``hyperparameters.json`` → the params of ``xgboost.train``, as the container validates them."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith("sagemaker_"):
            continue  # the training toolkit's own keys: not the algorithm's
        name = ALIASES.get(key, key)
        spec = HYPERPARAMETERS.get(name)
        if spec is None:
            names = sorted(HYPERPARAMETERS) + sorted(ALIASES)
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserError(f"Extraneous hyperparameter found: {key}{hint}. Remove it or correct its name; the "
                            f"built-in XGBoost algorithm knows: {', '.join(names)}.")
        values[name] = _parse_one(name, spec, value)
    if "num_round" not in values:
        raise UserError("Missing required hyperparameter: num_round. Set the number of boosting rounds, e.g. "
                        "estimator.set_hyperparameters(num_round=100).")
    objective = _OBJECTIVE_ALIASES.get(values.get("objective", ""), values.get("objective"))
    if objective is not None:
        values["objective"] = objective
    if objective in ("multi:softmax", "multi:softprob") and "num_class" not in values:
        raise UserError(f"Hyperparameter num_class is required with objective {objective!r}: set it to the number "
                        "of classes.")
    if "num_class" in values and not str(objective or "").startswith("multi:"):
        raise UserError("Hyperparameter num_class applies to multi-class objectives only (multi:softmax, "
                        "multi:softprob); set one of those, or remove num_class.")
    metrics: list[str] = list(values.get("eval_metric") or [])
    for metric in metrics:
        _check_eval_metric(metric)
    tuning = values.get("_tuning_objective_metric")
    if tuning:
        wanted = _objective_metric(tuning)
        if wanted not in metrics:
            metrics.append(wanted)  # as the container does: the tuner's metric must be logged
    classifies = str(objective or "reg:squarederror").startswith(("binary:", "rank:"))
    if any(m.partition("@")[0] in ("auc", "aucpr") for m in metrics) and not classifies:
        raise UserError("Metric 'auc' can only be applied for classification and ranking problems: use a "
                            "binary: or rank: objective, or another eval_metric.")
    silent = values.get("silent")
    params = {k: v for k, v in values.items() if HYPERPARAMETERS[k].to_xgboost}
    if silent == 1 and "verbosity" not in params:
        params["verbosity"] = 0
    if "updater" in params:
        params["updater"] = ",".join(params["updater"])
    params.pop("eval_metric", None)
    if metrics:
        params["eval_metric"] = metrics
    return TrainingConfig(params=params, num_round=values["num_round"],
                          early_stopping_rounds=values.get("early_stopping_rounds"),
                          csv_weights=values.get("csv_weights", 0), eval_metrics=metrics)


# ---- channels ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Channel:
    name: str
    content_type: str  # CSV or LIBSVM
    pipe: bool


def content_type_of(channel: str, value: str | None) -> str:
    """``text/csv``, ``csv``, ``text/csv; label_size=1`` → CSV; ``text/libsvm``, ``libsvm`` or nothing → LIBSVM."""
    if not value:
        return LIBSVM  # the container's default content type
    base, *params = [part.strip() for part in value.lower().split(";")]
    found = _CONTENT_TYPES.get(base)
    if found == CSV:
        for param in params:
            key, _, val = param.partition("=")
            if key.strip() == "label_size" and val.strip() != "1":
                raise UserError(f"Channel {channel!r}: {value!r} is not an accepted csv ContentType; label_size must "
                                "be 1 (the label is the first column).")
        return CSV
    if found == LIBSVM:
        return LIBSVM
    if base in _OTHER_KNOWN_TYPES:
        raise UserError(f"Channel {channel!r}: ContentType {value!r} is not available in sluice yet; convert the "
                        "data to text/csv (label first, no header) or text/libsvm.")
    raise UserError(f"Channel {channel!r}: {value!r} is not an accepted ContentType; use text/csv (or csv) for CSV "
                    "with the label in the first column and no header, or text/libsvm (or libsvm), e.g. "
                    "TrainingInput(s3_uri, content_type='text/csv').")


def parse_channels(data_config: Mapping[str, Mapping[str, Any]]) -> dict[str, Channel]:
    """``inputdataconfig.json`` → the ``train`` (required) and ``validation`` channels, checked."""
    if TRAIN not in data_config:
        given = ", ".join(repr(n) for n in data_config) or "none"
        raise UserError(f"Missing required channel: train (channels given: {given}). The built-in XGBoost "
                        "algorithm reads its data from a channel named 'train', e.g. "
                        "fit({'train': TrainingInput(s3_uri, content_type='text/csv')}).")
    channels: dict[str, Channel] = {}
    for name, value in data_config.items():
        if name == "code":
            continue  # the container accepts it (script mode's code channel) and ignores it in algorithm mode
        if name not in (TRAIN, VALIDATION):
            raise UserError(f"Extraneous channel found: {name}. The built-in XGBoost algorithm reads 'train' and "
                            f"'validation' only; remove {name!r} or rename it.")
        mode = value.get("TrainingInputMode", "File")
        kind = content_type_of(name, value.get("ContentType"))
        if mode == "Pipe" and kind == LIBSVM:
            raise UserError(f"Channel {name!r}: Pipe mode is not supported for LibSVM; use File mode, or CSV data "
                            "(text/csv) in Pipe mode.")
        channels[name] = Channel(name, kind, mode == "Pipe")
    types = {c.content_type for c in channels.values()}
    if len(types) > 1:
        raise UserError("The train and validation channels must have the same ContentType (both text/csv or both "
                        "text/libsvm).")
    return channels


# ---- data --------------------------------------------------------------------------------------------
def _data_files(path: Path) -> list[Path]:
    """The channel's data files, in key order; hidden and ``_``-prefixed names are skipped, as the container does."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted(p for p in path.rglob("*") if p.is_file() and not any(
        part.startswith((".", "_")) for part in p.relative_to(path).parts))


def _delimiter(first_line: str) -> str:
    for candidate in (",", "\t", ";", "|"):
        if candidate in first_line:
            return candidate
    try:
        return csv.Sniffer().sniff(first_line, delimiters=" ").delimiter
    except csv.Error:
        return ","  # one column: any delimiter reads it


def _read_csv(data: bytes, where: str) -> Any:
    import numpy as np

    text = data.decode("utf-8", errors="replace")
    first = next((line for line in text.splitlines() if line.strip()), "")
    if not first:
        return np.empty((0, 0), dtype=np.float32)
    delimiter = _delimiter(first)
    try:
        try:
            import pandas as pd
        except ImportError:
            array = np.genfromtxt(io.StringIO(text), delimiter=delimiter, dtype=np.float32, ndmin=2)
        else:
            frame = pd.read_csv(io.StringIO(text), header=None, sep=delimiter, skip_blank_lines=True)
            array = frame.to_numpy(dtype=np.float32)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{where} is not numeric CSV ({str(exc).splitlines()[0][:200]}); first line "
                        f"{first[:50]!r}. The built-in algorithm reads CSV with the label in the first column and no "
                        "header row: remove any header and non-numeric columns.") from None
    return array


def _csv_matrix(rows: Any, weights: int, where: str) -> Any:
    import xgboost as xgb

    label_columns = 2 if weights else 1
    if rows.ndim != 2 or rows.shape[1] < label_columns:
        raise UserError(f"{where} has {rows.shape[1] if rows.ndim == 2 else 0} column(s); CSV rows need the label "
                        f"first{', then the weight (csv_weights=1)' if weights else ''}, then the features.")
    if weights:
        return xgb.DMatrix(rows[:, 2:], label=rows[:, 0], weight=rows[:, 1])
    return xgb.DMatrix(rows[:, 1:], label=rows[:, 0])


def load_csv(path: Path, pipe: bool, weights: int) -> Any:
    """A channel of CSV files (File mode) or the channel's first-epoch FIFO (Pipe mode) as a DMatrix, or None."""
    import numpy as np

    if pipe:
        fifo = path.parent / f"{path.name}_0"
        with open(fifo, "rb") as fh:
            blocks = [(fh.read(), f"Pipe channel {path.name}")]
    else:
        blocks = [(f.read_bytes(), f"file {f.name!r} of channel {path.name}") for f in _data_files(path)]
    arrays = [a for a in (_read_csv(data, where) for data, where in blocks) if a.size]
    if not arrays:
        return None
    widths = {a.shape[1] for a in arrays}
    if len(widths) > 1:
        raise UserError(f"The files of channel {path.name} have different numbers of columns ({sorted(widths)}); "
                        "every row needs the label and the same features.")
    return _csv_matrix(np.vstack(arrays), weights, f"Channel {path.name}")


def load_libsvm(paths: Mapping[str, Path]) -> dict[str, Any]:
    """The LIBSVM channels as DMatrices, read together so that they share one feature count."""
    import numpy as np
    import xgboost as xgb

    try:
        from scipy.sparse import vstack
        from sklearn.datasets import load_svmlight_files
    except ImportError as exc:
        raise RuntimeError(f"LIBSVM input needs scikit-learn and scipy in the image's environment ({exc}).") from None
    files = {name: _data_files(path) for name, path in paths.items()}
    flat = [f for fs in files.values() for f in fs]
    if not flat:
        return {}
    try:
        loaded = load_svmlight_files([str(f) for f in flat], zero_based=True, dtype="float32")
    except ValueError as exc:
        raise UserError(f"The LIBSVM data could not be read ({exc}); each line must be "
                        "'<label> <index>:<value> ...'. For CSV data set content_type='text/csv'.") from None
    out: dict[str, Any] = {}
    i = 0
    for name, fs in files.items():
        parts = [(loaded[2 * (i + k)], loaded[2 * (i + k) + 1]) for k in range(len(fs))]
        i += len(fs)
        rows = [p for p in parts if p[0].shape[0]]
        if rows:
            out[name] = xgb.DMatrix(vstack([x for x, _ in rows]).tocsr(), label=np.concatenate([y for _, y in rows]))
    return out


# ---- training ----------------------------------------------------------------------------------------
def _fmt(value: float) -> str:
    return f"{value:.5f}"


def _round_logger(write: Callable[[str], None]) -> Any:
    import xgboost as xgb

    class RoundLog(xgb.callback.TrainingCallback):  # type: ignore[misc]
        """Prints each round as the container's log shows it: ``[i]#011train-rmse:x#011validation-rmse:y``."""

        def after_iteration(self, model: Any, epoch: int, evals_log: Mapping[str, Mapping[str, Any]]) -> bool:
            parts = [f"[{epoch}]"]
            for data, metrics in evals_log.items():
                for metric, history in metrics.items():
                    value = history[-1]
                    value = value[0] if isinstance(value, tuple) else value  # (mean, std) from cv
                    parts.append(f"{data}-{metric}:{_fmt(float(value))}")
            write("#011".join(parts))
            return False

    return RoundLog()


def train(config: TrainingConfig, matrices: Mapping[str, Any], model_dir: Path,
          write: Callable[[str], None] = print) -> Any:
    """Boost ``num_round`` rounds on ``train``, watching ``validation`` too; save the pickled Booster."""
    import xgboost as xgb

    dtrain = matrices[TRAIN]
    evals = [(dtrain, TRAIN)]
    write(f"Train matrix has {dtrain.num_row()} rows and {dtrain.num_col()} columns")
    if VALIDATION in matrices:
        evals.append((matrices[VALIDATION], VALIDATION))
        write(f"Validation matrix has {matrices[VALIDATION].num_row()} rows")
    try:
        booster = xgb.train(config.params, dtrain, num_boost_round=config.num_round, evals=evals,
                            early_stopping_rounds=config.early_stopping_rounds, verbose_eval=False,
                            callbacks=[_round_logger(write)])
    except xgb.core.XGBoostError as exc:
        message = str(exc).strip().splitlines()
        detail = next((line for line in reversed(message) if line.strip()), str(exc))
        raise UserError(f"XGBoost refused the data or hyperparameters: {detail[:400]}") from None
    model_dir.mkdir(parents=True, exist_ok=True)
    with open(model_dir / MODEL_FILE, "wb") as fh:
        pickle.dump(booster, fh)
    write(f"Stored trained model at {model_dir / MODEL_FILE}")
    return booster


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise RuntimeError(f"{what} at {path} is not JSON: {exc}") from None


def run(base: Path, write: Callable[[str], None] = print) -> None:
    """Validate everything first (fail fast, as the container does), then load the data and train."""
    config = parse_hyperparameters(_read_json(base / "input/config/hyperparameters.json", "hyperparameters.json"))
    channels = parse_channels(_read_json(base / "input/config/inputdataconfig.json", "inputdataconfig.json"))
    hosts = _read_json(base / "input/config/resourceconfig.json", "resourceconfig.json").get("hosts") or ["algo-1"]
    if len(hosts) > 1:
        raise UserError(f"Distributed training ({len(hosts)} hosts) of the built-in XGBoost algorithm is not available "
                        "in sluice yet; use instance_count=1.")
    data = base / "input/data"
    if channels[TRAIN].content_type == LIBSVM:
        matrices = load_libsvm({name: data / name for name in channels})
    else:
        matrices = {}
        for name, channel in channels.items():
            matrix = load_csv(data / name, channel.pipe, config.csv_weights if name == TRAIN else 0)
            if matrix is not None:
                matrices[name] = matrix
    if TRAIN not in matrices:
        raise UserError(f"No data in training channel path {data / TRAIN}: the train channel's S3 prefix holds no "
                        "rows. Check the S3 URI given to fit().")
    if VALIDATION in channels and VALIDATION not in matrices:
        raise UserError(f"No data in validation channel path {data / VALIDATION}: check the S3 URI of the validation "
                        "channel, or leave the channel out.")
    write("Single node training.")
    train(config, matrices, base / "model", write)


def _write_failure(base: Path, text: str) -> None:
    try:
        out = base / "output"
        out.mkdir(parents=True, exist_ok=True)
        (out / "failure").write_text(text)
    except OSError:
        pass  # the message is in the log either way


def main(argv: Iterable[str] | None = None) -> int:
    """Run the algorithm in the instance's ``/opt/ml`` (``SAGEMAKER_BASE_DIR`` when there is no sandbox)."""
    base = Path(os.environ.get("SAGEMAKER_BASE_DIR") or "/opt/ml")
    try:
        run(base, lambda line: print(line, flush=True))
    except UserError as exc:
        message = f"ClientError: {exc}"
        print(message, file=sys.stderr, flush=True)
        _write_failure(base, message)
        return 2
    except Exception as exc:
        traceback.print_exc()
        message = f"AlgorithmError: {type(exc).__name__}: {exc}"
        _write_failure(base, message)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
