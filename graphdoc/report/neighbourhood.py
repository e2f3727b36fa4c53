"""`graphdoc show`: the neighbourhood of one node, in the terminal and as DOT/SVG."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pydot
from rich.console import Console
from rich.tree import Tree

from graphdoc.errors import GraphdocError
from graphdoc.graph.edits import erased_by
from graphdoc.graph.view import GraphView
from graphdoc.rules import Finding
from graphdoc.writing import write_atomically


def neighbourhood(view: GraphView, node: str, *, depth: int, findings: list[Finding] = ()) -> nx.DiGraph:
    """The nodes within `depth` steps upstream of `node` (what it reads, and what that reads) and
    downstream (what reads it), as a labelled DiGraph; each node marked with its part in the
    findings about `node`: the focus, a node of the finding, or one its fix changes."""
    if node not in view.nodes:
        import difflib

        close = difflib.get_close_matches(node, list(view.nodes), n=3)
        raise GraphdocError(f"{node!r} is not a node of this graph" + (f"; did you mean {', '.join(close)}?" if close else ""))
    upstream = nx.ego_graph(view.networkx.reverse(copy=False), node, radius=depth)
    downstream = nx.ego_graph(view.networkx, node, radius=depth)
    near = view.networkx.subgraph(set(upstream) | set(downstream))
    roles = _roles(node, [f for f in findings if f.scope == view.scope and (f.node == node or node in f.nodes)])
    graph = nx.DiGraph()
    for name in near.nodes:
        graph.add_node(name, label=f"{name}\\n{view.op(name)}", op=view.op(name), role=roles.get(name, ""))
    for source, target, data in near.edges(data=True):
        graph.add_edge(source, target, style="dashed" if data.get("control") else "solid")
    return graph


def _roles(node: str, findings: list[Finding]) -> dict[str, str]:
    roles: dict[str, str] = {}
    for finding in findings:
        roles.update(dict.fromkeys(finding.blamed, "finding"))
        for edit in finding.fix.edits if finding.fix is not None else ():
            roles.update(dict.fromkeys([*edit.changes(), *erased_by(edit)], "fixed"))
    roles[node] = "focus"
    return roles


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


def dot_text(graph: nx.DiGraph) -> str:
    return _pydot(graph).to_string()


def write_dot(graph: nx.DiGraph, path: Path) -> None:
    write_atomically(dot_text(graph).encode("utf-8"), path)


def write_svg(graph: nx.DiGraph, path: Path) -> None:
    try:
        svg = _pydot(graph).create_svg()
    except (FileNotFoundError, OSError, AssertionError) as error:
        raise GraphdocError(f"SVG needs Graphviz's `dot` program ({error}); write --dot and render it elsewhere") from None
    write_atomically(svg, path)


# How each role is drawn, and what the legend calls it.
_ROLES = {
    "focus": ({"style": "filled,bold", "fillcolor": "#fde2df", "color": "#c0392b"}, "the node shown"),
    "finding": ({"color": "#c0392b", "penwidth": "2"}, "a node of its finding"),
    "fixed": ({"style": "dashed", "color": "#2e86de", "penwidth": "2"}, "changed or removed by the fix"),
}


def _pydot(graph: nx.DiGraph):
    plain = nx.DiGraph()
    for name, data in graph.nodes(data=True):
        drawn = _ROLES.get(data.get("role", ""), ({}, ""))[0]
        plain.add_node(_quoted(name), label=_quoted(data["label"]), shape="box", **drawn)
    for source, target, data in graph.edges(data=True):
        plain.add_edge(_quoted(source), _quoted(target), style=data["style"])
    dot = nx.nx_pydot.to_pydot(plain)
    legend = pydot.Cluster("legend", label="legend", fontsize="10")
    for role, (drawn, meaning) in _ROLES.items():
        legend.add_node(pydot.Node(f"legend_{role}", label=_quoted(meaning), shape="box", fontsize="10", **drawn))
    dot.add_subgraph(legend)
    return dot


def _quoted(text: str) -> str:
    # DOT identifiers with '/' or ':' must be quoted; pydot leaves that to the caller.
    return '"' + text.replace('"', '\\\\"') + '"'
