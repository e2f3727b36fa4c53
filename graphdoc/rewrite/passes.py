"""The rewriter's passes, each linted as it ends, and the fixes that may go together.

A pass is a function of the working model that returns how much it
changed (fixes applied, nodes pruned, functions dropped). `Passes.run`
lints every graph body after each one, so a pass that leaves a dangling
input or a cycle is named as the one that broke the graph, and nothing is
written.
"""

from __future__ import annotations

from collections.abc import Callable

from graphdoc.errors import FixError
from graphdoc.graph.edits import erased_by
from graphdoc.graph.model import Model
from graphdoc.graph.view import EditError
from graphdoc.graph.lint import lint
from graphdoc.rules import Finding


class Passes:
    """The working model, and what each pass run on it changed."""

    def __init__(self, model: Model, outputs: list[str]):
        self.model = model
        self.outputs = outputs
        self.results: list[tuple[str, int]] = []

    def run(self, name: str, step: Callable[[Model], int]) -> int:
        try:
            changed = step(self.model)
        except EditError as error:
            raise FixError(f"{name} failed, nothing was written: {error}") from None
        problems = lint_model(self.model, self.outputs)
        if problems:
            raise FixError(f"after the pass '{name}' the graph does not check out, nothing was written: {problems[0]}")
        self.results.append((name, changed))
        return changed

    def changed(self, name: str) -> int:
        return sum(count for step, count in self.results if step == name)


def lint_model(model: Model, outputs: list[str]) -> list[str]:
    """Problems in any graph body: the main graph (with its outputs) and every library function."""
    problems = [str(problem) for problem in lint(model.main, outputs)]
    for view in model.functions:
        problems += [f"in function {view.scope}: {problem}" for problem in lint(view, [])]
    return problems


def prune_model(model: Model, outputs: list[str]) -> int:
    """Drop what no output needs from the main graph, and from each library function what none of
    its results (data or control) needs; returns how many nodes went."""
    pruned = model.main.keep_only_needed_by(outputs)
    for view in model.functions:
        kept = [tensor.node for tensor in view.returns] + list(view.function.control_ret.values())
        pruned += view.keep_only_needed_by([name for name in kept if name in view])
    for view in model.views:
        view.compact()
    return pruned


def without_overlaps(findings: list[Finding]) -> tuple[list[Finding], list[Finding]]:
    """The findings whose fixes can be applied together, and the others, each told why.

    Two fixes overlap where one changes a node the other changes or erases
    (erasing the same node twice is fine: two BatchNorm fixes may remove one
    update op). The first in order wins, as ruff keeps the first of two
    overlapping fixes; the other waits for the next `fix` run.
    """
    changed: dict[tuple[str, str], Finding] = {}
    erased: dict[tuple[str, str], Finding] = {}
    kept, overlapping = [], []
    for finding in findings:
        edits = finding.fix.edits
        changes = {(edit.scope, node) for edit in edits for node in edit.changes()}
        erases = {(edit.scope, node) for edit in edits for node in erased_by(edit)}
        clash = next((key for key in changes if key in changed or key in erased), None) or next(
            (key for key in erases if key in changed), None)
        if clash is not None:
            other = changed.get(clash) or erased[clash]
            reason = (f"its fix overlaps the fix of {other.code} at {other.location} (both change {clash[1]}); "
                      "run fix again on the result")
            overlapping.append(_unfixed(finding, reason))
            continue
        kept.append(finding)
        changed.update(dict.fromkeys(changes, finding))
        erased.update(dict.fromkeys(erases, finding))
    return kept, overlapping


def _unfixed(finding: Finding, reason: str) -> Finding:
    import dataclasses

    return dataclasses.replace(finding, fix=None, unfixable=reason)
