"""The JSON report. Its shape is graphdoc/schemas/scan-v1.schema.json; SCHEMA_VERSION changes when it does."""

from __future__ import annotations

import json
from collections import Counter

from graphdoc import __version__

SCHEMA_VERSION = 1


def json_report(models: list[dict]) -> str:
    """`models`: model records (report.records.model_record), one per scanned file."""
    findings = [finding for model in models for finding in model["findings"]]
    document = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "graphdoc", "version": __version__},
        "models": models,
        "summary": {
            "models": len(models),
            "findings": len(findings),
            "fixable": sum(finding["fix"] is not None for finding in findings),
            "by_code": dict(sorted(Counter(finding["code"] for finding in findings).items())),
        },
    }
    return json.dumps(document, indent=2) + "\n"


def command_report(command: str, body: dict) -> str:
    """The JSON report of `graphdoc fix`, `probe` or `compare`: graphdoc/schemas/<command>-v1.schema.json."""
    document = {"schema_version": SCHEMA_VERSION, "tool": {"name": "graphdoc", "version": __version__},
                "command": command, **body}
    return json.dumps(document, indent=2) + "\n"
