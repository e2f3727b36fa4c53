"""Findings as plain data: what the JSON and SARIF emitters, and API users, read."""

from __future__ import annotations

import math

from graphdoc.graph.model import Model
from graphdoc.rules import RULES_BY_CODE, Finding


def by_code(findings: list, code=lambda finding: finding.code) -> dict[str, list]:
    """Findings (or their records, with `code=lambda record: record["code"]`) grouped by rule, in order."""
    groups: dict[str, list] = {}
    for finding in findings:
        groups.setdefault(code(finding), []).append(finding)
    return groups


def finding_record(finding: Finding) -> dict:
    rule = RULES_BY_CODE[finding.code]
    return {
        "code": finding.code,
        "rule": rule.name,
        "severity": finding.level().value,
        "scope": finding.scope,
        "node": finding.node,
        "location": finding.location,
        "message": finding.message,
        "nodes": list(finding.nodes),
        "fix": None if finding.fix is None else {"summary": finding.fix.summary, "safe": finding.fix.safe,
                                                   "applicability": finding.fix.applicability.value},
        "unfixable": finding.unfixable,
        "kept": finding.kept or None,
    }


def model_record(model: Model, findings: list[Finding], outputs: list[str]) -> dict:
    return {
        "path": str(model.path),
        "format": model.format,
        "nodes": model.size()[0],
        "functions": model.size()[1],
        "outputs": outputs,
        "inputs": [port.record() for port in model.ports(outputs)[0]],
        "output_tensors": [port.record() for port in model.ports(outputs)[1]],
        "unknown_ops": model.unknown_ops(),
        "notes": model.notes,
        "findings": [finding_record(finding) for finding in findings],
    }


def _number(value: float) -> float | None:
    """JSON has no infinity or NaN: a difference that is not finite (shapes that differ) is null."""
    return value if math.isfinite(value) else None


def comparison_record(first: Model, second: Model, comparison, verdict: dict) -> dict:
    """`graphdoc compare` as data (graphdoc/schemas/compare-v1.schema.json)."""
    ops = sorted(set(comparison.ops_before) | set(comparison.ops_after))
    return {
        "first": {"path": str(first.path), "format": first.format},
        "second": {"path": str(second.path), "format": second.format},
        "samples": comparison.batch,
        "outputs": [{"name": d.name, "other_name": d.other_name, "shape": list(d.shape), "max_abs": _number(d.max_abs),
                     "max_rel": _number(d.max_rel), "within_tolerance": d.max_rel <= verdict["tolerance"]}
                    for d in comparison.outputs],
        "op_changes": [{"op": op, "first": comparison.ops_before[op], "second": comparison.ops_after[op]}
                       for op in ops if comparison.ops_before[op] != comparison.ops_after[op]],
        "notes": list(dict.fromkeys([*first.notes, *second.notes, *comparison.notes])),
        "verdict": {**verdict, "largest": verdict["largest"] and {**verdict["largest"],
                                                                   "max_rel": _number(verdict["largest"]["max_rel"])}},
    }


def probe_record(model: Model, report, next_steps: list[str]) -> dict:
    """`graphdoc probe` as data (graphdoc/schemas/probe-v1.schema.json)."""
    return {
        "model": {"path": str(model.path), "format": model.format},
        "probed": report.probed,
        "batch": report.batch,
        "diverging": report.diverging,
        "notes": [*model.notes, *report.notes],
        "roots": [{"node": root.node, "op": root.op, "kind": root.kind,
                   "batch_difference": _number(root.batch_difference), "run_difference": _number(root.run_difference),
                   "finding": None if root.finding is None else finding_record(root.finding)}
                  for root in report.roots],
        "next_steps": next_steps,
    }


def fix_record(model: Model, report, outcome: dict, *, changes=None, verification=None,
               verification_skipped: str | None = None) -> dict:
    """`graphdoc fix` as data (graphdoc/schemas/fix-v1.schema.json); `outcome` is next_steps.fix_outcome()."""
    return {
        "model": {"path": str(model.path), "format": model.format, "outputs": report.outputs},
        "outcome": outcome,
        "applied": [finding_record(finding) for finding in report.applied],
        "held_back": [finding_record(finding) for finding in report.held_back],
        "not_fixable": [finding_record(finding) for finding in report.not_fixable],
        "remaining": [finding_record(finding) for finding in report.remaining],
        "op_changes": [{"op": op, "before": before, "after": after} for op, before, after in report.op_changes()],
        "changes": None if changes is None else [{"change": {"-": "removed", "+": "added", "~": "changed"}[mark],
                                                  "node": node, "detail": what} for mark, node, what in changes],
        "verification": None if verification is None else [
            {"check": check.name, "passed": check.passed, "detail": check.detail} for check in verification.checks],
        "verification_skipped": verification_skipped,
    }
