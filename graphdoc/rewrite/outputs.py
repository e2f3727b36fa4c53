"""Which nodes are the model's outputs."""

from __future__ import annotations

import difflib

from graphdoc.errors import GraphdocError
from graphdoc.graph.outputs import infer_outputs
from graphdoc.graph.view import GraphView

__all__ = ["infer_outputs", "resolve_outputs"]


def resolve_outputs(view: GraphView, requested: list[str] | None, aliases: dict[str, str] | None = None) -> list[str]:
    """The requested output nodes (`name`, `name:0`, or a SavedModel signature's output key in
    `aliases`), checked; else the inferred ones."""
    if not requested:
        outputs = infer_outputs(view)
        if not outputs:
            raise GraphdocError("could not infer the graph's outputs; name them with --outputs")
        return outputs
    names = [(aliases or {}).get(name, name).split(":")[0] for name in requested]
    for name in names:
        if name not in view.nodes:
            close = difflib.get_close_matches(name, list(view.nodes), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise GraphdocError(f"output {name!r} is not a node of this graph{hint}")
    return names
