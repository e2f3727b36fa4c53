"""`graphdoc probe`: run the graph and find where results depend on the batch."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from graphdoc import api
from graphdoc.cli.options import (
    EXIT_CLEAN,
    EXIT_FINDINGS,
    MODEL_HELP,
    described,
    add_model_options,
    add_run_options,
    load_model,
    output_file,
    shown_on,
    status,
)
from graphdoc.report.html import probe_html
from graphdoc.report.json_report import command_report
from graphdoc.report.next_steps import probe_next_steps
from graphdoc.report.records import probe_record
from graphdoc.report.text import render_probe
from graphdoc.verify.inputs import parse_shapes
from graphdoc.writing import write_atomically


DESCRIPTION = """\
Run the model on a batch and on each sample alone, twice, and find the first nodes whose
values depend on the rest of the batch or change from run to run, each explained by the
finding that causes it. Needs TensorFlow. Inputs are generated unless given with --inputs."""

EXAMPLES = """\
  graphdoc probe model.pb
  graphdoc probe model.pb --inputs images.npy --html probe.html
  graphdoc probe model.pb --input-shape input=-1,224,224,3
"""


def add_parser(commands) -> argparse.ArgumentParser:
    probe = commands.add_parser("probe", help="run the graph and find where results depend on the batch",
                                **described(DESCRIPTION, EXAMPLES))
    probe.add_argument("model", type=Path, help=MODEL_HELP)
    probe.add_argument("--format", choices=("text", "json"), default="text",
                       help="json: the shape is graphdoc/schemas/probe-v1.schema.json")
    probe.add_argument("--html", type=output_file, metavar="FILE",
                       help="also write a self-contained HTML report: the divergence profile of every probed "
                       "node, and each finding's neighbourhood")
    add_model_options(probe)
    add_run_options(probe)
    probe.set_defaults(command=command)
    return probe


def command(args: argparse.Namespace, console: Console) -> int:
    model = load_model(args.model, args)
    with status("probing: running the graph four times") as spinner:
        report = api.probe(model, inputs=args.inputs, shapes=parse_shapes(args.input_shape), outputs=args.outputs,
                           allow_unsafe=args.allow_unsafe_ops, status=shown_on(spinner))
    if args.html:
        findings = api.scan(model, keep=args.keep)
        write_atomically(probe_html(model, report, findings).encode(), args.html)
    if args.format == "json":
        next_steps = probe_next_steps(report.roots, str(model.path))
        sys.stdout.write(command_report("probe", probe_record(model, report, next_steps)))
    else:
        render_probe(console, model, report)
    return EXIT_FINDINGS if report.roots else EXIT_CLEAN
