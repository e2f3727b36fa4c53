"""Edits to an ONNX graph, as data: what an ONNX fix is made of (applied by onnx/rewrite.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from graphdoc.onnx.proto import onnx_package
from graphdoc.onnx.view import node_name

_GRAPH = 5  # AttributeProto.GRAPH

# The onnx package makes the new attributes, nodes and tensors: imported when a fix is applied,
# not when a scan only describes it.


@dataclass(frozen=True)
class SetAttribute:
    scope: str
    node: str
    name: str
    value: int | float

    def changes(self) -> frozenset[str]:
        return frozenset({self.node})

    def apply(self, graph) -> None:
        node = _node(graph, self.node)
        kept = [attr for attr in node.attribute if attr.name != self.name]
        del node.attribute[:]
        node.attribute.extend([*kept, onnx_package().helper.make_attribute(self.name, self.value)])


@dataclass(frozen=True)
class KeepOutputs:
    """Drop a node's outputs after the first `count` (BatchNormalization's training-only statistics)."""

    scope: str
    node: str
    count: int

    def changes(self) -> frozenset[str]:
        return frozenset({self.node})

    def apply(self, graph) -> None:
        del _node(graph, self.node).output[self.count:]


@dataclass(frozen=True)
class Redirect:
    """Every reader of tensor `old` reads `new` instead, in this body and the subgraphs within it.

    A graph output keeps its name: an Identity computes it from `new`, and the
    node that computed it before gives its value another name (pruning then
    removes that node if nothing else reads it).
    """

    scope: str
    old: str
    new: str

    def changes(self) -> frozenset[str]:
        return frozenset()

    def apply(self, graph) -> None:
        _rename_uses(graph, self.old, self.new)
        if any(output.name == self.old for output in graph.output):
            for node in graph.node:
                node.output[:] = [f"{self.old}__training" if name == self.old else name for name in node.output]
            graph.node.append(onnx_package().helper.make_node("Identity", [self.new], [self.old], name=f"{self.old}__inference"))


@dataclass(frozen=True)
class AddInitializer:
    scope: str
    name: str
    value: np.ndarray = field(compare=False)

    def changes(self) -> frozenset[str]:
        return frozenset()

    def apply(self, graph) -> None:
        graph.initializer.append(onnx_package().numpy_helper.from_array(self.value, self.name))


@dataclass(frozen=True)
class DropGraphOutputs:
    scope: str
    names: tuple[str, ...]

    def changes(self) -> frozenset[str]:
        return frozenset()

    def apply(self, graph) -> None:
        kept = [output for output in graph.output if output.name not in self.names]
        del graph.output[:]
        graph.output.extend(kept)


def _node(graph, name: str):
    return next(node for node in graph.node if node_name(node) == name)


def _rename_uses(graph, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        for attr in node.attribute:
            if attr.type == _GRAPH and not _defines(attr.g, old):
                _rename_uses(attr.g, old, new)


def _defines(graph, name: str) -> bool:
    """Whether a subgraph has its own tensor `name`, hiding the outer one."""
    return (any(value.name == name for value in graph.input) or any(t.name == name for t in graph.initializer)
            or any(name in node.output for node in graph.node))
