"""Running the rules over every graph body of a model."""

from __future__ import annotations

import dataclasses
import functools
import itertools

from graphdoc.graph.edits import MakeConst
from graphdoc.graph.model import Model
from graphdoc.parallel import cores, run_all
from graphdoc.rules import ALL_RULES, STRUCTURAL_RULES, Applicability, Finding, Fix, Rule
from graphdoc.rules.base import marked_kept

# Below this many nodes the rules take a fraction of a second, and a forked
# worker would cost about what it saves.
PARALLEL_FROM_NODES = 200_000


def scan(model: Model, rules: tuple[type[Rule], ...] = ALL_RULES, keep: tuple[str, ...] = ()) -> list[Finding]:
    """Every finding of `rules` in the main graph and in each library function, sorted.

    On a large model the rule families (GD1 BatchNorm, GD2 dropout, ...) run
    on separate cores; the findings are the same either way. A finding whose
    node, location or layer matches a `keep` pattern (fnmatch: `mc_dropout/*`)
    is training behaviour the model means to have: it is marked kept, and
    neither fixed nor counted as a failure.
    """
    families = [list(group) for _, group in itertools.groupby(rules, key=lambda rule: rule.code[:3])]
    workers = min(cores(), len(families)) if sum(map(len, model.views)) >= PARALLEL_FROM_NODES else 1
    shares = [[rule for family in families[start::workers] for rule in family] for start in range(workers)]
    found = run_all([functools.partial(_check, model, share) for share in shares])
    # By code, then in the order the rules found them: graph by graph, in file
    # order (producers before consumers), so the report reads from input to output.
    findings = [finding for share in found for finding in share]
    findings = sorted(_credit_structural_fixes(findings), key=lambda finding: finding.code)
    return [marked_kept(finding, keep) for finding in findings] if keep else findings


def _check(model: Model, rules: list[type[Rule]]) -> list[Finding]:
    instances = [rule() for rule in rules]
    return [finding for view in model.views for rule in instances for finding in rule.check(view, model)]


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
            fix = Fix(f"fixed by {_binding(by)} ({by.code}): the training branch goes", (), Applicability.DISPLAY_ONLY)
            finding = dataclasses.replace(finding, fix=fix, unfixable=None, site=None)
        credited.append(finding)
    return credited


def _binding(finding: Finding) -> str:
    binds = [edit for edit in finding.fix.edits if isinstance(edit, MakeConst)]
    return ", ".join(f"binding {edit.node}={edit.value}" for edit in binds) or f"the fix of {finding.node}"
