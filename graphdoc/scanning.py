"""Running the rules over every graph body of a model."""

from __future__ import annotations

import dataclasses

from graphdoc.graph.model import Model
from graphdoc.rules import ALL_RULES, STRUCTURAL_RULES, Finding, Fix, Rule


def scan(model: Model, rules: tuple[type[Rule], ...] = ALL_RULES) -> list[Finding]:
    """Every finding of `rules` in the main graph and in each library function, sorted."""
    instances = [rule() for rule in rules]
    findings = [finding for view in model.views for rule in instances for finding in rule.check(view, model)]
    # Graph order (main graph first, then functions; producers before consumers
    # as the file lists them), so the report reads from input to output.
    order = {view.scope: index for index, view in enumerate(model.views)}

    def position(finding: Finding) -> tuple:
        return (finding.code, order.get(finding.scope, 0), model.view(finding.scope).position(finding.node))

    return sorted(_credit_structural_fixes(findings), key=position)


def _credit_structural_fixes(findings: list[Finding]) -> list[Finding]:
    """Findings in a training branch are fixed by removing the branch: say so."""
    covering = {
        location: finding
        for finding in findings
        if finding.code in STRUCTURAL_RULES and finding.fix is not None
        for location in finding.nodes
    }
    credited = []
    for finding in findings:
        by = covering.get(finding.location)
        if by is not None:
            fix = Fix(f"removed with the training branch by the {by.code} fix of {by.node}", ())
            finding = dataclasses.replace(finding, fix=fix, unfixable=None, site=None)
        credited.append(finding)
    return credited
