"""Running the rules over every graph body of a model."""

from __future__ import annotations

import dataclasses

from graphdoc.graph.model import Model
from graphdoc.rules import ALL_RULES, STRUCTURAL_RULES, Finding, Fix, Rule


def scan(model: Model, rules: tuple[type[Rule], ...] = ALL_RULES) -> list[Finding]:
    """Every finding of `rules` in the main graph and in each library function, sorted."""
    instances = [rule() for rule in rules]
    findings = [finding for view in model.views for rule in instances for finding in rule.check(view, model)]
    # By code, then in the order the rules found them: graph by graph, in file
    # order (producers before consumers), so the report reads from input to output.
    return sorted(_credit_structural_fixes(findings), key=lambda finding: finding.code)


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
