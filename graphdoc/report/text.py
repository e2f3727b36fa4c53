"""The terminal report: what was found, where, and what fixing it does."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table
from rich.text import Text

from graphdoc.graph.model import Model
from graphdoc.rewrite import FixReport
from graphdoc.rules import RULES_BY_CODE, Finding


def render_scan(console: Console, model: Model, findings: list[Finding], outputs: list[str], *, inferred: bool) -> None:
    console.print(_header(model, outputs, inferred=inferred))
    if findings:
        console.print(_findings_table(findings))
    console.print(_scan_summary(findings))


def render_fix(console: Console, model: Model, report: FixReport, destination: str) -> None:
    console.print(_header(model, report.outputs, inferred=False))
    if report.applied:
        table = _table("Fixed", ("Code", "Node", "Change"))
        for finding in report.applied:
            table.add_row(finding.code, _node_text(finding), finding.fix.summary)
        console.print(table)
    if report.not_fixable:
        console.print(_findings_table(report.not_fixable, title="Not fixed"))
    changes = report.op_changes()
    if changes:
        table = _table("Op counts", ("Op", "Change", "Before", "After"))
        for op, before, after in changes:
            table.add_row(op, f"{after - before:+d}", str(before), str(after))
        console.print(table)
    console.print(_fix_summary(report, destination))


def _header(model: Model, outputs: list[str], *, inferred: bool) -> Text:
    functions = len(model.graph_def.library.function)
    text = Text()
    text.append(str(model.path), style="bold")
    text.append(f"  {model.format}, {len(model.graph_def.node)} nodes")
    if functions:
        text.append(f", {functions} library functions")
    shown = ", ".join(outputs[:4]) + (f" and {len(outputs) - 4} more" if len(outputs) > 4 else "")
    text.append(f"\noutputs: {shown}" + (" (inferred; set with --outputs)" if inferred else ""), style="dim")
    return text


def _table(title: str, columns: tuple[str, ...]) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False, expand=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _findings_table(findings: list[Finding], title: str = "Findings") -> Table:
    table = _table(title, ("Code", "Node", "Problem", "Fix"))
    for finding in findings:
        if finding.fix is not None:
            fix = Text(finding.fix.summary, style="green")
        else:
            fix = Text(f"no fix: {finding.unfixable}", style="yellow")
        table.add_row(Text(finding.code, style="bold red"), _node_text(finding), finding.message, fix)
    return table


def _node_text(finding: Finding) -> Text:
    text = Text(finding.node)
    if finding.scope:
        text.append(f"\nin function {finding.scope}", style="dim")
    return text


def _scan_summary(findings: list[Finding]) -> Text:
    if not findings:
        return Text("No training-mode behaviour found.", style="bold green")
    counts = Counter(finding.code for finding in findings)
    by_code = ", ".join(f"{count} {code} ({RULES_BY_CODE[code].name})" for code, count in sorted(counts.items()))
    fixable = sum(finding.fix is not None for finding in findings)
    text = Text(f"Found {len(findings)} problem(s): {by_code}. ", style="bold red")
    text.append(f"{fixable} fixable with `graphdoc fix`.", style="bold")
    return text


def _fix_summary(report: FixReport, destination: str) -> Text:
    text = Text(f"Fixed {len(report.applied)} finding(s), pruned {report.pruned} node(s); wrote {destination}. ")
    if report.remaining:
        text.append(f"{len(report.remaining)} finding(s) remain.", style="bold red")
    else:
        text.append("No findings remain.", style="bold green")
    return text


def render_probe(console: Console, model: Model, report) -> None:
    text = Text()
    text.append(str(model.path), style="bold")
    text.append(f"  probed {report.probed} tensors: one sample alone, in two batches of {report.batch}, twice")
    console.print(text)
    if report.roots:
        table = _table("Where the sample's result starts to depend on its batch", ("#", "Node", "Op", "Divergence",
                                                                                "Size", "Explained by"))
        for index, root in enumerate(report.roots, 1):
            size = max(root.batch_difference, root.run_difference)
            finding = root.finding
            explained = f"{finding.code} {RULES_BY_CODE[finding.code].name}" if finding else "no static finding"
            table.add_row(str(index), root.node, root.op, root.kind, f"{size:.3g}", explained)
        console.print(table)
        console.print(Text(
            f"{len(report.roots)} root(s) of divergence; {report.diverging} tensor(s) diverge in all.", style="bold red"
        ))
    else:
        console.print(Text("Batch-independent and deterministic: no tensor depends on its companions or the run.",
                           style="bold green"))


def render_verification(console: Console, verification) -> None:
    table = _table("Verification", ("Check", "Result", "Detail"))
    for check in verification.checks:
        result = {True: Text("passed", style="green"), False: Text("FAILED", style="bold red"),
                  None: Text("not run", style="yellow")}[check.passed]
        table.add_row(check.name, result, check.detail)
    console.print(table)


def render_comparison(console: Console, first: Model, second: Model, comparison, tolerance: float) -> None:
    console.print(Text(f"{first.path}  vs  {second.path}  (same {comparison.batch} inputs)", style="bold"))
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
