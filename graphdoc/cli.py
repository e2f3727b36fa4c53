"""The `graphdoc` command: a thin layer over loading, scanning, fixing and reporting.

Exit codes: 0 nothing found, 1 findings remain, 2 bad input or usage.
The report goes to stdout; errors go to stderr as one sentence.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import sys
import traceback
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from graphdoc import __version__
from graphdoc.errors import FixError, GraphdocError
from graphdoc.loading import load
from graphdoc.report.text import render_comparison, render_fix, render_probe, render_scan, render_verification
from graphdoc.rewrite import fix
from graphdoc.rewrite.outputs import resolve_outputs
from graphdoc.rewrite.statistics import complete
from graphdoc.sources.calibration import IMAGE_PREPROCESSING
from graphdoc.verify.inputs import parse_shapes
from graphdoc.rules import ALL_RULES, RULES_BY_CODE
from graphdoc.scanning import scan
from graphdoc.writing import write_atomically, write_graph_def

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    console = Console()
    try:
        return args.command(args, console)
    except GraphdocError as error:
        if args.debug:
            traceback.print_exc()
        print(f"graphdoc: error: {error}", file=sys.stderr)
        return EXIT_ERROR


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphdoc", description="Find and repair TensorFlow graphs exported in training mode.")
    parser.add_argument("--version", action="version", version=f"graphdoc {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    scan_parser = commands.add_parser("scan", help="report training-mode BatchNorm and live dropout")
    scan_parser.add_argument("model", type=Path, help=_MODEL_HELP)
    _add_outputs(scan_parser)
    scan_parser.set_defaults(command=_scan)

    fix_parser = commands.add_parser("fix", help="write an inference-mode copy of the graph")
    fix_parser.add_argument("model", type=Path, help=_MODEL_HELP)
    fix_parser.add_argument("-o", "--output", type=Path, required=True, help="where to write the fixed graph")
    fix_parser.add_argument(
        "--checkpoint", type=Path,
        help="take missing moving statistics from this checkpoint (a prefix, a directory with a "
        "`checkpoint` file, or a SavedModel's variables/variables)",
    )
    fix_parser.add_argument(
        "--calibrate", type=Path, metavar="DATA",
        help="recompute missing moving statistics by running the graph over DATA (.npy for one input, "
        ".npz with an array per input, or a folder of images: " + IMAGE_PREPROCESSING + ")",
    )
    fix_parser.add_argument("--batch-size", type=int, default=32, help="calibration batch size (default 32)")
    _add_outputs(fix_parser)

    fix_parser.add_argument("--no-verify", action="store_true", help="do not run the fixed graph to check it")
    _add_run_options(fix_parser)
    fix_parser.set_defaults(command=_fix)

    probe_parser = commands.add_parser("probe", help="run the graph and find where results depend on the batch")
    probe_parser.add_argument("model", type=Path, help=_MODEL_HELP)
    _add_outputs(probe_parser)
    _add_run_options(probe_parser)
    probe_parser.set_defaults(command=_probe)

    compare_parser = commands.add_parser("compare", help="run two graphs on the same inputs and compare outputs")
    compare_parser.add_argument("first", type=Path)
    compare_parser.add_argument("second", type=Path)
    compare_parser.add_argument("--tolerance", type=float, default=1e-5,
                                help="largest relative output difference that counts as equal (default 1e-5)")
    _add_outputs(compare_parser)
    _add_run_options(compare_parser)
    compare_parser.set_defaults(command=_compare)

    rule_parser = commands.add_parser("rule", help="explain a rule")
    rule_parser.add_argument("code", nargs="?", help="a rule code such as GD101")
    rule_parser.add_argument("--all", action="store_true", help="explain every rule")
    rule_parser.set_defaults(command=_rule)
    for sub in (scan_parser, fix_parser, probe_parser, compare_parser, rule_parser):
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


_MODEL_HELP = (
    "a frozen GraphDef (.pb or .pbtxt), a SavedModel directory, or a TF1 checkpoint prefix with its .meta "
    "(needs --outputs)"
)


def _add_outputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--signature", default="serving_default", help="the SavedModel signature to read (default serving_default)"
    )
    parser.add_argument(
        "--outputs", type=lambda text: [name for name in text.split(",") if name],
        help="comma-separated output node names (default: inferred from the graph)",
    )


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inputs", type=Path, help="input data to run with (.npy for one input, .npz per input name)")
    parser.add_argument("--input-shape", action="append", metavar="NAME=D1,D2,...",
                        help="shape of an input whose dimensions the graph leaves open (-1 for the batch)")
    parser.add_argument("--allow-unsafe-ops", action="store_true",
                        help="run graphs that read or write files or call Python")


def _scan(args: argparse.Namespace, console: Console) -> int:
    model = load(args.model, outputs=args.outputs, signature=args.signature)
    outputs = resolve_outputs(model.main, args.outputs)
    findings = scan(model)
    render_scan(console, model, findings, outputs, inferred=not args.outputs)
    return EXIT_FINDINGS if findings else EXIT_CLEAN


def _fix(args: argparse.Namespace, console: Console) -> int:
    if args.output.resolve() == args.model.resolve():
        raise GraphdocError("-o names the input file; write the fixed graph to a new path")
    model = load(args.model, outputs=args.outputs, signature=args.signature)
    report = fix(
        model, outputs=args.outputs, complete=lambda graph, findings: _with_outside_statistics(graph, findings, args)
    )
    verification = None
    if report.changed and not args.no_verify and importlib.util.find_spec("tensorflow") is not None:
        from graphdoc.verify.verification import verify

        verification = verify(model, report, data=args.inputs, shapes=parse_shapes(args.input_shape),
                              allow_unsafe=args.allow_unsafe_ops)
    if verification is not None and not verification.passed:
        render_verification(console, verification)
        failure = verification.failures()[0]
        raise FixError(f"the fixed graph failed verification ({failure.name}: {failure.detail}); nothing was written")
    if report.changed:
        write_graph_def(report.fixed.graph_def, args.output)
    else:
        write_atomically(args.model.read_bytes(), args.output)
    render_fix(console, model, report, str(args.output))
    if verification is not None:
        render_verification(console, verification)
    return EXIT_FINDINGS if report.remaining else EXIT_CLEAN


def _probe(args: argparse.Namespace, console: Console) -> int:
    from graphdoc.verify.probe import probe

    model = load(args.model, outputs=args.outputs, signature=args.signature)
    report = probe(model, scan(model), data=args.inputs, shapes=parse_shapes(args.input_shape),
                   outputs=args.outputs, allow_unsafe=args.allow_unsafe_ops)
    render_probe(console, model, report)
    return EXIT_FINDINGS if report.roots else EXIT_CLEAN


def _compare(args: argparse.Namespace, console: Console) -> int:
    from graphdoc.verify.compare import compare

    first = load(args.first, outputs=args.outputs, signature=args.signature)
    second = load(args.second, outputs=args.outputs, signature=args.signature)
    comparison = compare(first, second, outputs=args.outputs, data=args.inputs,
                         shapes=parse_shapes(args.input_shape), allow_unsafe=args.allow_unsafe_ops)
    render_comparison(console, first, second, comparison, args.tolerance)
    return EXIT_CLEAN if all(d.max_rel <= args.tolerance for d in comparison.outputs) else EXIT_FINDINGS


def _with_outside_statistics(model, findings, args: argparse.Namespace):
    """Complete BatchNorm fixes from the checkpoint, then from calibration, as given."""
    checkpoint = args.checkpoint or model.checkpoint
    if checkpoint is not None and _lacks_statistics(findings):
        from graphdoc.sources.checkpoint import CheckpointStatistics

        findings = complete(model, findings, CheckpointStatistics(checkpoint))
    if args.calibrate is not None and _lacks_statistics(findings):
        from graphdoc.sources.calibration import CalibratedStatistics

        with _progress("calibrating") as advance:
            source = CalibratedStatistics(
                model, findings, args.calibrate, batch_size=args.batch_size, progress=advance
            )
        findings = complete(model, findings, source)
    return findings


def _lacks_statistics(findings) -> bool:
    return any(finding.fix is None and finding.site is not None for finding in findings)


@contextlib.contextmanager
def _progress(description: str):
    """A progress line on stderr (the report owns stdout); advance(n) counts samples."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed} samples"),
        console=Console(stderr=True), transient=True,
    ) as progress:
        task = progress.add_task(description, total=None)
        yield lambda count: progress.advance(task, count)


def _rule(args: argparse.Namespace, console: Console) -> int:
    if args.all or not args.code:
        rules = ALL_RULES
    elif args.code.upper() in RULES_BY_CODE:
        rules = (RULES_BY_CODE[args.code.upper()],)
    else:
        raise GraphdocError(f"no rule {args.code!r}; known codes: {', '.join(RULES_BY_CODE)}")
    for rule in rules:
        console.rule(f"[bold]{rule.code}[/bold] {rule.name}", align="left")
        console.print(rule.explanation(), markup=False, highlight=False)
        console.print()
    return EXIT_CLEAN
