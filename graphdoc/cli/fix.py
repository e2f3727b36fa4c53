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
    EXIT_ERROR,
    EXIT_FINDINGS,
    MODEL_HELP,
    add_model_options,
    add_run_options,
    codes,
    described,
    load_model,
    output_file,
    progress,
    shown_on,
    status,
    whole_number,
)
from graphdoc.errors import GraphdocError
from graphdoc.fixing import TENSORFLOW_MISSING, FileFix, FixResult, VerificationFailed, tensorflow_installed
from graphdoc.loading import MODEL_SUFFIXES, find_models
from graphdoc.report.html import scan_html
from graphdoc.report.json_report import command_report
from graphdoc.report.next_steps import fix_outcome
from graphdoc.report.records import fix_record
from graphdoc.report.text import render_fix, render_verification
from graphdoc.sources.calibration import IMAGE_PREPROCESSING
from graphdoc.verify.inputs import parse_shapes
from graphdoc.writing import write_atomically


DESCRIPTION = """\
Write an inference-mode copy of each model: BatchNorm on its moving statistics, dropout and
noise removed, training switches set to inference, variable updates dropped. The copy is run
against the original before it is written (batch independence, determinism, untouched nodes
equal, every BatchNorm's inference formula); nothing is written if a check fails."""

EXAMPLES = """\
  graphdoc fix model.pb -o fixed.pb
  graphdoc fix saved_model_dir -o fixed.pb         freezes the signature, then fixes it
  graphdoc fix model.ckpt --outputs logits -o fixed.pb
                                                   a TF1 checkpoint with its .meta
  graphdoc fix frozen.pb --checkpoint train_dir -o fixed.pb
                                                   moving statistics that freezing pruned
  graphdoc fix a.pb b.pb models/ -o fixed/         several models into one directory
  graphdoc fix model.pb --dry-run --diff           what would change, node by node
  graphdoc fix model.onnx -o fixed.onnx            checked with onnxruntime, optimizations disabled
"""


def add_parser(commands) -> argparse.ArgumentParser:
    fix = commands.add_parser("fix", help="write an inference-mode copy of the graph", **described(DESCRIPTION, EXAMPLES))
    fix.add_argument("models", nargs="+", type=Path, metavar="model",
                     help=MODEL_HELP + "; directories are searched for models")
    fix.add_argument("-o", "--output", type=_destination,
                     help="the file to write, or an existing directory to write each model into under its own name "
                     "(required unless --dry-run or --in-place)")
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
    paths = find_models(args.models)
    destinations = _destinations(paths, args)
    if len(paths) == 1:
        return _fix(paths[0], destinations[0], args, console)
    if args.html or args.format != "text":
        raise GraphdocError("--html and --format json report one model; fix the models one at a time")
    exits = []
    for path, output in zip(paths, destinations, strict=True):
        try:
            exits.append(_fix(path, output, args, console))
        except GraphdocError as error:  # the others are still fixed; the exit code says one was not
            print(f"graphdoc: error: {error}", file=sys.stderr)
            exits.append(EXIT_ERROR)
        console.print()
    return max(exits)


def _fix(path: Path, output: Path | None, args: argparse.Namespace, console: Console) -> int:
    steps = FileFix(path, output, in_place=args.in_place, dry_run=args.dry_run)
    model = load_model(path, args)
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


def _destination(text: str) -> Path:
    """An argparse type for -o: a directory that exists, or a file to write (options.output_file)."""
    return Path(text) if Path(text).is_dir() else output_file(text)


def _destinations(paths: list[Path], args: argparse.Namespace) -> list[Path | None]:
    """Where each model's fix goes, checked before anything is loaded (in the options' terms)."""
    into = args.output if args.output is not None and args.output.is_dir() else None
    if len(paths) > 1 and args.output is not None and into is None:
        raise GraphdocError(f"-o {args.output} names one file for {len(paths)} models; name an existing directory")
    outputs = [into / fixed_name(path) if into else args.output for path in paths]
    writing = [output for output in outputs if output is not None]
    clash = next((output for output in writing if writing.count(output) > 1), None)
    if clash is not None:
        named = [str(path) for path, output in zip(paths, outputs, strict=True) if output == clash]
        raise GraphdocError(f"{' and '.join(named)} would both be written to {clash}; fix them into different directories")
    for path, output in zip(paths, outputs, strict=True):
        _check_arguments(path, output, args)
    if args.in_place:
        return [output or path for path, output in zip(paths, outputs, strict=True)]
    return outputs


def fixed_name(path: Path) -> str:
    """The file a model's fix is called in an output directory: a GraphDef keeps its name; a
    SavedModel or a checkpoint becomes a frozen GraphDef named after it."""
    if path.suffix in MODEL_SUFFIXES and not path.is_dir():
        return path.name
    return f"{path.name.removesuffix('.meta')}.pb"


def _unverified(result: FixResult, args: argparse.Namespace) -> str | None:
    """Why the fixed graph was not (or, on a dry run, would not be) run to check it; None if it was."""
    if result.verification is not None or (not result.changed and not args.dry_run):
        return None
    if args.no_verify:
        return "--no-verify"
    if args.dry_run and not tensorflow_installed():
        return TENSORFLOW_MISSING
    return result.verification_skipped


def _check_arguments(model: Path, output: Path | None, args: argparse.Namespace) -> None:
    """Refuse what cannot work before loading anything, in the options' terms."""
    output = output or (model if args.in_place else None)
    if output is None and not args.dry_run:
        raise GraphdocError("fix needs -o OUTPUT (or --dry-run to see what would change)")
    overwrites_input = output is not None and output.resolve() == model.resolve()
    if overwrites_input and not args.in_place:
        raise GraphdocError(f"-o would write over the input {model}; write to a new path, or pass --in-place to keep a backup")
    if overwrites_input and model.is_dir():
        raise GraphdocError("--in-place rewrites a GraphDef file; a SavedModel directory is fixed into a new .pb with -o")
    if output is not None and not output.parent.is_dir():
        raise GraphdocError(f"cannot write {output}: the directory {output.parent} does not exist")
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
