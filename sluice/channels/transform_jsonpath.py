"""The JSONPath subset batch transform's ``InputFilter`` and ``OutputFilter`` accept, parsed and applied.

SageMaker documents these operators and no others (DevGuide ``batch-transform-data-processing.md``):

==================  =========================================================================
``$``               the whole record (the default: no filtering)
``.name``           an object's member ``name``
``*``               every member or element (``.*`` or ``[*]``)
``['a','b']``       the named members of an object (quotes ``'`` or ``"``)
``[i,j]``           the elements at indices ``i``, ``j``; negative indices count from the end
``[start:end]``     a slice; either bound may be left out, and either may be negative
==================  =========================================================================

Anything else — recursive descent ``..``, filters ``[?(...)]``, script expressions ``[(...)]``, slice
steps ``[::2]``, functions — is refused by :func:`parse_filter` with the operator list, before the job
starts. jsonpath-ng would accept much more than this; a small hand-written parser is the simplest way to
accept exactly the subset.

**Slices follow Python.** The DevGuide says ``$[1:4]`` selects "the 2nd through 5th" columns, which
matches neither JSONPath nor Python nor its own other examples; sluice takes ``[start:end]`` as a Python
slice, end excluded: ``$[1:4]`` is the 2nd, 3rd and 4th elements, ``$[1:]`` drops the first, ``$[-1:]``
keeps the last.

**Results.** ``.name``, ``['name']`` and ``[i]`` select one value; ``[i,j]``, slices and ``*`` select
a list; ``['a','b']`` selects an object holding just those members, in that order (so
``$['id','SageMakerOutput']`` keeps two members of a joined JSON record). A step after a list-selecting
step applies to each selected value (``$[*].score``). A member or index that is not there is an error
for that record, which fails its object with the path and the record in the message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["FilterError", "JsonPath", "parse_filter"]

MAX_LENGTH = 63  # the API's JsonPath shape

SUPPORTED = ("$", ".name", "*", "['a','b']", "[i,j] (negative indices allowed)", "[start:end]")


class FilterError(ValueError):
    """A filter is outside the supported subset, or does not apply to a record."""


@dataclass(frozen=True)
class _Name:
    names: tuple[str, ...]
    bracketed: bool = False  # ['a'] keeps one name as a value; ['a','b'] builds an object

    @property
    def many(self) -> bool:
        return len(self.names) > 1


@dataclass(frozen=True)
class _Index:
    indices: tuple[int, ...]

    @property
    def many(self) -> bool:
        return len(self.indices) > 1


@dataclass(frozen=True)
class _Slice:
    start: int | None
    end: int | None
    many = True


@dataclass(frozen=True)
class _Wildcard:
    many = True


_Step = _Name | _Index | _Slice | _Wildcard

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_INT = re.compile(r"\s*(-?\d+)\s*")
_QUOTED = re.compile(r"\s*(?:'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\")\s*")


@dataclass(frozen=True)
class JsonPath:
    """A parsed filter. :meth:`apply` selects from a decoded JSON value (a CSV row is a list of strings)."""

    text: str
    steps: tuple[_Step, ...]

    @property
    def is_identity(self) -> bool:
        return not self.steps

    @property
    def uses_names(self) -> bool:
        """Whether the path selects object members: it then cannot apply to CSV rows, which are arrays."""
        return any(isinstance(s, _Name) for s in self.steps)

    def apply(self, value: Any) -> Any:
        return _apply(self.steps, value, self.text)


def parse_filter(text: str, field: str = "filter") -> JsonPath:
    """Parse ``text`` into a :class:`JsonPath`, or raise :class:`FilterError` naming ``field`` and the problem."""
    if not isinstance(text, str):
        raise FilterError(f"{field} must be a JSONPath string such as '$[1:]', not {text!r}.")
    if len(text) > MAX_LENGTH:
        raise FilterError(f"{field} {text!r} is {len(text)} characters; the API allows at most {MAX_LENGTH}.")
    s = text.strip()
    if not s.startswith("$"):
        raise _refuse(field, text, "it must start with '$'")
    pos = 1
    steps: list[_Step] = []
    while pos < len(s):
        ch = s[pos]
        if s.startswith("..", pos):
            raise _refuse(field, text, "recursive descent '..' is not supported")
        if ch == ".":
            pos += 1
            if pos < len(s) and s[pos] == "*":
                steps.append(_Wildcard())
                pos += 1
                continue
            m = _IDENT.match(s, pos)
            if not m:
                raise _refuse(field, text, f"expected a member name after '.' at position {pos}")
            steps.append(_Name((m.group(0),)))
            pos = m.end()
        elif ch == "[":
            end = _closing_bracket(s, pos)
            if end < 0:
                raise _refuse(field, text, f"the '[' at position {pos} is never closed")
            steps.append(_bracket(s[pos + 1 : end], field, text))
            pos = end + 1
        else:
            raise _refuse(field, text, f"unexpected {ch!r} at position {pos}")
    return JsonPath(text, tuple(steps))


def _closing_bracket(s: str, start: int) -> int:
    quote = None
    i = start + 1
    while i < len(s):
        c = s[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "]":
            return i
        i += 1
    return -1


def _bracket(inner: str, field: str, text: str) -> _Step:
    body = inner.strip()
    if body == "*":
        return _Wildcard()
    if body.startswith(("?", "(")):
        raise _refuse(field, text, f"filter and script expressions like [{body}] are not supported")
    if body[:1] in ("'", '"'):
        names = []
        for part in _split_top(body):
            m = _QUOTED.fullmatch(part)
            if not m:
                raise _refuse(field, text, f"[{inner}] must list quoted member names like ['a','b']")
            raw = m.group(1) if m.group(1) is not None else m.group(2)
            names.append(re.sub(r"\\(.)", r"\1", raw))
        return _Name(tuple(names), bracketed=True)
    if ":" in body:
        parts = body.split(":")
        if len(parts) != 2:
            raise _refuse(field, text, f"slice steps like [{inner}] are not supported; use [start:end]")
        bounds = []
        for part in parts:
            if not part.strip():
                bounds.append(None)
                continue
            m = _INT.fullmatch(part)
            if not m:
                raise _refuse(field, text, f"slice bounds in [{inner}] must be integers")
            bounds.append(int(m.group(1)))
        return _Slice(bounds[0], bounds[1])
    indices = []
    for part in body.split(","):
        m = _INT.fullmatch(part)
        if not m:
            raise _refuse(field, text, f"[{inner}] is neither indices [i,j], a slice [start:end], names "
                                       "['a','b'] nor *")
        indices.append(int(m.group(1)))
    return _Index(tuple(indices))


def _split_top(body: str) -> list[str]:
    """Split on commas outside quotes."""
    out, cur, quote, i = [], [], None, 0
    while i < len(body):
        c = body[i]
        if quote:
            cur.append(c)
            if c == "\\" and i + 1 < len(body):
                cur.append(body[i + 1])
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
            cur.append(c)
        elif c == ",":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    out.append("".join(cur))
    return out


def _refuse(field: str, text: str, why: str) -> FilterError:
    return FilterError(
        f"{field} {text!r} is outside the JSONPath subset batch transform supports: {why}. "
        f"Supported operators: {', '.join(SUPPORTED)}; e.g. '$[1:]', '$[0,-1]', '$.features', \"$['id','label']\"."
    )


def _apply(steps: Sequence[_Step], value: Any, text: str) -> Any:
    if not steps:
        return value
    step, rest = steps[0], steps[1:]
    selected = _select(step, value, text)
    if step.many:
        if isinstance(selected, dict):
            return {k: _apply(rest, v, text) for k, v in selected.items()}
        return [_apply(rest, v, text) for v in selected]
    return _apply(rest, selected, text)


def _select(step: _Step, value: Any, text: str) -> Any:
    if isinstance(step, _Wildcard):
        if isinstance(value, dict):
            return list(value.values())
        if isinstance(value, list):
            return list(value)
        raise FilterError(f"filter {text!r}: '*' needs an object or an array, got {_kind(value)}.")
    if isinstance(step, _Name):
        if not isinstance(value, dict):
            raise FilterError(f"filter {text!r}: member {step.names[0]!r} needs an object, got {_kind(value)}.")
        missing = [n for n in step.names if n not in value]
        if missing:
            raise FilterError(f"filter {text!r}: the record has no member {missing[0]!r} "
                              f"(it has {', '.join(repr(k) for k in list(value)[:8]) or 'none'}).")
        if step.many:
            return {n: value[n] for n in step.names}
        return value[step.names[0]]
    if not isinstance(value, list):
        raise FilterError(f"filter {text!r}: an index or slice needs an array, got {_kind(value)}.")
    if isinstance(step, _Slice):
        return value[step.start : step.end]
    out = []
    for i in step.indices:
        if not -len(value) <= i < len(value):
            raise FilterError(f"filter {text!r}: index {i} is out of range for an array of {len(value)} element(s).")
        out.append(value[i])
    return out if step.many else out[0]


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"
