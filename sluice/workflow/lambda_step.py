"""``sluice.workflow.lambda_step``: call a function and read its outputs (SDK ``lambda_step.py``).

There is no AWS Lambda here: ``lambda_func`` is a Python callable (or an object with ``function_arn``,
as the SDK's ``Lambda`` helper). When the step runs, the callable is invoked as AWS Lambda invokes a
Python handler, ``handler(event, context)``: ``event`` is the step's ``inputs`` with every pipeline
variable resolved (a dict), ``context`` carries the Lambda context attributes (``function_name``,
``aws_request_id``, ``get_remaining_time_in_millis()``, ...). A callable that takes one argument gets the
event alone. It returns a dict holding every declared ``LambdaOutput``; each is readable as
``step.properties.Outputs['name']``, which compiles to ``{"Get": "Steps.<step>.OutputParameters['name']"}``::

    def handler(event, context):
        return {"approved": event["accuracy"] > 0.9}

    LambdaStep("Gate", lambda_func=handler, inputs={"accuracy": acc},
               outputs=[LambdaOutput("approved", LambdaOutputTypeEnum.Boolean)])

The definition names the callable by a local ARN, ``arn:aws:lambda:<region>:<account>:function:<module>.<qualname>``.
:func:`local_function` gives the callable back: from this process's registry, or by importing it. A definition
exported from the SageMaker SDK names a real AWS function (``...:function:my-function``); map that name to a
callable with :func:`register_local_function` before starting the pipeline.
"""

from __future__ import annotations

import enum
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from sluice.errors import PipelineError
from sluice.workflow.entities import RequestType
from sluice.workflow.graph import StepType
from sluice.workflow.properties import Properties
from sluice.workflow.steps import CacheConfig, Step

__all__ = [
    "LambdaOutput",
    "LambdaOutputTypeEnum",
    "LambdaStep",
    "function_name",
    "handler_arity",
    "local_function",
    "register_local_function",
]

_LOCAL_FUNCTIONS: dict[str, Callable[..., Any]] = {}


class LambdaOutputTypeEnum(enum.Enum):
    String = "String"
    Integer = "Integer"
    Boolean = "Boolean"
    Float = "Float"


class LambdaOutput:
    """An output the function returns: ``output_name`` with ``output_type`` (String by default)."""

    def __init__(self, output_name: str, output_type: LambdaOutputTypeEnum = LambdaOutputTypeEnum.String) -> None:
        if not isinstance(output_name, str) or not output_name:
            raise PipelineError(f"LambdaOutput needs an output_name, not {output_name!r}.")
        self.output_name = output_name
        self.output_type = LambdaOutputTypeEnum(output_type)

    def to_request(self) -> dict[str, str]:
        return {"OutputName": self.output_name, "OutputType": self.output_type.value}

    def expr(self, step_name: str) -> dict[str, str]:
        return {"Get": f"Steps.{step_name}.OutputParameters['{self.output_name}']"}


def _arn_for(func: Callable[..., Any]) -> str:
    from sluice.session import ACCOUNT_ID
    from sluice.workflow.utilities import load_step_compilation_context

    ctx = load_step_compilation_context()
    region = ctx.sagemaker_session.boto_region_name if ctx and ctx.sagemaker_session else "us-east-1"
    return f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{func.__module__}.{func.__qualname__}"


def function_name(function_arn: str) -> str:
    """The function a Lambda ARN names, without its version or alias (``...:function:f:prod`` -> ``f``)."""
    tail = function_arn.rsplit(":function:", 1)[-1] if ":function:" in function_arn else function_arn
    return tail.split(":", 1)[0]


def register_local_function(function: str, func: Callable[..., Any]) -> None:
    """Run ``func`` for every LambdaStep whose ``FunctionArn`` names ``function`` (a name or a full ARN).

    For definitions that name real AWS Lambda functions (exported from the SageMaker SDK):
    ``register_local_function("my-function", handler)`` makes ``arn:aws:lambda:...:function:my-function`` run
    ``handler(event, context)`` in this process.
    """
    if not callable(func):
        raise PipelineError(f"register_local_function({function!r}, ...) needs a callable handler(event, context), "
                            f"not {func!r}.")
    handler_arity(func)
    _LOCAL_FUNCTIONS[function] = func


def local_function(function_arn: str) -> Callable[..., Any]:
    """The callable behind a LambdaStep's ``FunctionArn``: registered in this process (by ARN or by function
    name), or importable by the ``<module>.<qualname>`` the ARN ends with."""
    if function_arn in _LOCAL_FUNCTIONS:
        return _LOCAL_FUNCTIONS[function_arn]
    name = function_name(function_arn)
    if name in _LOCAL_FUNCTIONS:
        return _LOCAL_FUNCTIONS[name]
    module_name, _, qualname = name.rpartition(".")
    while module_name:
        try:
            target: Any = importlib.import_module(module_name)
        except ImportError:
            module_name, _, head = module_name.rpartition(".")
            qualname = f"{head}.{qualname}"
            continue
        for part in qualname.split("."):
            target = getattr(target, part, None)
        if callable(target):
            return target
        break
    if "." not in name:
        raise PipelineError(
            f"no local function for {function_arn!r}: it names the AWS Lambda function {name!r}, and sluice runs no "
            f"AWS Lambda. Map it to a Python callable before starting the pipeline: "
            f"sluice.workflow.lambda_step.register_local_function({name!r}, handler), where handler(event, context) "
            "does what the function does.")
    raise PipelineError(f"no local function for {function_arn!r}: define {name!r} at module level (so it can be "
                        "imported by name), build the pipeline in this process, or map the name with "
                        "register_local_function().")


def handler_arity(func: Callable[..., Any]) -> int:
    """How many arguments ``func`` is called with: 2 (``event, context``, as AWS Lambda calls) or 1 (``event``).

    Anything else cannot be called as a Lambda handler and is refused here, before a pipeline runs.
    """
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: call it as Lambda would
        return 2
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    required += [p for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
    if len(required) <= 2 and (len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)):
        return 2
    if len(required) <= 1 and len(positional) == 1:
        return 1
    raise PipelineError(f"{getattr(func, '__qualname__', func)!r} cannot be called as a Lambda handler: it takes "
                        f"{inspect.signature(func)}; write it as handler(event, context) (or handler(event)).")


class LambdaStep(Step):
    """Call ``lambda_func(event, context)`` with ``inputs`` as the event; its declared ``outputs`` become
    properties (the returned dict must hold each of them, of its declared type)."""

    def __init__(self, name: str, lambda_func: Any, display_name: str | None = None, description: str | None = None,
                 inputs: dict[str, Any] | None = None, outputs: list[LambdaOutput] | None = None,
                 cache_config: CacheConfig | None = None, depends_on: list[Any] | None = None) -> None:
        super().__init__(name, display_name, description, StepType.LAMBDA, depends_on)
        if not callable(lambda_func) and not getattr(lambda_func, "function_arn", None):
            raise PipelineError(f"LambdaStep {name!r}: lambda_func is a Python callable (or has a function_arn), "
                                f"not {lambda_func!r}.")
        if not getattr(lambda_func, "function_arn", None):
            handler_arity(lambda_func)
        self.lambda_func = lambda_func
        self.inputs = dict(inputs or {})
        self.outputs = list(outputs or [])
        names = [o.output_name for o in self.outputs]
        if len(set(names)) != len(names):
            raise PipelineError(f"LambdaStep {name!r}: output names must be unique, got {names}.")
        self.cache_config = cache_config
        kinds = {o.output_name: o.output_type.value.lower() for o in self.outputs}
        root = Properties.for_step_type(name, StepType.LAMBDA.value, kinds)
        root.__dict__["Outputs"] = _Outputs(name, {n: root.OutputParameters[n] for n in names})
        self._properties = root

    @property
    def function_arn(self) -> str:
        arn = getattr(self.lambda_func, "function_arn", None)
        if isinstance(arn, str) and arn:
            return arn
        arn = _arn_for(self.lambda_func)
        _LOCAL_FUNCTIONS[arn] = self.lambda_func
        return arn

    @property
    def arguments(self) -> RequestType:
        return self.inputs

    @property
    def properties(self) -> Properties:
        """``Outputs['name']`` for each declared output."""
        return self._properties

    def to_request(self) -> RequestType:
        request = super().to_request()
        assert isinstance(request, dict)
        if self.cache_config is not None:
            request.update(self.cache_config.config)
        request["FunctionArn"] = self.function_arn
        request["OutputParameters"] = [o.to_request() for o in self.outputs]
        return request


class _Outputs(Mapping[str, Properties]):
    """``step.properties.Outputs``: the declared outputs, by name; an undeclared one is refused by name."""

    def __init__(self, step_name: str, items: dict[str, Properties]) -> None:
        self._step_name, self._items = step_name, items

    def __getitem__(self, key: str) -> Properties:
        if key not in self._items:
            raise KeyError(f"LambdaStep {self._step_name!r} declares no output {key!r} (outputs: "
                           f"{', '.join(self._items) or 'none'}); add LambdaOutput({key!r}, ...) to its outputs.")
        return self._items[key]

    def __iter__(self) -> Any:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
