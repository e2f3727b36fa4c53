"""Where a model's training behaviour is, for the rules about what switches it on."""

from __future__ import annotations

from graphdoc.graph.model import Model, callees
from graphdoc.graph.view import GraphView


def training_nodes(view: GraphView, model: Model) -> list[str]:
    """Nodes of `view` that the BatchNorm and dropout rules flag."""
    from graphdoc.rules.gd101_training_fused_batchnorm import TrainingModeFusedBatchNorm
    from graphdoc.rules.gd102_batch_moments_batchnorm import BatchMomentsBatchNorm
    from graphdoc.rules.gd201_live_dropout import LiveDropout

    return [
        finding.node
        for rule in (TrainingModeFusedBatchNorm(), BatchMomentsBatchNorm(), LiveDropout())
        for finding in rule.check(view, model)
    ]


def training_functions(model: Model) -> dict[str, list[str]]:
    """Library functions holding training behaviour, directly or through the functions they
    call, each with the flagged nodes it holds itself."""
    found = {view.scope: nodes for view in model.functions if (nodes := training_nodes(view, model))}
    calls = {view.scope: set(callees(view.nodes.values())) for view in model.functions}
    changed = True
    while changed:
        changed = False
        for name, called in calls.items():
            if name not in found and called & set(found):
                found[name] = []
                changed = True
    return found
