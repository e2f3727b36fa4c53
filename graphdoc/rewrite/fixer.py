"""Apply every available fix to a copy of the model, prune, check, re-scan.

Nothing here touches a file: the caller writes the result only once the fix
has checked out.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

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
from graphdoc.rewrite.outputs import resolve_outputs
from graphdoc.rewrite.passes import Passes, prune_model, without_overlaps
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
    passes: list[tuple[str, int]] = field(default_factory=list)  # (pass, what it changed), in order
    codes: frozenset[str] = frozenset()  # the rules fixed (all but those --select/--ignore left out)
    kept: list[Finding] = field(default_factory=list)  # deliberate training behaviour (`keep`), left as it is

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
    keep: tuple[str, ...] = (),
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
    Findings `keep` patterns match are left as they are (scanning.scan).
    Every pass is linted as it ends (graphdoc/rewrite/passes.py).
    """
    output_names = resolve_outputs(model.main, outputs, model.aliases)
    ops_before, size_before = op_counts(model), (len(model.graph_def.node), len(model.graph_def.library.function))
    if bind:
        model, in_place = _bound(model if in_place else copy_model(model), bind, output_names), True
    findings = scan(model, rules, keep) if findings is None or bind else findings
    passes = Passes(model if in_place else copy_model(model), output_names)
    findings, structural = _structural_round(passes, model, findings, rules, keep)
    findings = complete(passes.model, findings) if complete is not None else findings
    kept, findings = [f for f in findings if f.kept], [f for f in findings if not f.kept]
    held_back = [f for f in findings if f.fix is not None and not f.fix.safe and not unsafe_fixes]
    _refuse_missing_statistics(findings, held_back)
    applied, overlapping = without_overlaps([f for f in findings if f.fix is not None and f not in held_back])
    passes.run("apply the fixes", lambda working: apply_fixes(working, applied))
    _clean_up(passes)
    working = passes.model  # its views were kept consistent edit by edit: re-scan them as they are
    return FixReport(
        fixed=working, outputs=output_names, applied=structural + applied, held_back=held_back,
        not_fixable=[f for f in findings if f.fix is None] + overlapping,
        remaining=[f for f in scan(working, rules, keep) if not f.kept], kept=kept,
        ops_before=ops_before, size_before=size_before, ops_after=op_counts(working),
        pruned=passes.changed("prune"), passes=passes.results, codes=frozenset(rule.code for rule in rules),
    )


def _clean_up(passes: Passes) -> None:
    """Prune what the outputs no longer need, in every body, and drop unused functions."""
    passes.run("prune", lambda working: prune_model(working, passes.outputs))
    passes.run("remove unused functions", remove_unused_functions)


def _structural_round(
    passes: Passes, model: Model, findings: list[Finding], rules: tuple[type[Rule], ...], keep: tuple[str, ...]
) -> tuple[list[Finding], list[Finding]]:
    """Apply the fixes that decide which parts of the graph run (training switches), fold the
    control flow they make constant, prune, and scan again.

    Returns the new findings and the findings fixed (the structural ones, and
    those that went with the branches they removed).
    """
    structural = [f for f in findings if f.fix is not None and f.code in STRUCTURAL_RULES and not f.kept]
    if not structural:
        return findings, []
    passes.run("bind the training switches", lambda working: apply_fixes(working, structural))
    passes.run("fold the constant control flow", fold_constant_control_flow)
    passes.run("prune", lambda working: prune_model(working, passes.outputs))
    passes.model = dataclasses.replace(model, graph_def=passes.model.graph_def)
    found = scan(passes.model, rules, keep)
    left = {finding.location for finding in found}
    carried = [f for f in findings if f.fix is not None and f.code not in STRUCTURAL_RULES and f.location not in left]
    return found, structural + carried


# DataType enum values of the placeholders --bind sets.
_BINDABLE_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64, 10: np.bool_}


def _bound(model: Model, bind: dict[str, bool | int | float], outputs: list[str]) -> Model:
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
    Passes(model, outputs).run("fold the control flow of --bind", fold_constant_control_flow)
    return dataclasses.replace(model, graph_def=model.graph_def)


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


def apply_fixes(model: Model, findings: list[Finding]) -> int:
    """Apply the findings' edits to `model` in place (call it on a copy); returns how many."""
    for finding in findings:
        try:
            for edit in finding.fix.edits:
                edit.apply(model.view(edit.scope))
        except EditError as error:
            raise FixError(f"fixing {finding.code} at {finding.location} failed, nothing was written: {error}") from None
    return len(findings)


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
