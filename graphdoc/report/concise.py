"""One line per finding: `--format concise` for people and grep, `--format github` for GitHub Actions.

Both read model records (report.records.model_record), as the JSON and SARIF emitters do.
"""

from __future__ import annotations

from collections import Counter

_GITHUB_LEVELS = {"error": "error", "warning": "warning"}


def concise_report(models: list[dict]) -> str:
    """`path:node: CODE message [fix: ...]`, as ruff's concise output, and a summary line."""
    lines = [f"{model['path']}:{finding['location']}: {finding['code']} {finding['message']} {_fix(finding)}"
             for model in models for finding in model["findings"]]
    findings = [finding for model in models for finding in model["findings"]]
    if not findings:
        lines.append("No training-mode behaviour found.")
    else:
        fixable = sum(finding["fix"] is not None and finding["fix"]["safe"] for finding in findings)
        by_code = ", ".join(f"{count} {code}" for code, count in sorted(Counter(f["code"] for f in findings).items()))
        lines.append(f"Found {len(findings)} problem(s) ({by_code}) in {len(models)} model(s); "
                     f"{fixable} fixable with `graphdoc fix`.")
    return "\n".join(lines) + "\n"


def github_report(models: list[dict]) -> str:
    """Workflow commands GitHub Actions turns into annotations on the model file:
    `::error file=PATH,title=CODE::message`."""
    lines = []
    for model in models:
        for finding in model["findings"]:
            properties = f"file={_property(model['path'])},title={_property(finding['code'] + ' ' + finding['rule'])}"
            message = f"{finding['location']}: {finding['message']} {_fix(finding)}"
            lines.append(f"::{_GITHUB_LEVELS[finding['severity']]} {properties}::{_data(message)}")
    return "".join(line + "\n" for line in lines)


def _fix(finding: dict) -> str:
    fix = finding["fix"]
    if fix is None:
        return f"[no fix: {finding['unfixable']}]"
    return f"[{'fix' if fix['safe'] else 'unsafe fix'}: {fix['summary']}]"


# GitHub's workflow-command syntax: these characters end a message or a property
# unless percent-encoded.
def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")
