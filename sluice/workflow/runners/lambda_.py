"""The Lambda step runner: call the step's local Python function as AWS Lambda calls a handler.

``FunctionArn`` maps to a callable through :func:`sluice.workflow.lambda_step.local_function` (the function
the pipeline was built with, an importable ``<module>.<qualname>``, or one mapped with
``register_local_function``, or a ``[lambdas]`` entry of the execution's config, which is how a definition
exported from the SDK names its functions). It is called ``handler(event, context)``: ``event`` is the step's resolved
``Arguments`` (a dict), ``context`` a :class:`LambdaContext`. It must return a dict holding every declared
``OutputParameters`` entry with a value of its declared type; those become the step's properties,
``{"OutputParameters": {name: value}}``, which ``Steps.<name>.OutputParameters['x']`` reads.

The handler runs on a thread of its own so that a stopped execution, or a call that outlives AWS Lambda's
15-minute limit, ends the step at once. Python cannot kill that thread: the call goes on in the background
and its result is dropped, as AWS leaves a timed-out invocation's side effects in place.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sluice.errors import PipelineError
from sluice.workflow.runners.base import StepContext, StepFailed, StepOutcome, wire_text

__all__ = ["LAMBDA_TIMEOUT_SECONDS", "LambdaContext", "check_outputs", "run_lambda"]

LAMBDA_TIMEOUT_SECONDS = 900
"""AWS Lambda's longest allowed run (15 minutes); a call still running then fails the step."""
_POLL_SECONDS = 0.5
_MEMORY_MB = 128  # AWS Lambda's default memory size; reported in the context only


@dataclass
class LambdaContext:
    """The attributes AWS Lambda's Python runtime gives a handler as ``context``."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = _MEMORY_MB
    log_group_name: str = ""
    log_stream_name: str = ""
    deadline: float = field(default_factory=lambda: time.monotonic() + LAMBDA_TIMEOUT_SECONDS, repr=False)
    """When the call times out (``time.monotonic()``); ``get_remaining_time_in_millis`` counts down to it."""

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        self.log_stream_name = self.log_stream_name or time.strftime("%Y/%m/%d/[$LATEST]") + self.aws_request_id[:8]

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


_KINDS: Mapping[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "float": (int, float),
                                          "boolean": (bool,)}


def check_outputs(step: str, declared: Mapping[str, str], returned: Any) -> dict[str, Any]:
    """``{name: value}`` for every declared output, each of its declared kind; StepFailed naming every problem.

    A ``Float`` output accepts an integer (JSON does not tell them apart) and gives it back as a float;
    ``True`` is a boolean, never an integer.
    """
    if not isinstance(returned, Mapping):
        outputs = ", ".join(declared) or "none"
        raise StepFailed(f"ClientError: the Lambda function of step {step!r} returned {type(returned).__name__} "
                         f"{returned!r:.200}; it must return a dict with its outputs ({outputs}).")
    problems = []
    values: dict[str, Any] = {}
    for name, kind in declared.items():
        if name not in returned:
            problems.append(f"output {name!r} ({kind}) is missing")
            continue
        value = returned[name]
        wanted = _KINDS.get(kind, (str,))
        if not isinstance(value, wanted) or (kind != "boolean" and isinstance(value, bool)):
            problems.append(f"output {name!r} is declared {kind} but the function returned "
                            f"{type(value).__name__} {value!r:.100}")
            continue
        values[name] = float(value) if kind == "float" else value
    if problems:
        given = ", ".join(map(str, returned)) or "nothing"
        raise StepFailed(f"ClientError: the Lambda function of step {step!r} did not return its declared outputs: "
                         f"{'; '.join(problems)} (it returned: {given}). Return a dict with each declared "
                         "LambdaOutput, of its declared type.")
    return values


def run_lambda(ctx: StepContext, request: dict[str, Any]) -> StepOutcome:
    """Call the step's function with the resolved arguments as the event; its outputs are the properties."""
    from sluice.workflow.lambda_step import function_name, handler_arity, local_function

    step = ctx.spec.name
    arn = ctx.spec.extra.get("FunctionArn")
    if not isinstance(arn, str) or not arn:
        raise StepFailed(f"ClientError: Lambda step {step!r} has no FunctionArn; build it with "
                         "LambdaStep(lambda_func=<a Python callable>).")
    try:
        func = local_function(arn, ctx.config)
        arity = handler_arity(func)
    except PipelineError as exc:
        raise StepFailed(f"ClientError: Lambda step {step!r}: {exc}") from None
    context = LambdaContext(function_name(arn), arn)
    ctx.record_metadata({"Lambda": {"Arn": arn}})
    returned = _invoke(ctx, func, (request, context) if arity == 2 else (request,), context.deadline)
    outputs = check_outputs(step, ctx.spec.output_parameters, returned)
    metadata = {"Lambda": {"Arn": arn, "OutputParameters": [{"Name": k, "Value": wire_text(v)}
                                                            for k, v in outputs.items()]}}
    return StepOutcome(properties={"OutputParameters": outputs}, metadata=metadata)


def _invoke(ctx: StepContext, func: Callable[..., Any], args: tuple[Any, ...], deadline: float) -> Any:
    """``func(*args)`` on its own thread; its value, or StepFailed for an exception, a stop or passing ``deadline``
    (``time.monotonic()``)."""
    result: dict[str, Any] = {}
    done = threading.Event()

    def call() -> None:
        try:
            result["value"] = func(*args)
        except BaseException as exc:  # anything the user's function raises fails the step, SystemExit included
            result["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=call, name=f"lambda-{ctx.spec.name}", daemon=True)
    thread.start()
    while not done.wait(_POLL_SECONDS):
        if ctx.stop.is_set():
            raise StepFailed(f"the Lambda function of step {ctx.spec.name!r} was stopped (the execution is "
                             "stopping); its call was abandoned", status="Stopped")
        if time.monotonic() >= deadline:
            raise StepFailed(f"ClientError: the Lambda function of step {ctx.spec.name!r} timed out after "
                             f"{LAMBDA_TIMEOUT_SECONDS} seconds (AWS Lambda's limit)")
    if "error" in result:
        exc = result["error"]
        raise StepFailed(f"ClientError: the Lambda function of step {ctx.spec.name!r} raised "
                         f"{type(exc).__name__}: {exc}")
    return result.get("value")
