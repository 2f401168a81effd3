"""The context a step is compiled in: which pipeline, which step, which session (SDK ``_PipelineConfig``).

Step arguments are computed while ``Pipeline.definition()`` runs, one step at a time, inside
:func:`step_compilation_context`. Code deep in the facade (a processor's default output location, a
function step's S3 paths) reads it with :func:`load_step_compilation_context` instead of being passed it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

from sluice.errors import PipelineError
from sluice.workflow.pipeline_definition_config import PipelineDefinitionConfig

__all__ = ["StepCompilationContext", "load_step_compilation_context", "step_compilation_context",
           "trim_request_dict"]


@dataclass(frozen=True)
class StepCompilationContext:
    """Where a step is being compiled. ``step_map`` maps every step and step-collection name to its object."""

    pipeline_name: str
    step_name: str
    sagemaker_session: Any
    pipeline_definition_config: PipelineDefinitionConfig
    pipeline_build_time: str
    step_map: dict[str, Any] = field(default_factory=dict)

    def for_step(self, step_name: str) -> StepCompilationContext:
        return replace(self, step_name=step_name)


_CONTEXT: ContextVar[StepCompilationContext | None] = ContextVar("sluice_step_compilation", default=None)


def load_step_compilation_context() -> StepCompilationContext | None:
    """The context of the step being compiled, or None outside ``Pipeline.definition()``."""
    return _CONTEXT.get()


@contextlib.contextmanager
def step_compilation_context(context: StepCompilationContext) -> Iterator[StepCompilationContext]:
    token = _CONTEXT.set(context)
    try:
        yield context
    finally:
        _CONTEXT.reset(token)


_TIMESTAMP = re.compile(r"-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-\d{3}$")


def base_from_name(name: str) -> str:
    """``my-job-2024-01-02-03-04-05-678`` -> ``my-job`` (the SDK's job-name timestamp trimmed)."""
    return _TIMESTAMP.sub("", name)


def trim_request_dict(request: dict[str, Any], job_key: str, context: StepCompilationContext | None) -> dict[str, Any]:
    """Drop the job name (the service names jobs per execution), or keep its base under ``use_custom_job_prefix``."""
    if context is not None and context.pipeline_definition_config.use_custom_job_prefix:
        name = request.get(job_key)
        if not isinstance(name, str) or not name:
            raise PipelineError(f"use_custom_job_prefix keeps {job_key}, but step {context.step_name!r} has none; "
                                "give the job a base name (base_job_name=...).")
        request[job_key] = base_from_name(name)
    else:
        request.pop(job_key, None)
    return request
