"""Validate ``Create*Job`` requests against the SageMaker API model that ships inside botocore.

Why botocore's model: it is the service's own schema (required members, enums, patterns, ranges), so a
request sluice accepts is one SageMaker would accept, and a typo fails here, before any work starts,
instead of on the first real AWS run.

The model is loaded lazily on first use and each operation's shape tree is compiled once into small
:class:`_Node` objects with pre-compiled regexes, so validating a typical request costs well under a
millisecond after warm-up. Every problem is collected and reported in one :class:`~sluice.errors.SpecError`.

Departures from the service, on purpose:

* ``pattern`` constraints are Java regexes. Each is compiled with Python's ``re`` and applied with full-match
  semantics (Java's ``matches()``); a pattern Python cannot compile (``\\p{L}``, surrogate ranges) is skipped.
* Instance-type enums also accept SageMaker local mode's ``"local"`` and ``"local_gpu"``; whether this machine
  can honour them is :mod:`sluice.jobs.instance_types`' call, not the schema's.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import difflib
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sluice.errors import SpecError

__all__ = ["LOCAL_INSTANCE_TYPES", "describe_shape_names", "validate_request"]

LOCAL_INSTANCE_TYPES = ("local", "local_gpu")
"""Instance types SageMaker local mode accepts on top of the API's ``ml.*`` enum."""

_ENUM_LIST_LIMIT = 25  # longer enums (instance types: 100+) show close matches instead of every value
_VALUE_REPR_LIMIT = 120


@dataclass(eq=False, slots=True)
class _Node:
    """One botocore shape, flattened into what validation needs (built once per shape name)."""

    name: str
    kind: str
    min: float | None = None
    max: float | None = None
    enum: frozenset[str] | None = None
    enum_order: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None
    pattern_src: str | None = None
    sensitive: bool = False
    union: bool = False
    members: dict[str, _Node] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    member: _Node | None = None  # list element
    key: _Node | None = None  # map key
    value: _Node | None = None  # map value


_lock = threading.Lock()


@cache
def _service_model() -> Any:
    """botocore's SageMaker service model; loading it takes ~0.1 s, so do it once and only when needed."""
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


def _botocore_version() -> str:
    import botocore

    return str(botocore.__version__)


@cache
def _compile_pattern(src: str) -> re.Pattern[str] | None:
    """Python's reading of a Java regex, or None when Python cannot compile it (the check is then skipped)."""
    try:
        return re.compile(src)
    except (re.error, OverflowError):
        return None


def _build(shape: Any, memo: dict[str, _Node]) -> _Node:
    """Flatten ``shape`` and everything below it; ``memo`` breaks cycles in recursive shapes."""
    found = memo.get(shape.name)
    if found is not None:
        return found
    md = shape.metadata
    node = _Node(name=shape.name, kind=shape.type_name, min=md.get("min"), max=md.get("max"))
    memo[shape.name] = node
    node.sensitive = bool(md.get("sensitive"))
    enum = getattr(shape, "enum", None) or md.get("enum")
    if enum:
        values = tuple(enum)
        if shape.name.endswith("InstanceType"):
            values += tuple(v for v in LOCAL_INSTANCE_TYPES if v not in values)
        node.enum_order = values
        node.enum = frozenset(values)
    if md.get("pattern"):
        node.pattern_src = md["pattern"]
        node.pattern = _compile_pattern(md["pattern"])
    if node.kind == "structure":
        node.union = bool(md.get("union"))
        node.required = tuple(shape.required_members)
        node.members = {name: _build(sub, memo) for name, sub in shape.members.items()}
    elif node.kind == "list":
        node.member = _build(shape.member, memo)
    elif node.kind == "map":
        node.key = _build(shape.key, memo)
        node.value = _build(shape.value, memo)
    return node


@cache
def _operation_root(operation: str) -> _Node:
    """The compiled input shape of ``operation``; unknown operations are refused with close matches."""
    model = _service_model()
    names = model.operation_names
    if operation not in names:
        close = difflib.get_close_matches(operation, names, n=5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise SpecError(
            f"{operation!r} is not an operation of the SageMaker API (botocore {_botocore_version()})."
            f"{hint} Pass the API operation name, e.g. 'CreateProcessingJob'."
        )
    shape = model.operation_model(operation).input_shape
    if shape is None:
        raise SpecError(f"SageMaker operation {operation!r} takes no request body; nothing to validate.")
    with _lock:
        return _build(shape, {})


def describe_shape_names(operation: str) -> tuple[str, ...]:
    """Every shape name reachable from ``operation``'s request, sorted: handy for docs and debugging."""
    root = _operation_root(operation)
    seen: dict[str, _Node] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if node.name in seen:
            continue
        seen[node.name] = node
        stack.extend(node.members.values())
        stack.extend(n for n in (node.member, node.key, node.value) if n is not None)
    return tuple(sorted(seen))


def validate_request(operation: str, request: Mapping[str, Any]) -> None:
    """Check ``request`` against ``operation``'s input shape; raise one SpecError naming every problem.

    Each problem names the field path (``ProcessingInputs[0].S3Input.S3InputMode``), the offending value and
    what the API allows, in the service's own wording where it has one.
    """
    root = _operation_root(operation)
    problems: list[str] = []
    _check(root, request, "", problems)
    if problems:
        count = f"{len(problems)} problem" + ("s" if len(problems) > 1 else "")
        lines = "\n".join(f"  - {p}" for p in problems)
        raise SpecError(
            f"{operation} request is invalid ({count}):\n{lines}\n"
            f"Fix the fields above; the rules come from the SageMaker API model in botocore "
            f"{_botocore_version()} (shape {root.name})."
        )


# -- the walk -------------------------------------------------------------------------------------------

_TYPE_WORDS = {
    "structure": "a structure (dict)",
    "list": "a list",
    "map": "a map (dict)",
    "string": "a string",
    "integer": "an integer",
    "long": "an integer (long)",
    "float": "a number (float)",
    "double": "a number (double)",
    "boolean": "a boolean (true/false)",
    "timestamp": "a timestamp (datetime, ISO 8601 string or epoch seconds)",
    "blob": "bytes",
}


def _show(value: Any, node: _Node | None = None) -> str:
    """A short, JSON-ish rendering of an offending value (redacted for sensitive shapes)."""
    if node is not None and node.sensitive:
        return "<sensitive value>"
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > _VALUE_REPR_LIMIT:
        text = text[: _VALUE_REPR_LIMIT - 3] + "..."
    return text


def _label(path: str) -> str:
    return path or "(request)"


def _join(path: str, member: str) -> str:
    return f"{path}.{member}" if path else member


def _type_name(value: Any) -> str:
    return type(value).__name__


def _wrong_type(node: _Node, value: Any, path: str, problems: list[str]) -> None:
    expected = _TYPE_WORDS.get(node.kind, node.kind)
    if value is None:
        problems.append(f"{_label(path)}: got null, expected {expected}; omit the key instead of null.")
        return
    problems.append(f"{_label(path)}: got {_show(value, node)} (a {_type_name(value)}), expected {expected}.")


def _check(node: _Node, value: Any, path: str, problems: list[str]) -> None:
    kind = node.kind
    if kind == "structure":
        if not isinstance(value, Mapping):
            _wrong_type(node, value, path, problems)
            return
        _check_structure(node, value, path, problems)
    elif kind == "list":
        if not isinstance(value, list | tuple):
            _wrong_type(node, value, path, problems)
            return
        _check_size(node, value, len(value), "length", path, problems)
        member = node.member
        assert member is not None
        for i, item in enumerate(value):
            _check(member, item, f"{path}[{i}]", problems)
    elif kind == "map":
        if not isinstance(value, Mapping):
            _wrong_type(node, value, path, problems)
            return
        _check_size(node, value, len(value), "length", path, problems)
        key_node, value_node = node.key, node.value
        assert key_node is not None and value_node is not None
        for k, v in value.items():
            item_path = f"{path}[{json.dumps(k, default=str)}]"
            _check(key_node, k, f"{item_path} (key)", problems)
            _check(value_node, v, item_path, problems)
    elif kind == "string":
        if not isinstance(value, str):
            _wrong_type(node, value, path, problems)
            return
        _check_string(node, value, path, problems)
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            _wrong_type(node, value, path, problems)
            return
        _check_size(node, value, value, "value", path, problems)
    elif kind in ("float", "double"):
        if not isinstance(value, int | float | decimal.Decimal) or isinstance(value, bool):
            _wrong_type(node, value, path, problems)
            return
        _check_size(node, value, value, "value", path, problems)
    elif kind == "boolean":
        if not isinstance(value, bool):
            _wrong_type(node, value, path, problems)
    elif kind == "timestamp":
        if not _is_timestamp(value):
            _wrong_type(node, value, path, problems)
    elif kind == "blob":
        if not isinstance(value, bytes | bytearray | str):
            _wrong_type(node, value, path, problems)
            return
        _check_size(node, value, len(value), "length", path, problems)


def _check_structure(node: _Node, value: Mapping[str, Any], path: str, problems: list[str]) -> None:
    members = node.members
    unknown = [k for k in value if k not in members]
    for key in unknown:
        allowed = ", ".join(sorted(members))
        close = difflib.get_close_matches(str(key), list(members), n=1, cutoff=0.75)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        problems.append(
            f"{_label(_join(path, str(key)))}: unknown member of {node.name}.{hint} "
            f"Allowed members: {allowed}."
        )
    for name in node.required:
        if name not in value:
            problems.append(f"{_label(_join(path, name))}: required member of {node.name} is missing.")
    present = 0
    for key, item in value.items():
        sub = members.get(key)
        if sub is None:
            continue
        present += 1
        _check(sub, item, _join(path, key), problems)
    if node.union and present != 1:
        problems.append(
            f"{_label(path)}: {node.name} takes exactly one of {', '.join(members)}, "
            f"but {present} {'was' if present == 1 else 'were'} given."
        )


def _check_string(node: _Node, value: str, path: str, problems: list[str]) -> None:
    if node.enum is not None:
        if value not in node.enum:
            shown = _show(value, node)
            problems.append(f"{_label(path)}: value {shown} is not allowed. {_enum_hint(node, value)}")
        return  # enum values carry no other constraints worth repeating
    failed: list[str] = []
    length = len(value)
    if node.min is not None and length < node.min:
        failed.append(f"Member must have length greater than or equal to {node.min}")
    if node.max is not None and length > node.max:
        failed.append(f"Member must have length less than or equal to {node.max}")
    if node.pattern is not None and node.pattern.fullmatch(value) is None:
        failed.append(f"Member must satisfy regular expression pattern: {node.pattern_src}")
    if failed:
        problems.append(
            f"{_label(path)}: value {_show(value, node)} failed to satisfy constraint: {'; '.join(failed)}."
        )


def _enum_hint(node: _Node, value: str) -> str:
    if len(node.enum_order) <= _ENUM_LIST_LIMIT:
        return f"Member must satisfy enum value set: [{', '.join(node.enum_order)}]."
    close = difflib.get_close_matches(value, node.enum_order, n=5, cutoff=0.6)
    hint = f" Closest: {', '.join(close)}." if close else ""
    return (
        f"It must be one of the {len(node.enum_order)} values of {node.name}"
        f" (e.g. {', '.join(node.enum_order[:4])}, ...).{hint}"
    )


def _check_size(node: _Node, value: Any, size: Any, what: str, path: str, problems: list[str]) -> None:
    if node.min is not None and size < node.min:
        rule = f"Member must have {what} greater than or equal to {node.min}"
    elif node.max is not None and size > node.max:
        rule = f"Member must have {what} less than or equal to {node.max}"
    else:
        return
    shown = _show(value, node) if what == "value" else f"{_show(value, node)} ({size} items)"
    problems.append(f"{_label(path)}: value {shown} failed to satisfy constraint: {rule}.")


def _is_timestamp(value: Any) -> bool:
    """What botocore's serializer accepts for a timestamp: datetime, epoch number or a parseable string."""
    if isinstance(value, _dt.datetime | _dt.date):
        return True
    if isinstance(value, int | float) and not isinstance(value, bool):
        return True
    if isinstance(value, str):
        try:
            _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            return True
        except ValueError:
            try:
                float(value)
                return True
            except ValueError:
                return False
    return False
