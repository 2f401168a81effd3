"""SageMaker's built-in algorithms: what an instance runs when a job's image has one and names no entry point.

Why: on the managed service, a training job on the XGBoost image with no ``sagemaker_program`` runs the
image's own algorithm ("algorithm mode"), and the service supplies that algorithm's metric definitions
(``train:rmse``, ``validation:auc``, ...) so that ``FinalMetricDataList`` and tuning objectives work with none
in the request. :func:`builtin_algorithm` says which environments have such an algorithm; the program itself
runs in the sandbox, with the environment's interpreter, like any entry point.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice.config import Config
from sluice.runtime.algorithms import xgboost_algorithm
from sluice.runtime.environments import Environment, resolve_image

__all__ = ["BUILTIN_ALGORITHMS", "BuiltinAlgorithm", "builtin_algorithm", "builtin_metric_definitions"]

#: A metric value as XGBoost prints it (``0.12345``, ``-1.5e-05``, ``nan`` is not a value).
_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


@dataclass(frozen=True)
class BuiltinAlgorithm:
    """A built-in algorithm: the program file an instance runs, and the metrics its log lines carry."""

    name: str
    program: Path
    metric_definitions: tuple[tuple[str, str], ...]

    def argv(self) -> list[str]:
        """The instance's command: the program, run by ``python`` (the environment's interpreter on PATH).

        The program is run as a file, not ``-m sluice...``, so an image mapped to an interpreter without sluice
        installed still runs it."""
        return ["python", str(self.program)]

    def metric_definitions_request(self) -> list[dict[str, str]]:
        """The definitions in the request's shape, ``[{"Name": ..., "Regex": ...}]``."""
        return [{"Name": name, "Regex": regex} for name, regex in self.metric_definitions]


def _xgboost_metric_definitions() -> tuple[tuple[str, str], ...]:
    """``train:<m>`` and ``validation:<m>`` for every metric XGBoost computes, matched on lines such as
    ``[3]#011train-rmse:1.23450#011validation-rmse:1.50000``."""
    out = []
    for channel in (xgboost_algorithm.TRAIN, xgboost_algorithm.VALIDATION):
        for metric in xgboost_algorithm.METRIC_NAMES:
            regex = rf".*\[[0-9]+\].*#011{channel}-{re.escape(metric)}:{_NUMBER}"
            out.append((f"{channel}:{metric}", regex))
    return tuple(out)


XGBOOST = BuiltinAlgorithm("xgboost", Path(xgboost_algorithm.__file__).resolve(), _xgboost_metric_definitions())

BUILTIN_ALGORITHMS: dict[str, BuiltinAlgorithm] = {"xgboost": XGBOOST}
"""Environment name (see :mod:`sluice.runtime.environments`) → its built-in algorithm."""


def builtin_algorithm(environment: Environment) -> BuiltinAlgorithm | None:
    """The built-in algorithm of ``environment``'s image, or None when the image has none."""
    return BUILTIN_ALGORITHMS.get(environment.name)


def builtin_metric_definitions(image_uri: str | None, config: Config | None = None) -> list[dict[str, Any]]:
    """The metric definitions the service supplies for ``image_uri``'s built-in algorithm (``[]`` if none).

    For callers that build or check requests before a job runs (a tuner whose objective is ``validation:rmse``
    with no ``metric_definitions``)."""
    algorithm = builtin_algorithm(resolve_image(image_uri, config))
    return algorithm.metric_definitions_request() if algorithm else []
