"""``sluice.workflow.properties``: a step's outputs, addressed by their place in its Describe* response.

``step.properties.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri`` compiles to
``{"Get": "Steps.<step>.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}``. The tree is the
botocore output shape of the step type's ``Describe*`` call, read lazily, so a misspelt property fails
right where it is written, with an ``AttributeError`` that lists the valid ones::

    step.properties.ModelArtefacts
    AttributeError: Training step 'Train': the step has no property 'ModelArtefacts'; did you mean
    'ModelArtifacts'? Valid properties: AlgorithmSpecification, ...

Lists are indexed by position or by their elements' name key (``Outputs['train']``,
``FinalMetricDataList['val:rmse']``), maps by key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sluice.workflow._shapes import Node, ShapeNode, SyntheticNode, root_node, walk
from sluice.workflow.entities import Expression, PipelineVariable
from sluice.workflow.expressions import Attr, Index, Segment, parse_path

__all__ = ["Properties", "PropertiesList", "PropertiesMap", "PropertyFile"]


class Properties(PipelineVariable):
    """A property of step ``step_name`` at ``path`` (None: the step's root), shaped by botocore shapes."""

    def __init__(self, step_name: str, path: str | None = None, shape_name: str | None = None,
                 shape_names: list[str] | None = None, service_name: str = "sagemaker",
                 *, step_type: str | None = None, node: Node | None = None) -> None:
        self.step_name = step_name
        self.path = path
        self._names = tuple(([shape_name] if shape_name else []) + list(shape_names or []))
        self._service = service_name
        self._step_type = step_type
        self._node = node
        self._items: dict[Any, Properties] = {}

    @classmethod
    def for_step_type(cls, step_name: str, step_type: str, outputs: dict[str, str] | None = None) -> Properties:
        """The root properties of a ``step_type`` step (a Processing step: DescribeProcessingJobResponse)."""
        node = root_node(step_type, outputs)
        return cls(step_name, step_type=step_type, node=node if node is not None else SyntheticNode(label=step_type))

    @property
    def _tree(self) -> Node:
        if self._node is None:
            self._node = ShapeNode(self._service, self._names) if self._names else SyntheticNode()
        return self._node

    @property
    def expr(self) -> dict[str, str]:
        return {"Get": f"Steps.{self.step_name}.{self.path}" if self.path else f"Steps.{self.step_name}"}

    @property
    def _referenced_steps(self) -> list[str]:
        return [self.step_name]

    @property
    def _kind(self) -> str:
        """string, integer, float, boolean, timestamp, structure, list or map (for condition checks)."""
        return self._tree.kind

    def _where(self) -> str:
        kind = f"{self._step_type} step" if self._step_type else "step"
        return f"{kind} {self.step_name!r}"

    def _base(self) -> tuple[Segment, ...]:
        return parse_path(self.path) if self.path else ()

    def _child(self, node: Node, path: str) -> Properties:
        cls = {"list": PropertiesList, "map": PropertiesMap}.get(node.kind, Properties)
        return cls(self.step_name, path, step_type=self._step_type, node=node)

    def __getattr__(self, name: str) -> Properties:
        if name.startswith("_"):
            raise AttributeError(name)
        node, problem = walk(self._tree, (Attr(name),), self._base())
        if node is None:
            raise AttributeError(f"{self._where()}: {problem}.")
        child = self._child(node, f"{self.path}.{name}" if self.path else name)
        self.__dict__[name] = child
        return child

    def _index(self, item: int | str) -> Properties:
        if not isinstance(item, int | str) or isinstance(item, bool):
            raise TypeError(f"{self.path} is indexed by a name or a position, not {item!r}.")
        if item not in self._items:
            node, problem = walk(self._tree, (Index(item),), self._base())
            if node is None:
                raise KeyError(f"{self._where()}: {problem}.")
            suffix = f"[{item}]" if isinstance(item, int) else f"['{item}']"
            self._items[item] = self._child(node, f"{self.path}{suffix}")
        return self._items[item]


class PropertiesList(Properties):
    """A list property: ``[0]`` by position, ``['name']`` by its elements' name key."""

    def __getitem__(self, item: int | str) -> Properties:
        return self._index(item)


class PropertiesMap(Properties):
    """A map property: ``['key']``."""

    def __getitem__(self, item: int | str) -> Properties:
        return self._index(item)


@dataclass(frozen=True)
class PropertyFile(Expression):
    """A JSON file a processing step writes into output ``output_name`` at ``path``, for ``JsonGet``.

    Declared on the step (``ProcessingStep(property_files=[...])``), it appears in the definition as
    ``{"PropertyFileName", "OutputName", "FilePath"}``; the file read is ``<output S3Uri>/<path>``.
    """

    name: str
    output_name: str
    path: str

    @property
    def expr(self) -> dict[str, str]:
        return {"PropertyFileName": self.name, "OutputName": self.output_name, "FilePath": self.path}
