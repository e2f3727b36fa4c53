"""`graphdoc rule`: a rule's documentation, which is its docstring."""

from __future__ import annotations

import argparse

from rich.console import Console

from graphdoc.cli.options import EXIT_CLEAN, described
from graphdoc.errors import GraphdocError
from graphdoc.rules import ALL_RULES, RULES_BY_CODE


def add_parser(commands) -> argparse.ArgumentParser:
    rule = commands.add_parser("rule", help="explain a rule", **described(
        "Explain rules: with no argument, list them; give a code (GD101), a family (GD1) or a name\n"
        "(batch-moments-batchnorm) for what the rule finds, why it matters, and what its fix does.",
        "  graphdoc rule\n  graphdoc rule GD101\n  graphdoc rule GD2\n  graphdoc rule live-dropout\n"))
    rule.add_argument("code", nargs="?", help="a rule code (GD101), a family (GD1) or a rule name")
    rule.add_argument("--all", action="store_true", help="explain every rule")
    rule.set_defaults(command=command)
    return rule


def command(args: argparse.Namespace, console: Console) -> int:
    if not args.code and not args.all:
        for rule in ALL_RULES:  # the list, a line each, as `ruff rule --all` is too long to read
            console.print(f"[bold]{rule.code}[/bold]  {rule.name:<26} {rule.summary}", highlight=False)
        return EXIT_CLEAN
    for rule in ALL_RULES if args.all else _chosen(args.code):
        console.rule(f"[bold]{rule.code}[/bold] {rule.name}", align="left")
        console.print(rule.explanation(), markup=False, highlight=False)
        console.print()
    return EXIT_CLEAN


def _chosen(text: str) -> list:
    chosen = [rule for rule in ALL_RULES if rule.code.startswith(text.upper()) or rule.name == text.lower()]
    if not chosen:
        raise GraphdocError(f"no rule {text!r}; known codes: {', '.join(RULES_BY_CODE)}")
    return chosen
