"""Checking a fix by running it, before anything is written.

1. The fixed graph imports into TensorFlow and runs.
2. Under the probe it is batch-independent and deterministic.
3. Every node the fix left alone, and that nothing the fix changed feeds,
   computes the same values as in the original on the same inputs.
4. Every fixed normalization computes its layer's inference formula,
   `gamma * (x - mean) / sqrt(variance + epsilon) + beta`, evaluated in numpy
   on the tensors the graph computes: a fix that wires the wrong statistics,
   keeps renorm's corrections or mixes up the channel axis is still
   batch-independent, and only this check sees it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from graphdoc.errors import GraphdocError
from graphdoc.graph.frames import inside_loops
from graphdoc.graph.model import Model
from graphdoc.graph.view import Tensor
from graphdoc.rewrite import FixReport
from graphdoc.rules import ALL_RULES, LayerFormula
from graphdoc.scanning import scan
from graphdoc.verify.inputs import batch_size, samples
from graphdoc.verify.probe import BATCH, FETCH_BUDGET, probe
from graphdoc.verify.runnable import runnable
from graphdoc.verify.safety import refuse_unsafe

if TYPE_CHECKING:
    from graphdoc.tf.runner import GraphRunner

UNCHANGED_TOLERANCE = 1e-5
# A normalization against its formula in float64, relative to the output's largest magnitude:
# float32 kernels differ from it by about 1e-6, float16 ones by about 1e-3.
FORMULA_TOLERANCE = {np.dtype(np.float16): 1e-2}
FORMULA_TOLERANCE_FLOAT32 = 1e-4


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool | None  # None: could not be run, with the reason in detail
    detail: str


@dataclass
class Verification:
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed is not False for check in self.checks)

    def failures(self) -> list[Check]:
        return [check for check in self.checks if check.passed is False]


def verify(original: Model, report: FixReport, *, data: Path | None = None, shapes=None,
           allow_unsafe: bool = False, status: Callable[[str], None] = lambda message: None) -> Verification:
    """Run the checks on `report.fixed`; never raises for a failed check, only for bad input.

    What runs are copies TensorFlow can run (graphdoc/verify/runnable.py), of
    the fixed graph and of the original alike: variable writes removed, a
    fixed batch relaxed, or kept where the graph needs it. `status` hears
    what is running: on a large model each check takes a while.
    """
    refuse_unsafe(original, allow=allow_unsafe, purpose="verifying the fix")
    for relax in (True, False):
        prepared = runnable(report.fixed, relax_batch=relax, outputs=report.outputs)
        verification = _verify_runnable(original, report, prepared.model, data=data, shapes=shapes,
                                        relax=prepared.relaxed, status=status)
        if verification.checks[0].passed or not prepared.relaxed:
            return verification
        # The copy with its batch relaxed does not run: the graph needs the batch it was given.
    return verification


def _verify_runnable(original: Model, report: FixReport, fixed: Model, *, data, shapes, relax: bool,
                     status: Callable[[str], None]) -> Verification:
    """The checks on `fixed`, the runnable copy of `report.fixed`."""
    from graphdoc.tf.runner import GraphRunner

    verification = Verification()
    size = batch_size(fixed) or BATCH
    batch = samples(fixed, size, data=data, shapes=shapes).feed()
    with contextlib.ExitStack() as stack:
        try:
            status("importing the fixed graph into TensorFlow")
            runner = stack.enter_context(GraphRunner(fixed.graph_def, batch))
            runner.run([f"{name}:0" for name in report.outputs], batch)
        except GraphdocError as error:
            verification.checks.append(Check("imports and runs", False, str(error)))
            return verification
        verification.checks.append(
            Check("imports and runs", True, f"{len(report.outputs)} output(s) on a batch of {size}"))
        left = _left_in_the_graph(report)
        probed = probe(fixed, left, data=data, shapes=shapes, outputs=report.outputs, allow_unsafe=True,
                       runner=runner, status=status)
        verification.checks.append(independence(probed))
        before = runnable(original, relax_batch=relax).model
        # Nodes that change between runs of the fixed graph cannot agree with another run.
        untouched = _untouched(original, report.fixed) - probed.nondeterministic
        verification.checks.append(_untouched_nodes_agree(untouched, before, batch, runner, size, status))
        formulas = [f.fix.formula for f in report.applied if f.fix is not None and f.fix.formula is not None]
        if formulas:
            verification.checks.append(_layers_follow_their_formula(fixed, formulas, batch, runner))
    return verification


def _left_in_the_graph(report: FixReport) -> list:
    """What the fix was not asked to fix (--select, --ignore, `keep`): it stays, and explains what
    still diverges. A fix of every rule with nothing kept leaves nothing to scan for."""
    narrowed = report.codes and report.codes != {rule.code for rule in ALL_RULES}
    if not narrowed and not report.kept:
        return []
    kept = {finding.location for finding in report.kept}
    return [finding for finding in scan(report.fixed)
            if (report.codes and finding.code not in report.codes) or finding.location in kept]


def independence(probed) -> Check:
    """Check 2: no root of divergence the findings left in the graph do not explain."""
    name = "batch-independent and deterministic"
    roots = [root for root in probed.roots if root.finding is None]
    left = sorted({root.finding.code for root in probed.roots if root.finding is not None})
    if roots:
        more = f" and {len(roots) - 1} more" if len(roots) > 1 else ""
        return Check(name, False, f"{roots[0].node} ({roots[0].op}) {roots[0].kind}{more}")
    detail = "no node depends on the batch or changes between runs"
    if left:
        detail = f"only where findings left in the graph say ({', '.join(left)})"
    if probed.notes:
        detail += f" ({'; '.join(probed.notes)})"
    return Check(name, True, detail)


def _layers_follow_their_formula(fixed: Model, formulas: list[LayerFormula], batch, runner: GraphRunner) -> Check:
    """Check 4: each fixed normalization against its layer's inference formula."""
    name = "layers compute their inference formula"
    view, loops = fixed.main, inside_loops(fixed.main)
    # A layer inside a branch function or a loop frame cannot be fetched from a session.
    checkable = [formula for formula in formulas if not formula.scope
                 and all(t.node in view and t.node not in loops for t in _tensors(formula))]
    if not checkable:
        return Check(name, None, f"{len(formulas)} fixed layer(s), none outside loops and functions")
    failures = []
    for group in _in_runs(checkable, runner, len(next(iter(batch.values())))):
        fetches = [[f"{t.node}:{t.port}" for t in _tensors(formula)] for formula in group]
        values = iter(runner.run([fetch for layer in fetches for fetch in layer], batch))
        for formula, layer in zip(group, fetches, strict=True):
            difference, tolerance = _formula_difference(formula, [next(values) for _ in layer])
            if difference > tolerance:
                failures.append(f"{formula.layer} differs from it by {difference:.3g}")
    detail = f"{len(checkable)} layer(s) checked"
    if len(checkable) < len(formulas):
        detail += f" ({len(formulas) - len(checkable)} inside loops or functions cannot be fetched)"
    if failures:
        detail += f"; {failures[0]}" + (f" and {len(failures) - 1} more" if len(failures) > 1 else "")
    return Check(name, not failures, detail)


def _in_runs(formulas: list[LayerFormula], runner: GraphRunner, size: int) -> list[list[LayerFormula]]:
    """The layers in groups whose tensors one run can hold (FETCH_BUDGET): one run for most models."""
    from graphdoc.tf.runner import chunks

    sizes = [sum(runner.estimated_bytes(f"{t.node}:{t.port}", (size,)) for t in _tensors(f)) for f in formulas]
    return list(chunks(formulas, sizes, FETCH_BUDGET))


def _tensors(formula: LayerFormula) -> list[Tensor]:
    optional = [t for t in (formula.scale, formula.offset) if t is not None]
    return [formula.x, formula.output, formula.mean, formula.variance, *optional]


def _formula_difference(formula: LayerFormula, values: list[np.ndarray]) -> tuple[float, float]:
    """How far the layer's output is from its formula, relative to its largest magnitude, and the
    tolerance for its dtype."""
    x, output, mean, variance, *optional = values
    scale = optional.pop(0) if formula.scale is not None else 1.0
    offset = optional.pop(0) if formula.offset is not None else 0.0
    tolerance = FORMULA_TOLERANCE.get(np.asarray(output).dtype, FORMULA_TOLERANCE_FLOAT32)
    shape = [1] * np.ndim(x)
    shape[formula.channel_axis % np.ndim(x)] = -1

    def per_channel(value):
        return np.asarray(value, dtype=np.float64).reshape(shape) if np.size(value) > 1 else float(np.sum(value))

    try:
        expected = per_channel(scale) * (np.asarray(x, np.float64) - per_channel(mean)) / np.sqrt(
            per_channel(variance) + formula.epsilon) + per_channel(offset)
    except ValueError:  # statistics that fit no channel axis of x
        return float("inf"), tolerance
    output = np.asarray(output, np.float64)
    while output.ndim > expected.ndim and output.shape[0] == 1:
        output = output[0]  # parameters kept broadcast ([1, 1, 1, 1, C]: ghost batches) add leading 1s
    if expected.shape != output.shape or not np.array_equal(np.isfinite(expected), np.isfinite(output)):
        return float("inf"), tolerance  # a NaN where the formula has a number is no small difference
    return _relative_difference(expected, output), tolerance


def _untouched_nodes_agree(untouched: set[str], original: Model, batch, after: GraphRunner, size: int,
                           status: Callable[[str], None]) -> Check:
    """`after` holds the fixed graph; `original` is the original's runnable copy."""
    from graphdoc.tf.runner import GraphRunner

    name = "untouched nodes unchanged"
    common = {f"{n}:0" for n in untouched}
    runnable = original
    worst, where = 0.0, ""
    status("importing the original graph into TensorFlow")
    try:
        with GraphRunner(runnable.graph_def, batch) as before:
            common &= set(after.floating_outputs())
            fetches = [fetch for fetch in before.floating_outputs() if fetch in common]  # graph order
            if not fetches:
                return Check(name, None, "no node upstream of the fix has a floating-point output")
            groups = before.fetch_groups(fetches, (size, size), FETCH_BUDGET)
            runs = zip(groups, before.run_in_groups(groups, [batch]), after.run_in_groups(groups, [batch]), strict=True)
            for number, (group, [values_before], [values_after]) in enumerate(runs, 1):
                status(f"comparing untouched nodes: {number} of {len(groups)} groups of tensors run")
                for fetch, a, b in zip(group, values_before, values_after, strict=True):
                    difference = _relative_difference(a, b)
                    if difference > worst:
                        worst, where = difference, fetch
    except GraphdocError as error:
        return Check(name, None, f"the original graph does not run ({error})")
    ok = worst <= UNCHANGED_TOLERANCE
    detail = f"{len(fetches)} node(s) compared" + ("" if ok else f"; {where} differs by {worst:.3g}")
    return Check(name, ok, detail)


def _relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    if np.shape(a) != np.shape(b):
        return float("inf")
    if not np.size(a):
        return 0.0
    return float(np.max(np.abs(a - b))) / max(float(np.max(np.abs(a))), 1e-12)


def _untouched(original: Model, fixed: Model) -> set[str]:
    """Nodes of the fixed graph identical to the original's, with nothing changed upstream."""
    before, after = original.main.nodes, fixed.main.nodes
    changed = {name for name, node in after.items() if name not in before or before[name] != node}
    tainted: set[str] = set()
    view = fixed.main
    for name in view.topological_order():
        if name in changed or any(t.node in tainted for t in view.inputs(name)):
            tainted.add(name)
    return set(after) - tainted
