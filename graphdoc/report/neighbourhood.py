"""`graphdoc show`: the neighbourhood of one node, in the terminal and as DOT/SVG."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
from rich.console import Console
from rich.tree import Tree

from graphdoc.errors import GraphdocError
from graphdoc.graph.view import GraphView
from graphdoc.rules import Finding
from graphdoc.writing import write_atomically


def neighbourhood(view: GraphView, node: str, *, depth: int) -> nx.DiGraph:
    """The nodes within `depth` steps of `node` (inputs and consumers), as a labelled DiGraph."""
    if node not in view.nodes:
        import difflib

        close = difflib.get_close_matches(node, list(view.nodes), n=3)
        raise GraphdocError(f"{node!r} is not a node of this graph" + (f"; did you mean {', '.join(close)}?" if close else ""))
    near = nx.ego_graph(view.networkx, node, radius=depth, undirected=True)
    graph = nx.DiGraph()
    for name in near.nodes:
        graph.add_node(name, label=f"{name}\\n{view.op(name)}", op=view.op(name))
    for source, target, data in near.edges(data=True):
        graph.add_edge(source, target, style="dashed" if data.get("control") else "solid")
    return graph


def render_neighbourhood(console: Console, view: GraphView, graph: nx.DiGraph, node: str, findings: list[Finding]) -> None:
    about = [f for f in findings if not f.scope and (f.node == node or node in f.nodes)]
    root = Tree(f"[bold]{node}[/bold] ({view.op(node)})")
    for finding in about:
        root.add(f"[red]{finding.code}[/red] {finding.message}")
    inputs = root.add("[dim]inputs[/dim]")
    _grow(inputs, graph, node, graph.predecessors, set())
    consumers = root.add("[dim]consumers[/dim]")
    _grow(consumers, graph, node, graph.successors, set())
    console.print(root)


def _grow(tree: Tree, graph: nx.DiGraph, node: str, step, seen: set[str]) -> None:
    for neighbour in sorted(step(node)):
        style = graph.edges[(neighbour, node) if step == graph.predecessors else (node, neighbour)]["style"]
        label = f"{neighbour} ({graph.nodes[neighbour]['op']})" + (" [dim]control[/dim]" if style == "dashed" else "")
        if neighbour in seen:
            tree.add(label + " ...")
            continue
        seen.add(neighbour)
        _grow(tree.add(label), graph, neighbour, step, seen)


def write_dot(graph: nx.DiGraph, path: Path) -> None:
    write_atomically(_pydot(graph).to_string().encode("utf-8"), path)


def write_svg(graph: nx.DiGraph, path: Path) -> None:
    try:
        svg = _pydot(graph).create_svg()
    except (FileNotFoundError, OSError, AssertionError) as error:
        raise GraphdocError(f"SVG needs Graphviz's `dot` program ({error}); write --dot and render it elsewhere") from None
    write_atomically(svg, path)


def _pydot(graph: nx.DiGraph):
    plain = nx.DiGraph()
    for name, data in graph.nodes(data=True):
        plain.add_node(_quoted(name), label=_quoted(data["label"]), shape="box")
    for source, target, data in graph.edges(data=True):
        plain.add_edge(_quoted(source), _quoted(target), style=data["style"])
    return nx.nx_pydot.to_pydot(plain)


def _quoted(text: str) -> str:
    # DOT identifiers with '/' or ':' must be quoted; pydot leaves that to the caller.
    return '"' + text.replace('"', '\\\\"') + '"'
