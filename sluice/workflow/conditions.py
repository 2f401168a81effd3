"""``sluice.workflow.conditions``: the conditions of a ``ConditionStep`` (SDK ``sagemaker.workflow.conditions``).

Definition forms (contract 5.5)::

    {"Type": "Equals" | "GreaterThan" | "GreaterThanOrEqualTo" | "LessThan" | "LessThanOrEqualTo",
     "LeftValue": ..., "RightValue": ...}
    {"Type": "In", "QueryValue": ..., "Values": [...]}
    {"Type": "Not", "Condition": {...}}
    {"Type": "Or", "Conditions": [...]}

Operands whose type is known before the run (literals, parameters, execution variables, properties and
``Join``) are checked when the condition is made: ``ConditionGreaterThan(ParameterString("Mode"), 5)`` is
refused there, not hours later when the service evaluates it. :func:`comparison_problem` is the rule; the
validator applies the same rule to parsed definitions.
"""

from __future__ import annotations

import enum
import json
from typing import Any

from sluice.errors import PipelineError
from sluice.workflow.entities import Entity, PipelineVariable, serialize
from sluice.workflow.expressions import literal_kind

__all__ = [
    "Condition",
    "ConditionComparison",
    "ConditionEquals",
    "ConditionGreaterThan",
    "ConditionGreaterThanOrEqualTo",
    "ConditionIn",
    "ConditionLessThan",
    "ConditionLessThanOrEqualTo",
    "ConditionNot",
    "ConditionOr",
    "ConditionTypeEnum",
    "comparison_problem",
]


class ConditionTypeEnum(enum.Enum):
    EQ = "Equals"
    GT = "GreaterThan"
    GTE = "GreaterThanOrEqualTo"
    IN = "In"
    LT = "LessThan"
    LTE = "LessThanOrEqualTo"
    NOT = "Not"
    OR = "Or"


ORDERING = frozenset({"GreaterThan", "GreaterThanOrEqualTo", "LessThan", "LessThanOrEqualTo"})
_NUMBERS = frozenset({"integer", "float"})
_VALUES = frozenset({"string", "integer", "float", "boolean", "timestamp"})


def comparison_problem(condition_type: str, left: str | None, right: str | None) -> str | None:
    """Why comparing a ``left``-kind value with a ``right``-kind one under ``condition_type`` cannot work.

    Kinds: string, integer, float, boolean, timestamp (values); structure, list, map (not values); None
    (not known before the run: a JsonGet, a ``@step`` result). Integers and floats compare with each other.
    Ordering needs two numbers, two strings or two timestamps; Equals and In need the same kind.
    """
    for kind in (left, right):
        if kind is not None and kind not in _VALUES:
            return f"a {kind} is not a value that can be compared; point the property path at a single value"
    if left is None or right is None:
        return None
    if condition_type in ORDERING:
        if "boolean" in (left, right):
            return "booleans have no order; use ConditionEquals"
        if {left, right} <= _NUMBERS or left == right or {left, right} == {"string", "timestamp"}:
            return None
        return f"{condition_type} needs two numbers (or two strings), not a{_an(left)} {left} and a{_an(right)} {right}"
    if left == right or {left, right} <= _NUMBERS:
        return None
    return f"a{_an(left)} {left} never equals a{_an(right)} {right}"


def _an(kind: str | None) -> str:
    return "n" if (kind or "")[:1] in ("a", "e", "i", "o", "u") else ""


def kind_of(value: Any) -> str | None:
    """The kind of a Python operand, when it is known before the run."""
    from sluice.workflow.execution_variables import ExecutionVariable
    from sluice.workflow.functions import Join
    from sluice.workflow.parameters import Parameter
    from sluice.workflow.pipeline_experiment_config import PipelineExperimentConfigProperty
    from sluice.workflow.properties import Properties

    if (kind := literal_kind(value)) is not None:
        return kind
    if isinstance(value, Parameter):
        return value.parameter_type.value.lower()
    if isinstance(value, ExecutionVariable | Join | PipelineExperimentConfigProperty):
        return "string"
    if isinstance(value, Properties):
        return value._kind
    return None


def describe_operand(data: Any, kind: str | None) -> str:
    """``Parameters.Mode (a string parameter)`` / ``5 (an integer)``: an operand's JSON form, for messages."""
    if isinstance(data, dict) and isinstance(data.get("Get"), str):
        target = data["Get"]
        noun = {"Parameters": "parameter", "Steps": "property"}.get(target.split(".", 1)[0], "value")
        return f"{target} (a{_an(kind)} {kind} {noun})" if kind else target
    if isinstance(data, dict) and "Std:Join" in data:
        return "a Join (a string)"
    if isinstance(data, dict):
        return json.dumps(data)[:100]
    return f"{json.dumps(data)} (a{_an(kind)} {kind})" if kind else json.dumps(data)


class Condition(Entity):
    """A condition; a ``ConditionStep`` takes the AND of its list of them."""

    condition_type: ConditionTypeEnum

    @property
    def _referenced_steps(self) -> list[str]:
        return []


def _steps_of(*values: Any) -> list[str]:
    return [n for v in values if isinstance(v, PipelineVariable | Condition) for n in v._referenced_steps]


class ConditionComparison(Condition):
    """``left <op> right``; either side a primitive or a pipeline variable."""

    def __init__(self, condition_type: ConditionTypeEnum, left: Any, right: Any) -> None:
        self.condition_type = ConditionTypeEnum(condition_type)
        self.left, self.right = left, right
        lk, rk = kind_of(left), kind_of(right)
        problem = comparison_problem(self.condition_type.value, lk, rk)
        if problem:
            raise PipelineError(f"{type(self).__name__} compares {describe_operand(serialize(left), lk)} with "
                                f"{describe_operand(serialize(right), rk)}: {problem}.")

    def to_request(self) -> dict[str, Any]:
        return {"Type": self.condition_type.value, "LeftValue": serialize(self.left),
                "RightValue": serialize(self.right)}

    @property
    def _referenced_steps(self) -> list[str]:
        return _steps_of(self.left, self.right)


class ConditionEquals(ConditionComparison):
    def __init__(self, left: Any, right: Any) -> None:
        super().__init__(ConditionTypeEnum.EQ, left, right)


class ConditionGreaterThan(ConditionComparison):
    def __init__(self, left: Any, right: Any) -> None:
        super().__init__(ConditionTypeEnum.GT, left, right)


class ConditionGreaterThanOrEqualTo(ConditionComparison):
    def __init__(self, left: Any, right: Any) -> None:
        super().__init__(ConditionTypeEnum.GTE, left, right)


class ConditionLessThan(ConditionComparison):
    def __init__(self, left: Any, right: Any) -> None:
        super().__init__(ConditionTypeEnum.LT, left, right)


class ConditionLessThanOrEqualTo(ConditionComparison):
    def __init__(self, left: Any, right: Any) -> None:
        super().__init__(ConditionTypeEnum.LTE, left, right)


class ConditionIn(Condition):
    """``value in in_values``."""

    condition_type = ConditionTypeEnum.IN

    def __init__(self, value: Any, in_values: list[Any]) -> None:
        if not isinstance(in_values, list | tuple) or not in_values:
            raise PipelineError(f"ConditionIn needs a non-empty list of values, not {in_values!r}.")
        self.value, self.in_values = value, list(in_values)
        vk = kind_of(value)
        for item in self.in_values:
            ik = kind_of(item)
            problem = comparison_problem("Equals", vk, ik)
            if problem:
                raise PipelineError(f"ConditionIn looks for {describe_operand(serialize(value), vk)} among values that "
                                    f"include {describe_operand(serialize(item), ik)}: {problem}.")

    def to_request(self) -> dict[str, Any]:
        return {"Type": "In", "QueryValue": serialize(self.value), "Values": serialize(self.in_values)}

    @property
    def _referenced_steps(self) -> list[str]:
        return _steps_of(self.value, *self.in_values)


class ConditionNot(Condition):
    """The negation of ``expression``."""

    condition_type = ConditionTypeEnum.NOT

    def __init__(self, expression: Condition) -> None:
        if not isinstance(expression, Condition):
            raise PipelineError(f"ConditionNot takes a condition, not {expression!r}.")
        self.expression = expression

    def to_request(self) -> dict[str, Any]:
        return {"Type": "Not", "Condition": self.expression.to_request()}

    @property
    def _referenced_steps(self) -> list[str]:
        return self.expression._referenced_steps


class ConditionOr(Condition):
    """True when any of ``conditions`` is."""

    condition_type = ConditionTypeEnum.OR

    def __init__(self, conditions: list[Condition] | None = None) -> None:
        self.conditions = list(conditions or [])
        if not self.conditions or not all(isinstance(c, Condition) for c in self.conditions):
            raise PipelineError(f"ConditionOr takes a non-empty list of conditions, not {conditions!r}.")

    def to_request(self) -> dict[str, Any]:
        return {"Type": "Or", "Conditions": [c.to_request() for c in self.conditions]}

    @property
    def _referenced_steps(self) -> list[str]:
        return _steps_of(*self.conditions)
