"""Which nodes are the model's outputs."""

from __future__ import annotations

import difflib

from graphdoc import ops
from graphdoc.errors import GraphdocError
from graphdoc.graph.view import GraphView

_NOT_OUTPUTS = ops.NEVER_OUTPUTS | frozenset({"Placeholder", "PlaceholderWithDefault"})


def infer_outputs(view: GraphView) -> list[str]:
    """Nodes nothing reads, except constants, inputs and variable updates."""
    return [name for name in view.sinks() if view.op(name) not in _NOT_OUTPUTS]


def resolve_outputs(view: GraphView, requested: list[str] | None) -> list[str]:
    """The requested output nodes (`name` or `name:0`), checked; else the inferred ones."""
    if not requested:
        outputs = infer_outputs(view)
        if not outputs:
            raise GraphdocError("could not infer the graph's outputs; name them with --outputs")
        return outputs
    names = [name.split(":")[0] for name in requested]
    for name in names:
        if name not in view.nodes:
            close = difflib.get_close_matches(name, list(view.nodes), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise GraphdocError(f"output {name!r} is not a node of this graph{hint}")
    return names
