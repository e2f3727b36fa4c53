"""GD103: moving statistics that training never updated."""

from __future__ import annotations

from collections.abc import Iterator

from graphdoc import ops
from graphdoc.graph.model import Model
from graphdoc.graph.view import GraphView
from graphdoc.rules.base import Finding, Rule
from graphdoc.rules.statistics import RECOMPUTE, untrained


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
    finds = (
        "moving statistics still at their initial values (mean 0, variance 1 in every channel) or with a "
        "negative or non-finite variance, in the graph or in the statistics a fix would wire in"
    )
    fixes = (
        "none: `fix` refuses to wire them in (exit 2) unless `--unsafe-fixes`; `--calibrate DATA` recomputes "
        "them"
    )
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
    def of_fixes(cls, findings: list[Finding]) -> list[Finding]:
        """A GD103 finding for each BatchNorm fix that would wire in untrained statistics."""
        return [
            Finding(code=cls.code, scope=finding.scope, node=finding.node, unfixable=RECOMPUTE,
                    message=f"the moving statistics of {_layer(finding)} are {finding.fix.untrained}")
            for finding in findings
            if finding.fix is not None and finding.fix.untrained
        ]


def _layer(finding: Finding) -> str:
    return finding.site.layer if finding.site is not None else finding.node
