"""What the commands share: arguments, loading, where the report goes, and what stderr shows meanwhile."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

# The package, not a name from it: run() replaces the list the package holds,
# and this module is imported while the package is still being set up.
from graphdoc import api, cli
from graphdoc.errors import GraphdocError
from graphdoc.writing import refuse_unwritable, write_atomically

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
EXIT_INTERRUPTED = 128 + signal.SIGINT  # what a shell reports for a process Ctrl-C ended

MODEL_HELP = (
    "a frozen GraphDef (.pb or .pbtxt), a SavedModel directory, a TF1 checkpoint prefix with its .meta "
    "(needs --outputs), an ONNX model, a Keras .keras or .h5 file, or a .tflite"
)


def described(description: str, examples: str) -> dict:
    """A subcommand's help page: what it does, then examples as written (argparse would rewrap them)."""
    return {"description": description, "epilog": "examples:\n" + examples,
            "formatter_class": argparse.RawDescriptionHelpFormatter}


def codes(text: str) -> list[str]:
    return [code.strip() for code in text.split(",") if code.strip()]


def whole_number(minimum: int):
    """An argparse type: an int of at least `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, not {value}")
        return value

    return parse


def non_negative_number(text: str) -> float:
    """An argparse type: a finite float, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a number, 0 or more, not {text}")
    return value


def output_file(text: str) -> Path:
    """An argparse type: a file to write, in a directory that exists.

    Path() drops a trailing '/', so 'out/' would become a file named out: a
    name that says "directory" is refused while the parser still sees it.
    """
    if text.endswith(("/", os.sep)) or (os.altsep and text.endswith(os.altsep)):
        raise argparse.ArgumentTypeError(f"{text} names a directory; name the file to write in it")
    try:
        refuse_unwritable(Path(text))
    except GraphdocError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return Path(text)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--outputs", type=codes, help="output node names, comma-separated (default: inferred)")
    parser.add_argument("--signature", default="serving_default", help="SavedModel signature (default serving_default)")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inputs", type=Path, help="input data to run with (.npy for one input, .npz per input name)")
    parser.add_argument("--input-shape", action="append", metavar="NAME=D1,D2,...",
                        help="shape of an input whose dimensions the graph leaves open (-1 for the batch)")
    parser.add_argument("--allow-unsafe-ops", action="store_true", help="run graphs that touch files or call Python")


def load_model(path: Path, args: argparse.Namespace):
    with status(f"loading {path}"):
        model = api.load(path, outputs=args.outputs, signature=args.signature)
    cli.keep_until_exit(model)
    return model


@contextlib.contextmanager
def report_console(args: argparse.Namespace, console: Console):
    """The console the report goes to: stdout, or the -o file (written atomically, plain text)."""
    if getattr(args, "output", None) is None:
        yield console
        return
    capture = Console(record=True, width=120, no_color=True, file=open(os.devnull, "w"))
    yield capture
    write_atomically(capture.export_text().encode("utf-8"), args.output)


def emit(text: str, args: argparse.Namespace) -> None:
    if args.output is None:
        sys.stdout.write(text)
    else:
        write_atomically(text.encode("utf-8"), args.output)


def in_worker_processes(function: Callable, work: list[tuple], workers: int) -> list:
    """[function(*item) for item in work] in `workers` processes; an interrupt stops them all at once.

    A worker leaves on Ctrl-C without a traceback of its own (the terminal
    interrupts every process in the group); the parent cancels what has not
    started and ends the workers still busy rather than waiting for them.
    """
    # Imported here: only -j needs worker processes, and the import costs every command.
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=workers, initializer=_end_quietly_on_interrupt)
    try:
        results = list(pool.map(function, *zip(*work, strict=True)))
    except BaseException:
        # ProcessPoolExecutor has no public way to end busy workers (3.14 adds terminate_workers).
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return results


def _end_quietly_on_interrupt() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def status(message: str):
    """A spinner on stderr while something slow runs (only on a terminal; the report owns stdout)."""
    stderr = Console(stderr=True)
    return stderr.status(message) if stderr.is_terminal else contextlib.nullcontext()


def shown_on(status, prefix: str = ""):
    """A callback that puts its messages on the spinner `status`, if there is one (a terminal)."""
    return (lambda message: status.update(prefix + message)) if status else (lambda message: None)


@contextlib.contextmanager
def progress(description: str):
    """A progress line on stderr; advance(n) counts samples."""
    # Imported here: only calibration shows progress, and the import costs every command.
    from rich.progress import BarColumn, Progress, TextColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed} samples"),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=None, visible=False)

        def advance(count: int) -> None:
            bar.update(task, visible=True)
            bar.advance(task, count)

        yield advance
