"""``sluice.workflow.lambda_step``: call a function and read its outputs (SDK ``lambda_step.py``).

There is no AWS Lambda here: ``lambda_func`` is a Python callable (or an object with ``function_arn``,
as the SDK's ``Lambda`` helper). It is called with the step's ``inputs`` as the event and returns a dict
of outputs; each declared ``LambdaOutput`` is readable as ``step.properties.Outputs['name']``, which
compiles to ``{"Get": "Steps.<step>.OutputParameters['name']"}``.

The definition names the callable by a local ARN, ``arn:aws:lambda:<region>:<account>:function:<module>.<qualname>``.
:func:`local_function` gives the callable back: from this process's registry, or by importing it.
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Callable, Mapping
from typing import Any

from sluice.errors import PipelineError
from sluice.workflow.entities import RequestType
from sluice.workflow.graph import StepType
from sluice.workflow.properties import Properties
from sluice.workflow.steps import CacheConfig, Step

__all__ = ["LambdaOutput", "LambdaOutputTypeEnum", "LambdaStep", "local_function"]

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


def local_function(function_arn: str) -> Callable[..., Any]:
    """The callable behind a LambdaStep's ``FunctionArn``: registered in this process, or importable by name."""
    if function_arn in _LOCAL_FUNCTIONS:
        return _LOCAL_FUNCTIONS[function_arn]
    dotted = function_arn.rsplit(":function:", 1)[-1]
    module_name, _, qualname = dotted.rpartition(".")
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
    raise PipelineError(f"no local function for {function_arn!r}: define it at module level (so it can be "
                        "imported by name) or build the pipeline in this process.")


class LambdaStep(Step):
    """Call ``lambda_func`` with ``inputs``; its declared ``outputs`` become properties."""

    def __init__(self, name: str, lambda_func: Any, display_name: str | None = None, description: str | None = None,
                 inputs: dict[str, Any] | None = None, outputs: list[LambdaOutput] | None = None,
                 cache_config: CacheConfig | None = None, depends_on: list[Any] | None = None) -> None:
        super().__init__(name, display_name, description, StepType.LAMBDA, depends_on)
        if not callable(lambda_func) and not getattr(lambda_func, "function_arn", None):
            raise PipelineError(f"LambdaStep {name!r}: lambda_func is a Python callable (or has a function_arn), "
                                f"not {lambda_func!r}.")
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
