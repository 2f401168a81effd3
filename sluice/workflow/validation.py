"""Refuse a pipeline before anything runs, with messages that name the step, the value and the fix.

:func:`validate` checks a parsed graph against its parameters and raises one PipelineError listing every
problem: a reference to an unknown parameter, execution variable or step; a property path that does not
exist in that step type's Describe* shape; a JsonGet on a property file the step does not declare; a
condition comparing incompatible types; a step depending on a FailStep; malformed retry policies; and a
dependency cycle (``a -> b -> a``). Step names used twice are refused earlier, by the parser.

:func:`validate_overrides` checks the values given when an execution starts, and :func:`validate_selection`
a selective execution's steps. All three are pure functions of plain data.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from sluice.errors import PipelineError
from sluice.workflow import _shapes
from sluice.workflow.conditions import ORDERING, comparison_problem, describe_operand
from sluice.workflow.expressions import (
    EXECUTION_VARIABLE_NAMES,
    EXPERIMENT_CONFIG_NAMES,
    GET,
    JOIN,
    JSON_GET,
    Attr,
    Index,
    Reference,
    iter_references,
    literal_kind,
    parse_reference,
)
from sluice.workflow.graph import (
    ParameterSpec,
    ParameterType,
    PipelineDefinition,
    PipelineGraph,
    StepSpec,
    StepType,
    dependencies,
    downstream,
    find_cycle,
    format_cycle,
    upstream,
)
from sluice.workflow.retry import retry_problems

__all__ = ["MAX_SELECTED_STEPS", "MAX_START_PARAMETERS", "validate", "validate_definition", "validate_overrides",
           "validate_selection"]

MAX_START_PARAMETERS = 200
MAX_SELECTED_STEPS = 50
_STEP_EXCEPTIONS = ("Step.SERVICE_FAULT", "Step.THROTTLING")
_JOB_EXCEPTIONS = ("SageMaker.JOB_INTERNAL_ERROR", "SageMaker.CAPACITY_ERROR", "SageMaker.RESOURCE_LIMIT")
_NO_RETRY_TYPES = (StepType.CONDITION, StepType.FAIL)
_COMPARISONS = ("Equals", *sorted(ORDERING))


def _close(name: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def _names(names: Iterable[str]) -> str:
    listed = sorted(names)
    return ", ".join(listed) if listed else "none"


def _as_specs(parameters: Any) -> dict[str, ParameterSpec]:
    """Accept ``{name: ParameterSpec}``, or a list of ParameterSpec / ``sluice.workflow.parameters`` objects."""
    if isinstance(parameters, Mapping):
        return dict(parameters)
    out = {}
    for p in parameters or ():
        if isinstance(p, ParameterSpec):
            out[p.name] = p
        else:
            req = p.to_request()
            out[req["Name"]] = ParameterSpec(req["Name"], ParameterType(req["Type"]), req.get("DefaultValue"),
                                             tuple(req["EnumValues"]) if req.get("EnumValues") else None)
    return out


def validate_definition(definition: PipelineDefinition) -> None:
    """:func:`validate` for a whole parsed definition (its experiment config's references included)."""
    validate(definition.graph, definition.parameters, extra_references={
        "PipelineExperimentConfig": definition.experiment_config or {}})


def validate(graph: PipelineGraph, parameters: Any, *, extra_references: Mapping[str, Any] | None = None) -> None:
    """Raise one PipelineError naming every problem in ``graph``; return None when it can run."""
    params = _as_specs(parameters)
    problems: list[str] = []
    checker = _Checker(graph, params, problems)
    for spec in graph.values():
        checker.step(spec)
    for where, data in (extra_references or {}).items():
        checker.references(where, data)
    deps = dependencies(graph)
    for name, wanted in deps.items():
        for dep in sorted(wanted):
            if dep in graph and graph[dep].type is StepType.FAIL:
                problems.append(f"step {name!r} depends on FailStep {dep!r}; a FailStep ends the execution, so "
                                "nothing can come after it. Make the FailStep the last step of its branch.")
    cycle = find_cycle(graph)
    if cycle:
        problems.append(f"dependency cycle: {format_cycle(cycle)}. Remove one of these dependencies (a DependsOn "
                        "entry or a property reference).")
    if problems:
        count = f"{len(problems)} problem" + ("s" if len(problems) > 1 else "")
        lines = "\n".join(f"  - {p}" for p in problems)
        raise PipelineError(f"The pipeline is invalid ({count}); nothing was run:\n{lines}")


class _Checker:
    """The per-step checks; collects messages into ``problems``."""

    def __init__(self, graph: PipelineGraph, params: dict[str, ParameterSpec], problems: list[str]) -> None:
        self.graph, self.params, self.problems = graph, params, problems

    def step(self, spec: StepSpec) -> None:
        here = f"step {spec.name!r}"
        for dep in spec.depends_on:
            if dep not in self.graph:
                self.problems.append(f"{here}: DependsOn names {dep!r}, which is not a step of this pipeline."
                                     f"{_close(dep, self.graph)}")
        self.references(here, spec.arguments)
        if spec.type is StepType.CONDITION:
            conditions = spec.arguments.get("Conditions") if isinstance(spec.arguments, Mapping) else None
            for i, cond in enumerate(conditions or []):
                self.condition(f"{here} Conditions[{i}]", cond)
        if spec.type is StepType.FAIL:
            message = spec.arguments.get("ErrorMessage") if isinstance(spec.arguments, Mapping) else None
            if message is not None and not isinstance(message, str) and not (
                    isinstance(message, Mapping) and {GET, JOIN, JSON_GET} & set(message)):
                self.problems.append(f"{here}: ErrorMessage must be a string or an expression, not {message!r}.")
        if spec.property_files and spec.type is not StepType.PROCESSING:
            self.problems.append(f"{here}: PropertyFiles are only for Processing steps, this is a {spec.type} step.")
        outputs = _processing_outputs(spec)
        for pf in spec.property_files:
            if outputs is not None and pf.output_name not in outputs:
                self.problems.append(f"{here}: property file {pf.name!r} reads output {pf.output_name!r}, which the "
                                     f"step does not have (outputs: {_names(outputs)}).")
        self.retries(here, spec)
        if spec.type in (StepType.LAMBDA, StepType.CALLBACK):
            declared = spec.extra.get("OutputParameters", [])
            if not isinstance(declared, list) or not all(
                    isinstance(o, Mapping) and isinstance(o.get("OutputName"), str) for o in declared):
                self.problems.append(f"{here}: OutputParameters must be a list of {{\"OutputName\", \"OutputType\"}}.")

    def retries(self, here: str, spec: StepSpec) -> None:
        if spec.retry_policies and spec.type in _NO_RETRY_TYPES:
            self.problems.append(f"{here}: a {spec.type} step takes no RetryPolicies.")
            return
        for i, policy in enumerate(spec.retry_policies):
            where = f"{here} RetryPolicies[{i}]"
            for etype in policy.exception_types:
                if etype not in _STEP_EXCEPTIONS + _JOB_EXCEPTIONS:
                    self.problems.append(f"{where}: ExceptionType {etype!r} is not one of "
                                         f"{', '.join(_STEP_EXCEPTIONS + _JOB_EXCEPTIONS)}.")
                elif etype in _JOB_EXCEPTIONS and spec.type in (StepType.CREATE_MODEL, StepType.REGISTER_MODEL):
                    self.problems.append(f"{where}: {etype} applies to job steps; a {spec.type} step starts no job "
                                         "(use StepRetryPolicy).")
            for problem in retry_problems(policy.effective_interval_seconds, policy.effective_backoff_rate,
                                          policy.max_attempts, policy.expire_after_min):
                self.problems.append(f"{where}: {problem}.")

    # ---- references ------------------------------------------------------------------------------
    def references(self, here: str, data: Any) -> None:
        for target, in_property_file in iter_references(data):
            try:
                ref = parse_reference(target)
            except PipelineError as exc:
                self.problems.append(f"{here}: {exc}")
                continue
            self.reference(here, ref, in_property_file)

    def reference(self, here: str, ref: Reference, in_property_file: bool) -> None:
        if ref.namespace == "Parameters":
            if ref.name not in self.params:
                self.problems.append(f"{here} reads Parameters.{ref.name}, which is not declared "
                                     f"(declared: {_names(self.params)}).{_close(ref.name, self.params)}")
        elif ref.namespace == "Execution":
            if ref.name not in EXECUTION_VARIABLE_NAMES:
                self.problems.append(f"{here} reads Execution.{ref.name}, which is not an execution variable "
                                     f"(they are: {', '.join(EXECUTION_VARIABLE_NAMES)}).")
        elif ref.namespace == "PipelineExperimentConfig":
            if ref.name not in EXPERIMENT_CONFIG_NAMES:
                self.problems.append(f"{here} reads PipelineExperimentConfig.{ref.name}; it has only "
                                     f"{' and '.join(EXPERIMENT_CONFIG_NAMES)}.")
        elif ref.name not in self.graph:
            self.problems.append(f"{here} reads {ref.target}, but there is no step {ref.name!r} in this pipeline."
                                 f"{_close(ref.name, self.graph)}")
        elif ref.is_property_file or in_property_file:
            self.property_file(here, ref, in_property_file)
        else:
            self.property_path(here, ref)

    def property_file(self, here: str, ref: Reference, in_property_file: bool) -> None:
        source = self.graph[ref.name]
        if not (ref.is_property_file and in_property_file):
            self.problems.append(f"{here}: {ref.target} is not a property file reference; a JsonGet's PropertyFile "
                                 f"is {{\"Get\": \"Steps.<step>.PropertyFiles.<name>\"}}, read only through JsonGet.")
            return
        name = ref.path[1].name if isinstance(ref.path[1], Attr) else str(ref.path[1].key)
        declared = [pf.name for pf in source.property_files]
        if source.type is not StepType.PROCESSING:
            self.problems.append(f"{here}: JsonGet reads property file {name!r} of {source.type} step {ref.name!r}; "
                                 "only Processing steps declare property files.")
        elif name not in declared:
            self.problems.append(f"{here}: JsonGet reads property file {name!r}, which step {ref.name!r} does not "
                                 f"declare (it declares: {_names(declared)}). Add PropertyFile(name={name!r}, ...) to "
                                 f"its property_files.{_close(name, declared)}")

    def property_path(self, here: str, ref: Reference) -> str | None:
        """Check ``Steps.<s>.<path>`` against the step type's shape; return the value's kind when known."""
        source = self.graph[ref.name]
        if not ref.path:
            example = "ModelName" if source.type is StepType.CREATE_MODEL else "<Property>"
            self.problems.append(f"{here} reads {ref.target}: name a property of the step, e.g. "
                                 f"{ref.target}.{example}.")
            return None
        root = _shapes.root_node(str(source.type), source.output_parameters)
        if root is None:
            return None  # a step type whose properties sluice does not model: not checked
        node, problem = _shapes.walk(root, ref.path)
        if node is None:
            self.problems.append(f"{here} reads {ref.target}: {problem} ({source.type} step {ref.name!r}; "
                                 f"its properties mirror {_root_label(source)}).")
            return None
        self.named_index(here, ref, source)
        return node.kind

    def named_index(self, here: str, ref: Reference, source: StepSpec) -> None:
        """``Outputs['x']`` must name an output the step has; ``OutputParameters['x']`` one it declares."""
        path = ref.path
        for i, seg in enumerate(path[1:], start=1):
            prev = path[i - 1]
            if not (isinstance(seg, Index) and isinstance(seg.key, str) and isinstance(prev, Attr)):
                continue
            names = None
            if source.type is StepType.PROCESSING and prev.name == "Outputs":
                names = _processing_outputs(source)
            elif source.type is StepType.PROCESSING and prev.name == "ProcessingInputs":
                names = _processing_inputs(source)
            elif source.type in (StepType.LAMBDA, StepType.CALLBACK) and prev.name == "OutputParameters":
                names = list(source.output_parameters)
            if names is not None and seg.key not in names:
                self.problems.append(f"{here} reads {ref.target}: step {ref.name!r} has no {prev.name} entry named "
                                     f"{seg.key!r} (it has: {_names(names)}).{_close(seg.key, names)}")

    # ---- conditions ------------------------------------------------------------------------------
    def condition(self, where: str, cond: Any) -> None:
        if not isinstance(cond, Mapping) or not isinstance(cond.get("Type"), str):
            self.problems.append(f"{where}: a condition is an object with a Type.")
            return
        ctype = cond["Type"]
        if ctype in _COMPARISONS:
            if "LeftValue" not in cond or "RightValue" not in cond:
                self.problems.append(f"{where}: {ctype} needs LeftValue and RightValue.")
                return
            left, right = cond["LeftValue"], cond["RightValue"]
            self.comparison(where, ctype, left, right)
        elif ctype == "In":
            values = cond.get("Values")
            if "QueryValue" not in cond or not isinstance(values, list) or not values:
                self.problems.append(f"{where}: In needs a QueryValue and a non-empty Values list.")
                return
            for value in values:
                self.comparison(where, "Equals", cond["QueryValue"], value, label="In")
        elif ctype == "Not":
            if not isinstance(cond.get("Condition"), Mapping):
                self.problems.append(f"{where}: Not needs a Condition.")
                return
            self.condition(f"{where}.Condition", cond["Condition"])
        elif ctype == "Or":
            if not isinstance(cond.get("Conditions"), list) or not cond["Conditions"]:
                self.problems.append(f"{where}: Or needs a non-empty Conditions list.")
                return
            for i, sub in enumerate(cond["Conditions"]):
                self.condition(f"{where}.Conditions[{i}]", sub)
        else:
            self.problems.append(f"{where}: condition Type {ctype!r} is not one of "
                                 f"{', '.join([*_COMPARISONS, 'In', 'Not', 'Or'])}.")

    def comparison(self, where: str, ctype: str, left: Any, right: Any, label: str | None = None) -> None:
        lk, rk = self.kind(left), self.kind(right)
        problem = comparison_problem(ctype, lk, rk)
        if problem:
            self.problems.append(f"{where}: {label or ctype} compares {describe_operand(left, lk)} with "
                                 f"{describe_operand(right, rk)}: {problem}.")

    def kind(self, value: Any) -> str | None:
        """The kind of a condition operand when it is known before the run (see ``comparison_problem``)."""
        if (kind := literal_kind(value)) is not None:
            return kind
        if not isinstance(value, Mapping):
            return None
        if JOIN in value:
            return "string"
        target = value.get(GET)
        if not isinstance(target, str):
            return None
        try:
            ref = parse_reference(target)
        except PipelineError:
            return None
        if ref.namespace == "Parameters":
            spec = self.params.get(ref.name)
            return str(spec.type).lower() if spec else None
        if ref.namespace in ("Execution", "PipelineExperimentConfig"):
            return "string"
        if ref.name not in self.graph or not ref.path or ref.is_property_file:
            return None
        root = _shapes.root_node(str(self.graph[ref.name].type), self.graph[ref.name].output_parameters)
        node, _ = _shapes.walk(root, ref.path) if root is not None else (None, None)
        return node.kind if node is not None else None


def _root_label(spec: StepSpec) -> str:
    shapes = _shapes.describe_shapes(str(spec.type))
    return " + ".join(shapes) if shapes else f"the {spec.type} step's properties"


def _processing_outputs(spec: StepSpec) -> list[str] | None:
    """The output names of a processing step when they are literal (None: not knowable)."""
    if spec.type is not StepType.PROCESSING or not isinstance(spec.arguments, Mapping):
        return None
    outputs = (spec.arguments.get("ProcessingOutputConfig") or {}).get("Outputs", [])
    names = [o.get("OutputName") for o in outputs if isinstance(o, Mapping)]
    return [n for n in names if isinstance(n, str)] if all(isinstance(n, str) for n in names) else None


def _processing_inputs(spec: StepSpec) -> list[str] | None:
    if not isinstance(spec.arguments, Mapping):
        return None
    names = [i.get("InputName") for i in spec.arguments.get("ProcessingInputs", []) if isinstance(i, Mapping)]
    return names if all(isinstance(n, str) for n in names) else None


# ---- start parameters ------------------------------------------------------------------------------------

_TRUE, _FALSE = ("true",), ("false",)


def _coerce(spec: ParameterSpec, value: Any) -> tuple[Any, str | None]:
    """``value`` as ``spec``'s type; a string (the wire format, the CLI) is parsed strictly."""
    kind = spec.type
    if isinstance(value, str) and kind is not ParameterType.STRING:
        text = value.strip()
        try:
            if kind is ParameterType.INTEGER:
                return int(text), None
            if kind is ParameterType.FLOAT:
                return float(text), None
        except ValueError:
            return None, f"{value!r} is not a{'n' if kind is ParameterType.INTEGER else ''} {kind}"
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE, None
        return None, f"{value!r} is not a Boolean (give true or false)"
    from sluice.workflow.parameters import type_problem

    problem = type_problem(str(kind), value)
    if problem:
        return None, problem
    return (float(value) if kind is ParameterType.FLOAT else value), None


def validate_overrides(parameters: Any, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check the values given at start against the declared parameters; return every parameter's value.

    Refused, all at once: an unknown name, a value of the wrong type (strings such as ``"3"`` or ``"true"``
    are read as the declared type, as the service's wire format sends them), a value outside EnumValues, an
    empty string (the service's minimum length is 1), a required parameter left out, more than 200 values.
    """
    params = _as_specs(parameters)
    overrides = dict(overrides or {})
    problems: list[str] = []
    if len(overrides) > MAX_START_PARAMETERS:
        problems.append(f"{len(overrides)} parameter values given; at most {MAX_START_PARAMETERS} are allowed")
    resolved: dict[str, Any] = {}
    for name, value in overrides.items():
        spec = params.get(name)
        if spec is None:
            problems.append(f"{name!r} is not a parameter of this pipeline (parameters: {_names(params)})."
                            f"{_close(name, params)}")
            continue
        if value is None:
            problems.append(f"parameter {name!r}: no value given (None); leave it out to use the default")
            continue
        if isinstance(value, str) and value == "":
            problems.append(f"parameter {name!r}: the empty string is not allowed (minimum length 1)")
            continue
        coerced, problem = _coerce(spec, value)
        if problem:
            problems.append(f"parameter {name!r} is {spec.type}: {problem}")
            continue
        if spec.enum_values is not None and coerced not in spec.enum_values:
            problems.append(f"parameter {name!r}: {coerced!r} is not one of its EnumValues "
                            f"{list(spec.enum_values)}")
            continue
        resolved[name] = coerced
    out: dict[str, Any] = {}
    for name, spec in params.items():
        if name in resolved:
            out[name] = resolved[name]
        elif spec.default_value is not None:
            out[name] = spec.default_value
        elif name not in overrides:
            problems.append(f"parameter {name!r} has no default, so a value must be given at start")
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise PipelineError(f"The pipeline parameters are invalid; nothing was run:\n{lines}")
    return out


# ---- selective execution --------------------------------------------------------------------------------

def validate_selection(graph: PipelineGraph, selected_steps: Iterable[str]) -> None:
    """Check a selective execution's steps: 1-50 known steps, with every step on a path between two of them.

    That last rule is the service's: "All step(s) in all path(s) between two selected steps should be
    included."
    """
    selected = list(dict.fromkeys(selected_steps))
    problems: list[str] = []
    if not 1 <= len(selected) <= MAX_SELECTED_STEPS:
        problems.append(f"select 1 to {MAX_SELECTED_STEPS} steps, not {len(selected)}")
    for name in selected:
        if name not in graph:
            problems.append(f"{name!r} is not a step of this pipeline.{_close(name, graph)}")
    known = [n for n in selected if n in graph]
    chosen = set(known)
    for first in known:
        below = downstream(graph, [first])
        for last in chosen & below:
            missing = (below & upstream(graph, [last])) - chosen
            if missing:
                problems.append(f"steps {_names(missing)} lie between selected steps {first!r} and {last!r}; "
                                "select them too (every step on a path between two selected steps must be).")
    if problems:
        lines = "\n".join(f"  - {p}" for p in dict.fromkeys(problems))
        raise PipelineError(f"The step selection is invalid:\n{lines}")
