"""``sluice.workflow.parameters``: pipeline parameters (SDK ``sagemaker.workflow.parameters``).

A parameter is a named, typed value given when an execution starts, or its default. In the definition::

    {"Name": "Mode", "Type": "String", "DefaultValue": "a", "EnumValues": ["a", "b"]}

and wherever it is used: ``{"Get": "Parameters.Mode"}``. Types are checked here, when the parameter is
made, so a default that does not fit its type is refused before any definition exists.
"""

from __future__ import annotations

import enum
import re
from typing import Any

from sluice.errors import PipelineError
from sluice.workflow.entities import Entity, PipelineVariable

__all__ = [
    "Parameter",
    "ParameterBoolean",
    "ParameterFloat",
    "ParameterInteger",
    "ParameterString",
    "ParameterTypeEnum",
]

_NAME = re.compile(r"[A-Za-z0-9\-_]{1,256}")


class ParameterTypeEnum(enum.Enum):
    """A parameter's type in the definition, with the Python type its values have."""

    STRING = "String"
    INTEGER = "Integer"
    BOOLEAN = "Boolean"
    FLOAT = "Float"

    @property
    def python_type(self) -> type:
        return {"String": str, "Integer": int, "Boolean": bool, "Float": float}[self.value]


def type_problem(parameter_type: ParameterTypeEnum | str, value: Any) -> str | None:
    """Why ``value`` cannot be a value of ``parameter_type`` (None when it can).

    Booleans are not integers here (``True`` is an ``int`` to Python, not to the service); an int is a fine Float.
    """
    kind = ParameterTypeEnum(parameter_type).value
    ok = {
        "String": isinstance(value, str),
        "Integer": isinstance(value, int) and not isinstance(value, bool),
        "Float": isinstance(value, int | float) and not isinstance(value, bool),
        "Boolean": isinstance(value, bool),
    }[kind]
    if ok:
        return None
    have = type(value).__name__
    return f"{value!r} is a{'n' if have[0] in 'aeiou' else ''} {have}, not a{'n' if kind == 'Integer' else ''} {kind}"


class Parameter(PipelineVariable, Entity):
    """A pipeline parameter: ``name``, ``parameter_type`` and an optional ``default_value``."""

    def __init__(self, name: str, parameter_type: ParameterTypeEnum = ParameterTypeEnum.STRING,
                 default_value: Any = None) -> None:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise PipelineError(f"parameter name {name!r} is not allowed: use 1-256 letters, digits, '-' or '_'.")
        self.name = name
        self.parameter_type = ParameterTypeEnum(parameter_type)
        if default_value is not None:
            problem = type_problem(self.parameter_type, default_value)
            if problem:
                raise PipelineError(f"parameter {name!r}: the default value {problem}; give a "
                                    f"{self.parameter_type.python_type.__name__} or no default.")
            if self.parameter_type is ParameterTypeEnum.FLOAT:
                default_value = float(default_value)
        self.default_value = default_value

    @property
    def expr(self) -> dict[str, str]:
        return {"Get": f"Parameters.{self.name}"}

    def to_request(self) -> dict[str, Any]:
        request: dict[str, Any] = {"Name": self.name, "Type": self.parameter_type.value}
        if self.default_value is not None:
            request["DefaultValue"] = self.default_value
        return request


class ParameterString(Parameter):
    """A String parameter, optionally restricted to ``enum_values``."""

    def __init__(self, name: str, default_value: str | None = None, enum_values: list[str] | None = None) -> None:
        super().__init__(name, ParameterTypeEnum.STRING, default_value)
        if enum_values is not None:
            if not enum_values or not all(isinstance(v, str) for v in enum_values):
                raise PipelineError(f"parameter {name!r}: enum_values must be a non-empty list of strings, "
                                    f"not {enum_values!r}.")
            if default_value is not None and default_value not in enum_values:
                raise PipelineError(f"parameter {name!r}: the default {default_value!r} is not one of its "
                                    f"enum_values {enum_values}.")
        self.enum_values = list(enum_values) if enum_values is not None else None

    def to_string(self) -> PipelineVariable:
        """A String parameter already is a string at execution: itself (as the SDK does)."""
        return self

    def to_request(self) -> dict[str, Any]:
        request = super().to_request()
        if self.enum_values:
            request["EnumValues"] = list(self.enum_values)
        return request


class ParameterInteger(Parameter):
    """An Integer parameter."""

    def __init__(self, name: str, default_value: int | None = None) -> None:
        super().__init__(name, ParameterTypeEnum.INTEGER, default_value)


class ParameterFloat(Parameter):
    """A Float parameter (an int default is taken as the same float)."""

    def __init__(self, name: str, default_value: float | None = None) -> None:
        super().__init__(name, ParameterTypeEnum.FLOAT, default_value)


class ParameterBoolean(Parameter):
    """A Boolean parameter."""

    def __init__(self, name: str, default_value: bool | None = None) -> None:
        super().__init__(name, ParameterTypeEnum.BOOLEAN, default_value)
