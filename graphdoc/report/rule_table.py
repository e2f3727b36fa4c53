"""The README's rule table, written from the rule classes: one place says what each rule does."""

from __future__ import annotations

from graphdoc.rules import ALL_RULES, Rule


def rule_table(rules: tuple[type[Rule], ...] = ALL_RULES) -> str:
    """The Markdown table of `rules`: code, name, what it finds, how it is fixed."""
    lines = ["| code | name | finds | fix |", "|---|---|---|---|"]
    lines += [f"| {rule.code} | {rule.name} | {rule.finds} | {rule.fixes} |" for rule in rules]
    return "\n".join(lines) + "\n"
