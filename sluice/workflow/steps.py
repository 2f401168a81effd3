"""``sluice.workflow.steps``: the step base and the job steps (SDK ``sagemaker.workflow.steps``).

A step compiles to ``{"Name", "Type", "Arguments", "DependsOn"?, "DisplayName"?, "Description"?,
"RetryPolicies"?, "CacheConfig"?, "PropertyFiles"?}`` (that key order is the SDK's). A job step's
``Arguments`` are the ``Create*Job`` request its facade call produced under a ``PipelineSession``, minus
the job name (unless ``use_custom_job_prefix``) and the experiment config (contract 5.1)::

    step_args = processor.run(code="preprocess.py", inputs=[...], outputs=[...])   # PipelineSession
    step = ProcessingStep(name="Preprocess", step_args=step_args, property_files=[report])

The older form, ``ProcessingStep(name, processor=..., inputs=..., code=...)``, makes the same call.
"""

from __future__ import annotations

import copy
import inspect
import re
from abc import abstractmethod
from collections.abc import Iterable
from typing import Any

from sluice.errors import PipelineError
from sluice.workflow.entities import Entity, PipelineVariable, RequestType
from sluice.workflow.graph import StepType, parse_duration
from sluice.workflow.pipeline_context import (
    PipelineSession,
    _ModelStepArguments,
    _StepArguments,
    execute_job_functions,
    model_create_request,
)
from sluice.workflow.properties import Properties, PropertyFile
from sluice.workflow.retry import RetryPolicy, SageMakerJobStepRetryPolicy
from sluice.workflow.utilities import load_step_compilation_context, trim_request_dict

__all__ = [
    "CacheConfig",
    "ConfigurableRetryStep",
    "CreateModelStep",
    "ProcessingStep",
    "Step",
    "StepTypeEnum",
    "TrainingStep",
    "TransformStep",
    "TuningStep",
]

_STEP_NAME = re.compile(r"[A-Za-z0-9\-_]{1,64}")

StepTypeEnum = StepType
"""The SDK's name for the step types (``StepTypeEnum.PROCESSING.value == "Processing"``)."""


def step_name_of(ref: Any) -> str:
    """The step name a ``depends_on`` entry stands for: a Step, a StepCollection (its last step), a step
    output (its step) or a name (a collection's name maps to its last step while compiling)."""
    from sluice.workflow.step_collections import StepCollection
    from sluice.workflow.step_outputs import StepOutput

    if isinstance(ref, StepCollection):
        return ref.steps[-1].name
    if isinstance(ref, Step):
        return ref.name
    if isinstance(ref, StepOutput):
        return ref._step.name
    if isinstance(ref, str):
        ctx = load_step_compilation_context()
        found = ctx.step_map.get(ref) if ctx else None
        return found.steps[-1].name if isinstance(found, StepCollection) else ref
    raise PipelineError(f"depends_on takes step names, steps, step collections or step outputs, not {ref!r}.")


def compile_step(step: Any) -> list[dict[str, Any]]:
    """The definition dicts of ``step`` (a StepCollection gives several), each compiled in its own step context."""
    from sluice.workflow.step_collections import StepCollection
    from sluice.workflow.step_outputs import StepOutput
    from sluice.workflow.utilities import step_compilation_context

    if isinstance(step, StepOutput):
        step = step._step
    if isinstance(step, StepCollection):
        return [d for s in step.steps for d in compile_step(s)]
    if not isinstance(step, Step):
        raise PipelineError(f"a pipeline holds steps, step collections and @step results, not {step!r}.")
    ctx = load_step_compilation_context()
    if ctx is None:
        return [step.to_request()]  # type: ignore[list-item]
    with step_compilation_context(ctx.for_step(step.name)):
        return [step.to_request()]  # type: ignore[list-item]


class Step(Entity):
    """A pipeline step: a name, a type, its arguments and the steps it must wait for."""

    def __init__(self, name: str, display_name: str | None = None, description: str | None = None,
                 step_type: StepType | None = None, depends_on: list[Any] | None = None) -> None:
        if not isinstance(name, str) or not _STEP_NAME.fullmatch(name):
            raise PipelineError(f"step name {name!r} is not allowed: use 1-64 letters, digits, '-' or '_' (the "
                                "service's pattern; properties are read as Steps.<name>.<path>).")
        self.name = name
        self.display_name = display_name
        self.description = description
        self.step_type = StepType(step_type) if step_type is not None else None
        self._depends_on: list[Any] | None = list(depends_on) if depends_on is not None else None

    @property
    def depends_on(self) -> list[Any] | None:
        return self._depends_on

    @depends_on.setter
    def depends_on(self, value: list[Any] | None) -> None:
        self._depends_on = list(value) if value is not None else None

    def add_depends_on(self, step_names: Iterable[Any] | None) -> None:
        if not step_names:
            return
        self._depends_on = [*(self._depends_on or []), *step_names]

    @property
    @abstractmethod
    def arguments(self) -> RequestType:
        """The step's arguments (computed while the pipeline compiles)."""

    @property
    @abstractmethod
    def properties(self) -> Any:
        """The step's properties, for other steps to read."""

    @property
    def step_only_arguments(self) -> RequestType:
        """The arguments of this step alone (a ConditionStep leaves out its branches)."""
        return self.arguments

    @property
    def ref(self) -> dict[str, str]:
        return {"Name": self.name}

    def _implicit_depends_on(self, arguments: Any) -> list[str]:
        """Steps whose ``@step`` results the arguments read: their JsonGet names no step, so say it in DependsOn."""
        from sluice.workflow.step_outputs import find_step_outputs

        return [out._step.name for out in find_step_outputs(arguments)]

    def to_request(self) -> RequestType:
        arguments = self.arguments
        assert self.step_type is not None
        request: dict[str, Any] = {"Name": self.name, "Type": self.step_type.value, "Arguments": arguments}
        names = [step_name_of(d) for d in self._depends_on or []]
        names += [n for n in self._implicit_depends_on(arguments) if n not in names and n != self.name]
        if names:
            request["DependsOn"] = list(dict.fromkeys(names))
        if self.display_name:
            request["DisplayName"] = self.display_name
        if self.description:
            request["Description"] = self.description
        return request

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class CacheConfig:
    """Reuse a previous successful run with the same arguments, within ``expire_after`` (ISO-8601, e.g. P30D)."""

    def __init__(self, enable_caching: bool = False, expire_after: str | None = None) -> None:
        if expire_after is not None:
            if not isinstance(expire_after, str):
                raise PipelineError(f"expire_after is an ISO-8601 duration string such as 'P30D', "
                                    f"not {expire_after!r}.")
            parse_duration(expire_after)
        self.enable_caching = bool(enable_caching)
        self.expire_after = expire_after

    @property
    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"Enabled": self.enable_caching}
        if self.expire_after is not None:
            config["ExpireAfter"] = self.expire_after
        return {"CacheConfig": config}


class ConfigurableRetryStep(Step):
    """A step that takes retry policies."""

    def __init__(self, name: str, step_type: StepType, display_name: str | None = None,
                 description: str | None = None, depends_on: list[Any] | None = None,
                 retry_policies: list[RetryPolicy] | None = None) -> None:
        super().__init__(name, display_name, description, step_type, depends_on)
        if retry_policies and not all(isinstance(p, RetryPolicy) for p in retry_policies):
            raise PipelineError(f"retry_policies takes StepRetryPolicy / SageMakerJobStepRetryPolicy objects, not "
                                f"{retry_policies!r}.")
        self.retry_policies: list[RetryPolicy] = list(retry_policies or [])

    def add_retry_policy(self, retry_policy: RetryPolicy | None) -> None:
        if retry_policy is not None:
            self.retry_policies.append(retry_policy)

    def to_request(self) -> RequestType:
        request = super().to_request()
        assert isinstance(request, dict)
        if self.retry_policies:
            request["RetryPolicies"] = [p.to_request() for p in self.retry_policies]
        return request


def _trim_experiment_config(request: dict[str, Any]) -> None:
    """Keep only ``ExperimentConfig.TrialComponentDisplayName`` (the SDK's rule for job steps)."""
    display = (request.get("ExperimentConfig") or {}).get("TrialComponentDisplayName")
    if display:
        request["ExperimentConfig"] = {"TrialComponentDisplayName": display}
    else:
        request.pop("ExperimentConfig", None)


class _JobStep(ConfigurableRetryStep):
    """A step that runs one job built by the facade (Processing, Training, Tuning, Transform)."""

    _caller: str = ""
    _job_key: str = ""
    _how: str = ""

    def __init__(self, name: str, step_type: StepType, step_args: _StepArguments | None, legacy: _StepArguments | None,
                 display_name: str | None, description: str | None, cache_config: CacheConfig | None,
                 depends_on: list[Any] | None, retry_policies: list[RetryPolicy] | None) -> None:
        super().__init__(name, step_type, display_name, description, depends_on, retry_policies)
        if (step_args is None) == (legacy is None):
            raise PipelineError(f"{type(self).__name__} {name!r}: give step_args (from {self._how} under a "
                                f"PipelineSession) or the {self._how.split('.')[0]} itself, not both and not neither.")
        if step_args is not None and not isinstance(step_args, _StepArguments):
            raise PipelineError(f"{type(self).__name__} {name!r}: step_args must come from {self._how} under a "
                                f"PipelineSession, not {step_args!r}.")
        if step_args is not None and step_args.caller_name not in (None, self._caller):
            raise PipelineError(f"{type(self).__name__} {name!r}: these step_args come from a "
                                f"{step_args.caller_name!r} call; a {type(self).__name__} takes those of {self._how}.")
        self.step_args = step_args if step_args is not None else legacy
        if cache_config is not None and not isinstance(cache_config, CacheConfig):
            raise PipelineError(f"cache_config takes a CacheConfig, not {cache_config!r}.")
        self.cache_config = cache_config
        self._properties = Properties.for_step_type(name, step_type.value)

    @property
    def arguments(self) -> RequestType:
        assert self.step_args is not None
        request = execute_job_functions(self.step_args)
        if self.step_args.caller_name not in (None, self._caller):
            raise PipelineError(f"{type(self).__name__} {self.name!r}: its step_args produced a "
                                f"{self.step_args.caller_name!r} request; it takes those of {self._how}.")
        trim_request_dict(request, self._job_key, load_step_compilation_context())
        _trim_experiment_config(request)
        return request

    @property
    def properties(self) -> Properties:
        return self._properties

    def to_request(self) -> RequestType:
        request = super().to_request()
        assert isinstance(request, dict)
        if self.cache_config is not None:
            request.update(self.cache_config.config)
        return request


def _legacy(owner: Any, method: str, what: str, caller: str, **kwargs: Any) -> _StepArguments:
    """The older ``XStep(processor=...)`` form: the same call ``step_args`` would have recorded."""
    session = getattr(owner, "sagemaker_session", None)
    if not isinstance(session, PipelineSession):
        raise PipelineError(f"the {what} of a pipeline step must use a PipelineSession "
                            f"(sagemaker_session=PipelineSession()), or it would start a job.")
    func = getattr(type(owner), method)
    func = getattr(func, "__wrapped__", func)
    params = inspect.signature(func).parameters
    for flag in ("wait", "logs"):
        if flag in params:
            kwargs[flag] = False
    return _StepArguments(caller, func, owner, **kwargs)


class ProcessingStep(_JobStep):
    """A processing job (``processor.run(...)``); may declare ``property_files`` for ``JsonGet``."""

    _caller, _job_key, _how = "process", "ProcessingJobName", "processor.run()"

    def __init__(self, name: str, processor: Any = None, display_name: str | None = None,
                 description: str | None = None, inputs: list[Any] | None = None, outputs: list[Any] | None = None,
                 job_arguments: list[str] | None = None, code: str | None = None,
                 property_files: list[PropertyFile] | None = None, cache_config: CacheConfig | None = None,
                 depends_on: list[Any] | None = None, retry_policies: list[RetryPolicy] | None = None,
                 kms_key: str | None = None, step_args: _StepArguments | None = None) -> None:
        legacy = None
        if processor is not None:
            extra = {"code": code} if code is not None else {}
            legacy = _legacy(processor, "run", "processor", "process", inputs=inputs, outputs=outputs,
                             arguments=job_arguments, kms_key=kms_key, **extra)
        super().__init__(name, StepType.PROCESSING, step_args, legacy, display_name, description, cache_config,
                         depends_on, retry_policies)
        self.processor = processor
        if property_files and not all(isinstance(p, PropertyFile) for p in property_files):
            raise PipelineError(f"property_files takes PropertyFile objects, not {property_files!r}.")
        self.property_files = list(property_files or [])

    def to_request(self) -> RequestType:
        request = super().to_request()
        assert isinstance(request, dict)
        if self.property_files:
            request["PropertyFiles"] = [p.expr for p in self.property_files]
        return request


class TrainingStep(_JobStep):
    """A training job (``estimator.fit(...)``)."""

    _caller, _job_key, _how = "train", "TrainingJobName", "estimator.fit()"

    def __init__(self, name: str, step_args: _StepArguments | None = None, display_name: str | None = None,
                 description: str | None = None, cache_config: CacheConfig | None = None,
                 depends_on: list[Any] | None = None, retry_policies: list[RetryPolicy] | None = None,
                 estimator: Any = None, inputs: Any = None) -> None:
        legacy = _legacy(estimator, "fit", "estimator", "train", inputs=inputs) if estimator is not None else None
        super().__init__(name, StepType.TRAINING, step_args, legacy, display_name, description, cache_config,
                         depends_on, retry_policies)
        self.estimator = estimator


class TuningStep(_JobStep):
    """A hyperparameter tuning job (``tuner.fit(...)``)."""

    _caller, _job_key, _how = "create_tuning_job", "HyperParameterTuningJobName", "tuner.fit()"

    def __init__(self, name: str, step_args: _StepArguments | None = None, tuner: Any = None,
                 display_name: str | None = None, description: str | None = None, inputs: Any = None,
                 job_arguments: list[str] | None = None, cache_config: CacheConfig | None = None,
                 depends_on: list[Any] | None = None, retry_policies: list[RetryPolicy] | None = None) -> None:
        legacy = _legacy(tuner, "fit", "tuner", "create_tuning_job", inputs=inputs) if tuner is not None else None
        super().__init__(name, StepType.TUNING, step_args, legacy, display_name, description, cache_config,
                         depends_on, retry_policies)
        self.tuner = tuner
        self.job_arguments = job_arguments

    def get_top_model_s3_uri(self, top_k: int, s3_bucket: str, prefix: str = "") -> PipelineVariable:
        """Where the ``top_k``-th best training job's model lands: ``s3://bucket/prefix/<job>/output/model.tar.gz``."""
        from sluice.workflow.functions import Join

        values = ["s3:/", s3_bucket, *([prefix.strip("/")] if prefix else []),
                  self.properties.TrainingJobSummaries[top_k].TrainingJobName, "output/model.tar.gz"]
        return Join(on="/", values=values)


class TransformStep(_JobStep):
    """A batch transform job (``transformer.transform(...)``)."""

    _caller, _job_key, _how = "transform", "TransformJobName", "transformer.transform()"

    def __init__(self, name: str, step_args: _StepArguments | None = None, transformer: Any = None,
                 inputs: Any = None, display_name: str | None = None, description: str | None = None,
                 cache_config: CacheConfig | None = None, depends_on: list[Any] | None = None,
                 retry_policies: list[RetryPolicy] | None = None) -> None:
        legacy = None
        if transformer is not None:
            fields = ("data", "data_type", "content_type", "compression_type", "split_type", "input_filter",
                      "output_filter", "join_source", "model_client_config")
            given = {f: getattr(inputs, f) for f in fields if getattr(inputs, f, None) is not None}
            legacy = _legacy(transformer, "transform", "transformer", "transform", **given)
        super().__init__(name, StepType.TRANSFORM, step_args, legacy, display_name, description, cache_config,
                         depends_on, retry_policies)
        self.transformer = transformer


class CreateModelStep(ConfigurableRetryStep):
    """Record a model (``CreateModel``); most code gets one through ``ModelStep(step_args=model.create())``."""

    def __init__(self, name: str, step_args: _ModelStepArguments | None = None, model: Any = None,
                 inputs: Any = None, depends_on: list[Any] | None = None,
                 retry_policies: list[RetryPolicy] | None = None, display_name: str | None = None,
                 description: str | None = None) -> None:
        super().__init__(name, StepType.CREATE_MODEL, display_name, description, depends_on, retry_policies)
        if any(isinstance(p, SageMakerJobStepRetryPolicy) for p in self.retry_policies):
            raise PipelineError(f"CreateModelStep {name!r}: SageMakerJobStepRetryPolicy is for job steps; creating a "
                                "model starts no job. Use StepRetryPolicy.")
        if (step_args is None) == (model is None):
            raise PipelineError(f"CreateModelStep {name!r}: give step_args (from model.create() under a "
                                "PipelineSession) or model, not both and not neither.")
        if step_args is not None:
            if not isinstance(step_args, _ModelStepArguments) or step_args.create_model_request is None:
                raise PipelineError(f"CreateModelStep {name!r}: step_args must come from model.create() under a "
                                    "PipelineSession.")
            if getattr(step_args, "need_runtime_repack", None):
                raise PipelineError(f"CreateModelStep {name!r}: the model has an entry_point and model_data known only "
                                    "when the pipeline runs, so it must be repacked first; use ModelStep(step_args="
                                    "model.create(...)), which adds the repack step as the SDK does.")
            self._request = step_args.create_model_request
        else:
            self._request = model_create_request(model, instance_type=getattr(inputs, "instance_type", None),
                                                 accelerator_type=getattr(inputs, "accelerator_type", None))
        self.step_args = step_args
        self._properties = Properties.for_step_type(name, StepType.CREATE_MODEL.value)

    @property
    def arguments(self) -> RequestType:
        return trim_request_dict(copy.deepcopy(self._request), "ModelName", load_step_compilation_context())

    @property
    def properties(self) -> Properties:
        return self._properties
