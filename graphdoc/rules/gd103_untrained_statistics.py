"""GD103: moving statistics that training never updated."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator

import numpy as np

from graphdoc import ops
from graphdoc.graph.edits import AddConst
from graphdoc.graph.model import Model
from graphdoc.graph.view import GraphView, Tensor
from graphdoc.rules.base import Finding, Rule

RECOMPUTE = "recompute them with fix --calibrate DATA (representative inputs)"


class UntrainedStatistics(Rule):
    """What it finds:
    A BatchNorm whose moving mean is 0 and moving variance 1 in every channel,
    the values they are initialized with, or whose variance is negative or
    not finite. Checked for inference-mode fused BatchNorms in the graph, and
    for the statistics that a fix of a training-mode BatchNorm (GD101, GD102)
    would wire in, from the graph or from a checkpoint.

    Why it is wrong:
    The moving averages are updated by separate ops (UPDATE_OPS in TF1,
    `tf.control_dependencies` around the train op) that the training script
    has to run; when it never did, the statistics are still their initial
    values. In inference mode the layer then normalizes nothing and the
    model's output is far from what training measured: a training-mode graph
    "fixed" with these statistics would compute garbage faithfully.

    Fix:
    None in the graph. `graphdoc fix --calibrate DATA --unsafe-fixes`
    recomputes the statistics from representative inputs; `fix` refuses to
    wire untrained statistics in unless `--unsafe-fixes` is given.

    Fix safety:
    Not applicable: there is no fix to apply.
    """

    code = "GD103"
    name = "untrained-statistics"
    summary = "BatchNorm moving statistics were never trained (mean 0, variance 1 in every channel)"

    def check(self, view: GraphView, model: Model) -> Iterator[Finding]:
        for name in view.ops_of(ops.FUSED_BATCH_NORM_OPS):
            if view.attr(name, "is_training"):
                continue  # its statistics are judged with its GD101 fix
            inputs = view.inputs(name)
            if len(inputs) < 5:
                continue
            mean, variance = inputs[ops.FUSED_MEAN_SLOT], inputs[ops.FUSED_VARIANCE_SLOT]
            problem = untrained(view.const_value(mean), view.const_value(variance))
            if problem is not None:
                yield self.finding(view, name, f"the moving statistics it normalizes with are {problem}",
                                   unfixable=RECOMPUTE)

    @classmethod
    def of_fixes(cls, model: Model, findings: list[Finding]) -> tuple[list[Finding], list[Finding]]:
        """`findings` with each BatchNorm fix that would wire in untrained statistics made
        unsafe, and a GD103 finding for each of them."""
        marked, added = [], []
        for finding in findings:
            problem = _problem_with_statistics(model, finding)
            if problem is None:
                marked.append(finding)
                continue
            caveat = f"statistics that are {problem}; {RECOMPUTE}"
            fix = dataclasses.replace(finding.fix, safe=False, caveat=caveat)
            marked.append(dataclasses.replace(finding, fix=fix))
            layer = finding.site.layer if finding.site is not None else finding.node
            added.append(Finding(code=cls.code, scope=finding.scope, node=finding.node,
                                 message=f"the moving statistics of {layer} are {problem}", unfixable=RECOMPUTE))
        return marked, added


def untrained(mean: np.ndarray | None, variance: np.ndarray | None) -> str | None:
    """Why statistics with these values were never trained, or None."""
    if mean is None or variance is None or mean.size == 0 or variance.size == 0:
        return None
    # Three reductions for trained statistics: every BatchNorm of a large graph comes
    # through here. A float32 sum overflows only for statistics as broken as non-finite ones.
    if not math.isfinite(float(np.add.reduce(mean, axis=None)) + float(np.add.reduce(variance, axis=None))):
        return "not finite"
    lowest = float(np.minimum.reduce(variance, axis=None))
    if lowest < 0:
        return "negative in the variance"
    if lowest == 1 and float(np.maximum.reduce(variance, axis=None)) == 1 and not mean.any():
        return "still their initial values (mean 0 and variance 1 in every channel: the update ops never ran)"
    return None


def _problem_with_statistics(model: Model, finding: Finding) -> str | None:
    fix = finding.fix
    if fix is None or fix.statistics is None:
        return None
    added = {edit.name: edit.value for edit in fix.edits if isinstance(edit, AddConst)}
    view = model.view(finding.scope)
    return untrained(*(_value(view, added, tensor) for tensor in fix.statistics))


def _value(view: GraphView, added: dict[str, np.ndarray], tensor: Tensor) -> np.ndarray | None:
    if tensor.node in added:
        return np.asarray(added[tensor.node])
    return view.const_value(tensor)
