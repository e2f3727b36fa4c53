"""`graphdoc compare`: run two graphs on the same inputs and compare their outputs."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from graphdoc import api
from graphdoc.cli.options import EXIT_CLEAN, EXIT_FINDINGS, add_model_options, add_run_options, load_model, status
from graphdoc.report.text import render_comparison
from graphdoc.verify.inputs import parse_shapes


def add_parser(commands) -> argparse.ArgumentParser:
    compare = commands.add_parser("compare", help="run two graphs on the same inputs and compare their outputs")
    compare.add_argument("first", type=Path)
    compare.add_argument("second", type=Path)
    compare.add_argument("--tolerance", type=float, default=1e-5,
                         help="largest relative output difference that counts as equal (default 1e-5)")
    add_model_options(compare)
    add_run_options(compare)
    compare.set_defaults(command=command)
    return compare


def command(args: argparse.Namespace, console: Console) -> int:
    first, second = load_model(args.first, args), load_model(args.second, args)
    with status("running both graphs"):
        comparison = api.compare(first, second, outputs=args.outputs, inputs=args.inputs,
                                 shapes=parse_shapes(args.input_shape), allow_unsafe=args.allow_unsafe_ops)
    render_comparison(console, first, second, comparison, args.tolerance)
    return EXIT_CLEAN if all(d.max_rel <= args.tolerance for d in comparison.outputs) else EXIT_FINDINGS
