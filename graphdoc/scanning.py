"""Running the rules over every graph body of a model."""

from __future__ import annotations

from graphdoc.graph.model import Model
from graphdoc.rules import ALL_RULES, Finding, Rule


def scan(model: Model, rules: tuple[type[Rule], ...] = ALL_RULES) -> list[Finding]:
    """Every finding of `rules` in the main graph and in each library function, sorted."""
    instances = [rule() for rule in rules]
    findings = [finding for view in model.views for rule in instances for finding in rule.check(view, model)]
    return sorted(findings, key=Finding.sort_key)
