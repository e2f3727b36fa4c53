"""`graphdoc fix`: the steps of graphdoc.fixing.FileFix, each shown as it runs, then the report."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from rich.console import Console

from graphdoc import cli
from graphdoc.cli.options import (
    EXIT_CLEAN,
    EXIT_FINDINGS,
    MODEL_HELP,
    add_model_options,
    add_run_options,
    codes,
    load_model,
    output_file,
    progress,
    shown_on,
    status,
    whole_number,
)
from graphdoc.errors import GraphdocError
from graphdoc.fixing import TENSORFLOW_MISSING, FileFix, FixResult, VerificationFailed, tensorflow_installed
from graphdoc.report.html import scan_html
from graphdoc.report.json_report import command_report
from graphdoc.report.next_steps import fix_outcome
from graphdoc.report.records import fix_record
from graphdoc.report.text import render_fix, render_verification
from graphdoc.sources.calibration import IMAGE_PREPROCESSING
from graphdoc.verify.inputs import parse_shapes
from graphdoc.writing import write_atomically


def add_parser(commands) -> argparse.ArgumentParser:
    fix = commands.add_parser("fix", help="write an inference-mode copy of the graph")
    fix.add_argument("model", type=Path, help=MODEL_HELP)
    fix.add_argument("-o", "--output", type=output_file,
                     help="where to write the fixed graph (required unless --dry-run)")
    fix.add_argument("--checkpoint", type=Path, help="take missing moving statistics from this checkpoint (a prefix, "
                     "a directory with a `checkpoint` file, or a SavedModel)")
    fix.add_argument("--calibrate", type=Path, metavar="DATA", help="recompute missing moving statistics by running "
                     "the graph over DATA (.npy, .npz, or a folder of images: " + IMAGE_PREPROCESSING + "); unsafe")
    fix.add_argument("--batch-size", type=whole_number(1), default=32, help="calibration batch size (default 32)")
    fix.add_argument("--unsafe-fixes", action="store_true", help="also apply unsafe fixes (calibrated statistics)")
    fix.add_argument("--in-place", action="store_true",
                     help="overwrite the model file itself, keeping the original as MODEL.bak")
    fix.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    fix.add_argument("--diff", action="store_true", help="show the change node by node")
    fix.add_argument("--no-verify", action="store_true", help="do not run the fixed graph to check it")
    fix.add_argument("--html", type=output_file, metavar="FILE",
                     help="also write what was fixed, each finding with its neighbourhood before the fix, as HTML")
    fix.add_argument("--format", choices=("text", "json"), default="text",
                     help="json: the shape is graphdoc/schemas/fix-v1.schema.json (the report goes to stdout)")
    fix.add_argument("--select", type=codes, help="fix only these rule codes or families (GD1,GD301)")
    fix.add_argument("--ignore", type=codes, help="leave these rule codes or families alone")
    fix.add_argument("--bind", type=_binding, action="append", metavar="NAME=VALUE",
                     help="set a placeholder to a constant before anything else (is_training=false, keep_prob=1)")
    add_model_options(fix)
    add_run_options(fix)
    fix.set_defaults(command=command)
    return fix


def _binding(text: str) -> tuple[str, bool | int | float]:
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return name.strip(), lowered == "true"
    for kind in (int, float):
        try:
            return name.strip(), kind(lowered)
        except ValueError:
            pass
    raise argparse.ArgumentTypeError(f"{text!r}: the value must be true, false or a number")


def command(args: argparse.Namespace, console: Console) -> int:
    _check_arguments(args)
    steps = FileFix(args.model, args.output, in_place=args.in_place, dry_run=args.dry_run)
    model = load_model(args.model, args)
    with progress("calibrating") if args.calibrate else contextlib.nullcontext() as advance:
        steps.fix(model, outputs=args.outputs, checkpoint=args.checkpoint, calibrate=args.calibrate,
                  batch_size=args.batch_size, unsafe_fixes=args.unsafe_fixes, progress=advance,
                  select=args.select, ignore=args.ignore, bind=dict(args.bind or []), keep=args.keep)
    # A JSON report owns stdout: a failed verification's table goes to stderr with the error.
    result = _check(steps, args, console if args.format == "text" else Console(stderr=True))
    cli.keep_until_exit(result)
    changes = steps.changes() if args.diff else None  # before --in-place overwrites the original
    steps.write()
    outcome = fix_outcome(result, None if steps.output is None else str(steps.output), dry_run=args.dry_run,
                          verified=result.verification is not None, unverified=_unverified(result, args),
                          changes=changes)
    if args.format == "json":
        sys.stdout.write(command_report("fix", fix_record(model, result, outcome, changes=changes,
                                                          verification=result.verification,
                                                          verification_skipped=result.verification_skipped)))
    else:
        render_fix(console, model, result, outcome["written"], changes=changes, verification=result.verification,
                   outcome=outcome)
    if args.html:  # drawn on the graph as it was: the fixed one no longer has what was fixed
        summary = f"{outcome['written']}" if outcome.get("written") else ""
        write_atomically(scan_html(steps.original, result.applied, heading="fix", summary=summary).encode(), args.html)
    return EXIT_FINDINGS if result.remaining or result.held_back else EXIT_CLEAN


def _unverified(result: FixResult, args: argparse.Namespace) -> str | None:
    """Why the fixed graph was not (or, on a dry run, would not be) run to check it; None if it was."""
    if result.verification is not None or (not result.changed and not args.dry_run):
        return None
    if args.no_verify:
        return "--no-verify"
    if args.dry_run and not tensorflow_installed():
        return TENSORFLOW_MISSING
    return result.verification_skipped


def _check_arguments(args: argparse.Namespace) -> None:
    """Refuse what cannot work before loading anything, in the options' terms."""
    if args.in_place:
        args.output = args.output or args.model
    if args.output is None and not args.dry_run:
        raise GraphdocError("fix needs -o OUTPUT (or --dry-run to see what would change)")
    overwrites_input = args.output is not None and args.output.resolve() == args.model.resolve()
    if overwrites_input and not args.in_place:
        raise GraphdocError("-o names the input file; write to a new path, or pass --in-place to keep a backup")
    if overwrites_input and args.model.is_dir():
        raise GraphdocError("--in-place rewrites a GraphDef file; a SavedModel directory is fixed into a new .pb with -o")
    if args.output is not None and not args.output.parent.is_dir():
        raise GraphdocError(f"cannot write {args.output}: the directory {args.output.parent} does not exist")
    if args.calibrate is not None and not args.calibrate.exists():
        raise GraphdocError(f"--calibrate {args.calibrate}: no such file or directory")
    if args.checkpoint is not None and not (args.checkpoint.exists() or Path(f"{args.checkpoint}.index").exists()):
        raise GraphdocError(f"--checkpoint {args.checkpoint}: neither a checkpoint prefix nor a directory")


def _check(steps: FileFix, args: argparse.Namespace, console: Console) -> FixResult:
    """Verify the fix; a failed check is shown, and the error says nothing was written."""
    if not steps.will_verify(verify=not args.no_verify):  # nothing runs: no spinner, --input-shape unread
        return steps.check(verify=not args.no_verify)
    try:
        with status("verifying the fixed graph") as spinner:
            return steps.check(inputs=args.inputs, shapes=parse_shapes(args.input_shape),
                               allow_unsafe=args.allow_unsafe_ops,
                               status=shown_on(spinner, "verifying the fixed graph: "))
    except VerificationFailed as failure:
        render_verification(console, failure.verification)
        raise
