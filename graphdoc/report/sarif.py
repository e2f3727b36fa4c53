"""SARIF 2.1.0, for code-scanning dashboards: the model file is the artifact, nodes are logical locations."""

from __future__ import annotations

import json
from pathlib import Path

from graphdoc import __version__
from graphdoc.rules import RULES_BY_CODE, Severity

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVELS = {Severity.ERROR.value: "error", Severity.WARNING.value: "warning"}


def sarif_report(models: list[dict]) -> str:
    codes = sorted({finding["code"] for model in models for finding in model["findings"]})
    rule_index = {code: index for index, code in enumerate(codes)}
    results = []
    for artifact_index, model in enumerate(models):
        for finding in model["findings"]:
            results.append({
                "ruleId": finding["code"],
                "ruleIndex": rule_index[finding["code"]],
                "level": _LEVELS[finding["severity"]],
                "message": {"text": _message(finding)},
                "locations": [{
                    "physicalLocation": {"artifactLocation": {"uri": _uri(model["path"]), "index": artifact_index}},
                    "logicalLocations": [{"name": finding["node"], "fullyQualifiedName": finding["location"]}],
                }],
            })
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "graphdoc",
                "version": __version__,
                "rules": [_rule(RULES_BY_CODE[code]) for code in codes],
            }},
            "artifacts": [{"location": {"uri": _uri(model["path"])}} for model in models],
            "results": results,
        }],
    }
    return json.dumps(document, indent=2) + "\n"


def _rule(rule) -> dict:
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.explanation()},
        "help": {"text": rule.explanation()},
        "defaultConfiguration": {"level": _LEVELS[rule.severity.value]},
    }


def _message(finding: dict) -> str:
    if finding["fix"] is not None:
        return f"{finding['message']}. Fix: {finding['fix']['summary']}."
    return f"{finding['message']}. No fix: {finding['unfixable']}."


def _uri(path: str) -> str:
    return Path(path).as_posix()
