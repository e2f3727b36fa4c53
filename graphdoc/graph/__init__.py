"""The graph view: an index over a GraphDef's nodes and edges."""

from graphdoc.graph.view import GraphView, Tensor, Use

__all__ = ["GraphView", "Tensor", "Use"]
