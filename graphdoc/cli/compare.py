"""`graphdoc compare`: run two graphs on the same inputs and compare their outputs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from graphdoc import api
from graphdoc.cli.options import (
    EXIT_CLEAN,
    EXIT_FINDINGS,
    add_model_options,
    add_run_options,
    described,
    load_model,
    non_negative_number,
    status,
    whole_number,
)
from graphdoc.report.json_report import command_report
from graphdoc.report.next_steps import compare_verdict, training_mode
from graphdoc.report.records import comparison_record
from graphdoc.report.text import render_comparison
from graphdoc.verify.inputs import parse_shapes


DESCRIPTION = """\
Run two models on the same inputs and compare their outputs; the last line says whether
they agree within the tolerance and, when one of them runs in training mode, why not.
Needs TensorFlow."""

EXAMPLES = """\
  graphdoc compare model.pb fixed.pb
  graphdoc compare model.pb fixed.pb --batch 16 --tolerance 1e-4
"""


def add_parser(commands) -> argparse.ArgumentParser:
    compare = commands.add_parser("compare", help="run two graphs on the same inputs and compare their outputs",
                                  **described(DESCRIPTION, EXAMPLES))
    compare.add_argument("first", type=Path)
    compare.add_argument("second", type=Path)
    compare.add_argument("--tolerance", type=non_negative_number, default=1e-5,
                         help="largest relative output difference that counts as equal (default 1e-5)")
    compare.add_argument("--batch", type=whole_number(1), metavar="N",
                         help="how many samples to run (default: every sample in --inputs, else 4 random ones)")
    compare.add_argument("--format", choices=("text", "json"), default="text",
                         help="json: the shape is graphdoc/schemas/compare-v1.schema.json")
    add_model_options(compare)
    add_run_options(compare)
    compare.set_defaults(command=command)
    return compare


def command(args: argparse.Namespace, console: Console) -> int:
    first, second = load_model(args.first, args), load_model(args.second, args)
    with status("running both graphs"):
        comparison = api.compare(first, second, outputs=args.outputs, inputs=args.inputs, batch=args.batch,
                                 shapes=parse_shapes(args.input_shape), allow_unsafe=args.allow_unsafe_ops)
    # Why the outputs differ, when they do: the training behaviour each graph has.
    training = (training_mode(api.scan(first)), training_mode(api.scan(second)))
    verdict = compare_verdict(comparison, args.tolerance, training)
    if args.format == "json":
        sys.stdout.write(command_report("compare", comparison_record(first, second, comparison, verdict)))
    else:
        render_comparison(console, first, second, comparison, args.tolerance, verdict=verdict)
    return EXIT_CLEAN if verdict["agree"] else EXIT_FINDINGS
