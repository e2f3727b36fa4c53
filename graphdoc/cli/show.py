"""`graphdoc show`: the neighbourhood of a node, in the terminal or as DOT/SVG."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from graphdoc import api
from graphdoc.errors import GraphdocError
from graphdoc.cli.options import EXIT_CLEAN, MODEL_HELP, add_model_options, load_model, output_file, whole_number


def add_parser(commands) -> argparse.ArgumentParser:
    show = commands.add_parser("show", help="show the neighbourhood of a node, in the terminal or as DOT/SVG")
    show.add_argument("model", type=Path, help=MODEL_HELP)
    show.add_argument("node", help="a node of the main graph, or FUNCTION::NODE (as scan names it) for one in a "
                      "library function")
    show.add_argument("--depth", type=whole_number(0), default=2,
                      help="how many steps of inputs and consumers (default 2)")
    show.add_argument("--dot", type=_dot_destination, help="also write the neighbourhood as Graphviz DOT ('-': stdout)")
    show.add_argument("--svg", type=output_file, help="also render it as SVG (needs Graphviz's dot program)")
    add_model_options(show)
    show.set_defaults(command=command)
    return show


def command(args: argparse.Namespace, console: Console) -> int:
    # Imported here: only show builds a networkx graph, and importing networkx costs every command.
    from graphdoc.report.neighbourhood import (
        dot_text,
        neighbourhood,
        render_neighbourhood,
        write_dot,
        write_svg,
    )

    model = load_model(args.model, args)
    view, node = _place(model, args.node)
    findings = api.scan(model)
    graph = neighbourhood(view, node, depth=args.depth, findings=findings)
    if args.dot == "-":
        sys.stdout.write(dot_text(graph))
    else:
        render_neighbourhood(console, view, graph, node, findings)
    if args.dot and args.dot != "-":
        write_dot(graph, args.dot)
    if args.svg:
        write_svg(graph, args.svg)
    return EXIT_CLEAN


def _dot_destination(text: str):
    return "-" if text == "-" else output_file(text)


def _place(model, name: str):
    """The graph body and node `name` means: `FUNCTION::NODE` is a node of a library function."""
    scope, separator, node = name.partition("::")
    if not separator:
        return model.main, name
    functions = {view.scope: view for view in model.functions}
    if scope not in functions:
        known = ", ".join(sorted(functions)[:5]) or "none"
        raise GraphdocError(f"{scope!r} is not a library function the graph calls (it calls: {known})")
    return functions[scope], node
