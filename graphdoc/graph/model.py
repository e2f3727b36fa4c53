"""A loaded model: the GraphDef and where it came from."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from graphdoc.graph.view import GraphView
from graphdoc.proto import GraphDef


@dataclass(eq=False)
class Model:
    """A GraphDef with its origin. The views index it; they never copy it."""

    graph_def: GraphDef
    path: Path
    format: str
    # Where the variables came from, when the model was read from a checkpoint:
    # the same checkpoint then supplies the moving statistics.
    checkpoint: Path | None = None

    @cached_property
    def main(self) -> GraphView:
        return GraphView(self.graph_def.node)

    @cached_property
    def functions(self) -> list[GraphView]:
        return [GraphView(f.node_def, function=f) for f in self.graph_def.library.function]

    @property
    def views(self) -> list[GraphView]:
        """The main graph, then every library function: all of them are the model."""
        return [self.main, *self.functions]

    def view(self, scope: str) -> GraphView:
        if scope == "":
            return self.main
        for view in self.functions:
            if view.scope == scope:
                return view
        raise KeyError(scope)
