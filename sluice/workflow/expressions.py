"""Expressions inside a pipeline definition, as plain data: find them, parse their references and paths.

A definition's arguments are request dicts in which any value may be an expression (contract 5.2)::

    {"Get": "Parameters.<name>"}                    a parameter
    {"Get": "Execution.<Name>"}                     an execution variable
    {"Get": "Steps.<step>.<path>"}                  a step property, <path> as in the Describe* response
    {"Get": "PipelineExperimentConfig.<Name>"}      ExperimentName or TrialName
    {"Std:Join": {"On": str, "Values": [...]}}
    {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.<s>.PropertyFiles.<name>"}, "Path": str}}
    {"Std:JsonGet": {"S3Uri": <Join>, "Path": str}}

Everything here is a pure function of that data, shared by the parser, the validator and (later) the
executor, which resolves the same paths against stored ``Describe*`` records with :func:`resolve_path`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sluice.errors import PipelineError

__all__ = [
    "EXECUTION_VARIABLE_NAMES",
    "EXPERIMENT_CONFIG_NAMES",
    "GET",
    "JOIN",
    "JSON_GET",
    "LIST_NAME_KEYS",
    "Attr",
    "Index",
    "Reference",
    "format_path",
    "is_expression",
    "iter_references",
    "literal_kind",
    "parse_path",
    "parse_reference",
    "resolve_path",
    "step_references",
]

GET = "Get"
JOIN = "Std:Join"
JSON_GET = "Std:JsonGet"

EXECUTION_VARIABLE_NAMES = (
    "StartDateTime", "CurrentDateTime", "PipelineName", "PipelineArn", "PipelineExecutionId",
    "PipelineExecutionArn", "TrainingJobName", "ProcessingJobName",
)
"""The names ``{"Get": "Execution.<Name>"}`` accepts (SDK ``execution_variables.py``)."""

EXPERIMENT_CONFIG_NAMES = ("ExperimentName", "TrialName")

LIST_NAME_KEYS: Mapping[str, str] = {
    "Outputs": "OutputName",
    "ProcessingInputs": "InputName",
    "FinalMetricDataList": "MetricName",
    "InputDataConfig": "ChannelName",
    "OutputParameters": "Name",
}
"""A Describe* list indexed with ``['key']`` is looked up by this member of its elements (contract 5.3, 7.5)."""


@dataclass(frozen=True, slots=True)
class Attr:
    """``.Name`` in a property path."""

    name: str


@dataclass(frozen=True, slots=True)
class Index:
    """``['key']`` or ``[0]`` in a property path."""

    key: str | int


Segment = Attr | Index


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed ``Get`` target.

    ``namespace`` is ``Parameters``, ``Execution``, ``Steps`` or ``PipelineExperimentConfig``; ``name`` is the
    parameter, variable, step or config name; ``path`` is what follows a step name (empty otherwise).
    """

    namespace: str
    name: str
    path: tuple[Segment, ...] = ()
    target: str = ""

    @property
    def is_property_file(self) -> bool:
        """``Steps.<s>.PropertyFiles.<name>``: only meaningful as a JsonGet's PropertyFile."""
        return self.namespace == "Steps" and len(self.path) == 2 and self.path[0] == Attr("PropertyFiles")


def literal_kind(value: Any) -> str | None:
    """``boolean`` / ``integer`` / ``float`` / ``string`` for a literal operand, else ``None`` (bool before int:
    ``True`` is an ``int`` in Python but a boolean in a definition)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return None


def is_expression(value: Any) -> bool:
    """Whether ``value`` is one expression dict (a single key: Get, Std:Join or Std:JsonGet)."""
    return isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in (GET, JOIN, JSON_GET)


def iter_references(obj: Any, *, _in_property_file: bool = False) -> Iterator[tuple[str, bool]]:
    """Every ``Get`` target in ``obj`` (any nesting), with whether it sits in a JsonGet's ``PropertyFile``."""
    if isinstance(obj, Mapping):
        if len(obj) == 1 and GET in obj and isinstance(obj[GET], str):
            yield obj[GET], _in_property_file
            return
        if len(obj) == 1 and JSON_GET in obj and isinstance(obj[JSON_GET], Mapping):
            for key, value in obj[JSON_GET].items():
                yield from iter_references(value, _in_property_file=key == "PropertyFile")
            return
        for value in obj.values():
            yield from iter_references(value)
    elif isinstance(obj, list | tuple):
        for value in obj:
            yield from iter_references(value)


_PATH_TOKEN = re.compile(
    r"""\.(?P<attr>[A-Za-z_][A-Za-z0-9_]*)       # .Attribute
      | \[(?P<int>-?\d+)\]                        # [0]
      | \['(?P<sq>[^']*)'\]                       # ['key']
      | \["(?P<dq>[^"]*)"\]                       # ["key"]""",
    re.VERBOSE,
)


def parse_path(text: str) -> tuple[Segment, ...]:
    """``ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri`` -> (Attr, Attr, Index, Attr, Attr).

    Raises PipelineError naming the position of anything that is neither ``.Name``, ``[n]`` nor ``['key']``.
    """
    segments: list[Segment] = []
    pos = 0
    source = text if text.startswith(("[", ".")) else f".{text}"
    while pos < len(source):
        match = _PATH_TOKEN.match(source, pos)
        if match is None:
            shown = source[pos:pos + 20]
            raise PipelineError(f"property path {text!r} cannot be read at {shown!r}: use .Name, [0] or ['key'] "
                                "segments, e.g. ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri.")
        if match.group("attr") is not None:
            segments.append(Attr(match.group("attr")))
        elif match.group("int") is not None:
            segments.append(Index(int(match.group("int"))))
        else:
            key = match.group("sq") if match.group("sq") is not None else match.group("dq")
            segments.append(Index(key))
        pos = match.end()
    return tuple(segments)


def format_path(segments: tuple[Segment, ...] | list[Segment]) -> str:
    """The inverse of :func:`parse_path` (the SDK's spelling: single quotes, no leading dot)."""
    out = []
    for seg in segments:
        if isinstance(seg, Attr):
            out.append(f".{seg.name}")
        elif isinstance(seg.key, int):
            out.append(f"[{seg.key}]")
        else:
            out.append(f"['{seg.key}']")
    return "".join(out).removeprefix(".")


_NAMESPACES = ("Parameters", "Execution", "Steps", "PipelineExperimentConfig")


def parse_reference(target: str) -> Reference:
    """Split a ``Get`` target into namespace, name and (for steps) the property path.

    ``Steps.CreateModel-CreateModel.ModelName`` -> Reference("Steps", "CreateModel-CreateModel", (Attr("ModelName"),)).
    Step names cannot hold ``.`` or ``[`` (the service's pattern is ``[A-Za-z0-9\\-_]*``), so the first of
    those ends the name.
    """
    namespace, dot, rest = target.partition(".")
    if namespace not in _NAMESPACES or not dot or not rest:
        raise PipelineError(f"{{'Get': {target!r}}} is not a reference sluice can read: a Get names "
                            "Parameters.<name>, Execution.<Name>, Steps.<step>.<path> or "
                            "PipelineExperimentConfig.<Name>.")
    if namespace != "Steps":
        return Reference(namespace, rest, (), target)
    match = re.match(r"[^.\[]+", rest)
    name = match.group(0) if match else ""
    tail = rest[len(name):]
    return Reference(namespace, name, parse_path(tail) if tail else (), target)


def step_references(obj: Any) -> set[str]:
    """The names of the steps whose properties (or property files) ``obj`` reads anywhere inside it."""
    names = set()
    for target, _ in iter_references(obj):
        if target.startswith("Steps."):
            names.add(parse_reference(target).name)
    return names


def resolve_path(data: Any, segments: tuple[Segment, ...]) -> Any:
    """Follow ``segments`` into a Describe*-shaped record: what ``Steps.<s>.<path>`` evaluates to.

    A string index into a list matches the element whose name key (:data:`LIST_NAME_KEYS`, or any ``*Name``
    member) equals it, so ``Outputs['train']`` finds the output named ``train``. Raises KeyError naming the
    segment that is missing.
    """
    current = data
    walked: list[Segment] = []
    for seg in segments:
        walked.append(seg)
        where = format_path(walked)
        if isinstance(seg, Attr):
            if not isinstance(current, Mapping) or seg.name not in current:
                raise KeyError(f"{where}: not present in the record")
            current = current[seg.name]
        elif isinstance(seg.key, int):
            if not isinstance(current, list) or not -len(current) <= seg.key < len(current):
                raise KeyError(f"{where}: no element {seg.key}")
            current = current[seg.key]
        elif isinstance(current, Mapping):
            if seg.key not in current:
                raise KeyError(f"{where}: no key {seg.key!r}")
            current = current[seg.key]
        elif isinstance(current, list):
            prev = walked[-2].name if len(walked) > 1 and isinstance(walked[-2], Attr) else ""
            current = _find_named(current, seg.key, LIST_NAME_KEYS.get(prev), where)
        else:
            raise KeyError(f"{where}: cannot index a {type(current).__name__}")
    return current


def _find_named(items: list[Any], key: str, name_key: str | None, where: str) -> Any:
    for item in items:
        if not isinstance(item, Mapping):
            continue
        keys = [name_key] if name_key else [k for k in item if k.endswith("Name")]
        if any(item.get(k) == key for k in keys):
            return item
    raise KeyError(f"{where}: no element named {key!r}")
