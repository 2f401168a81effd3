"""The parsed pipeline: ``{step name: StepSpec}`` and pure functions for dependencies, order and cycles.

This is what the executor consumes. A definition JSON (from ``Pipeline.definition()`` or any SDK) is
parsed once by :func:`parse_definition` into a :class:`PipelineDefinition`; everything after that is a
pure function of it, tested by dict equality (the dask habit)::

    >>> g = {"a": StepSpec("a", StepType.TRAINING, {}), "b": StepSpec("b", StepType.TRAINING, {}, ("a",))}
    >>> dependencies(g)
    {'a': set(), 'b': {'a'}}
    >>> toposort(g)
    ['a', 'b']

The model, field by field:

``PipelineDefinition``
    ``graph``          every step, nested condition branches flattened in, in definition (pre-)order
    ``parameters``     ``{name: ParameterSpec}`` in definition order
    ``version``, ``metadata``, ``experiment_config`` as given (``experiment_config`` None means null)
``StepSpec``
    ``name``, ``type``     the step's name and :class:`StepType`
    ``arguments``          the raw request dict (for Lambda, its inputs), expressions left in place;
                           for a Condition step only ``{"Conditions": [...]}``: its branches are steps
    ``depends_on``         the explicit ``DependsOn`` names
    ``cache_config``       :class:`CacheSpec` or None; ``retry_policies``: :class:`RetrySpec` tuple
    ``property_files``     :class:`PropertyFileSpec` tuple (Processing only)
    ``if_steps``, ``else_steps``   a Condition step's branch step names
    ``branch_of``          ``(condition step, "IfSteps" | "ElseSteps")`` for a step inside a branch
    ``display_name``, ``description``, ``extra`` (other step-level keys such as a Lambda step's
                           ``FunctionArn`` and ``OutputParameters``, kept as they came)

Edges (:func:`dependencies`): explicit ``DependsOn``, every ``{"Get": "Steps.X..."}`` inside a step's
arguments (its conditions included), and condition-branch edges (a branch step depends on its condition).
Treat specs as read-only: they are shared, not copied, between the functions here.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sluice.errors import PipelineError
from sluice.workflow.expressions import step_references

__all__ = [
    "DEFINITION_VERSION",
    "CacheSpec",
    "ParameterSpec",
    "ParameterType",
    "PipelineDefinition",
    "PipelineGraph",
    "PropertyFileSpec",
    "RetrySpec",
    "StepSpec",
    "StepType",
    "dependencies",
    "dependents",
    "downstream",
    "emit_definition",
    "find_cycle",
    "format_cycle",
    "parse_definition",
    "parse_duration",
    "toposort",
    "upstream",
]

DEFINITION_VERSION = "2020-12-01"


class StepType(enum.StrEnum):
    """Every step type the SDK emits (contract 5.6); member names are the SDK's ``StepTypeEnum`` names."""

    CONDITION = "Condition"
    CREATE_MODEL = "Model"
    PROCESSING = "Processing"
    REGISTER_MODEL = "RegisterModel"
    TRAINING = "Training"
    TRANSFORM = "Transform"
    CALLBACK = "Callback"
    TUNING = "Tuning"
    LAMBDA = "Lambda"
    QUALITY_CHECK = "QualityCheck"
    CLARIFY_CHECK = "ClarifyCheck"
    EMR = "EMR"
    EMR_SERVERLESS = "EMRServerless"
    FAIL = "Fail"
    AUTOML = "AutoML"
    ENDPOINT_CONFIG = "EndpointConfig"
    ENDPOINT = "Endpoint"
    INFERENCE_COMPONENT = "InferenceComponent"
    BEDROCK_CUSTOM_MODEL = "BedrockCustomModel"
    BEDROCK_CUSTOM_MODEL_DEPLOYMENT = "BedrockCustomModelDeployment"
    BEDROCK_MODEL_IMPORT = "BedrockModelImport"
    BEDROCK_PROVISIONED_MODEL_THROUGHPUT = "BedrockProvisionedModelThroughput"
    LINEAGE = "Lineage"


class ParameterType(enum.StrEnum):
    STRING = "String"
    INTEGER = "Integer"
    FLOAT = "Float"
    BOOLEAN = "Boolean"


@dataclass(frozen=True, slots=True)
class ParameterSpec:
    """A declared parameter; ``default_value`` None means the value must be given at start."""

    name: str
    type: ParameterType
    default_value: Any = None
    enum_values: tuple[str, ...] | None = None

    @property
    def required(self) -> bool:
        return self.default_value is None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Name": self.name, "Type": str(self.type)}
        if self.default_value is not None:
            out["DefaultValue"] = self.default_value
        if self.enum_values is not None:
            out["EnumValues"] = list(self.enum_values)
        return out


@dataclass(frozen=True, slots=True)
class CacheSpec:
    """``CacheConfig``: whether to reuse a previous successful run, and for how long (ISO-8601, as written)."""

    enabled: bool
    expire_after: str | None = None

    @property
    def window(self) -> dt.timedelta | None:
        """``expire_after`` as a duration (None: no limit given)."""
        return parse_duration(self.expire_after) if self.expire_after is not None else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Enabled": self.enabled}
        if self.expire_after is not None:
            out["ExpireAfter"] = self.expire_after
        return out


@dataclass(frozen=True, slots=True)
class RetrySpec:
    """One retry policy; fields absent from the definition are None (defaults apply at execution)."""

    exception_types: tuple[str, ...]
    interval_seconds: int | None = None
    backoff_rate: float | None = None
    max_attempts: int | None = None
    expire_after_min: int | None = None

    @property
    def effective_interval_seconds(self) -> int:
        return 1 if self.interval_seconds is None else self.interval_seconds

    @property
    def effective_backoff_rate(self) -> float:
        return 2.0 if self.backoff_rate is None else self.backoff_rate

    @property
    def effective_max_attempts(self) -> int | None:
        """The attempt limit: as given; 5 (the documented default) when neither limit is given."""
        if self.max_attempts is None and self.expire_after_min is None:
            return 5
        return self.max_attempts

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in (("BackoffRate", self.backoff_rate), ("IntervalSeconds", self.interval_seconds),
                           ("MaxAttempts", self.max_attempts), ("ExpireAfterMin", self.expire_after_min)):
            if value is not None:
                out[key] = value
        out["ExceptionType"] = list(self.exception_types)
        return out


@dataclass(frozen=True, slots=True)
class PropertyFileSpec:
    """A processing step's JSON file ``<S3Uri of output_name>/<file_path>``, readable with JsonGet."""

    name: str
    output_name: str
    file_path: str

    def to_dict(self) -> dict[str, str]:
        return {"PropertyFileName": self.name, "OutputName": self.output_name, "FilePath": self.file_path}


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One step of the parsed pipeline (fields described in the module docstring)."""

    name: str
    type: StepType
    arguments: Any
    depends_on: tuple[str, ...] = ()
    display_name: str | None = None
    description: str | None = None
    cache_config: CacheSpec | None = None
    retry_policies: tuple[RetrySpec, ...] = ()
    property_files: tuple[PropertyFileSpec, ...] = ()
    if_steps: tuple[str, ...] = ()
    else_steps: tuple[str, ...] = ()
    branch_of: tuple[str, str] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def output_parameters(self) -> dict[str, str]:
        """A Lambda or Callback step's declared outputs: ``{name: kind}`` (string, integer, float, boolean)."""
        if self.type not in (StepType.LAMBDA, StepType.CALLBACK):
            return {}
        declared = self.extra.get("OutputParameters", [])
        return {o["OutputName"]: str(o.get("OutputType", "String")).lower()
                for o in (declared if isinstance(declared, list) else [])
                if isinstance(o, Mapping) and isinstance(o.get("OutputName"), str)}

    @property
    def conditions(self) -> list[Any]:
        """A Condition step's conditions (their AND decides the branch)."""
        return list(self.arguments.get("Conditions", [])) if isinstance(self.arguments, Mapping) else []


PipelineGraph = dict[str, StepSpec]
"""``{step name: StepSpec}`` in definition order."""


@dataclass(frozen=True)
class PipelineDefinition:
    """A parsed definition: the graph, the parameters, and the top-level fields kept as given."""

    graph: PipelineGraph
    parameters: dict[str, ParameterSpec]
    version: str = DEFINITION_VERSION
    metadata: Mapping[str, Any] = field(default_factory=dict)
    experiment_config: Mapping[str, Any] | None = None
    has_experiment_config: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def top_level(self) -> list[str]:
        """The steps listed directly in ``Steps`` (not inside a condition branch), in order."""
        return [name for name, spec in self.graph.items() if spec.branch_of is None]


# ---- durations ---------------------------------------------------------------------------------------

_DURATION = re.compile(
    r"P?(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?",
    re.IGNORECASE,
)


def parse_duration(text: str) -> dt.timedelta:
    """An ISO-8601 duration, leniently (contract 5.8): ``P30D``, ``PT1H``, ``P4DT12H``, ``p30d``, ``30d``, ``T16m``.

    A year counts 365 days and a month 30 (the service does not say; caching windows are coarse).
    """
    match = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None or not any(match.groupdict().values()):
        raise PipelineError(f"ExpireAfter {text!r} is not an ISO-8601 duration; write e.g. 'P30D' (30 days), "
                            "'PT1H' (one hour) or 'P4DT12H'.")
    g = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    days = g["y"] * 365 + g["mo"] * 30 + g["w"] * 7 + g["d"]
    return dt.timedelta(days=days, hours=g["h"], minutes=g["mi"], seconds=g["s"])


# ---- parsing ----------------------------------------------------------------------------------------------

_STEP_NAME = re.compile(r"[A-Za-z0-9\-_]{1,64}")
_STEP_KEYS = ("Name", "Type", "Arguments", "DependsOn", "DisplayName", "Description", "CacheConfig",
              "RetryPolicies", "PropertyFiles")
_TOP_KEYS = ("Version", "Metadata", "Parameters", "PipelineExperimentConfig", "Steps")


def parse_definition(source: str | bytes | Mapping[str, Any]) -> PipelineDefinition:
    """Parse a definition (JSON text or the decoded dict) into a :class:`PipelineDefinition`.

    Structural problems (not JSON, unknown version or step type, malformed fields, a step name used twice)
    are collected and raised together as one PipelineError; semantic checks are
    :func:`sluice.workflow.validation.validate`'s.
    """
    if isinstance(source, str | bytes):
        try:
            data = json.loads(source)
        except json.JSONDecodeError as exc:
            raise PipelineError(f"the pipeline definition is not JSON: {exc}") from None
    else:
        data = source
    if not isinstance(data, Mapping):
        raise PipelineError(f"a pipeline definition is a JSON object, not {type(data).__name__}.")
    problems: list[str] = []
    version = data.get("Version")
    if version != DEFINITION_VERSION:
        problems.append(f"Version is {version!r}; sluice reads definitions of Version {DEFINITION_VERSION!r}")
    parameters = _parse_parameters(data.get("Parameters", []), problems)
    steps = data.get("Steps")
    graph: PipelineGraph = {}
    locations: dict[str, str] = {}
    if not isinstance(steps, list):
        problems.append(f"Steps must be a list of steps, not {type(steps).__name__}")
    else:
        for i, raw in enumerate(steps):
            _parse_step(raw, f"Steps[{i}]", None, graph, locations, problems)
    metadata = data.get("Metadata", {})
    if not isinstance(metadata, Mapping):
        problems.append("Metadata must be an object")
        metadata = {}
    experiment = data.get("PipelineExperimentConfig")
    if experiment is not None and not isinstance(experiment, Mapping):
        problems.append("PipelineExperimentConfig must be an object or null")
    _raise(problems, "pipeline definition")
    return PipelineDefinition(
        graph=graph, parameters=parameters, version=str(version), metadata=dict(metadata),
        experiment_config=experiment, has_experiment_config="PipelineExperimentConfig" in data,
        extra={k: v for k, v in data.items() if k not in _TOP_KEYS},
    )


def _raise(problems: list[str], what: str) -> None:
    if problems:
        count = f"{len(problems)} problem" + ("s" if len(problems) > 1 else "")
        lines = "\n".join(f"  - {p}" for p in problems)
        raise PipelineError(f"The {what} is invalid ({count}):\n{lines}")


def _parse_parameters(raw: Any, problems: list[str]) -> dict[str, ParameterSpec]:
    out: dict[str, ParameterSpec] = {}
    if not isinstance(raw, list):
        problems.append("Parameters must be a list")
        return out
    from sluice.workflow.parameters import type_problem

    for i, item in enumerate(raw):
        where = f"Parameters[{i}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("Name"), str):
            problems.append(f"{where}: a parameter is an object with a Name")
            continue
        name = item["Name"]
        where = f"parameter {name!r}"
        try:
            ptype = ParameterType(item.get("Type"))
        except ValueError:
            problems.append(f"{where}: Type {item.get('Type')!r} is not one of String, Integer, Float, Boolean")
            continue
        if name in out:
            problems.append(f"{where} is declared twice; parameter names must be unique")
            continue
        default = item.get("DefaultValue")
        if default is not None and (why := type_problem(str(ptype), default)):
            problems.append(f"{where}: DefaultValue {why}")
        enum_values = item.get("EnumValues")
        if enum_values is not None:
            if ptype is not ParameterType.STRING:
                problems.append(f"{where}: EnumValues is only for String parameters, this one is {ptype}")
            elif not isinstance(enum_values, list) or not all(isinstance(v, str) for v in enum_values):
                problems.append(f"{where}: EnumValues must be a list of strings")
            elif default is not None and default not in enum_values:
                problems.append(f"{where}: DefaultValue {default!r} is not one of its EnumValues {enum_values}")
        out[name] = ParameterSpec(name, ptype, default, tuple(enum_values) if isinstance(enum_values, list) else None)
    return out


def _parse_step(raw: Any, where: str, branch_of: tuple[str, str] | None, graph: PipelineGraph,
                locations: dict[str, str], problems: list[str]) -> str | None:
    """Parse one step (and, for a condition, its branches) into ``graph``; returns its name."""
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: a step is an object, not {type(raw).__name__}")
        return None
    name = raw.get("Name")
    if not isinstance(name, str) or not _STEP_NAME.fullmatch(name):
        problems.append(f"{where}: step Name {name!r} must be 1-64 letters, digits, '-' or '_'")
        return None
    here = f"step {name!r}"
    try:
        step_type = StepType(raw.get("Type"))
    except ValueError:
        known = ", ".join(t.value for t in StepType)
        problems.append(f"{here}: Type {raw.get('Type')!r} is not a pipeline step type (known: {known})")
        return None
    if "Arguments" not in raw:
        problems.append(f"{here}: Arguments is missing")
    arguments = raw.get("Arguments", {})
    if not isinstance(arguments, Mapping):
        problems.append(f"{here}: Arguments must be an object, not {type(arguments).__name__}")
        arguments = {}
    depends_on = raw.get("DependsOn", [])
    if not isinstance(depends_on, list) or not all(isinstance(d, str) for d in depends_on):
        problems.append(f"{here}: DependsOn must be a list of step names")
        depends_on = []
    location = f"in the {branch_of[1]} of {branch_of[0]!r}" if branch_of else "at the top level"
    if name in locations:
        problems.append(f"step name {name!r} is used twice ({locations[name]} and {location}); step names must "
                        "be unique across the pipeline, condition branches included")
        return None
    locations[name] = location
    if_steps: list[str] = []
    else_steps: list[str] = []
    if step_type is StepType.CONDITION:
        if not isinstance(arguments.get("Conditions"), list):
            problems.append(f"{here}: a Condition step's Arguments need a Conditions list")
        branches = {}
        for key in ("IfSteps", "ElseSteps"):
            branch = arguments.get(key, [])
            if not isinstance(branch, list):
                problems.append(f"{here}: {key} must be a list of steps")
                continue
            branches[key] = branch
        arguments = {k: v for k, v in arguments.items() if k not in ("IfSteps", "ElseSteps")}
        graph[name] = StepSpec(name, step_type, arguments)  # placeholder keeps pre-order; replaced below
        for key, names in (("IfSteps", if_steps), ("ElseSteps", else_steps)):
            for i, child in enumerate(branches.get(key, [])):
                child_name = _parse_step(child, f"{here} {key}[{i}]", (name, key), graph, locations, problems)
                if child_name:
                    names.append(child_name)
    graph[name] = StepSpec(
        name=name, type=step_type, arguments=arguments, depends_on=tuple(depends_on),
        display_name=raw.get("DisplayName"), description=raw.get("Description"),
        cache_config=_parse_cache(raw.get("CacheConfig"), here, problems),
        retry_policies=_parse_retries(raw.get("RetryPolicies"), here, problems),
        property_files=_parse_property_files(raw.get("PropertyFiles"), here, problems),
        if_steps=tuple(if_steps), else_steps=tuple(else_steps), branch_of=branch_of,
        extra={k: v for k, v in raw.items() if k not in _STEP_KEYS},
    )
    return name


def _parse_cache(raw: Any, here: str, problems: list[str]) -> CacheSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("Enabled"), bool):
        problems.append(f"{here}: CacheConfig must be {{\"Enabled\": true|false, \"ExpireAfter\": \"P30D\"}}")
        return None
    expire = raw.get("ExpireAfter")
    if expire is not None:
        try:
            parse_duration(expire)
        except PipelineError as exc:
            problems.append(f"{here}: {exc}")
    return CacheSpec(raw["Enabled"], expire)


def _parse_retries(raw: Any, here: str, problems: list[str]) -> tuple[RetrySpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(f"{here}: RetryPolicies must be a list")
        return ()
    out = []
    for i, item in enumerate(raw):
        types = item.get("ExceptionType") if isinstance(item, Mapping) else None
        if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
            problems.append(f"{here}: RetryPolicies[{i}] needs an ExceptionType list, e.g. [\"Step.SERVICE_FAULT\"]")
            continue
        out.append(RetrySpec(tuple(types), item.get("IntervalSeconds"), item.get("BackoffRate"),
                             item.get("MaxAttempts"), item.get("ExpireAfterMin")))
    return tuple(out)


def _parse_property_files(raw: Any, here: str, problems: list[str]) -> tuple[PropertyFileSpec, ...]:
    if raw is None:
        return ()
    out = []
    for i, item in enumerate(raw if isinstance(raw, list) else [None]):
        keys = ("PropertyFileName", "OutputName", "FilePath")
        if not isinstance(item, Mapping) or not all(isinstance(item.get(k), str) for k in keys):
            problems.append(f"{here}: PropertyFiles[{i}] must be "
                            "{\"PropertyFileName\", \"OutputName\", \"FilePath\"}")
            continue
        out.append(PropertyFileSpec(*(item[k] for k in keys)))
    return tuple(out)


# ---- emitting ---------------------------------------------------------------------------------------------

def emit_definition(definition: PipelineDefinition) -> dict[str, Any]:
    """The definition JSON (as a dict) for ``definition``, in the SDK's key order."""
    out: dict[str, Any] = {"Version": definition.version, "Metadata": dict(definition.metadata),
                           "Parameters": [p.to_dict() for p in definition.parameters.values()]}
    if definition.has_experiment_config:
        out["PipelineExperimentConfig"] = definition.experiment_config
    out["Steps"] = [emit_step(definition.graph, name) for name in definition.top_level]
    out.update(definition.extra)
    return out


def emit_step(graph: PipelineGraph, name: str) -> dict[str, Any]:
    """One step's JSON, with a condition's branches nested back inline."""
    spec = graph[name]
    arguments = spec.arguments
    if spec.type is StepType.CONDITION:
        arguments = {**arguments, "IfSteps": [emit_step(graph, s) for s in spec.if_steps],
                     "ElseSteps": [emit_step(graph, s) for s in spec.else_steps]}
    out: dict[str, Any] = {"Name": spec.name, "Type": str(spec.type), "Arguments": arguments}
    if spec.depends_on:
        out["DependsOn"] = list(spec.depends_on)
    if spec.display_name is not None:
        out["DisplayName"] = spec.display_name
    if spec.description is not None:
        out["Description"] = spec.description
    if spec.retry_policies:
        out["RetryPolicies"] = [r.to_dict() for r in spec.retry_policies]
    if spec.cache_config is not None:
        out["CacheConfig"] = spec.cache_config.to_dict()
    if spec.property_files:
        out["PropertyFiles"] = [p.to_dict() for p in spec.property_files]
    out.update(spec.extra)
    return out


# ---- the graph functions -------------------------------------------------------------------------------

def dependencies(graph: PipelineGraph) -> dict[str, set[str]]:
    """``{step: the steps it waits for}``: DependsOn, property references and condition-branch edges.

    Names that are not steps of ``graph`` are kept (validation reports them); a step reading its own
    properties depends on itself, which :func:`find_cycle` reports as ``a -> a``.
    """
    out: dict[str, set[str]] = {}
    for name, spec in graph.items():
        deps = set(spec.depends_on) | step_references(spec.arguments)
        if spec.branch_of is not None:
            deps.add(spec.branch_of[0])
        out[name] = deps
    return out


def dependents(graph: PipelineGraph) -> dict[str, set[str]]:
    """``{step: the steps that wait for it}`` (the inverse of :func:`dependencies`, known steps only)."""
    out: dict[str, set[str]] = {name: set() for name in graph}
    for name, deps in dependencies(graph).items():
        for dep in deps:
            if dep in out:
                out[dep].add(name)
    return out


def find_cycle(graph: PipelineGraph) -> list[str] | None:
    """A dependency cycle as ``[a, b, a]`` (first found in definition order), or None when there is none."""
    deps = dependencies(graph)
    order = {name: i for i, name in enumerate(graph)}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in graph:
        if state.get(start):
            continue
        path: list[str] = [start]
        stack = [iter(sorted((d for d in deps[start] if d in graph), key=order.__getitem__))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
                continue
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted((d for d in deps[nxt] if d in graph), key=order.__getitem__)))
    return None


def format_cycle(cycle: list[str]) -> str:
    """``a -> b -> a``."""
    return " -> ".join(cycle)


def toposort(graph: PipelineGraph) -> list[str]:
    """Every step, each after all it depends on; ties keep definition order (so the result is stable).

    Raises PipelineError for a reference to a step that is not in ``graph`` and for a cycle (``a -> b -> a``).
    """
    deps = dependencies(graph)
    for name, wanted in deps.items():
        unknown = sorted(wanted - graph.keys())
        if unknown:
            raise PipelineError(f"step {name!r} depends on {', '.join(map(repr, unknown))}, which "
                                f"{'is not a step' if len(unknown) == 1 else 'are not steps'} of this pipeline.")
    waiting = {name: len(wanted) for name, wanted in deps.items()}
    after = dependents(graph)
    order = {name: i for i, name in enumerate(graph)}
    ready = sorted((n for n, count in waiting.items() if count == 0), key=order.__getitem__)
    out: list[str] = []
    while ready:
        name = ready.pop(0)
        out.append(name)
        released = []
        for child in after[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                released.append(child)
        ready = sorted([*ready, *released], key=order.__getitem__)
    if len(out) < len(graph):
        cycle = find_cycle(graph) or sorted(set(graph) - set(out))
        raise PipelineError(f"the pipeline has a dependency cycle: {format_cycle(cycle)}. Remove one of these "
                            "dependencies (a DependsOn entry or a property reference).")
    return out


def downstream(graph: PipelineGraph, steps: Iterable[str]) -> set[str]:
    """Every step that depends, directly or through others, on any of ``steps`` (``steps`` themselves excluded
    unless a cycle leads back to them)."""
    return _reach(dependents(graph), steps)


def upstream(graph: PipelineGraph, steps: Iterable[str]) -> set[str]:
    """Every step that any of ``steps`` depends on, directly or through others."""
    deps = {name: {d for d in wanted if d in graph} for name, wanted in dependencies(graph).items()}
    return _reach(deps, steps)


def _reach(edges: Mapping[str, set[str]], starts: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    frontier = [s for s in starts if s in edges]
    while frontier:
        for nxt in edges[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return seen
