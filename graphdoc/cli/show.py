"""`graphdoc show`: what a model takes and gives, or the neighbourhood of one node (in the terminal or as DOT/SVG)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from graphdoc import api
from graphdoc.errors import GraphdocError
from graphdoc.cli.options import (
    EXIT_CLEAN,
    MODEL_HELP,
    add_model_options,
    described,
    load_model,
    output_file,
    whole_number,
)
from graphdoc.report.json_report import command_report
from graphdoc.report.ports import ports_record, render_ports


DESCRIPTION = """\
Without a node: what the model takes and gives (every feed and fetch with its dtype and shape,
and a SavedModel's signatures by key). With a node: its inputs and consumers, marked where a
finding or its fix touches them."""

EXAMPLES = """\
  graphdoc show model.pb                         feeds and fetches, with dtype and shape
  graphdoc show saved_model_dir --format json    every signature's inputs and outputs by key
  graphdoc show model.pb bn1/FusedBatchNormV3    a node's inputs and consumers, two steps out
  graphdoc show model.pb NODE --depth 4 --svg n.svg
"""


def add_parser(commands) -> argparse.ArgumentParser:
    show = commands.add_parser("show", help="show a model's inputs, outputs and signatures, or a node's neighbourhood",
                               **described(DESCRIPTION, EXAMPLES))
    show.add_argument("model", type=Path, help=MODEL_HELP)
    show.add_argument("node", nargs="?", help="a node of the main graph, or FUNCTION::NODE (as scan names it) for one "
                      "in a library function; without it, what the model takes and gives")
    show.add_argument("--depth", type=whole_number(0), default=2,
                      help="how many steps of inputs and consumers (default 2)")
    show.add_argument("--dot", type=_dot_destination, help="also write the neighbourhood as Graphviz DOT ('-': stdout)")
    show.add_argument("--svg", type=output_file, help="also render it as SVG (needs Graphviz's dot program)")
    show.add_argument("--format", choices=("text", "json"), default="text",
                      help="json: the inputs, outputs and signatures (without a node)")
    add_model_options(show)
    show.set_defaults(command=command)
    return show


def command(args: argparse.Namespace, console: Console) -> int:
    if args.node is None:
        return _ports(args, console)
    if args.format != "text":
        raise GraphdocError("--format json lists what the model takes and gives; leave out the node")
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


def _ports(args: argparse.Namespace, console: Console) -> int:
    if args.dot or args.svg:
        raise GraphdocError("--dot and --svg draw a node's neighbourhood; name the node")
    model = load_model(args.model, args)
    outputs = api.outputs(model, args.outputs)
    signature = args.signature if model.signatures else None
    if args.format == "json":
        sys.stdout.write(command_report("show", ports_record(model, outputs, signature)))
    else:
        render_ports(console, model, outputs, signature)
    return EXIT_CLEAN


def _dot_destination(text: str):
    return "-" if text == "-" else output_file(text)


def _place(model, name: str):
    """The graph body and node `name` means: `FUNCTION::NODE` is a node of a library function."""
    if not hasattr(model, "main"):
        raise GraphdocError(f"{model.path} is a {model.format}, not a graph: show lists what it takes and gives "
                            "(leave out the node)")
    scope, separator, node = name.partition("::")
    if not separator:
        return model.main, name
    functions = {view.scope: view for view in model.functions}
    if scope not in functions:
        known = ", ".join(sorted(functions)[:5]) or "none"
        raise GraphdocError(f"{scope!r} is not a library function the graph calls (it calls: {known})")
    return functions[scope], node
