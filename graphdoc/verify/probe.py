"""`graphdoc probe`: run the graph and find where one sample's result depends on its batch.

For one sample s0, the graph runs four times: s0 alone; s0 first in a batch
with companions A; the same batch again; s0 last in a batch with companions B.
(A seeded random op draws the same numbers for the same position, so s0 must
change position, not only companions.) For every
floating-point tensor with a batch dimension, s0's slice is compared across
the runs: alone vs. in a batch vs. with other companions (batch dependence,
which also catches seeded random ops, whose mask changes with the batch
shape), and the two identical runs (run-to-run randomness). A root of the
divergence is a diverging node none of whose inputs diverge.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from graphdoc.errors import GraphdocError
from graphdoc.graph.frames import downstream_until, inside_loops
from graphdoc.graph.model import Model
from graphdoc.graph.view import GraphView, Tensor
from graphdoc.ops import MERGE_OPS, SWITCH_OPS
from graphdoc.rewrite.outputs import infer_outputs
from graphdoc.rules import Finding
from graphdoc.verify.inputs import Inputs, batch_size, samples
from graphdoc.verify.runnable import runnable
from graphdoc.verify.safety import refuse_unsafe

if TYPE_CHECKING:
    from graphdoc.tf.runner import GraphRunner

# Differences below this, relative to the tensor's largest magnitude, are
# float noise: kernels may sum in another order for another batch size.
TOLERANCE = 1e-4
# Their output is a tensor's shape, never its values: divergence does not pass through.
_SHAPE_OPS = frozenset({"Shape", "ShapeN", "Size", "Rank"})
BATCH = 4
# Fetched values held at once: larger graphs are run in groups of fetches.
FETCH_BUDGET = 1 << 30


@dataclass(frozen=True)
class Divergence:
    node: str
    op: str
    batch_difference: float  # s0 alone vs. in batches, relative
    run_difference: float  # the same batch twice, relative
    finding: Finding | None  # the static finding that explains it, if any

    @property
    def kind(self) -> str:
        kinds = []
        if self.batch_difference > TOLERANCE:
            kinds.append("depends on the batch")
        if self.run_difference > TOLERANCE:
            kinds.append("changes between runs")
        return " and ".join(kinds)


@dataclass
class ProbeReport:
    roots: list[Divergence]  # in topological order
    diverging: int  # how many probed tensors diverge at all
    probed: int  # how many tensors had a batch dimension and were compared
    batch: int
    notes: list[str] = field(default_factory=list)  # what the run changed or could not check
    nondeterministic: frozenset[str] = frozenset()  # every node whose value changes between runs
    # Every probed node in graph order: (node, op, batch difference, run difference), for a profile.
    profile: list[tuple[str, str, float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class _Plan:
    """The probe's four runs: s0 alone, s0 first in batch A, A again, s0 last in batch B.

    Without a run of s0 alone (a fixed batch, or ghost batches that need a
    multiple of V), s0 is compared between A and B; in a batch fixed at one,
    only run-to-run randomness can be seen.
    """

    size: int  # the batch of A and B
    alone: bool = True
    across_batches: bool = True

    def feeds(self, inputs: Inputs) -> tuple[dict, dict, dict, dict]:
        size = self.size
        batch_a = inputs.rows(slice(0, size))
        batch_b = inputs.rows([*range(size, 2 * size - 1), 0])
        return (inputs.rows(slice(0, 1)) if self.alone else batch_a), batch_a, batch_a, batch_b

    @property
    def note(self) -> str | None:
        if not self.across_batches:
            return "the batch is fixed at 1: only run-to-run randomness was checked, not batch dependence"
        if not self.alone:
            return f"sample 0 was compared between two batches of {self.size}, not run alone"
        return None


def probe(
    model: Model,
    findings: list[Finding] = (),
    *,
    data: Path | None = None,
    shapes=None,
    outputs: list[str] | None = None,
    allow_unsafe: bool = False,
    runner: GraphRunner | None = None,
    status: Callable[[str], None] = lambda message: None,
) -> ProbeReport:
    """Run `model` and report the roots of batch dependence and run-to-run randomness.

    What runs is a copy TensorFlow can run (graphdoc/verify/runnable.py): its
    variable writes removed, a fixed batch relaxed, or kept where the graph
    needs it. `runner`, if given, already holds a runnable `model` (importing
    a large graph takes seconds); `status` hears which group of tensors is
    being run.
    """
    refuse_unsafe(model, allow=allow_unsafe, purpose="probing")
    run = {"findings": findings, "data": data, "shapes": shapes, "outputs": outputs, "status": status}
    if runner is not None:
        return _probe(model, runner=runner, **run)
    prepared = runnable(model, outputs=outputs or infer_outputs(model.main))
    try:
        report = _probe(prepared.model, **run)
    except GraphdocError:
        if not prepared.relaxed:
            raise
        prepared = runnable(model, relax_batch=False)  # the graph needs its fixed batch
        report = _probe(prepared.model, **run)
    report.notes[:0] = prepared.neutralized
    return report


def _probe(model: Model, *, findings, data, shapes, outputs, status, runner: GraphRunner | None = None) -> ProbeReport:
    from graphdoc.tf.runner import GraphRunner

    view = model.main
    fixed = batch_size(model)
    plans = [_Plan(BATCH), _Plan(BATCH, alone=False)] if fixed is None else [
        _Plan(fixed, alone=False, across_batches=fixed > 1)]
    inputs = samples(model, 2 * plans[0].size - 1, data=data, shapes=shapes)
    # Only what the outputs compute: a leftover random op that feeds nothing is no divergence.
    loops = inside_loops(view)
    wanted = view.needed_by(outputs or infer_outputs(view)) - _inside_branches(view) - loops
    with contextlib.nullcontext(runner) if runner else GraphRunner(model.graph_def, inputs.feed()) as runner:
        fetches = [name for name in runner.floating_outputs() if name.rsplit(":", 1)[0] in wanted]
        sizes = (1, plans[0].size, plans[0].size, plans[0].size)
        groups = runner.fetch_groups(fetches, sizes, FETCH_BUDGET)
        plan, differences = _run_plans(runner, groups, plans, inputs, status)
    diverging = {name for name, (batch, run) in differences.items() if max(batch, run) > TOLERANCE}
    explained = _explanations(findings)
    in_loops = [finding for name, finding in explained.items() if name in loops]
    order = view.topological_order()
    roots = [
        Divergence(node, view.op(node), *differences[node],
                   in_loops[0] if in_loops and view.op(node) == "Exit" else _explain(view, node, explained))
        for node in _roots(view, order, diverging, list(inputs.data))
    ]
    notes = [*inputs.described_settings(), *([plan.note] if plan.note else [])]
    if loops:
        notes.append(f"{len(loops)} node(s) inside while loops are seen through the loops' outputs")
    changing = frozenset(name for name, (_, run) in differences.items() if run > TOLERANCE)
    profile = [(node, view.op(node), *differences[node]) for node in order if node in differences]
    return ProbeReport(roots=roots, diverging=len(diverging), probed=len(differences), batch=plan.size, notes=notes,
                       nondeterministic=changing, profile=profile)


def _run_plans(runner, groups, plans: list[_Plan], inputs: Inputs, status) -> tuple[_Plan, dict]:
    """Run the first plan the graph can run; a later one only when an earlier one's runs fail
    (ghost batches: a training graph that cannot run one sample alone)."""
    for plan in plans[:-1]:
        try:
            return plan, _run_probe(runner, groups, plan, inputs, status)
        except GraphdocError:
            continue
    return plans[-1], _run_probe(runner, groups, plans[-1], inputs, status)


def _roots(view: GraphView, order: list[str], diverging: set[str], inputs: list[str]) -> list[str]:
    """Diverging nodes with no diverging node upstream, in the order the data meets them.

    Upstream is followed through every node, compared or not (a bool mask, an
    integer shape), so a dropout's Select is not a root behind its random op.
    A root the inputs do not reach (a random op drawn from a constant shape)
    is placed where its values join the data: the first layer comes first.
    """
    downstream: set[str] = set()
    reached: set[str] = set(inputs)  # nodes computed from the data inputs
    roots = []
    for node in order:
        producers = [t.node for t in view.inputs(node)]
        if any(producer in reached for producer in producers):
            reached.add(node)
        carries_values = view.op(node) not in _SHAPE_OPS
        behind = carries_values and any(p in diverging or p in downstream for p in producers)
        if behind:
            downstream.add(node)
        elif node in diverging:
            roots.append(node)
    position = {node: index for index, node in enumerate(order)}
    return sorted(roots, key=lambda root: _joins_data_at(view, root, reached, position))


def _joins_data_at(view: GraphView, root: str, reached: set[str], position: dict[str, int]) -> int:
    """The position of the first node computed from both `root` and the data inputs."""
    if root in reached:
        return position[root]
    frontier, seen = [root], {root}
    while frontier:
        joined = [node for node in frontier if node in reached]
        if joined:
            return min(position[node] for node in joined)
        frontier = [c for node in frontier for c in view.consumers(node) if c not in seen]
        seen.update(frontier)
    return position[root]


def _run_probe(runner: GraphRunner, groups: list[list[str]], plan: _Plan, inputs: Inputs, status):
    differences: dict[str, tuple[float, float]] = {}
    runs_of_groups = runner.run_in_groups(groups, plan.feeds(inputs))
    for number, (group, runs) in enumerate(zip(groups, runs_of_groups, strict=True), 1):
        status(f"probing: {number} of {len(groups)} groups of tensors run")
        differences.update(_differences(group, runs, plan))
    return differences


def _differences(fetches: list[str], runs, plan: _Plan) -> dict[str, tuple[float, float]]:
    """Per node (its first comparable floating output): batch and run-to-run differences.

    A tensor that follows the batch is compared on s0's rows: the block of
    its batch axis that is s0's (row 0; rows 0 to k-1 when the batch is
    flattened into k rows a sample; the axis is where s0 alone and the batch
    differ in length, so a time-major tensor is compared on its axis 1).
    A tensor whose shape does not follow the batch (a batch mean, a weight)
    must be the same whole in every run.
    """
    single, batch_a, again, batch_b = runs
    found: dict[str, tuple[float, float]] = {}
    for index, name in enumerate(fetches):
        node = name.rsplit(":", 1)[0]
        s, a, a2, b = single[index], batch_a[index], again[index], batch_b[index]
        if node in found or np.shape(a) != np.shape(b) or np.size(a) == 0:
            continue
        pairs = _sample_pairs(s, a, b, plan)
        if pairs is None:
            continue
        scale = max(float(np.max(np.abs(a))), 1e-12)
        batch = max((_max_abs(x, y) for x, y in pairs), default=0.0) / scale if plan.across_batches else 0.0
        found[node] = (batch, _max_abs(a, a2) / scale)
    return found


def _sample_pairs(s, a, b, plan: _Plan):
    """The pairs of s0's values to compare (alone vs in A, in A vs in B), or None if `a` cannot be
    placed."""
    if not plan.alone:  # no run alone to tell a batched axis by: axis 0 of the batch's length
        return ((a[:1], b[-1:]),) if np.ndim(a) and a.shape[0] == plan.size else ((a, b),)
    axis = _batch_axis(np.shape(s), np.shape(a), plan.size)
    if axis is None:
        return ((s, a), (a, b)) if np.shape(s) == np.shape(a) else None
    rows = np.shape(s)[axis]
    first, last = (np.take(x, range(start, start + rows), axis=axis)
                   for x, start in ((a, 0), (b, np.shape(b)[axis] - rows)))
    return ((s, first), (first, last))


def _batch_axis(alone: tuple[int, ...], batched: tuple[int, ...], size: int) -> int | None:
    """The axis along which the batch stacks s0's rows: where s0 alone is `size` times shorter."""
    if len(alone) != len(batched):
        return None
    differing = [axis for axis, (x, y) in enumerate(zip(alone, batched, strict=True)) if x != y]
    if len(differing) == 1 and batched[differing[0]] == size * alone[differing[0]]:
        return differing[0]
    return None


def _max_abs(x: np.ndarray, y: np.ndarray) -> float:
    if x.shape != y.shape:
        return float("inf")
    with np.errstate(invalid="ignore"):
        difference = np.abs(x.astype(np.float64) - y.astype(np.float64))
    return float(np.nanmax(difference)) if difference.size else 0.0


def _inside_branches(view: GraphView) -> set[str]:
    """Switches and the nodes inside a TF1 tf.cond branch: a branch not taken cannot be fetched.
    (A while loop's Switches, on its LoopCond, lead to its body and its Exits.)"""
    switches = [name for name in view.ops_of(SWITCH_OPS) if view.op(view.inputs(name)[1].node) != "LoopCond"]
    branches = [use.consumer for name in switches for port in (0, 1) for use in view.uses(Tensor(name, port))]
    return set(switches) | downstream_until(view, branches, MERGE_OPS)


def _explanations(findings) -> dict[str, Finding]:
    explained: dict[str, Finding] = {}
    for finding in findings:
        if finding.scope:
            continue
        for node in finding.blamed:
            explained.setdefault(node, finding)
    return explained


def _explain(view: GraphView, node: str, explained: dict[str, Finding]) -> Finding | None:
    """The finding about `node`, or about the nearest node behind it (a Merge hides its branches)."""
    frontier = [node]
    for _ in range(4):
        for name in frontier:
            if name in explained:
                return explained[name]
        frontier = [tensor.node for name in frontier for tensor in view.inputs(name)]
    return None
