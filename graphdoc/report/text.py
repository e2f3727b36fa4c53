"""The terminal report: what was found, where, and what fixing it does."""

from __future__ import annotations

import re
from collections import Counter

from rich.console import Console
from rich.table import Table
from rich.text import Text

from graphdoc.graph.model import Model
from graphdoc.rewrite import FixReport
from graphdoc.report.next_steps import compare_verdict, fix_outcome, plural, probe_next_steps, remedies
from graphdoc.report.records import by_code
from graphdoc.rules import RULES_BY_CODE, Finding

# A terminal report of thousands of identical findings helps no one (and takes
# rich seconds to lay out); JSON and SARIF always list everything.
MAX_SHOWN_PER_RULE = 50


def render_scan(console: Console, model: Model, findings: list[Finding], outputs: list[str], *, inferred: bool) -> None:
    console.print(_header(model, outputs, inferred=inferred))
    _render_groups(console, findings)
    console.print(_scan_summary(findings))


def render_fix(
    console: Console, model: Model, report: FixReport, destination: str | None, *, changes=None, verification=None,
    outcome: dict | None = None,
) -> None:
    """The fix report: per rule how many were fixed, those held back or not fixed with their reason,
    op counts, the node-by-node changes and the verification when given, and what it all came to.
    `outcome` is next_steps.fix_outcome(); without it, the fix as written to `destination`."""
    outcome = outcome or fix_outcome(report, destination, dry_run=destination is None,
                                     verified=verification is not None, unverified=None, changes=changes)
    # What the written graph takes and gives: the fixed model (the loaded one may have been edited in place).
    console.print(_header(model, report.outputs, inferred=False, size=report.size_before, ports=report.fixed))
    if report.applied:
        _render_fixed(console, outcome, listed=changes is not None)
    if report.held_back:
        console.print(Text("\nHeld back (unsafe fixes; apply them with --unsafe-fixes)", style="bold yellow"))
        _render_groups(console, report.held_back)
    if report.not_fixable:
        console.print(Text("\nNot fixed", style="bold red"))
        _render_groups(console, report.not_fixable)
    op_changes = report.op_changes()
    if op_changes:
        table = _table("\nOp counts", ("Op", "Change", "Before", "After"))
        for op, before, after in op_changes:
            table.add_row(op, f"{after - before:+d}", str(before), str(after))
        console.print(table)
    if changes is not None:
        render_diff(console, changes)
    if verification is not None:
        render_verification(console, verification)
    if outcome["unverified"] not in (None, "--no-verify"):
        console.print(f"\nverification skipped: {outcome['unverified']}", style="yellow")
    _render_outcome(console, outcome, report)


def _render_fixed(console: Console, outcome: dict, *, listed: bool) -> None:
    """One line per rule: how many of its findings were (or would be) fixed."""
    console.print(Text("\nWould fix" if outcome["dry_run"] else "\nFixed", style="bold green"))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column()
    for entry in outcome["by_code"]:
        code = entry["code"]
        how = Text(f"{RULES_BY_CODE[code].name}", style="bold")
        if entry["with_training_branch"]:
            how.append(f"  ({entry['with_training_branch']} removed with the training branch)", style="dim")
        grid.add_row(f" {code}", str(entry["count"]), how)
    console.print(grid)
    if not listed:
        console.print(Text(" --diff lists every node changed; --format json every fix", style="dim"))


def _render_outcome(console: Console, outcome: dict, report: FixReport) -> None:
    done, *remains = outcome["message"]
    text = Text(f"\n{done} ", style="bold" if outcome["verified"] or not outcome["unverified"] else "bold yellow")
    text.append(" ".join(remains), style="bold red" if report.remaining or report.held_back else "bold green")
    console.print(text)


def render_diff(console: Console, changes: list[tuple[str, str, str]]) -> None:
    """Node-by-node changes: ('-', node, what), ('+', ...), ('~', ...)."""
    styles = {"-": "red", "+": "green", "~": "yellow"}
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for mark, node, what in changes:
        grid.add_row(Text(mark, style=styles[mark]), Text.assemble((node, "bold"), f"  {what}"))
    console.print(Text("\nChanges, node by node", style="bold"))
    console.print(grid)


def render_many(console: Console, rows: list[dict], errors: list[str]) -> None:
    """One line per model, for scans of many files."""
    table = _table("Models", ("Model", "Nodes", "Findings", "Fixable", "Codes"))
    for row in rows:
        findings = row["findings"]
        codes = ", ".join(f"{code}×{count}" for code, count in sorted(Counter(f["code"] for f in findings).items()))
        table.add_row(row["path"], str(row["nodes"]), str(len(findings)),
                      str(sum(f["fix"] is not None for f in findings)), codes or "-")
    console.print(table)
    for row in rows:
        if row["findings"]:
            console.print(_model_findings(row))
    total = sum(len(row["findings"]) for row in rows)
    dirty = sum(bool(row["findings"]) for row in rows)
    text = Text(f"{len(rows)} model(s) scanned: {dirty} with findings, {total} finding(s) in all.",
                style="bold red" if total else "bold green")
    if errors:
        text.append(f" {len(errors)} could not be read.", style="bold red")
    console.print(text)


def _model_findings(row: dict) -> Text:
    """One model's findings, a line per rule: how many, the first, and its fix or why there is none."""
    text = Text(f"\n{row['path']}", style="bold")
    for code, group in by_code(row["findings"], lambda record: record["code"]).items():
        first = group[0]
        more = f" and {len(group) - 1} more" if len(group) > 1 else ""
        outcome = (f"kept ({first['kept']})" if first["kept"] else f"fix: {first['fix']['summary']}" if first["fix"]
                   else f"no fix: {first['unfixable']}")
        text.append(f"\n  {code} {first['rule']}: {first['location']}{more}\n    {first['message']}; {outcome}")
    return text


def _render_groups(console: Console, findings: list[Finding], *, show_unfixable: bool = True) -> None:
    """Findings grouped by rule: a header per rule, then one entry per finding."""
    for code, group in by_code(findings).items():
        rule = RULES_BY_CODE[code]
        fixable = sum(f.fix is not None for f in group)
        header = Text.assemble(
            ("\n" + code, "bold red" if group[0].level().value == "error" else "bold yellow"),
            (f" {rule.name}", "bold"),
            f"  {len(group)} finding(s), {fixable} fixable",
        )
        console.print(header)
        messages = {f.message for f in group}
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        if len(messages) == 1:
            grid.add_row(" ", Text(group[0].message, style="dim"))
        for finding in group[:MAX_SHOWN_PER_RULE]:
            grid.add_row(" \u2022", _entry(finding, show_message=len(messages) > 1, show_unfixable=show_unfixable))
        if len(group) > MAX_SHOWN_PER_RULE:
            more = len(group) - MAX_SHOWN_PER_RULE
            grid.add_row(" ", Text(f"... and {more} more {code} finding(s); --format json lists them all", style="dim"))
        console.print(grid)


def _entry(finding: Finding, *, show_message: bool, show_unfixable: bool) -> Text:
    text = Text(finding.node, style="bold")
    if finding.scope:
        text.append(f"  (in function {finding.scope})", style="dim")
    if show_message:
        text.append(f"\n{finding.message}")
    if finding.kept:
        text.append(f"\nkept: deliberate, as [tool.graphdoc] keep = {finding.kept!r} says; never fixed", style="cyan")
    elif finding.fix is not None:
        text.append(f"\nfix: {finding.fix.summary}" + ("" if finding.fix.safe else " [unsafe]"), style="green")
    elif show_unfixable:
        text.append(f"\nno fix: {finding.unfixable}", style="yellow")
    return text


# What a model is made of, as each format calls it.
_PARTS = {"keras": "layers", "tflite": "operators"}


def parts(model: Model) -> str:
    return _PARTS.get(model.kind, "nodes")


def _header(model: Model, outputs: list[str], *, inferred: bool, size: tuple[int, int] | None = None,
            ports: Model | None = None) -> Text:
    nodes, functions = size or model.size()
    text = Text()
    text.append(str(model.path), style="bold")
    text.append(f"  {model.format}, {nodes} {parts(model)}")
    if functions:
        text.append(f", {functions} {'subgraphs' if model.kind == 'onnx' else 'library functions'}")
    shown = ", ".join(outputs[:4]) + (f" and {len(outputs) - 4} more" if len(outputs) > 4 else "")
    text.append(f"\noutputs: {shown}" + (" (inferred; set with --outputs)" if inferred else ""), style="dim")
    feeds, fetches = (ports or model).ports(outputs[:4])
    text.append(f"\nfeed {'; '.join(map(str, feeds)) or 'nothing'}; fetch {'; '.join(map(str, fetches))}", style="dim")
    for note in model.notes:
        text.append(f"\n{note}", style="dim")
    unknown = model.unknown_ops()
    if unknown:
        text.append(
            f"\nops TensorFlow does not define: {', '.join(unknown[:5])}"
            + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            + "; scanned as opaque nodes (probe and verification need their kernels)",
            style="yellow",
        )
    return text


def _table(title: str, columns: tuple[str, ...]) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False, expand=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _scan_summary(findings: list[Finding]) -> Text:
    if not findings:
        return Text("\nNo training-mode behaviour found.", style="bold green")
    counts = Counter(finding.code for finding in findings)
    by_code = ", ".join(f"{count} {code} ({RULES_BY_CODE[code].name})" for code, count in sorted(counts.items()))
    fixable = sum(finding.fix is not None and finding.fix.safe for finding in findings)
    text = Text(f"\nFound {len(findings)} problem(s): {by_code}. ", style="bold red")
    text.append(f"{fixable} fixable with `graphdoc fix`.", style="bold")
    steps = remedies(findings)
    if steps:
        text.append("".join(f" {step[0].upper()}{step[1:]}." for step in steps), style="yellow")
    return text


# What the probe's numbers are, said once under its list.
RELATIVE_DIFFERENCE = ("relative difference: the largest change in the sample's values, divided by the "
                       "tensor's largest magnitude (below 1e-4 it counts as float noise)")


def render_probe(console: Console, model: Model, report) -> None:
    text = Text()
    text.append(str(model.path), style="bold")
    text.append(f"  probed {report.probed} tensors: one sample alone, in two batches of {report.batch}, twice")
    for note in [*model.notes, *report.notes]:
        text.append(f"\n{note}", style="dim")
    console.print(text)
    if not report.roots:
        console.print(Text("Batch-independent and deterministic: no tensor depends on its companions or the run.",
                           style="bold green"))
        return
    console.print(Text("\nWhere the sample's result starts to depend on its batch", style="bold"))
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column(overflow="fold")  # only a name part longer than the line folds
    width = max(console.width - 5, 20)
    for index, root in enumerate(report.roots, 1):
        grid.add_row(f"{index}.", _divergence(root, width))
    console.print(grid)
    console.print(Text(RELATIVE_DIFFERENCE, style="dim"))
    summary = Text(f"\n{len(report.roots)} root(s) of divergence; {report.diverging} tensor(s) diverge in all.",
                   style="bold red")
    for step in probe_next_steps(report.roots, str(model.path)):
        summary.append(f" {step[0].upper()}{step[1:]}.", style="bold")
    console.print(summary)


def _divergence(root, width: int) -> Text:
    text = Text(wrap_name(root.node, width), style="bold")
    kinds = []
    if "depends on the batch" in root.kind:
        kinds.append(f"depends on the batch (relative difference {root.batch_difference:.3g})")
    if "changes between runs" in root.kind:
        kinds.append(f"changes between runs (relative difference {root.run_difference:.3g})")
    text.append(f"\n{root.op}: {' and '.join(kinds)}")
    finding = root.finding
    if finding is None:
        text.append("\nno rule explains it", style="yellow")
    else:
        text.append(f"\nexplained by {finding.code} {RULES_BY_CODE[finding.code].name}",
                    style="green" if finding.fix is not None else "yellow")
        if finding.node != root.node:
            text.append(f" at {finding.node}", style="dim")
    return text


def wrap_name(name: str, width: int) -> str:
    """`name` broken after a '/' wherever it would pass `width`, so that no scope is cut in two."""
    lines, line = [], ""
    for part in re.split(r"(?<=/)", name):
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        line += part
    return "\n".join([*lines, line])


def render_verification(console: Console, verification) -> None:
    table = _table("\nVerification", ("Check", "Result", "Detail"))
    for check in verification.checks:
        result = {True: Text("passed", style="green"), False: Text("FAILED", style="bold red"),
                  None: Text("not run", style="yellow")}[check.passed]
        table.add_row(check.name, result, check.detail)
    console.print(table)


def render_comparison(console: Console, first: Model, second: Model, comparison, tolerance: float, *,
                      verdict: dict | None = None) -> None:
    """Both graphs' outputs side by side, their op counts, and the verdict last (next_steps.compare_verdict;
    without one, a verdict that does not know the graphs' findings)."""
    verdict = verdict or compare_verdict(comparison, tolerance, ([], []))
    text = Text(f"{first.path}  vs  {second.path}  (the same {plural(comparison.batch, 'sample')})", style="bold")
    for note in dict.fromkeys([*first.notes, *second.notes, *comparison.notes]):
        text.append(f"\n{note}", style="dim")
    console.print(text)
    table = _table("Outputs", ("Output", "Shape", "Max abs diff", "Max rel diff"))
    for difference in comparison.outputs:
        name = difference.name if difference.name == difference.other_name else f"{difference.name} / {difference.other_name}"
        style = "green" if difference.max_rel <= tolerance else "bold red"
        table.add_row(name, str(difference.shape), f"{difference.max_abs:.3g}", Text(f"{difference.max_rel:.3g}", style=style))
    console.print(table)
    ops = sorted(set(comparison.ops_before) | set(comparison.ops_after))
    changes = [(op, comparison.ops_before[op], comparison.ops_after[op]) for op in ops
               if comparison.ops_before[op] != comparison.ops_after[op]]
    if changes:
        table = _table("Op counts", ("Op", "Change", "First", "Second"))
        for op, before, after in changes:
            table.add_row(op, f"{after - before:+d}", str(before), str(after))
        console.print(table)
    message = verdict["message"]
    console.print(Text(f"\n{message[0].upper()}{message[1:]}.", style="bold green" if verdict["agree"] else "bold red"))
