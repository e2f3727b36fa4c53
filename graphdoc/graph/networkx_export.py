"""The networkx view of a graph body, built on request from the same index."""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphdoc.graph.index import FUNCTION_ARG_OP

if TYPE_CHECKING:
    import networkx as nx

    from graphdoc.graph.queries import GraphQueries


def to_networkx(view: GraphQueries) -> nx.MultiDiGraph:
    """The body as a networkx MultiDiGraph.

    One node per NodeDef (attribute `op`; the NodeDef itself under `node_def`),
    one edge per input: data edges carry `src_output` and `dst_input`, control
    edges carry `control=True`.
    """
    import networkx as nx  # only the networkx view pays for networkx's import

    graph = nx.MultiDiGraph()
    for name, node in view.nodes.items():
        graph.add_node(name, op=node.op, node_def=node)
    for name in view.args:
        graph.add_node(name, op=FUNCTION_ARG_OP, node_def=None)
    for name in view.nodes:
        for slot, tensor in enumerate(view.inputs(name)):
            graph.add_edge(tensor.node, name, src_output=tensor.port, dst_input=slot, control=False)
        for control in view.control_inputs(name):
            graph.add_edge(control, name, control=True)
    return graph
