"""Removing what no output needs."""

from __future__ import annotations

from graphdoc.graph.view import GraphView


def needed_by(view: GraphView, outputs: list[str]) -> set[str]:
    """Every node an output depends on, through data or control inputs."""
    needed: set[str] = set()
    stack = [name for name in outputs if name in view.nodes]
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        stack.extend(tensor.node for tensor in view.inputs(name) if tensor.node not in needed)
        stack.extend(control for control in view.control_inputs(name) if control not in needed)
    return needed


def prune(view: GraphView, outputs: list[str]) -> int:
    """Drop the nodes no output depends on; returns how many were dropped."""
    return view.keep_only(needed_by(view, outputs))
