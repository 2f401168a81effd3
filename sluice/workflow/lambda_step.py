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
exported from the SageMaker SDK names a real AWS function (``...:function:my-function``); map that name (or the
ARN) to a callable in the ``[lambdas]`` section of the sluice config file, which every process reads (so
``sluice pipeline run`` finds it)::

    [lambdas]
    "my-function" = "mypackage.gates:handler"        # or "/path/to/gate.py:handler"

or, in the process that starts the pipeline, with :func:`register_local_function`.
"""

from __future__ import annotations

import enum
import hashlib
import importlib
import importlib.util
import inspect
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sluice.errors import PipelineError, SpecError
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

if TYPE_CHECKING:
    from sluice.config import Config

_LOCAL_FUNCTIONS: dict[str, Callable[..., Any]] = {}
_FILE_MODULES: dict[tuple[Path, int], ModuleType] = {}
"""Handler files loaded for ``[lambdas]`` entries, by path and modification time (an edited file is reloaded)."""


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


def local_function(function_arn: str, config: Config | None = None) -> Callable[..., Any]:
    """The callable behind a LambdaStep's ``FunctionArn``, looked for in this order:

    1. registered in this process (:func:`register_local_function`, or the step this process built), by ARN
       or by function name;
    2. the ``[lambdas]`` section of ``config`` (default: the current configuration), by ARN, by the ARN
       without its version or alias, or by function name;
    3. importable by the ``<module>.<qualname>`` a sluice-built ARN ends with.
    """
    if function_arn in _LOCAL_FUNCTIONS:
        return _LOCAL_FUNCTIONS[function_arn]
    name = function_name(function_arn)
    if name in _LOCAL_FUNCTIONS:
        return _LOCAL_FUNCTIONS[name]
    if config is None:
        from sluice.config import current_config

        config = current_config()
    unqualified = function_arn.split(":function:", 1)[0] + f":function:{name}" if ":function:" in function_arn \
        else function_arn
    for key in dict.fromkeys((function_arn, unqualified, name)):
        if key in config.lambdas:
            return _configured_function(key, config.lambdas[key], config.config_file)
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
    where = f"the [lambdas] section of {config.config_file}" if config.config_file else "the [lambdas] section of " \
        "the sluice config file"
    entry = f"{json.dumps(name)} = \"module:callable\" (or \"/path/to/file.py:callable\")"
    if "." not in name:
        raise PipelineError(
            f"no local function for {function_arn!r}: it names the AWS Lambda function {name!r}, and sluice runs no "
            f"AWS Lambda. Map it to a Python callable handler(event, context) that does what the function does: add "
            f"the entry {entry} to {where}, or, in the process that starts the pipeline, call "
            f"sluice.workflow.lambda_step.register_local_function({name!r}, handler).")
    raise PipelineError(f"no local function for {function_arn!r}: define {name!r} at module level (so it can be "
                        f"imported by name), build the pipeline in this process, add the entry {entry} to {where}, "
                        "or map the name with register_local_function().")


def _configured_function(key: str, target: str, config_file: Path | None) -> Callable[..., Any]:
    """The callable a ``[lambdas]`` entry names; a PipelineError naming the entry when it cannot be loaded."""
    from sluice.config import lambda_target

    entry = f"[lambdas] entry {json.dumps(key)} = {json.dumps(target)}" + (f" in {config_file}" if config_file else "")
    try:
        source, attribute = lambda_target(target)
    except SpecError as exc:
        raise PipelineError(f"{entry}: {exc}") from None
    try:
        if source.endswith(".py"):
            path = Path(source).expanduser()
            if not path.is_absolute() and config_file is not None:
                path = config_file.parent / path
            obj: Any = _load_file(path.resolve())
        else:
            obj = importlib.import_module(source)
    except Exception as exc:  # an import runs user code: whatever it raises, say which entry it came from
        raise PipelineError(f"{entry}: cannot load {source!r}: {type(exc).__name__}: {exc}") from None
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise PipelineError(f"{entry}: {source!r} has no attribute {attribute!r}; name a function defined there.")
        obj = getattr(obj, part)
    if not callable(obj):
        raise PipelineError(f"{entry}: {attribute!r} in {source!r} is not callable (it is {type(obj).__name__} "
                            f"{obj!r:.60}); name a function handler(event, context).")
    return obj


def _load_file(path: Path) -> ModuleType:
    """Import a handler file by path, as AWS Lambda does: its directory goes on ``sys.path`` so the modules beside
    it import too. Loaded once per modification of the file."""
    key = (path, path.stat().st_mtime_ns)
    if key in _FILE_MODULES:
        return _FILE_MODULES[key]
    module_name = f"sluice_lambda_{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    if str(path.parent) not in sys.path:
        sys.path.append(str(path.parent))
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    _FILE_MODULES[key] = module
    return module


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
