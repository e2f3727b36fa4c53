"""The `graphdoc` command: a thin layer over graphdoc.api and the reports.

Exit codes: 0 nothing found, 1 findings remain (or outputs differ), 2 bad
input or usage, 130 interrupted (Ctrl-C). Reports go to stdout (or -o);
errors and progress to stderr.

A module per command (scan, fix, probe, compare, show, rule), each with
`add_parser(commands)` and `command(args, console)`; options.py holds what
they share. Importing this package does not import TensorFlow.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import traceback
from pathlib import Path

from rich.console import Console

from graphdoc import __version__
from graphdoc.cli import compare, fix, probe, rule, scan, show
from graphdoc.cli.options import EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS, EXIT_INTERRUPTED
from graphdoc.cli.options import shown_on as _shown_on
from graphdoc.errors import GraphdocError

__all__ = ["main", "run", "EXIT_CLEAN", "EXIT_FINDINGS", "EXIT_ERROR", "EXIT_INTERRUPTED", "_shown_on"]

_COMMANDS = (scan, fix, probe, compare, show, rule)


def _configure(args) -> None:
    """Fill in what the command line leaves unsaid from [tool.graphdoc] (graphdoc/config.py)."""
    from graphdoc.config import find_config

    config = find_config()
    for key in ("select", "ignore"):
        if hasattr(args, key) and getattr(args, key) is None and getattr(config, key):
            setattr(args, key, list(getattr(config, key)))
    args.keep = config.keep


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
        _refuse_writing_over_inputs(args)
        _configure(args)
        return args.command(args, console)
    except GraphdocError as error:
        if args.debug:
            traceback.print_exc()
            if error.detail:
                print(error.detail, file=sys.stderr)
        print(f"graphdoc: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        # Files are written atomically: an interrupt leaves no partial output to clean up here.
        if args.debug:
            traceback.print_exc()
        print("graphdoc: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if collecting:  # called as a function (tests, scripts), not as the command
            gc.enable()


def _refuse_writing_over_inputs(args: argparse.Namespace) -> None:
    """A report or a drawing written over a model it read would destroy the model
    (fix, which can write in place on purpose, checks its own -o)."""
    if hasattr(args, "in_place"):
        return
    inputs = [*getattr(args, "models", []), *filter(None, [getattr(args, "model", None)])]
    for option, output in (("-o", getattr(args, "output", None)), ("--dot", getattr(args, "dot", None)),
                           ("--svg", getattr(args, "svg", None))):
        if isinstance(output, Path) and any(output.resolve() == path.resolve() for path in inputs):
            raise GraphdocError(f"{option} {output} names a model this command reads; write somewhere else")


# Set by run(), which ends the process as soon as the command returns: what a
# command made (the model, its findings) is kept here rather than freed object
# by object when the command's frame goes, which takes a third of a second for
# a million-node model. Called as a function (tests, scripts), main() keeps nothing.
_kept_until_exit: list[object] | None = None


def keep_until_exit(*objects: object) -> None:
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphdoc", description="Find and repair models exported in training mode: TensorFlow graphs, "
        "SavedModels and checkpoints, ONNX models and Keras files (.tflite files are reported).")
    parser.add_argument("--version", action="version", version=f"graphdoc {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    for module in _COMMANDS:
        sub = module.add_parser(commands)
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser
