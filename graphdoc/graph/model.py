"""A loaded model: the GraphDef and where it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import ClassVar

from graphdoc.graph.view import GraphView
from graphdoc.proto import GraphDef


# Ops that call library functions through their attributes.
_CALL_OPS = frozenset({
    "If", "StatelessIf", "Case", "StatelessCase", "While", "StatelessWhile",
    "PartitionedCall", "StatefulPartitionedCall",
})


@dataclass(eq=False)
class Model:
    """A GraphDef with its origin. The views index it; they never copy it.

    What the reports read of a model (path, format, notes, size(), ports(),
    unknown_ops()) an ONNX model (graphdoc.onnx.model.OnnxModel) has too; `kind`
    tells them apart where the formats part ways.
    """

    kind: ClassVar[str] = "tensorflow"

    graph_def: GraphDef
    path: Path
    format: str
    # Where the variables came from, when the model was read from a checkpoint:
    # the same checkpoint then supplies the moving statistics.
    checkpoint: Path | None = None
    # What loading changed so that the graph can be fed (iterators made placeholders).
    notes: list[str] = field(default_factory=list)
    # A SavedModel signature's output keys, and the nodes that compute them ("probs" -> "Identity").
    aliases: dict[str, str] = field(default_factory=dict)
    # A SavedModel's variables: the node freezing made of each, and the name it has ("unknown_3" ->
    # "bn1/moving_mean").
    variables: dict[str, str] = field(default_factory=dict)
    # A SavedModel's signatures: for each, its inputs and outputs by key (graph.ports.Port).
    signatures: dict[str, dict[str, list]] = field(default_factory=dict)

    @cached_property
    def main(self) -> GraphView:
        return GraphView(self.graph_def.node)

    @cached_property
    def functions(self) -> list[GraphView]:
        """Views of the library functions the main graph calls, directly or not.

        Functions nothing calls never run; they are not scanned (and `fix` drops them).
        """
        reachable = called_functions(self.graph_def)
        return [GraphView(f.node_def, function=f) for f in self.graph_def.library.function
                if f.signature.name in reachable]

    @property
    def views(self) -> list[GraphView]:
        """The main graph, then every library function: all of them are the model."""
        return [self.main, *self.functions]

    def size(self) -> tuple[int, int]:
        """Nodes of the main graph, and library functions."""
        return len(self.graph_def.node), len(self.graph_def.library.function)

    def ports(self, outputs: list[str]):
        """What a caller feeds (the placeholders) and fetches (`outputs`' first tensors): graph.ports.Port."""
        from graphdoc.graph.ports import input_ports, output_ports

        return input_ports(self.main), output_ports(self.main, outputs)

    def unknown_ops(self) -> list[str]:
        """Ops of the graph that neither TensorFlow nor the function library defines (custom ops).

        Rules follow their inputs and outputs all the same; only running the
        graph (probe, verification) needs their kernels.
        """
        from graphdoc.ops import tensorflow_ops

        known = tensorflow_ops() | {f.signature.name for f in self.graph_def.library.function}
        used = {op for view in self.views for op in view.op_counts()}
        return sorted(used - known)

    @cached_property
    def call_sites(self) -> dict[str, list[tuple[str, str]]]:
        """For each library function, the (scope, node) pairs that call it."""
        sites: dict[str, list[tuple[str, str]]] = {}
        calling_ops = _CALL_OPS | {f.signature.name for f in self.graph_def.library.function}
        for view in self.views:
            for name in view.ops_of(calling_ops):
                for function in dict.fromkeys(callees([view.nodes[name]])):
                    sites.setdefault(function, []).append((view.scope, name))
        return sites

    def view(self, scope: str) -> GraphView:
        if scope == "":
            return self.main
        for view in self.functions:
            if view.scope == scope:
                return view
        raise KeyError(scope)


def called_functions(graph_def: GraphDef) -> set[str]:
    """Names of the library functions that the main graph calls, directly or through other functions."""
    by_name = {f.signature.name: f for f in graph_def.library.function}
    used: set[str] = set()
    if not by_name:
        return used
    stack = callees(graph_def.node)
    while stack:
        name = stack.pop()
        if name in used or name not in by_name:
            continue
        used.add(name)
        stack.extend(callees(by_name[name].node_def))
    return used


def callees(nodes) -> list[str]:
    """The function names a sequence of NodeDefs calls."""
    called = []
    for node in nodes:
        for value in node.attr.values():
            if value.HasField("func"):
                called.append(value.func.name)
            elif value.HasField("list"):
                called.extend(f.name for f in value.list.func)
        called.append(node.op)  # a node may call a library function by using its name as its op
    return called


@dataclass(eq=False, kw_only=True)
class ModelOfAnotherFormat:
    """What the reports read of a model that is not a TensorFlow graph (ONNX, a Keras file, a
    .tflite) and that such a model has none of: a checkpoint of its own, SavedModel output keys
    and signatures, ops TensorFlow does not define. Each format's class adds its own content,
    `kind`, `path`, `format`, size(), ports() and op_counts()."""

    notes: list[str] = field(default_factory=list)
    checkpoint: Path | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    signatures: dict = field(default_factory=dict)

    def unknown_ops(self) -> list[str]:
        return []  # any op is read by its inputs and outputs; only running it needs its kernel

