"""Removing what no output needs."""

from __future__ import annotations

from graphdoc.graph.view import GraphView


def prune(view: GraphView, outputs: list[str]) -> int:
    """Drop the nodes no output depends on; returns how many were dropped."""
    return view.keep_only_needed_by(outputs)
