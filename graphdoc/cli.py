"""The `graphdoc` command: a thin layer over graphdoc.api and the reports.

Exit codes: 0 nothing found, 1 findings remain (or outputs differ), 2 bad
input or usage. Reports go to stdout (or -o); errors and progress to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import importlib.util
import os
import sys
import traceback
from pathlib import Path

from rich.console import Console

from graphdoc import __version__, api
from graphdoc.errors import FixError, GraphdocError
from graphdoc.loading import GRAPHDEF_FORMATS, is_model_directory
from graphdoc.report.json_report import json_report
from graphdoc.report.records import model_record
from graphdoc.report.sarif import sarif_report
from graphdoc.report.text import (
    render_comparison,
    render_fix,
    render_many,
    render_probe,
    render_scan,
    render_verification,
)
from graphdoc.rewrite.diff import node_changes
from graphdoc.rewrite.outputs import resolve_outputs
from graphdoc.rules import ALL_RULES, RULES_BY_CODE, select_rules
from graphdoc.sources.calibration import IMAGE_PREPROCESSING
from graphdoc.verify.inputs import parse_shapes
from graphdoc.writing import write_atomically, write_graph_def

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2

_MODEL_HELP = (
    "a frozen GraphDef (.pb or .pbtxt), a SavedModel directory, or a TF1 checkpoint prefix with its .meta "
    "(needs --outputs)"
)


def main(argv: list[str] | None = None) -> int:
    # One command, then exit: the cyclic collector would walk the model's
    # millions of objects again and again for garbage this run hardly makes
    # (measured: a third of a scan at a million nodes). Reference counting
    # still frees everything else.
    collecting = gc.isenabled()
    gc.disable()
    args = _parser().parse_args(argv)
    console = Console()
    try:
        return args.command(args, console)
    except GraphdocError as error:
        if args.debug:
            traceback.print_exc()
            if error.detail:
                print(error.detail, file=sys.stderr)
        print(f"graphdoc: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if collecting:  # called as a function (tests, scripts), not as the command
            gc.enable()


# Set by run(), which ends the process as soon as the command returns: what a
# command made (the model, its findings) is kept here rather than freed object
# by object when the command's frame goes, which takes a third of a second for
# a million-node model. Called as a function (tests, scripts), main() keeps nothing.
_kept_until_exit: list[object] | None = None


def _keep_until_exit(*objects: object) -> None:
    if _kept_until_exit is not None:
        _kept_until_exit.extend(objects)


def run() -> None:
    """The `graphdoc` command: main(), then exit at once.

    Freeing a million-node model object by object takes more than a second;
    the operating system takes the whole process back at once. Everything
    graphdoc writes is flushed (files atomically, before this point).
    """
    global _kept_until_exit
    _kept_until_exit = []
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# -- arguments ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphdoc", description="Find and repair TensorFlow graphs exported in training mode.")
    parser.add_argument("--version", action="version", version=f"graphdoc {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    scan = commands.add_parser("scan", help="report training-mode BatchNorm, live dropout, training switches")
    scan.add_argument("models", nargs="+", type=Path, help=_MODEL_HELP + "; directories are searched for .pb/.pbtxt")
    scan.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    scan.add_argument("-o", "--output", type=Path, help="write the report here instead of stdout")
    scan.add_argument("--select", type=_codes, help="only these rule codes or families, comma-separated (GD1,GD201)")
    scan.add_argument("--ignore", type=_codes, help="skip these rule codes or families")
    scan.add_argument("--exit-zero", action="store_true", help="exit 0 even when there are findings")
    scan.add_argument("-j", "--jobs", type=int, default=1, help="models scanned in parallel (0: one per core)")
    scan.add_argument("--checkpoint", type=Path, help="look up missing moving statistics here, as fix --checkpoint "
                      "does, so the report says what fix would fix")
    _add_model_options(scan)
    scan.set_defaults(command=_scan)

    fix = _add_fix_parser(commands)

    probe = commands.add_parser("probe", help="run the graph and find where results depend on the batch")
    probe.add_argument("model", type=Path, help=_MODEL_HELP)
    _add_model_options(probe)
    _add_run_options(probe)
    probe.set_defaults(command=_probe)

    compare = commands.add_parser("compare", help="run two graphs on the same inputs and compare their outputs")
    compare.add_argument("first", type=Path)
    compare.add_argument("second", type=Path)
    compare.add_argument("--tolerance", type=float, default=1e-5,
                         help="largest relative output difference that counts as equal (default 1e-5)")
    _add_model_options(compare)
    _add_run_options(compare)
    compare.set_defaults(command=_compare)

    show = commands.add_parser("show", help="show the neighbourhood of a node, in the terminal or as DOT/SVG")
    show.add_argument("model", type=Path, help=_MODEL_HELP)
    show.add_argument("node", help="a node of the main graph")
    show.add_argument("--depth", type=int, default=2, help="how many steps of inputs and consumers (default 2)")
    show.add_argument("--dot", type=Path, help="also write the neighbourhood as Graphviz DOT")
    show.add_argument("--svg", type=Path, help="also render it as SVG (needs Graphviz's dot program)")
    _add_model_options(show)
    show.set_defaults(command=_show)

    rule = _add_rule_parser(commands)
    for sub in (scan, fix, probe, compare, show, rule):
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def _add_rule_parser(commands) -> argparse.ArgumentParser:
    rule = commands.add_parser("rule", help="explain a rule")
    rule.add_argument("code", nargs="?", help="a rule code such as GD101")
    rule.add_argument("--all", action="store_true", help="explain every rule")
    rule.set_defaults(command=_rule)
    return rule


def _add_fix_parser(commands) -> argparse.ArgumentParser:
    fix = commands.add_parser("fix", help="write an inference-mode copy of the graph")
    fix.add_argument("model", type=Path, help=_MODEL_HELP)
    fix.add_argument("-o", "--output", type=Path, help="where to write the fixed graph (required unless --dry-run)")
    fix.add_argument("--checkpoint", type=Path, help="take missing moving statistics from this checkpoint (a prefix, "
                     "a directory with a `checkpoint` file, or a SavedModel)")
    fix.add_argument("--calibrate", type=Path, metavar="DATA", help="recompute missing moving statistics by running "
                     "the graph over DATA (.npy, .npz, or a folder of images: " + IMAGE_PREPROCESSING + "); unsafe")
    fix.add_argument("--batch-size", type=int, default=32, help="calibration batch size (default 32)")
    fix.add_argument("--unsafe-fixes", action="store_true", help="also apply unsafe fixes (calibrated statistics)")
    fix.add_argument("--in-place", action="store_true",
                     help="overwrite the model file itself, keeping the original as MODEL.bak")
    fix.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    fix.add_argument("--diff", action="store_true", help="show the change node by node")
    fix.add_argument("--no-verify", action="store_true", help="do not run the fixed graph to check it")
    fix.add_argument("--select", type=_codes, help="fix only these rule codes or families (GD1,GD301)")
    fix.add_argument("--ignore", type=_codes, help="leave these rule codes or families alone")
    fix.add_argument("--bind", type=_binding, action="append", metavar="NAME=VALUE",
                     help="set a placeholder to a constant before anything else (is_training=false, keep_prob=1)")
    _add_model_options(fix)
    _add_run_options(fix)
    fix.set_defaults(command=_fix)
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


def _codes(text: str) -> list[str]:
    return [code.strip() for code in text.split(",") if code.strip()]


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--outputs", type=_codes, help="output node names, comma-separated (default: inferred)")
    parser.add_argument("--signature", default="serving_default", help="SavedModel signature (default serving_default)")


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inputs", type=Path, help="input data to run with (.npy for one input, .npz per input name)")
    parser.add_argument("--input-shape", action="append", metavar="NAME=D1,D2,...",
                        help="shape of an input whose dimensions the graph leaves open (-1 for the batch)")
    parser.add_argument("--allow-unsafe-ops", action="store_true", help="run graphs that touch files or call Python")


def _tensorflow_installed() -> bool:
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except ValueError:  # a module entry set to None: deliberately unavailable
        return False


def _load(path: Path, args: argparse.Namespace):
    with _status(f"loading {path}"):
        model = api.load(path, outputs=args.outputs, signature=args.signature)
    _keep_until_exit(model)
    return model


# -- scan -----------------------------------------------------------------------------------


def _scan(args: argparse.Namespace, console: Console) -> int:
    paths = _expand(args.models)
    try:
        select_rules(args.select, args.ignore)
    except ValueError as error:
        raise GraphdocError(str(error)) from None
    if len(paths) == 1 and args.format == "text":
        return _scan_one_to_text(paths[0], args, console)
    results = _scan_many(paths, args)
    records = [r for r in results if isinstance(r, dict)]
    errors = [r for r in results if isinstance(r, str)]
    for error in errors:
        print(f"graphdoc: error: {error}", file=sys.stderr)
    if args.format == "text":
        with _report_console(args, console) as out:
            render_many(out, records, errors)
    else:
        _emit((json_report if args.format == "json" else sarif_report)(records), args)
    if errors:
        return EXIT_ERROR
    return EXIT_FINDINGS if any(r["findings"] for r in records) and not args.exit_zero else EXIT_CLEAN


def _scan_one_to_text(path: Path, args: argparse.Namespace, console: Console) -> int:
    model = _load(path, args)
    outputs = resolve_outputs(model.main, args.outputs)
    findings = api.scan(model, select=args.select, ignore=args.ignore, checkpoint=args.checkpoint)
    _keep_until_exit(findings)
    with _report_console(args, console) as out:
        render_scan(out, model, findings, outputs, inferred=not args.outputs)
    return EXIT_FINDINGS if findings and not args.exit_zero else EXIT_CLEAN


def _scan_many(paths: list[Path], args: argparse.Namespace) -> list[dict | str]:
    jobs = args.jobs if args.jobs > 0 else (os.cpu_count() or 1)
    work = [(path, args.select, args.ignore, args.outputs, args.signature, args.checkpoint) for path in paths]
    if jobs == 1 or len(paths) == 1:
        return [_scan_to_record(*item) for item in work]
    # Imported here: only -j needs worker processes, and the import costs every command.
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=min(jobs, len(paths))) as pool:
        return list(pool.map(_scan_to_record, *zip(*work, strict=True)))


def _scan_to_record(path: Path, select, ignore, outputs, signature, checkpoint=None) -> dict | str:
    """One model's report record, or its load error as a sentence (runs in a worker process)."""
    try:
        model = api.load(path, outputs=outputs, signature=signature)
        findings = api.scan(model, select=select, ignore=ignore, checkpoint=checkpoint)
        return model_record(model, findings, resolve_outputs(model.main, outputs))
    except GraphdocError as error:
        return str(error)


def _expand(paths: list[Path]) -> list[Path]:
    """Models named on the command line; a directory that is not itself a model holds models."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir() or is_model_directory(path):
            found.append(path)
            continue
        models = sorted(p for p in path.rglob("*") if p.suffix in (".pb", ".pbtxt") and p.name != "saved_model.pb")
        models += sorted(p.parent for p in path.rglob("saved_model.pb"))
        if not models:
            raise GraphdocError(f"{path} holds no .pb or .pbtxt files and no SavedModel")
        found.extend(models)
    return found


# -- fix ------------------------------------------------------------------------------------


def _fix(args: argparse.Namespace, console: Console) -> int:
    overwrites_input = _check_fix_arguments(args)
    model = _load(args.model, args)
    # A GraphDef file is cheap to read again, so it is fixed in place (no copy
    # of its weights in memory) and read again only if the original is needed.
    in_place = model.format in GRAPHDEF_FORMATS
    with _progress("calibrating") if args.calibrate else contextlib.nullcontext() as advance:
        report = api.fix(model, outputs=args.outputs, checkpoint=args.checkpoint, calibrate=args.calibrate,
                         batch_size=args.batch_size, unsafe_fixes=args.unsafe_fixes, progress=advance,
                         in_place=in_place, select=args.select, ignore=args.ignore, bind=dict(args.bind or []))
    _keep_until_exit(report)
    original = functools.cache(lambda: api.load(args.model) if in_place else model)
    verification = _verify(original, report, args) if report.changed and not args.dry_run else None
    if verification is not None and not verification.passed:
        render_verification(console, verification)
        failure = verification.failures()[0]
        raise FixError(f"the fixed graph failed verification ({failure.name}: {failure.detail}); nothing was written")
    changes = node_changes(original(), report.fixed) if args.diff else None  # before --in-place overwrites it
    if not args.dry_run:
        _write_fix(report, args, overwrites_input=overwrites_input)
    render_fix(console, model, report, None if args.dry_run else str(args.output), changes=changes,
               verification=verification)
    if verification is None and report.changed and not args.no_verify and not args.dry_run:
        console.print("verification skipped: TensorFlow is not installed (pip install 'graphdoc-tf[tf]')",
                      style="yellow")
    return EXIT_FINDINGS if report.remaining or report.held_back else EXIT_CLEAN


def _check_fix_arguments(args: argparse.Namespace) -> bool:
    """Refuse what cannot work before loading anything; returns whether the input is overwritten."""
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
    return overwrites_input


def _verify(original, report, args: argparse.Namespace):
    """Run the fixed graph against the original, when asked and TensorFlow is there."""
    if args.no_verify or not _tensorflow_installed():
        return None
    from graphdoc.verify.verification import verify

    with _status("verifying the fixed graph") as status:
        return verify(original(), report, data=args.inputs, shapes=parse_shapes(args.input_shape),
                      allow_unsafe=args.allow_unsafe_ops, status=_shown_on(status, "verifying the fixed graph: "))


def _write_fix(report, args: argparse.Namespace, *, overwrites_input: bool) -> None:
    if not report.changed:  # nothing fixed: the input, byte for byte
        write_atomically(args.model.read_bytes(), args.output)
        return
    if overwrites_input:
        write_atomically(args.model.read_bytes(), args.model.with_name(args.model.name + ".bak"))
    write_graph_def(report.fixed.graph_def, args.output)


# -- probe, compare, show, rule ---------------------------------------------------------------


def _probe(args: argparse.Namespace, console: Console) -> int:
    model = _load(args.model, args)
    with _status("probing: running the graph four times") as status:
        report = api.probe(model, inputs=args.inputs, shapes=parse_shapes(args.input_shape), outputs=args.outputs,
                           allow_unsafe=args.allow_unsafe_ops, status=_shown_on(status))
    render_probe(console, model, report)
    return EXIT_FINDINGS if report.roots else EXIT_CLEAN


def _compare(args: argparse.Namespace, console: Console) -> int:
    from graphdoc.verify.compare import compare

    first, second = _load(args.first, args), _load(args.second, args)
    with _status("running both graphs"):
        comparison = compare(first, second, outputs=args.outputs, data=args.inputs,
                             shapes=parse_shapes(args.input_shape), allow_unsafe=args.allow_unsafe_ops)
    render_comparison(console, first, second, comparison, args.tolerance)
    return EXIT_CLEAN if all(d.max_rel <= args.tolerance for d in comparison.outputs) else EXIT_FINDINGS


def _show(args: argparse.Namespace, console: Console) -> int:
    from graphdoc.report.neighbourhood import (
        neighbourhood,
        render_neighbourhood,
        write_dot,
        write_svg,
    )

    model = _load(args.model, args)
    graph = neighbourhood(model.main, args.node, depth=args.depth)
    render_neighbourhood(console, model.main, graph, args.node, api.scan(model))
    if args.dot:
        write_dot(graph, args.dot)
    if args.svg:
        write_svg(graph, args.svg)
    return EXIT_CLEAN


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


# -- output ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _report_console(args: argparse.Namespace, console: Console):
    """The console the report goes to: stdout, or the -o file (written atomically, plain text)."""
    if getattr(args, "output", None) is None:
        yield console
        return
    capture = Console(record=True, width=120, no_color=True, file=open(os.devnull, "w"))
    yield capture
    write_atomically(capture.export_text().encode("utf-8"), args.output)


def _emit(text: str, args: argparse.Namespace) -> None:
    if args.output is None:
        sys.stdout.write(text)
    else:
        write_atomically(text.encode("utf-8"), args.output)


def _status(message: str):
    """A spinner on stderr while something slow runs (only on a terminal; the report owns stdout)."""
    stderr = Console(stderr=True)
    return stderr.status(message) if stderr.is_terminal else contextlib.nullcontext()


def _shown_on(status, prefix: str = ""):
    """A callback that puts its messages on the spinner `status`, if there is one (a terminal)."""
    return (lambda message: status.update(prefix + message)) if status else (lambda message: None)


@contextlib.contextmanager
def _progress(description: str):
    """A progress line on stderr; advance(n) counts samples."""
    # Imported here: only calibration shows progress, and the import costs every command.
    from rich.progress import BarColumn, Progress, TextColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed} samples"),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=None, visible=False)

        def advance(count: int) -> None:
            progress.update(task, visible=True)
            progress.advance(task, count)

        yield advance
