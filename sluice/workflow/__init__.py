"""``sluice.workflow``: SageMaker Pipelines: the entities, the definition JSON both ways, and the executor.

What is here (see ``docs/pipelines.md``): parameters, execution variables, step properties, ``Join`` and
``JsonGet``, conditions, the step types, ``Pipeline.definition()`` (the ``2020-12-01`` JSON the SDK emits),
``Pipeline.from_definition()`` (any SDK-produced definition), validation that refuses a bad definition
before anything runs, and the engine that runs definitions from any source.

The layering inside the package::

    expressions, graph, validation      plain data: definition JSON in, {step: StepSpec} out, pure functions
    entities ... conditions, retry      the SDK's Python objects, compiling to that plain data
    steps, *_step, pipeline             steps and the pipeline; compile -> parse -> validate -> emit
    pipeline_context, repack            PipelineSession: the facade hands requests over instead of running
    executor, runners, cache            the engine: schedule the graph, hand each step to its layer, reuse runs
    execution, display                  executions as records any process reads; the live table

The engine never imports the SDK facade (``tests/test_layers.py``).

This module stays light: importing it loads neither botocore nor the facade.
"""

from __future__ import annotations

from typing import Any

__all__ = ["is_pipeline_variable"]


def is_pipeline_variable(value: Any) -> bool:
    """Whether ``value`` is a pipeline variable (a parameter, property, execution variable, Join, JsonGet...).

    The facade uses this to leave such values alone (no upload, no ``str()``) so they reach the step
    arguments as expressions, as the SDK does.
    """
    from sluice.workflow.entities import PipelineVariable

    return isinstance(value, PipelineVariable)
