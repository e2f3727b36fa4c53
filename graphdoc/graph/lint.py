"""Structural checks on a rewritten graph, run before anything is written."""

from __future__ import annotations

from graphdoc.graph.view import GraphView
from graphdoc.ops import LOOP_BACK_EDGE_OPS


def lint(view: GraphView, outputs: list[str]) -> list[str]:
    """Problems that would stop TensorFlow from importing or running the graph."""
    problems = [f"duplicate node name {name}" for name in view.duplicates]
    dangling = view.dangling_input()
    if dangling is not None:
        problems.append(f"{dangling[0]} reads {dangling[1]}, which does not exist")
    problems += [f"output {name} does not exist" for name in outputs if name not in view.nodes]
    if not problems:
        problems += _cycles(view)
    return problems


def _cycles(view: GraphView) -> list[str]:
    cycle = view.find_cycle(ignore_inputs_of=LOOP_BACK_EDGE_OPS)
    return [] if cycle is None else [f"cycle through {' -> '.join(cycle[:5])}"]
