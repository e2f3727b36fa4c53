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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from graphdoc.errors import GraphdocError
from graphdoc.graph.frames import inside_loops
from graphdoc.graph.model import Model
from graphdoc.graph.view import GraphView, Tensor
from graphdoc.ops import MERGE_OPS, SWITCH_OPS
from graphdoc.rewrite.outputs import infer_outputs
from graphdoc.rules import Finding
from graphdoc.verify.inputs import samples
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

    `runner`, if given, already holds `model`'s graph (importing a large graph
    takes seconds); `status` hears which group of tensors is being run.
    """
    from graphdoc.tf.runner import GraphRunner

    refuse_unsafe(model, allow=allow_unsafe, purpose="probing")
    view = model.main
    inputs = samples(model, 2 * BATCH - 1, data=data, shapes=shapes)
    alone = {name: array[:1] for name, array in inputs.items()}
    batch_a = {name: array[:BATCH] for name, array in inputs.items()}
    batch_b = {name: np.concatenate([array[BATCH:], array[:1]]) for name, array in inputs.items()}
    # Only what the outputs compute: a leftover random op that feeds nothing is no divergence.
    loops = inside_loops(view)
    wanted = view.needed_by(outputs or infer_outputs(view)) - _inside_branches(view) - loops
    feeds = (alone, batch_a, batch_a, batch_b)
    with contextlib.nullcontext(runner) if runner else GraphRunner(model.graph_def, inputs) as runner:
        fetches = [name for name in runner.floating_outputs() if name.rsplit(":", 1)[0] in wanted]
        groups = runner.fetch_groups(fetches, (1, BATCH, BATCH, BATCH), FETCH_BUDGET)
        try:
            differences = _run_probe(runner, groups, feeds, status)
        except GraphdocError:
            # Ghost batches reshape the batch into groups of V: a training graph with them
            # cannot run one sample alone. s0 is then compared between its two batches.
            differences = _run_probe(runner, groups, (batch_a, batch_a, batch_a, batch_b), status, alone=False)
    diverging = {name for name, (batch, run) in differences.items() if max(batch, run) > TOLERANCE}
    explained = _explanations(findings)
    in_loops = [finding for name, finding in explained.items() if name in loops]
    roots = [
        Divergence(node, view.op(node), *differences[node],
                   in_loops[0] if in_loops and view.op(node) == "Exit" else _explain(view, node, explained))
        for node in _roots(view, diverging)
    ]
    return ProbeReport(roots=roots, diverging=len(diverging), probed=len(differences), batch=BATCH)


def _roots(view: GraphView, diverging: set[str]) -> list[str]:
    """Diverging nodes with no diverging node upstream, in topological order.

    Upstream is followed through every node, compared or not (a bool mask, an
    integer shape), so a dropout's Select is not a root behind its random op.
    """
    downstream: set[str] = set()
    roots = []
    for node in view.topological_order():
        carries_values = view.op(node) not in _SHAPE_OPS
        behind = carries_values and any(t.node in diverging or t.node in downstream for t in view.inputs(node))
        if behind:
            downstream.add(node)
        elif node in diverging:
            roots.append(node)
    return roots


def _run_probe(runner: GraphRunner, groups: list[list[str]], feeds, status, *, alone: bool = True):
    differences: dict[str, tuple[float, float]] = {}
    for number, (group, runs) in enumerate(zip(groups, runner.run_in_groups(groups, feeds), strict=True), 1):
        status(f"probing: {number} of {len(groups)} groups of tensors run")
        differences.update(_differences(group, runs, alone=alone))
    return differences


def _differences(fetches: list[str], runs, *, alone: bool = True) -> dict[str, tuple[float, float]]:
    """Per node (its first comparable floating output): batch and run-to-run differences.

    A tensor with a batch dimension is compared on s0's slice; a tensor whose
    shape does not follow the batch (a batch mean, a weight) must be the same
    whole in every run. Without a run of s0 alone, s0 is compared between
    its two batches only.
    """
    single, batch_a, again, batch_b = runs
    found: dict[str, tuple[float, float]] = {}
    for index, name in enumerate(fetches):
        node = name.rsplit(":", 1)[0]
        s, a, a2, b = single[index], batch_a[index], again[index], batch_b[index]
        if node in found or np.shape(a) != np.shape(b) or np.size(a) == 0:
            continue
        if np.ndim(a) and a.shape[0] == BATCH and (np.shape(s)[:1] == (1,) or not alone):
            pairs = ((s[0], a[0]), (a[0], b[-1])) if alone else ((a[0], b[-1]),)
        elif np.shape(s) == np.shape(a):
            pairs = ((s, a), (a, b))
        else:
            continue
        scale = max(float(np.max(np.abs(a))), 1e-12)
        found[node] = (max(_max_abs(x, y) for x, y in pairs) / scale, _max_abs(a, a2) / scale)
    return found


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
    inside: set[str] = set(switches)
    stack = [use.consumer for name in switches for port in (0, 1) for use in view.uses(Tensor(name, port))]
    while stack:
        name = stack.pop()
        if name in inside or view.op(name) in MERGE_OPS:
            continue
        inside.add(name)
        stack.extend(view.consumers(name))
        stack.extend(view.control_users(name))
    return inside


def _explanations(findings) -> dict[str, Finding]:
    explained: dict[str, Finding] = {}
    for finding in findings:
        if finding.scope:
            continue
        for node in (finding.node, *finding.nodes):
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
