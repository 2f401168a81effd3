"""``sluice.workflow.functions``: ``Join`` and ``JsonGet`` (SDK ``sagemaker.workflow.functions``).

``Join(on="/", values=["s3:/", bucket, ExecutionVariables.PIPELINE_EXECUTION_ID])`` builds a string at
execution. ``JsonGet`` reads a value out of a JSON file a step wrote: either a processing step's declared
``PropertyFile`` or an ``s3_uri`` (a ``Join``; this is how ``@step`` return values are read)::

    {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.Report"}, "Path": "metrics.mse.value"}}
    {"Std:JsonGet": {"S3Uri": {"Std:Join": ...}, "Path": "Result[0]"}}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sluice.errors import PipelineError
from sluice.workflow.entities import PipelineVariable, serialize

if TYPE_CHECKING:
    from sluice.workflow.properties import PropertyFile

__all__ = ["Join", "JsonGet"]


class Join(PipelineVariable):
    """The string ``on.join(values)`` at execution; values may be primitives or pipeline variables."""

    def __init__(self, on: str = "", values: list[Any] | None = None) -> None:
        if not isinstance(on, str):
            raise PipelineError(f"Join(on=...) takes a string, not {on!r}.")
        self.on = on
        self.values = list(values or [])

    @property
    def expr(self) -> dict[str, Any]:
        return {"Std:Join": {"On": self.on, "Values": [serialize(v) for v in self.values]}}

    @property
    def _referenced_steps(self) -> list[str]:
        return [name for v in self.values if isinstance(v, PipelineVariable) for name in v._referenced_steps]


class JsonGet(PipelineVariable):
    """A value at ``json_path`` in a JSON file: a step's ``property_file``, or the object at ``s3_uri``.

    ``step_name`` may be the step itself. ``property_file`` may be the ``PropertyFile`` or its name. The
    path is dot notation with ``['k']`` / ``[i]`` (what the service and the SDK's local mode read).
    """

    def __init__(self, step_name: Any = None, property_file: PropertyFile | str | None = None,
                 json_path: str | None = None, s3_uri: Any = None, step: Any = None) -> None:
        if step_name is not None and not isinstance(step_name, str):
            step = step if step is not None else step_name
            step_name = getattr(step_name, "name", step_name)
        if not json_path or not isinstance(json_path, str):
            raise PipelineError(f"JsonGet needs json_path, the path of the value in the file (e.g. "
                                f"'metrics.mse.value'), not {json_path!r}.")
        if (property_file is None) == (s3_uri is None):
            raise PipelineError("JsonGet takes either property_file (with step_name) or s3_uri, not both and not "
                                "neither.")
        if property_file is not None and not step_name:
            raise PipelineError("JsonGet(property_file=...) needs step_name: the processing step that declares "
                                "the property file.")
        if s3_uri is not None and not isinstance(s3_uri, Join):
            raise PipelineError("JsonGet(s3_uri=...) takes a Join of strings, parameters, execution variables and "
                                f"properties, not {s3_uri!r}.")
        self.step_name = step_name
        self.property_file = property_file
        self.json_path = json_path
        self.s3_uri = s3_uri
        self.step = step

    @property
    def property_file_name(self) -> str | None:
        pf = self.property_file
        return pf if isinstance(pf, str) or pf is None else pf.name

    @property
    def expr(self) -> dict[str, Any]:
        if self.s3_uri is not None:
            return {"Std:JsonGet": {"S3Uri": self.s3_uri.expr, "Path": self.json_path}}
        return {"Std:JsonGet": {
            "PropertyFile": {"Get": f"Steps.{self.step_name}.PropertyFiles.{self.property_file_name}"},
            "Path": self.json_path,
        }}

    @property
    def _referenced_steps(self) -> list[str]:
        if self.step is not None:
            return [self.step.name]
        if self.step_name:
            return [self.step_name]
        return self.s3_uri._referenced_steps if self.s3_uri is not None else []
