"""GD302: a keep_prob or rate placeholder whose default keeps dropout on."""

from __future__ import annotations

from collections.abc import Iterator

from graphdoc.graph.edits import MakeConst
from graphdoc.graph.model import Model
from graphdoc.graph.view import GraphView, Tensor
from graphdoc.rules.base import Finding, Fix, Rule
from graphdoc.rules.matchers import random_masks

_DT_FLOAT = 1
# keep_prob reaches the mask through `1 - keep` (rate), `keep + U` (TF 1.x) or
# `x / keep`; a rate reaches it directly as the threshold of `U >= rate`.
_SEARCH_DEPTH = 4


class DropoutRatePlaceholder(Rule):
    """What it finds:
    A scalar float PlaceholderWithDefault that sets a live dropout's keep
    probability (default below 1) or rate (default above 0): the `keep_prob`
    placeholders of TF 1.x models, fed 1.0 at evaluation time by the training
    script and forgotten by the serving code.

    Why it is wrong:
    Unless every caller feeds 1.0 (or 0.0 for a rate), the dropout drops a
    share of the activations on every call.

    Fix:
    The placeholder becomes a constant with its inference value (keep
    probability 1, rate 0). The dropout itself is GD201's to remove.

    Fix safety:
    Safe: it is the value a training script feeds for evaluation.
    """

    code = "GD302"
    name = "dropout-rate-placeholder"
    finds = "a `keep_prob`/`rate` placeholder whose default keeps dropout on"
    fixes = "bound to 1 (keep) or 0 (rate)"
    summary = "A keep_prob/rate placeholder defaults to dropping activations"

    def check(self, view: GraphView, model: Model) -> Iterator[Finding]:
        candidates = {name: default for name in view.ops_of({"PlaceholderWithDefault"})
                      if (default := _scalar_float_default(view, name)) is not None}
        if not candidates:
            return
        mask_nodes = {node for mask in random_masks(view) for node in mask.mask_nodes}
        for name, default in candidates.items():
            role = _role(view, name, mask_nodes)
            if role == "keep" and default < 1.0:
                yield self._finding(view, name, f"keep probability defaults to {default:g}", 1.0)
            elif role == "rate" and default > 0.0:
                yield self._finding(view, name, f"dropout rate defaults to {default:g}", 0.0)

    def _finding(self, view: GraphView, name: str, what: str, value: float) -> Finding:
        fix = Fix(f"bind {name} to {value:g}", (MakeConst(view.scope, name, value),))
        return self.finding(view, name, f"{name}: {what}, so dropout is on unless it is fed {value:g}", fix=fix)


def _scalar_float_default(view: GraphView, name: str) -> float | None:
    if view.attr(name, "dtype") != _DT_FLOAT:
        return None
    value = view.const_value(view.inputs(name)[0])
    if value is None or value.size != 1 or value.dtype.kind != "f":
        return None
    return float(value.reshape(()))


def _role(view: GraphView, name: str, mask_nodes: set[str]) -> str | None:
    """"keep" or "rate": what the placeholder is, from how its value reaches a dropout mask."""
    # Walk forward assuming it is a keep probability; `1 - p` flips the meaning.
    frontier = [(name, "keep")]
    for _ in range(_SEARCH_DEPTH):
        next_frontier = []
        for node, meaning in frontier:
            for use in view.uses(Tensor(node)):
                op = view.op(use.consumer)
                if use.consumer in mask_nodes:
                    if op in ("GreaterEqual", "Greater") and use.slot == 1:
                        seen = "rate"  # mask = U >= rate
                    elif op in ("Add", "AddV2"):
                        seen = "keep"  # mask = Floor(keep + U)
                    else:
                        continue
                    return "keep" if meaning == seen else "rate"
                flips = op == "Sub" and use.slot == 1
                next_frontier.append((use.consumer, ("rate" if meaning == "keep" else "keep") if flips else meaning))
        frontier = next_frontier
    return None
