"""``sluice.parameter``: the ranges a hyperparameter tuning job searches, as in the SageMaker SDK v2.

Each range turns into the API's ``*ParameterRanges`` entry with :meth:`as_tuning_range`; every value is a
string there, because that is what ``CreateHyperParameterTuningJob`` takes. The tuning engine samples from
those request dicts, not from these objects, so a request written by hand tunes the same way.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from sluice.errors import SpecError

__all__ = ["CategoricalParameter", "ContinuousParameter", "IntegerParameter", "ParameterRange", "ScalingType"]


class ScalingType:
    """The API's ``HyperParameterScalingType`` values."""

    AUTO = "Auto"
    LINEAR = "Linear"
    LOGARITHMIC = "Logarithmic"
    REVERSE_LOGARITHMIC = "ReverseLogarithmic"

    ALL: ClassVar[tuple[str, ...]] = (AUTO, LINEAR, LOGARITHMIC, REVERSE_LOGARITHMIC)


def _to_string(value: Any) -> str:
    """As the SDK's ``to_string``: the API wants every range bound and value as a string."""
    return str(value)


class ParameterRange:
    """A numeric range: ``min_value``, ``max_value`` and how the search spreads over it."""

    __all_types__: ClassVar[tuple[str, ...]] = ("Continuous", "Categorical", "Integer")
    __name__ = "ParameterRange"  # instances answer their kind's name; the SDK keys range kinds by it

    def __init__(self, min_value: float | int, max_value: float | int, scaling_type: str = "Auto") -> None:
        if scaling_type not in ScalingType.ALL:
            raise SpecError(f"scaling_type {scaling_type!r} is not one of {', '.join(ScalingType.ALL)}.")
        self.min_value = min_value
        self.max_value = max_value
        self.scaling_type = scaling_type

    def is_valid(self, value: Any) -> bool:
        return self.min_value <= value <= self.max_value

    @classmethod
    def cast_to_type(cls, value: Any) -> Any:
        return float(value)

    def as_tuning_range(self, name: str) -> dict[str, str]:
        """This range as an entry of ``ParameterRanges.<Kind>ParameterRanges``."""
        return {"Name": name, "MinValue": _to_string(self.min_value), "MaxValue": _to_string(self.max_value),
                "ScalingType": self.scaling_type}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.min_value!r}, {self.max_value!r}, scaling_type={self.scaling_type!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the SDK's


class ContinuousParameter(ParameterRange):
    """A real-valued hyperparameter in ``[min_value, max_value]``."""

    __name__ = "Continuous"

    @classmethod
    def cast_to_type(cls, value: Any) -> float:
        return float(value)


class IntegerParameter(ParameterRange):
    """An integer hyperparameter in ``[min_value, max_value]``, both ends included."""

    __name__ = "Integer"

    @classmethod
    def cast_to_type(cls, value: Any) -> int:
        return int(value)


class CategoricalParameter(ParameterRange):
    """A hyperparameter that takes one of ``values`` (kept as strings, as the API does)."""

    __name__ = "Categorical"

    def __init__(self, values: Any) -> None:
        items = list(values) if isinstance(values, list | tuple) else [values]
        if not items:
            raise SpecError("CategoricalParameter needs at least one value, e.g. CategoricalParameter(['a', 'b']).")
        self.values = [_to_string(v) for v in items]

    def is_valid(self, value: Any) -> bool:
        return value in self.values

    @classmethod
    def cast_to_type(cls, value: Any) -> str:
        return _to_string(value)

    def as_tuning_range(self, name: str) -> dict[str, Any]:
        return {"Name": name, "Values": list(self.values)}

    def as_json_range(self, name: str) -> dict[str, Any]:
        """Values JSON-encoded: framework containers ``json.loads`` every hyperparameter they receive."""
        return {"Name": name, "Values": [json.dumps(v) for v in self.values]}

    def __repr__(self) -> str:
        return f"CategoricalParameter({self.values!r})"
