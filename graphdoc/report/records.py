"""Findings as plain data: what the JSON and SARIF emitters, and API users, read."""

from __future__ import annotations

from graphdoc.graph.model import Model
from graphdoc.rules import RULES_BY_CODE, Finding


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
    }


def model_record(model: Model, findings: list[Finding], outputs: list[str]) -> dict:
    return {
        "path": str(model.path),
        "format": model.format,
        "nodes": len(model.graph_def.node),
        "functions": len(model.graph_def.library.function),
        "outputs": outputs,
        "unknown_ops": model.unknown_ops(),
        "notes": model.notes,
        "findings": [finding_record(finding) for finding in findings],
    }
