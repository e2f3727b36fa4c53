"""Where a model's training behaviour is, for the rules about what switches it on."""

from __future__ import annotations

from graphdoc.graph.model import Model, callees
from graphdoc.graph.view import GraphView
from graphdoc.rules.base import Finding


def training_findings(view: GraphView, model: Model) -> list[Finding]:
    """The findings in `view` of the rules whose findings are training behaviour."""
    from graphdoc.rules import ALL_RULES

    return [
        finding
        for rule in ALL_RULES
        if rule.training_behaviour
        for finding in rule().check(view, model)
    ]


def training_nodes(view: GraphView, model: Model) -> list[str]:
    """Nodes of `view` that the BatchNorm and dropout rules flag."""
    return [finding.node for finding in training_findings(view, model)]


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
