"""`graphdoc show`: the neighbourhood of a node, in the terminal or as DOT/SVG."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from graphdoc import api
from graphdoc.cli.options import EXIT_CLEAN, MODEL_HELP, add_model_options, load_model, output_file, whole_number


def add_parser(commands) -> argparse.ArgumentParser:
    show = commands.add_parser("show", help="show the neighbourhood of a node, in the terminal or as DOT/SVG")
    show.add_argument("model", type=Path, help=MODEL_HELP)
    show.add_argument("node", help="a node of the main graph")
    show.add_argument("--depth", type=whole_number(0), default=2,
                      help="how many steps of inputs and consumers (default 2)")
    show.add_argument("--dot", type=output_file, help="also write the neighbourhood as Graphviz DOT")
    show.add_argument("--svg", type=output_file, help="also render it as SVG (needs Graphviz's dot program)")
    add_model_options(show)
    show.set_defaults(command=command)
    return show


def command(args: argparse.Namespace, console: Console) -> int:
    # Imported here: only show builds a networkx graph, and importing networkx costs every command.
    from graphdoc.report.neighbourhood import (
        neighbourhood,
        render_neighbourhood,
        write_dot,
        write_svg,
    )

    model = load_model(args.model, args)
    graph = neighbourhood(model.main, args.node, depth=args.depth)
    render_neighbourhood(console, model.main, graph, args.node, api.scan(model))
    if args.dot:
        write_dot(graph, args.dot)
    if args.svg:
        write_svg(graph, args.svg)
    return EXIT_CLEAN
