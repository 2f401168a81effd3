"""``sluice.workflow.pipeline``: ``Pipeline``, its definition JSON in both directions (SDK ``pipeline.py``).

``Pipeline.definition()`` compiles every step (running the facade calls recorded under a PipelineSession),
then parses and validates the result exactly as an imported definition would be, so a definition sluice
emits is one it would accept, and it returns the ``2020-12-01`` JSON the SDK emits::

    {"Version": "2020-12-01", "Metadata": {}, "Parameters": [...],
     "PipelineExperimentConfig": {"ExperimentName": {"Get": "Execution.PipelineName"},
                                  "TrialName": {"Get": "Execution.PipelineExecutionId"}},
     "Steps": [...]}

``Pipeline.from_definition(text)`` reads any SDK-produced definition into a Pipeline whose steps re-emit
the definition as it was; ``Pipeline.compile()`` gives the parsed model the executor will consume
(:class:`sluice.workflow.graph.PipelineDefinition`). ``create``/``update``/``upsert`` record the
definition (a metadata resource of kind ``Pipeline``) and ``start`` runs it with
:mod:`sluice.workflow.executor` (Processing, Training, Condition and Fail steps for now).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from sluice.errors import PipelineError
from sluice.workflow.entities import Entity, serialize
from sluice.workflow.execution_variables import ExecutionVariables
from sluice.workflow.graph import (
    DEFINITION_VERSION,
    ParameterSpec,
    ParameterType,
    PipelineDefinition,
    PipelineGraph,
    emit_step,
    parse_definition,
)
from sluice.workflow.parallelism_config import ParallelismConfiguration
from sluice.workflow.parameters import (
    Parameter,
    ParameterBoolean,
    ParameterFloat,
    ParameterInteger,
    ParameterString,
)
from sluice.workflow.pipeline_definition_config import PipelineDefinitionConfig
from sluice.workflow.pipeline_experiment_config import PipelineExperimentConfig
from sluice.workflow.properties import Properties
from sluice.workflow.step_collections import StepCollection
from sluice.workflow.step_outputs import StepOutput
from sluice.workflow.steps import Step, compile_step
from sluice.workflow.utilities import StepCompilationContext, step_compilation_context
from sluice.workflow.validation import validate_definition

__all__ = ["Pipeline"]

_PIPELINE_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}")
_DEFAULT = object()
_PIPELINE_KIND = "Pipeline"


def _default_experiment_config() -> PipelineExperimentConfig:
    return PipelineExperimentConfig(ExecutionVariables.PIPELINE_NAME, ExecutionVariables.PIPELINE_EXECUTION_ID)


class Pipeline:
    """A named pipeline of parameters and steps (SDK ``sagemaker.workflow.pipeline.Pipeline``).

    Refused here, when the pipeline is made: a bad pipeline name, two parameters with one name, and a step
    name used twice anywhere (condition branches and step collections included). Everything else is
    checked by :meth:`definition` before any JSON comes out.
    """

    def __init__(self, name: str = "", parameters: list[Parameter] | None = None,
                 pipeline_experiment_config: PipelineExperimentConfig | Any | None = _DEFAULT,
                 steps: list[Any] | None = None, sagemaker_session: Any = None,
                 pipeline_definition_config: PipelineDefinitionConfig | None = None,
                 parallelism_config: ParallelismConfiguration | None = None) -> None:
        if not isinstance(name, str) or not _PIPELINE_NAME.fullmatch(name):
            raise PipelineError(f"pipeline name {name!r} is not allowed: 1-256 letters, digits and hyphens, starting "
                                "and ending with a letter or digit.")
        if parallelism_config is not None and not isinstance(parallelism_config, ParallelismConfiguration):
            raise PipelineError(f"parallelism_config takes a ParallelismConfiguration, not {parallelism_config!r}.")
        self.name = name
        self.parameters: list[Parameter] = list(parameters or [])
        self.steps: list[Any] = list(steps or [])
        self.sagemaker_session = sagemaker_session
        self.pipeline_experiment_config = (_default_experiment_config() if pipeline_experiment_config is _DEFAULT
                                           else pipeline_experiment_config)
        self.pipeline_definition_config = pipeline_definition_config or PipelineDefinitionConfig()
        self.parallelism_config = parallelism_config
        self._version = DEFINITION_VERSION
        self._metadata: dict[str, Any] = {}
        self._extra: dict[str, Any] = {}
        self._emit_experiment_config = True
        self._check_names()

    # ---- construction checks -----------------------------------------------------------------------------
    def _check_names(self) -> None:
        seen: dict[str, str] = {}
        for p in self.parameters:
            if not isinstance(p, Parameter):
                raise PipelineError(f"parameters takes ParameterString/Integer/Float/Boolean objects, not {p!r}.")
            if p.name in seen:
                raise PipelineError(f"parameter name {p.name!r} is used twice; parameter names must be unique.")
            seen[p.name] = "parameter"
        where: dict[str, str] = {}
        for name, location in _step_names(self._resolved_steps()):
            if name in where:
                raise PipelineError(f"step name {name!r} is used twice ({where[name]} and {location}). Pipeline steps "
                                    "cannot have duplicate names, and steps in a ConditionStep's branches must not "
                                    "also be listed in the pipeline's steps.")
            where[name] = location

    def _resolved_steps(self) -> list[Any]:
        """The top-level steps: @step results become their steps, and unlisted upstream @step steps come first."""
        from sluice.workflow.function_step import _FunctionStep

        listed = [s._step if isinstance(s, StepOutput) else s for s in self.steps]
        present = {id(s) for s in _all_objects(listed)}
        implicit: list[Any] = []

        def visit(obj: Any) -> None:
            for dep in (obj.depends_on or []) if isinstance(obj, Step) else []:
                dep = dep._step if isinstance(dep, StepOutput) else dep
                if isinstance(dep, _FunctionStep) and id(dep) not in present:
                    present.add(id(dep))
                    visit(dep)
                    implicit.append(dep)
            for out in _condition_outputs(obj):
                if isinstance(out._step, _FunctionStep) and id(out._step) not in present:
                    present.add(id(out._step))
                    visit(out._step)
                    implicit.append(out._step)

        for obj in list(_all_objects(listed)):
            visit(obj)
        return [*implicit, *listed]

    # ---- the definition ------------------------------------------------------------------------------------
    def _compile(self) -> tuple[dict[str, Any], PipelineDefinition]:
        steps = self._resolved_steps()
        step_map = {getattr(o, "name", None): o for o in _all_objects(steps)}
        build_time = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H-%M-%S-%f")[:-3] + "Z"
        ctx = StepCompilationContext(self.name, "", self.sagemaker_session, self.pipeline_definition_config,
                                     build_time, step_map)
        with step_compilation_context(ctx):
            compiled = [d for s in steps for d in compile_step(s)]
        request: dict[str, Any] = {"Version": self._version, "Metadata": dict(self._metadata),
                                   "Parameters": [p.to_request() for p in self.parameters]}
        if self._emit_experiment_config:
            cfg = self.pipeline_experiment_config
            request["PipelineExperimentConfig"] = cfg.to_request() if cfg is not None else None
        request["Steps"] = compiled
        request.update(self._extra)
        data = serialize(request)
        _check_json(data, "")
        parsed = parse_definition(data)
        validate_definition(parsed)
        return data, parsed

    def definition(self) -> str:
        """The pipeline definition JSON (``Version 2020-12-01``), validated; nothing runs."""
        data, _ = self._compile()
        return json.dumps(data)

    def compile(self) -> PipelineDefinition:
        """The parsed, validated model of this pipeline: the graph the executor consumes."""
        return self._compile()[1]

    @classmethod
    def from_definition(cls, definition: str | bytes | Mapping[str, Any], sagemaker_session: Any = None,
                        name: str = "pipeline", **kwargs: Any) -> Pipeline:
        """A Pipeline from a definition JSON (as text or decoded), parsed and validated before it is returned.

        Its steps re-emit the definition as it came; ``steps[i].properties`` work as for any step, so new
        steps can be added that read them.
        """
        parsed = parse_definition(definition)
        validate_definition(parsed)
        parameters = [_parameter(spec) for spec in parsed.parameters.values()]
        steps: list[Any] = [_DefinedStep(parsed.graph, n) for n in parsed.top_level]
        experiment = (_RawExperimentConfig(parsed.experiment_config) if parsed.experiment_config is not None
                      else None)
        pipeline = cls(name=name, parameters=parameters, pipeline_experiment_config=experiment, steps=steps,
                       sagemaker_session=sagemaker_session, **kwargs)
        pipeline._version = parsed.version
        pipeline._metadata = dict(parsed.metadata)
        pipeline._extra = dict(parsed.extra)
        pipeline._emit_experiment_config = parsed.has_experiment_config
        return pipeline

    # ---- recording and running ------------------------------------------------------------------------
    def _session(self) -> Any:
        if self.sagemaker_session is not None:
            return self.sagemaker_session
        from sluice.session import Session

        return Session()

    def _record(self) -> Any:
        return self._session().metadata.get_resource(_PIPELINE_KIND, self.name)

    def create(self, role_arn: str | None = None, description: str | None = None, **kwargs: Any) -> Any:
        """Record the pipeline's definition (a resource of kind ``Pipeline``); a name taken is refused."""
        if self._record() is not None:
            raise PipelineError(f"ResourceInUse: pipeline {self.name!r} already exists; use update() or upsert().")
        return self._save(role_arn, description, create=True)

    def update(self, role_arn: str | None = None, description: str | None = None, **kwargs: Any) -> Any:
        """Replace the recorded definition of an existing pipeline."""
        if self._record() is None:
            raise PipelineError(f"ResourceNotFound: pipeline {self.name!r} does not exist; use create() or upsert().")
        return self._save(role_arn, description, create=False)

    def upsert(self, role_arn: str | None = None, description: str | None = None, **kwargs: Any) -> Any:
        """Create the pipeline, or update it when it exists; returns ``{"PipelineArn": ...}``."""
        return self._save(role_arn, description, create=self._record() is None)

    def _save(self, role_arn: str | None, description: str | None, *, create: bool) -> dict[str, Any]:
        from sluice.workflow.execution import pipeline_arn

        if not role_arn:
            raise PipelineError("role_arn is required to create or update a pipeline (any IAM role ARN; it is "
                                "recorded only).")
        session = self._session()
        arn = pipeline_arn(self.name, session.boto_region_name)
        record: dict[str, Any] = {"PipelineName": self.name, "PipelineArn": arn, "RoleArn": role_arn,
                                  "PipelineDefinition": self.definition(), "PipelineDescription": description,
                                  "ParallelismConfiguration": (self.parallelism_config.to_request()
                                                               if self.parallelism_config else None)}
        if create:
            session.metadata.create_resource(_PIPELINE_KIND, self.name, record)
        else:
            session.metadata.update_resource(_PIPELINE_KIND, self.name, record)
        return {"PipelineArn": arn}

    def start(self, parameters: dict[str, Any] | None = None, execution_display_name: str | None = None,
              execution_description: str | None = None, parallelism_config: Any = None,
              selective_execution_config: Any = None, **kwargs: Any) -> Any:
        """Run the recorded definition; returns the execution (``wait``, ``describe``, ``list_steps``, ``stop``).

        Everything is checked first (the pipeline exists, the step types are supported, the parameter
        values and the step selection are valid), so a refused start runs nothing.
        """
        from sluice.workflow.executor import start_execution

        row = self._record()
        if row is None:
            raise PipelineError(f"ResourceNotFound: pipeline {self.name!r} does not exist; call "
                                "pipeline.upsert(role_arn=...) before start().")
        text = row.record["PipelineDefinition"]
        parsed = parse_definition(text)
        validate_definition(parsed)
        if parallelism_config is not None:
            max_parallel = (parallelism_config.max_parallel_execution_steps
                            if isinstance(parallelism_config, ParallelismConfiguration)
                            else parallelism_config["MaxParallelExecutionSteps"])
        else:
            max_parallel = (row.record.get("ParallelismConfiguration") or {}).get("MaxParallelExecutionSteps")
        selective = (selective_execution_config.to_request()
                     if hasattr(selective_execution_config, "to_request") else selective_execution_config)
        return start_execution(self._session(), self.name, text, parsed, parameters=parameters,
                               max_parallel=max_parallel, display_name=execution_display_name,
                               description=execution_description, selective=selective)

    def list_executions(self, sort_by: str | None = None, sort_order: str | None = None,
                        max_results: int | None = None, next_token: str | None = None) -> dict[str, Any]:
        """``ListPipelineExecutions`` for this pipeline, newest first."""
        from sluice.workflow.execution import list_executions

        summaries = list_executions(self._session().config, self.name, limit=max_results or 100)
        if sort_order == "Ascending":
            summaries.reverse()
        return {"PipelineExecutionSummaries": summaries}

    def describe(self) -> Any:
        """``DescribePipeline``: the recorded pipeline."""
        row = self._record()
        if row is None:
            raise PipelineError(f"ResourceNotFound: pipeline {self.name!r} does not exist.")
        return dict(row.record)

    def delete(self) -> dict[str, Any]:
        """``DeletePipeline``: forget the recorded definition (its executions stay on record, readable by ARN).

        As the service does, a pipeline with an execution still running is not deleted: stop it, or wait."""
        from sluice.workflow.execution import list_executions

        row = self._record()
        if row is None:
            raise PipelineError(f"ResourceNotFound: pipeline {self.name!r} does not exist.")
        running = [e["PipelineExecutionArn"] for e in list_executions(self._session().config, self.name, limit=10_000)
                   if e["PipelineExecutionStatus"] in ("Executing", "Stopping")]
        if running:
            raise PipelineError(f"pipeline {self.name!r} has executions still running ({', '.join(running)}); stop "
                                "them (execution.stop() / `sluice pipeline stop`) or wait for them, then delete it.")
        self._session().metadata.delete_resource(_PIPELINE_KIND, self.name)
        return {"PipelineArn": row.record.get("PipelineArn")}

    def __repr__(self) -> str:
        return f"Pipeline(name={self.name!r}, steps={[getattr(s, 'name', s) for s in self.steps]})"


class _RawExperimentConfig(Entity):
    """An imported ``PipelineExperimentConfig``, re-emitted as it came."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = dict(data)

    def to_request(self) -> dict[str, Any]:
        return copy.deepcopy(self.data)


class _DefinedStep(Step):
    """A step read from a definition: it re-emits its JSON (branches included) and has typed properties."""

    def __init__(self, graph: PipelineGraph, name: str) -> None:
        spec = graph[name]
        super().__init__(name, spec.display_name, spec.description, spec.type, list(spec.depends_on) or None)
        self.spec = spec
        self._graph = graph
        self._properties = Properties.for_step_type(name, str(spec.type), spec.output_parameters)

    @property
    def arguments(self) -> Any:
        return emit_step(self._graph, self.name)["Arguments"]

    @property
    def properties(self) -> Properties:
        return self._properties

    def to_request(self) -> dict[str, Any]:
        return copy.deepcopy(emit_step(self._graph, self.name))

    def nested(self) -> Iterator[tuple[str, str]]:
        """The names of the steps in this step's condition branches, with where each sits."""
        stack = [self.name]
        while stack:
            spec = self._graph[stack.pop()]
            for key, names in (("IfSteps", spec.if_steps), ("ElseSteps", spec.else_steps)):
                for child in names:
                    yield child, f"in the {key} of {spec.name!r}"
                    stack.append(child)


def _parameter(spec: ParameterSpec) -> Parameter:
    if spec.type is ParameterType.STRING:
        return ParameterString(spec.name, spec.default_value, list(spec.enum_values) if spec.enum_values else None)
    cls = {ParameterType.INTEGER: ParameterInteger, ParameterType.FLOAT: ParameterFloat,
           ParameterType.BOOLEAN: ParameterBoolean}[spec.type]
    return cls(spec.name, spec.default_value)


def _all_objects(items: list[Any]) -> Iterator[Any]:
    """Every step and step collection, branches included (a collection, then its steps)."""
    from sluice.workflow.condition_step import ConditionStep

    for item in items:
        item = item._step if isinstance(item, StepOutput) else item
        yield item
        if isinstance(item, StepCollection):
            yield from item.steps
        if isinstance(item, ConditionStep):
            yield from _all_objects([*item.if_steps, *item.else_steps])


def _step_names(items: list[Any], location: str = "at the top level") -> Iterator[tuple[str, str]]:
    from sluice.workflow.condition_step import ConditionStep

    for item in items:
        item = item._step if isinstance(item, StepOutput) else item
        if isinstance(item, StepCollection):
            yield item.name, f"{location} (the step collection {item.name!r})"
            for sub in item.steps:
                yield sub.name, location
            continue
        name = getattr(item, "name", None)
        if not isinstance(name, str):
            raise PipelineError(f"a pipeline holds steps, step collections and @step results, not {item!r}.")
        yield name, location
        if isinstance(item, ConditionStep):
            yield from _step_names(item.if_steps, f"in the IfSteps of {name!r}")
            yield from _step_names(item.else_steps, f"in the ElseSteps of {name!r}")
        if isinstance(item, _DefinedStep):
            yield from item.nested()


def _condition_outputs(obj: Any) -> list[StepOutput]:
    from sluice.workflow.condition_step import ConditionStep
    from sluice.workflow.step_outputs import find_step_outputs

    return find_step_outputs(obj.conditions) if isinstance(obj, ConditionStep) else []


def _check_json(data: Any, path: str) -> None:
    """Name the first value that is not JSON (an object a facade call left in a request)."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            _check_json(value, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            _check_json(value, f"{path}[{i}]")
    elif not isinstance(data, str | int | float | bool) and data is not None:
        raise PipelineError(f"the definition holds a {type(data).__name__} at {path}, which is not JSON: {data!r}. "
                            "Give plain values or pipeline variables there.")
