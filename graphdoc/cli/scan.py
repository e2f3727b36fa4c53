"""`graphdoc scan`: report training-mode BatchNorm, live dropout, training switches."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console

from graphdoc import api, cli
from graphdoc.cli.options import (
    EXIT_CLEAN,
    EXIT_ERROR,
    EXIT_FINDINGS,
    MODEL_HELP,
    described,
    add_model_options,
    codes,
    emit,
    in_worker_processes,
    load_model,
    output_file,
    report_console,
    whole_number,
)
from graphdoc.errors import GraphdocError
from graphdoc.fixing import chosen_rules
from graphdoc.loading import find_models
from graphdoc.report.concise import concise_report, github_report
from graphdoc.report.html import scan_html
from graphdoc.report.json_report import json_report
from graphdoc.report.records import model_record
from graphdoc.report.sarif import sarif_report
from graphdoc.report.text import render_many, render_scan
from graphdoc.writing import write_atomically


# The formats made from model records, by name.
_EMITTERS = {"json": json_report, "sarif": sarif_report, "concise": concise_report, "github": github_report}


DESCRIPTION = """\
Report what makes a model behave differently in production than in training: BatchNorm on
batch statistics, live dropout and noise, training switches left on, variable updates, moving
statistics that were never trained or that freezing pruned. Reads GraphDefs, SavedModels and
TF1 checkpoints; a GraphDef is scanned without TensorFlow."""

EXAMPLES = """\
  graphdoc scan model.pb
  graphdoc scan models/ -j 0                     every model under models/, one process per core
  graphdoc scan model.pb --format sarif -o graphdoc.sarif
  graphdoc scan model.pb --format github         annotations for a GitHub Actions job
  graphdoc scan model.pb --ignore GD201          Monte-Carlo dropout kept on purpose
"""


def add_parser(commands) -> argparse.ArgumentParser:
    scan = commands.add_parser("scan", help="report training-mode BatchNorm, live dropout, training switches",
                               **described(DESCRIPTION, EXAMPLES))
    scan.add_argument("models", nargs="+", type=Path, help=MODEL_HELP + "; directories are searched for .pb/.pbtxt")
    scan.add_argument("--format", choices=tuple(["text", *_EMITTERS]), default="text",
                      help="text; json (graphdoc/schemas/scan-v1.schema.json); sarif; concise (one line per "
                      "finding); github (GitHub Actions annotations)")
    scan.add_argument("-o", "--output", type=output_file, help="write the report here instead of stdout")
    scan.add_argument("--html", type=output_file, metavar="FILE",
                      help="also write the findings, each with its neighbourhood drawn, as one HTML page")
    scan.add_argument("--select", type=codes, help="only these rule codes or families, comma-separated (GD1,GD201)")
    scan.add_argument("--ignore", type=codes, help="skip these rule codes or families")
    scan.add_argument("--exit-zero", action="store_true", help="exit 0 even when there are findings")
    scan.add_argument("-j", "--jobs", type=whole_number(0), default=1,
                      help="models scanned in parallel (0: one per core)")
    scan.add_argument("--checkpoint", type=Path, help="look up missing moving statistics here, as fix --checkpoint "
                      "does, so the report says what fix would fix")
    add_model_options(scan)
    scan.set_defaults(command=command)
    return scan


def command(args: argparse.Namespace, console: Console) -> int:
    paths = find_models(args.models)
    chosen_rules(args.select, args.ignore)  # an unknown code is refused before anything is loaded
    if args.html and (len(paths) != 1 or args.format != "text"):
        raise GraphdocError("--html writes the report of one model, with the text format")
    if len(paths) == 1 and args.format == "text":
        return _one_to_text(paths[0], args, console)
    results = _many(paths, args)
    records = [r for r in results if isinstance(r, dict)]
    errors = [r for r in results if isinstance(r, str)]
    for error in errors:
        print(f"graphdoc: error: {error}", file=sys.stderr)
    if args.format == "text":
        with report_console(args, console) as out:
            render_many(out, records, errors)
    elif records or args.format in ("json", "sarif"):  # a line-per-finding report of nothing read says nothing true
        emit(_EMITTERS[args.format](records), args)
    if errors:
        return EXIT_ERROR
    failing = any(not finding["kept"] for record in records for finding in record["findings"])
    return EXIT_FINDINGS if failing and not args.exit_zero else EXIT_CLEAN


def _one_to_text(path: Path, args: argparse.Namespace, console: Console) -> int:
    model = load_model(path, args)
    outputs = api.outputs(model, args.outputs)
    findings = api.scan(model, select=args.select, ignore=args.ignore, checkpoint=args.checkpoint, keep=args.keep)
    cli.keep_until_exit(findings)
    with report_console(args, console) as out:
        render_scan(out, model, findings, outputs, inferred=not args.outputs and model.kind == "tensorflow")
    if args.html:
        write_atomically(scan_html(model, findings).encode(), args.html)
    failing = [finding for finding in findings if not finding.kept]  # kept training behaviour is deliberate
    return EXIT_FINDINGS if failing and not args.exit_zero else EXIT_CLEAN


def _many(paths: list[Path], args: argparse.Namespace) -> list[dict | str]:
    jobs = args.jobs if args.jobs > 0 else (os.cpu_count() or 1)
    work = [(path, args.select, args.ignore, args.outputs, args.signature, args.checkpoint, args.keep)
            for path in paths]
    if jobs == 1 or len(paths) == 1:
        return [_to_record(*item) for item in work]
    return in_worker_processes(_to_record, work, min(jobs, len(paths)))


def _to_record(path: Path, select, ignore, outputs, signature, checkpoint=None, keep=()) -> dict | str:
    """One model's report record, or its load error as a sentence (runs in a worker process)."""
    try:
        model = api.load(path, outputs=outputs, signature=signature)
        findings = api.scan(model, select=select, ignore=ignore, checkpoint=checkpoint, keep=keep)
        return model_record(model, findings, api.outputs(model, outputs))
    except GraphdocError as error:
        return str(error)
