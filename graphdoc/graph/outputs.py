"""Which nodes of a graph body are its outputs when nobody says."""

from __future__ import annotations

from graphdoc import ops
from graphdoc.graph.view import GraphView

_NOT_OUTPUTS = ops.NEVER_OUTPUTS | ops.PLACEHOLDER_OPS


def infer_outputs(view: GraphView) -> list[str]:
    """Nodes nothing reads, except constants, inputs and variable updates."""
    return [name for name in view.sinks() if view.op(name) not in _NOT_OUTPUTS]
