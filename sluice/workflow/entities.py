"""The base of every pipeline entity: ``PipelineVariable`` (a value known only at execution) and ``Entity``.

A pipeline variable stands for a value the pipeline computes when it runs, so it refuses the operations
that would need that value now (``str()``, ``+``, ``int()``), with the SDK's wording, and compiles to an
expression dict through ``.expr``. :func:`serialize` turns a request that holds such objects into the
plain JSON data of the definition.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

__all__ = ["Entity", "Expression", "PipelineVariable", "PrimitiveType", "RequestType", "serialize"]

PrimitiveType = str | int | bool | float | None
RequestType = dict[str, Any] | list[dict[str, Any]]


class Entity(ABC):
    """Something that compiles to a piece of the definition (a step, a condition, a parameter)."""

    @abstractmethod
    def to_request(self) -> RequestType:
        """The definition JSON for this entity."""


class Expression(ABC):
    """Something that compiles to an expression dict."""

    @property
    @abstractmethod
    def expr(self) -> Any:
        """The expression dict for the definition."""


class PipelineVariable(Expression):
    """A value that exists only while the pipeline runs: parameters, properties, Join, JsonGet, ...

    Why the refusals: ``str(param)`` at definition time would bake a placeholder into a request where the
    runtime value belongs. Use ``.to_string()`` to get a string-typed expression, ``.expr`` to look at it.
    """

    def __str__(self) -> str:
        raise TypeError("Pipeline variables do not support __str__ operation. Please use `.to_string()` to convert "
                        "it to string type in execution time or use `.expr` to translate it to Json for display "
                        f"purpose in Python SDK. (The variable: {self.expr})")

    def __add__(self, other: Any) -> Any:
        raise TypeError("Pipeline variables do not support concatenation. Use sluice.workflow.functions.Join, "
                        "e.g. Join(on='', values=[a, b]).")

    __radd__ = __add__

    def __int__(self) -> int:
        raise TypeError("Pipeline variables do not support __int__ operation: the value exists only at execution.")

    def __float__(self) -> float:
        raise TypeError("Pipeline variables do not support __float__ operation: the value exists only at "
                        "execution.")

    def __iter__(self) -> Any:
        raise TypeError(f"{type(self).__name__} is not iterable: it stands for a value known only at execution.")

    def __deepcopy__(self, memo: dict[int, Any]) -> PipelineVariable:
        return self  # a reference to a runtime value: copies must keep pointing at the same thing

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.expr!r})"

    def to_string(self) -> PipelineVariable:
        """This value as a string at execution: ``{"Std:Join": {"On": "", "Values": [self]}}``."""
        from sluice.workflow.functions import Join

        return Join(on="", values=[self])

    @property
    def _referenced_steps(self) -> list[str]:
        """Names of the steps this value reads from (their properties or outputs)."""
        return []


def serialize(value: Any) -> Any:
    """``value`` with every pipeline variable, condition, entity and enum replaced by its JSON form."""
    if isinstance(value, PipelineVariable):
        return serialize(value.expr)
    if isinstance(value, Entity):
        return serialize(value.to_request())
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): serialize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [serialize(v) for v in value]
    expr = getattr(value, "expr", None)  # PropertyFile and other expression-bearing helpers
    if isinstance(expr, Mapping):
        return serialize(expr)
    return value
