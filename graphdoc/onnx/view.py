"""An ONNX graph indexed for the rules: who produces and who reads each tensor, constant values."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from functools import cached_property

import numpy as np

from graphdoc.graph.view import Tensor
from graphdoc.onnx.proto import attribute_value, to_array

_GRAPH = 5  # AttributeProto.GRAPH



def node_name(node) -> str:
    """A node's name; ONNX leaves names optional, so an unnamed node goes by its first output."""
    return node.name or (node.output[0] if node.output else node.op_type)


class OnnxView:
    """One graph body: the model's main graph, or a subgraph of an If, Loop or Scan node.

    `scope` is "" for the main graph, else "NODE/ATTRIBUTE" (the If node and its
    then_branch). A subgraph reads tensors of the graphs around it by name;
    `outer` is the enclosing view, for their values.
    """

    def __init__(self, graph, scope: str = "", outer: OnnxView | None = None):
        self.graph = graph
        self.scope = scope
        self.outer = outer
        self.nodes: dict = {}
        self.producer: dict[str, tuple[str, int]] = {}
        self.consumers_by_tensor: dict[str, list[str]] = defaultdict(list)
        for node in graph.node:
            name = node_name(node)
            self.nodes[name] = node
            for index, output in enumerate(node.output):
                if output:
                    self.producer[output] = (name, index)
            for tensor in [*node.input, *captured(node)]:
                if tensor and name not in self.consumers_by_tensor[tensor]:
                    self.consumers_by_tensor[tensor].append(name)
        self.initializers = {tensor.name: tensor for tensor in graph.initializer}
        self.outputs = [output.name for output in graph.output]

    @cached_property
    def feeds(self) -> list[str]:
        """What a caller feeds: graph inputs that are not initializers (those have a default)."""
        return [value.name for value in self.graph.input if value.name not in self.initializers]

    def __contains__(self, name: str) -> bool:
        return name in self.nodes

    # What the reports ask of a graph body, node by node, as they ask graph.view.GraphView.

    def op(self, node: str) -> str:
        return self.nodes[node].op_type

    def inputs(self, node: str) -> list[Tensor]:
        """The nodes and outputs `node` reads (graph inputs and initializers are no node's)."""
        return [Tensor(*self.producer[t]) for t in self.nodes[node].input if t in self.producer]

    def consumers(self, node: str) -> list[str]:
        readers = (reader for output in self.nodes[node].output for reader in self.consumers_of(output))
        return list(dict.fromkeys(readers))

    def consumers_of(self, tensor: str) -> list[str]:
        return self.consumers_by_tensor.get(tensor, [])

    @cached_property
    def networkx(self):
        """The body as a networkx MultiDiGraph, as graph.networkx_export makes it of a GraphDef."""
        import networkx as nx  # only `show` pays for networkx's import

        graph = nx.MultiDiGraph()
        for name, node in self.nodes.items():
            graph.add_node(name, op=node.op_type)
        for name in self.nodes:
            for slot, tensor in enumerate(self.inputs(name)):
                graph.add_edge(tensor.node, name, src_output=tensor.port, dst_input=slot, control=False)
        return graph

    def producing(self, tensor: str):
        found = self.producer.get(tensor)
        return self.nodes[found[0]] if found else None

    def readers(self, tensor: str) -> list:
        return [self.nodes[name] for name in self.consumers_by_tensor.get(tensor, ())]

    def value(self, tensor: str) -> np.ndarray | None:
        """The constant value of `tensor`: an initializer, a Constant node's, or the enclosing graph's."""
        if tensor in self.initializers:
            return to_array(self.initializers[tensor])
        node = self.producing(tensor)
        if node is not None:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                return to_array(node.attribute[0].t)
            return None
        return self.outer.value(tensor) if self.outer is not None else None

    def subviews(self) -> Iterator[OnnxView]:
        """The subgraphs of this body's nodes, each with its own subgraphs after it."""
        for name, node in self.nodes.items():
            for attribute in node.attribute:
                if attribute.type == _GRAPH:
                    view = OnnxView(attribute.g, f"{self.scope + '/' if self.scope else ''}{name}/{attribute.name}", self)
                    yield view
                    yield from view.subviews()

    def upstream(self, tensor: str, limit: int = 64) -> set[str]:
        """The tensors `tensor` is computed from, within this body, up to `limit` of them."""
        seen, stack = set(), [tensor]
        while stack and len(seen) < limit:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            node = self.producing(current)
            if node is not None:
                stack.extend(t for t in node.input if t)
        return seen


def attribute(node, name: str, default=None):
    for attr in node.attribute:
        if attr.name == name:
            return attribute_value(attr)
    return default


def captured(node) -> set[str]:
    """The outer tensors a node's subgraphs read by name (what an If's branches use from around it)."""
    names: set[str] = set()
    for attr in node.attribute:
        if attr.type == _GRAPH:
            names |= _free_names(attr.g)
    return names


def _free_names(graph) -> set[str]:
    defined = {value.name for value in graph.input} | {tensor.name for tensor in graph.initializer}
    used: set[str] = set()
    for node in graph.node:
        used |= {tensor for tensor in node.input if tensor} | captured(node)
        defined |= set(node.output)
    used |= {output.name for output in graph.output}
    return used - defined
