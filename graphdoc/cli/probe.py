"""`graphdoc probe`: run the graph and find where results depend on the batch."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from graphdoc import api
from graphdoc.cli.options import (
    EXIT_CLEAN,
    EXIT_FINDINGS,
    MODEL_HELP,
    add_model_options,
    add_run_options,
    load_model,
    shown_on,
    status,
)
from graphdoc.report.text import render_probe
from graphdoc.verify.inputs import parse_shapes


def add_parser(commands) -> argparse.ArgumentParser:
    probe = commands.add_parser("probe", help="run the graph and find where results depend on the batch")
    probe.add_argument("model", type=Path, help=MODEL_HELP)
    add_model_options(probe)
    add_run_options(probe)
    probe.set_defaults(command=command)
    return probe


def command(args: argparse.Namespace, console: Console) -> int:
    model = load_model(args.model, args)
    with status("probing: running the graph four times") as spinner:
        report = api.probe(model, inputs=args.inputs, shapes=parse_shapes(args.input_shape), outputs=args.outputs,
                           allow_unsafe=args.allow_unsafe_ops, status=shown_on(spinner))
    render_probe(console, model, report)
    return EXIT_FINDINGS if report.roots else EXIT_CLEAN
