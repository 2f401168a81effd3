"""What a step's properties are: the botocore output shape of its ``Describe*`` call, walked lazily.

Why botocore: ``Steps.<s>.<path>`` must mirror the Describe* response the service returns (contract 5.3),
and the API model in botocore is that response's schema. The model is read on first use only (about a
quarter of a second), so importing ``sluice.workflow`` stays cheap.

A :class:`Node` is one position in a property tree: a botocore shape (merged over several shapes for
Tuning, which the SDK builds from two responses) or a small synthetic tree for steps whose properties
are not a Describe* response (Condition, Lambda, Callback, the check steps, Fail).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sluice.workflow.expressions import Attr, Index, Segment, format_path

__all__ = ["Node", "ShapeNode", "SyntheticNode", "describe_shapes", "root_node", "walk"]

_KINDS = {"long": "integer", "double": "float"}

DESCRIBE_SHAPES: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "Processing": ("sagemaker", ("DescribeProcessingJobResponse",)),
    "Training": ("sagemaker", ("DescribeTrainingJobResponse",)),
    "Transform": ("sagemaker", ("DescribeTransformJobResponse",)),
    "Model": ("sagemaker", ("DescribeModelOutput",)),
    "RegisterModel": ("sagemaker", ("DescribeModelPackageOutput",)),
    "Tuning": ("sagemaker", ("DescribeHyperParameterTuningJobResponse",
                             "ListTrainingJobsForHyperParameterTuningJobResponse")),
    "AutoML": ("sagemaker", ("DescribeAutoMLJobResponse",)),
    "EndpointConfig": ("sagemaker", ("DescribeEndpointConfigOutput",)),
    "Endpoint": ("sagemaker", ("DescribeEndpointOutput",)),
    "InferenceComponent": ("sagemaker", ("DescribeInferenceComponentOutput",)),
    "EMR": ("emr", ("Step",)),
}
"""Step type -> (botocore service, output shapes its properties mirror), as the SDK builds them."""

_CHECK_PROPERTIES = ("CalculatedBaselineConstraints", "CalculatedBaselineStatistics",
                     "BaselineUsedForDriftCheckStatistics", "BaselineUsedForDriftCheckConstraints")


@cache
def _shapes(service: str) -> dict[str, Any]:
    import botocore.loaders

    return botocore.loaders.Loader().load_service_model(service, "service-2")["shapes"]


def describe_shapes(step_type: str) -> tuple[str, ...]:
    """The botocore shape names behind ``step_type``'s properties (empty when they are not botocore's)."""
    entry = DESCRIBE_SHAPES.get(step_type)
    return entry[1] if entry else ()


class Node:
    """One position in a property tree."""

    kind: str = "structure"  # string, integer, float, boolean, timestamp, blob, structure, list or map
    label: str = ""

    def member(self, name: str) -> Node | None:
        """The member ``name`` of a structure, or None."""
        return None

    def member_names(self) -> list[str]:
        return []

    def item(self) -> Node | None:
        """The element of a list or the value of a map."""
        return None


@dataclass(eq=False)
class ShapeNode(Node):
    """A botocore shape (or several merged, first wins)."""

    service: str
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        shapes = _shapes(self.service)
        first = shapes.get(self.names[0], {})
        raw = first.get("type", "structure")
        self.kind = _KINDS.get(raw, raw)
        self.label = self.names[0]

    def _members(self) -> dict[str, str]:
        shapes = _shapes(self.service)
        out: dict[str, str] = {}
        for name in self.names:
            for key, info in shapes.get(name, {}).get("members", {}).items():
                out.setdefault(key, info["shape"])
        return out

    def member(self, name: str) -> Node | None:
        shape = self._members().get(name) if self.kind == "structure" else None
        return ShapeNode(self.service, (shape,)) if shape else None

    def member_names(self) -> list[str]:
        return list(self._members()) if self.kind == "structure" else []

    def item(self) -> Node | None:
        raw = _shapes(self.service).get(self.names[0], {})
        if self.kind == "list":
            return ShapeNode(self.service, (raw["member"]["shape"],))
        if self.kind == "map":
            return ShapeNode(self.service, (raw["value"]["shape"],))
        return None


@dataclass(eq=False)
class SyntheticNode(Node):
    """A hand-made property tree (a structure of named members, or a leaf of ``kind``)."""

    kind: str = "structure"
    members: dict[str, Node] = field(default_factory=dict)
    element: Node | None = None
    label: str = ""

    def member(self, name: str) -> Node | None:
        return self.members.get(name)

    def member_names(self) -> list[str]:
        return list(self.members)

    def item(self) -> Node | None:
        return self.element


def leaf(kind: str) -> SyntheticNode:
    return SyntheticNode(kind=kind, label=kind)


def root_node(step_type: str, outputs: Mapping[str, str] | None = None) -> Node | None:
    """The root of ``step_type``'s properties; None when sluice does not know their shape (not checked).

    ``outputs`` gives a Lambda or Callback step's declared output names and kinds (``OutputParameters``).
    """
    if step_type in DESCRIBE_SHAPES:
        service, names = DESCRIBE_SHAPES[step_type]
        if all(n in _shapes(service) for n in names):
            return ShapeNode(service, names)
        return None
    if step_type == "Condition":
        return SyntheticNode(members={"Outcome": leaf("boolean")}, label="ConditionStep properties")
    if step_type in ("QualityCheck", "ClarifyCheck"):
        return SyntheticNode(members={n: leaf("string") for n in _CHECK_PROPERTIES},
                             label=f"{step_type}Step properties")
    if step_type in ("Lambda", "Callback"):
        params = SyntheticNode(kind="map", element=leaf("string"), label="OutputParameters",
                               members={k: leaf(v) for k, v in (outputs or {}).items()})
        return SyntheticNode(members={"OutputParameters": params}, label=f"{step_type}Step properties")
    if step_type == "Fail":
        return SyntheticNode(label="FailStep (which has no properties)")
    return None


def walk(node: Node, segments: tuple[Segment, ...], base: tuple[Segment, ...] = ()) -> tuple[Node | None, str | None]:
    """Follow ``segments`` from ``node``: (the node reached, None) or (None, why the path does not exist).

    ``base`` is the path ``node`` itself sits at, for the messages.
    """
    walked: list[Segment] = list(base)
    for seg in segments:
        where = format_path(walked) or "the step"
        walked.append(seg)
        if isinstance(seg, Attr):
            if node.kind in ("list", "map"):
                return None, (f"{where} is a {node.kind}; index it (e.g. {format_path([*walked[:-1], Index('name')])} "
                              f"or [0]) before .{seg.name}")
            child = node.member(seg.name)
            if child is None:
                names = node.member_names()
                if not names and node.kind == "structure":
                    return None, f"{where} has no properties at all (asked for {seg.name!r})"
                if not names:
                    return None, f"{where} is a {node.kind} value and has no property {seg.name!r}"
                return None, f"{where} has no property {seg.name!r}{_suggest(seg.name, names)}"
            node = child
        else:
            if node.kind not in ("list", "map"):
                return None, f"{where} is a {node.kind}, not a list or map, so it cannot be indexed with [{seg.key!r}]"
            if node.kind == "map" and isinstance(seg.key, int):
                return None, f"{where} is a map; index it with a string key, not {seg.key}"
            specific = node.member(str(seg.key)) if isinstance(node, SyntheticNode) else None
            child = specific or node.item()
            if child is None:
                return None, f"{where} cannot be indexed"
            node = child
    return node, None


def _suggest(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else "."
    return f"{hint} Valid properties: {', '.join(sorted(names))}"
