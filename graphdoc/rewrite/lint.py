"""Structural checks on a rewritten graph, run before anything is written."""

from __future__ import annotations

from graphdoc.graph.view import GraphView

# NextIteration closes the loop of a TF1 while_loop: the one legal cycle.
_LOOP_BACK_EDGE_OPS = frozenset({"NextIteration", "RefNextIteration"})


def lint(view: GraphView, outputs: list[str]) -> list[str]:
    """Problems that would stop TensorFlow from importing or running the graph."""
    problems = [f"duplicate node name {name}" for name in view.duplicates]
    for name in view.nodes:
        for tensor in view.inputs(name):
            if tensor.node not in view:
                problems.append(f"{name} reads {tensor}, which does not exist")
        for control in view.control_inputs(name):
            if control not in view:
                problems.append(f"{name} waits for {control}, which does not exist")
    problems += [f"output {name} does not exist" for name in outputs if name not in view.nodes]
    if not problems:
        problems += _cycles(view)
    return problems


def _cycles(view: GraphView) -> list[str]:
    cycle = view.find_cycle(ignore_inputs_of=_LOOP_BACK_EDGE_OPS)
    return [] if cycle is None else [f"cycle through {' -> '.join(cycle[:5])}"]
