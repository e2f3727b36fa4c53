"""Structural checks on a graph body: what would stop TensorFlow from importing or running it.

The loader refuses a file with these problems; the rewriter runs the same
checks after every pass (graphdoc/rewrite/passes.py). It is a graph-level check, below both.
"""

from __future__ import annotations

from typing import NamedTuple

from graphdoc.graph.view import GraphView
from graphdoc.ops import LOOP_BACK_EDGE_OPS


class Problem(NamedTuple):
    kind: str  # "duplicate", "dangling", "missing output", "cycle"
    text: str

    def __str__(self) -> str:
        return self.text


def lint(view: GraphView, outputs: list[str]) -> list[Problem]:
    """Problems that would stop TensorFlow from importing or running the graph."""
    problems = [Problem("duplicate", f"the node name {name!r} is used twice; names must be unique")
                for name in view.duplicates]
    dangling = view.dangling_input()
    if dangling is not None:
        problems.append(Problem("dangling", f"{dangling[0]} reads {dangling[1]}, which is not in the graph"))
    problems += [Problem("missing output", f"output {name} does not exist") for name in outputs if name not in view.nodes]
    if not problems:
        problems += _cycles(view)
    return problems


def _cycles(view: GraphView) -> list[Problem]:
    cycle = view.find_cycle(ignore_inputs_of=LOOP_BACK_EDGE_OPS)
    if cycle is None:
        return []
    return [Problem("cycle", f"the graph has a cycle outside a while loop ({' -> '.join(cycle[:4])}); "
                             "TensorFlow cannot run it")]
