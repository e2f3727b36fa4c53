"""Structural checks on a rewritten graph, run before anything is written."""

from __future__ import annotations

import networkx as nx

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
    graph = nx.DiGraph()
    graph.add_nodes_from(view.nodes)
    for name in view.nodes:
        if view.op(name) in _LOOP_BACK_EDGE_OPS:
            continue
        graph.add_edges_from((tensor.node, name) for tensor in view.inputs(name))
        graph.add_edges_from((control, name) for control in view.control_inputs(name))
    if nx.is_directed_acyclic_graph(graph):
        return []
    cycle = nx.find_cycle(graph)
    return [f"cycle through {' -> '.join(edge[0] for edge in cycle[:5])}"]
