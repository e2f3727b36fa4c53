"""Apply every available fix to a copy of the model, prune, check, re-scan.

Nothing here touches a file: the caller writes the result only once the fix
has checked out.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from graphdoc.errors import FixError
from graphdoc.graph.model import Model
from graphdoc.graph.view import EditError
from graphdoc.ops import PLACEHOLDER_OPS
from graphdoc.proto import GraphDef
from graphdoc.rewrite.control_flow import (
    fold_constant_control_flow,
    remove_unused_functions,
)
from graphdoc.rewrite.lint import lint
from graphdoc.rewrite.outputs import resolve_outputs
from graphdoc.rewrite.prune import prune
from graphdoc.rules import ALL_RULES, STRUCTURAL_RULES, Finding, Rule
from graphdoc.scanning import scan


@dataclass
class FixReport:
    """What `fix` did. `fixed` is the corrected model, not yet written anywhere."""

    fixed: Model
    outputs: list[str]
    applied: list[Finding]
    held_back: list[Finding]  # unsafe fixes not applied
    not_fixable: list[Finding]
    remaining: list[Finding]  # findings in the fixed graph
    ops_before: Counter
    ops_after: Counter
    pruned: int
    size_before: tuple[int, int] = (0, 0)  # nodes and library functions of the model as given

    @property
    def changed(self) -> bool:
        """Whether any fix applied. Pruning alone does not count: a graph without
        findings is left as it is, byte for byte."""
        return bool(self.applied)

    def op_changes(self) -> list[tuple[str, int, int]]:
        """(op, count before, count after) for every op whose count changed."""
        ops = sorted(set(self.ops_before) | set(self.ops_after))
        return [(op, self.ops_before[op], self.ops_after[op]) for op in ops if self.ops_before[op] != self.ops_after[op]]


def fix(
    model: Model,
    *,
    outputs: list[str] | None = None,
    findings: list[Finding] | None = None,
    complete: Callable[[Model, list[Finding]], list[Finding]] | None = None,
    unsafe_fixes: bool = False,
    in_place: bool = False,
    rules: tuple[type[Rule], ...] = ALL_RULES,
    bind: dict[str, bool | int | float] | None = None,
) -> FixReport:
    """Fix `model`'s findings on a copy of its GraphDef and check the result.

    Two rounds: first the fixes that decide which parts of the graph run at
    all (training switches), then a fresh scan of what is left and its fixes.
    `complete` may add fixes to the second round's findings (statistics from
    a checkpoint or a calibration run). Unsafe fixes are held back unless
    `unsafe_fixes` is set. With `in_place`, `model` itself is edited (and is
    the report's `fixed`): no copy of the GraphDef, for callers that reload
    the original if they need it again. Only `rules`' findings are fixed.
    `bind` sets placeholders to constants before anything else (`--bind
    is_training=false`), for graphs whose switches graphdoc cannot judge.
    """
    output_names = resolve_outputs(model.main, outputs)
    ops_before = op_counts(model)
    nodes_before = (len(model.graph_def.node), len(model.graph_def.library.function))
    if bind:
        model = _bound(model if in_place else copy_model(model), bind)
        in_place = True
    findings = scan(model, rules) if findings is None or bind else findings
    working = model if in_place else copy_model(model)
    working, findings, structural, pruned = _structural_round(working, model, findings, rules, output_names)
    if complete is not None:
        findings = complete(working, findings)
    held_back = [f for f in findings if f.fix is not None and not f.fix.safe and not unsafe_fixes]
    _refuse_missing_statistics(findings, held_back)
    applied = [f for f in findings if f.fix is not None and f not in held_back]
    apply_fixes(working, applied)
    pruned += _clean_up(working, output_names)
    # The working copy's views were kept consistent edit by edit: re-scan them as they are.
    return FixReport(
        fixed=working,
        outputs=output_names,
        applied=structural + applied,
        held_back=held_back,
        not_fixable=[f for f in findings if f.fix is None],
        remaining=scan(working, rules),
        ops_before=ops_before,
        size_before=nodes_before,
        ops_after=op_counts(working),
        pruned=pruned,
    )


def _clean_up(working: Model, outputs: list[str]) -> int:
    """Prune what the outputs no longer need and drop unused functions, then lint; returns
    how many nodes were pruned."""
    try:
        pruned = _prune(working, outputs)
    except EditError as error:
        raise FixError(f"pruning the fixed graph failed, nothing was written: {error}") from None
    remove_unused_functions(working)
    problems = lint(working.main, outputs)
    if problems:
        raise FixError(f"the fixed graph does not check out, nothing was written: {problems[0]}")
    return pruned


def _structural_round(
    working: Model, model: Model, findings: list[Finding], rules: tuple[type[Rule], ...], outputs: list[str]
) -> tuple[Model, list[Finding], list[Finding], int]:
    """Apply the fixes that decide which parts of the graph run (training switches), fold the
    control flow they make constant, prune, and scan again.

    Returns the working model, its new findings, the findings fixed (the
    structural ones, and those that went with the branches they removed) and
    how many nodes were pruned.
    """
    structural = [f for f in findings if f.fix is not None and f.code in STRUCTURAL_RULES]
    if not structural:
        return working, findings, [], 0
    apply_fixes(working, structural)
    try:
        fold_constant_control_flow(working)
    except EditError as error:
        raise FixError(f"removing the control flow failed, nothing was written: {error}") from None
    pruned = _prune(working, outputs)
    working = dataclasses.replace(model, graph_def=working.graph_def)
    found = scan(working, rules)
    left = {finding.location for finding in found}
    carried = [f for f in findings if f.fix is not None and f.code not in STRUCTURAL_RULES and f.location not in left]
    return working, found, structural + carried, pruned


# DataType enum values of the placeholders --bind sets.
_BINDABLE_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64, 10: np.bool_}


def _bound(model: Model, bind: dict[str, bool | int | float]) -> Model:
    """`model` with each placeholder in `bind` made a constant, and the control flow that makes
    constant folded away."""
    view = model.main
    for name, value in bind.items():
        if name not in view or view.op(name) not in PLACEHOLDER_OPS:
            raise FixError(f"--bind {name}: the graph has no placeholder of that name")
        dtype = _BINDABLE_DTYPES.get(view.attr(name, "dtype"))
        if dtype is None:
            raise FixError(f"--bind {name}: only bool, int and float placeholders can be bound")
        view.make_const(name, np.asarray(value, dtype=dtype))
    try:
        fold_constant_control_flow(model)
    except EditError as error:
        raise FixError(f"removing the control flow of --bind failed, nothing was written: {error}") from None
    return dataclasses.replace(model, graph_def=model.graph_def)


def _prune(model: Model, outputs: list[str]) -> int:
    pruned = prune(model.main, outputs)
    for view in model.views:
        view.compact()
    return pruned


def op_counts(model: Model) -> Counter:
    """Nodes per op in the main graph and every library function (called or not)."""
    counts = model.main.op_counts()
    for function in model.graph_def.library.function:
        counts.update(node.op for node in function.node_def)
    return counts


def copy_model(model: Model) -> Model:
    graph_def = GraphDef()
    graph_def.CopyFrom(model.graph_def)
    return dataclasses.replace(model, graph_def=graph_def)


def apply_fixes(model: Model, findings: list[Finding]) -> None:
    """Apply the findings' edits to `model` in place (call it on a copy)."""
    for finding in findings:
        try:
            for edit in finding.fix.edits:
                edit.apply(model.view(edit.scope))
        except EditError as error:
            raise FixError(f"fixing {finding.code} at {finding.location} failed, nothing was written: {error}") from None


def _refuse_missing_statistics(findings: list[Finding], held_back: list[Finding]) -> None:
    # A BatchNorm left in training mode would leave the bug in place: stop
    # rather than write a graph that looks repaired.
    missing = [f for f in findings if (f.fix is None or f in held_back) and f.site is not None]
    if not missing:
        return
    if all(f in held_back for f in missing):
        layers = ", ".join(f.site.layer for f in missing[:3]) + (" and more" if len(missing) > 3 else "")
        raise FixError(
            f"{len(missing)} BatchNorm layer(s) ({layers}) would get {missing[0].fix.caveat or 'unsafe statistics'}, "
            "an unsafe fix: pass --unsafe-fixes to apply it; nothing was written"
        )
    shown = "; ".join(f"{f.site.layer} ({f.unfixable})" for f in missing[:2] if f not in held_back)
    more = f"; and {len(missing) - 2} more" if len(missing) > 2 else ""
    raise FixError(
        f"{len(missing)} BatchNorm layer(s) lack moving statistics, nothing was written: {shown}{more}. "
        "Supply them with --checkpoint PATH (the training checkpoint, or a SavedModel's variables/variables), "
        "with --calibrate DATA.npy (representative inputs), or freeze the graph again keeping "
        "moving_mean and moving_variance"
    )
