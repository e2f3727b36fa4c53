"""`graphdoc rule`: a rule's documentation, which is its docstring."""

from __future__ import annotations

import argparse

from rich.console import Console

from graphdoc.cli.options import EXIT_CLEAN
from graphdoc.errors import GraphdocError
from graphdoc.rules import ALL_RULES, RULES_BY_CODE


def add_parser(commands) -> argparse.ArgumentParser:
    rule = commands.add_parser("rule", help="explain a rule")
    rule.add_argument("code", nargs="?", help="a rule code such as GD101")
    rule.add_argument("--all", action="store_true", help="explain every rule")
    rule.set_defaults(command=command)
    return rule


def command(args: argparse.Namespace, console: Console) -> int:
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
