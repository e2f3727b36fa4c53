"""GD201: dropout that still drops activations."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from graphdoc import ops
from graphdoc.graph.edits import MakeIdentity
from graphdoc.graph.model import Model
from graphdoc.graph.view import GraphView, Tensor
from graphdoc.rules.base import Finding, Fix, Rule

# Ops through which random numbers become a 0/1 mask: arithmetic on the
# uniform sample, then a threshold (Floor of keep + u, or u >= rate), then a cast.
_ARITHMETIC_OPS = frozenset({"Add", "AddV2", "Sub", "Mul", "RealDiv", "Identity"})
_THRESHOLD_OPS = frozenset({"Floor", "GreaterEqual", "Greater", "Less", "LessEqual"})
_MASK_OPS = _ARITHMETIC_OPS | _THRESHOLD_OPS | frozenset({"Cast"})
_APPLY_OPS = frozenset({"Mul", "SelectV2", "Select"})
_SCALE_OPS = frozenset({"Mul", "RealDiv"})
# Ops a keep probability or rate is computed with.
_FACTOR_OPS = frozenset({"Const", "Identity", "Sub", "RealDiv", "Mul", "Cast", "Reciprocal", "Placeholder",
                         "PlaceholderWithDefault"})
_MAX_WALK = 8


@dataclass(frozen=True)
class _Dropout:
    random: str
    apply: str  # the Mul or SelectV2 that multiplies the activation by the mask
    scaled: Tensor  # the activation as the mask is applied to it
    mask_nodes: frozenset[str]


class LiveDropout(Rule):
    """What it finds:
    Dropout that is active in the exported graph: an activation multiplied by,
    or selected with, a 0/1 mask derived from a random op. Every form
    TensorFlow has emitted is recognized by this data flow, not by names:
    TF 1.x `Floor(keep_prob + RandomUniform)` times `x / keep_prob`; the
    TF 1.13 form `x * (1/keep) * Cast(RandomUniform >= rate)`; TF 2.x
    `SelectV2(RandomUniform >= rate, x * scale, 0)`, with Sub and RealDiv when
    keep_prob is a tensor; and the Keras 3 stateless form built on
    StatelessRandomUniformV2.

    Why it is wrong:
    At inference the model should see every activation. A live dropout zeroes
    a random share of them on every call, so the same input gives a
    different answer each time; the stateless seeded form gives the same mask
    on every run but a different one for each batch shape.

    Fix:
    The masking node becomes an Identity of the activation before scaling;
    the random ops and the mask are then unused and pruned. TensorFlow's
    dropout is inverted (scaled by 1/keep_prob in training), so inference
    needs no rescale. When no inverted-dropout scale is found, no fix is
    offered.

    Fix safety:
    Safe: this is what `training=False` builds, an identity.
    """

    code = "GD201"
    name = "live-dropout"
    summary = "Dropout drops activations at inference (a random mask multiplies the activation)"
    training_behaviour = True

    def check(self, view: GraphView, model: Model) -> Iterator[Finding]:
        for dropout in dropouts(view):
            yield self._finding(view, dropout)

    def _finding(self, view: GraphView, dropout: _Dropout) -> Finding:
        message = f"live dropout: a random mask from {view.op(dropout.random)} is applied here"
        involved = tuple(sorted(dropout.mask_nodes))
        activation = _unscaled_activation(view, dropout.scaled)
        if activation is None:
            return self.finding(
                view, dropout.apply, message, nodes=involved,
                unfixable="no inverted-dropout scale (x * 1/keep or x / keep) found before the mask",
            )
        fix = Fix(f"pass {activation} through unmasked", (
            MakeIdentity(view.scope, dropout.apply, activation),
        ))
        return self.finding(view, dropout.apply, message, nodes=involved, fix=fix)


def dropouts(view: GraphView) -> list[_Dropout]:
    """Every live dropout in `view`, once each, by the node that applies its mask."""
    found: dict[str, _Dropout] = {}
    for random in view.ops_of(ops.RANDOM_OPS):
        for dropout in _dropouts_from(view, random):
            found.setdefault(dropout.apply, dropout)
    return list(found.values())


def _dropouts_from(view: GraphView, random: str) -> Iterator[_Dropout]:
    """Follow a random op's value forward until it is applied to an activation as a mask."""
    # Each entry: a node carrying a random-derived value, and whether a threshold has made it a mask.
    frontier = [(random, False)]
    visited: set[str] = {random}
    for _ in range(_MAX_WALK):
        if not frontier:
            return
        next_frontier = []
        for name, is_mask in frontier:
            for use in view.uses(Tensor(name)):
                consumer, op = use.consumer, view.op(use.consumer)
                if is_mask and op in _APPLY_OPS:
                    dropout = _as_application(view, random, consumer, use.slot, visited)
                    if dropout is not None:
                        yield dropout
                        continue
                if op in _MASK_OPS and consumer not in visited:
                    visited.add(consumer)
                    next_frontier.append((consumer, is_mask or op in _THRESHOLD_OPS))
        frontier = next_frontier


def _as_application(view: GraphView, random: str, apply: str, mask_slot: int, mask_nodes: set[str]) -> _Dropout | None:
    inputs = view.inputs(apply)
    if view.op(apply) == "Mul":
        scaled = inputs[1 - mask_slot]
    else:  # SelectV2(mask, x * scale, zeros)
        if mask_slot != 0 or len(inputs) != 3:
            return None
        scaled = inputs[1]
    if scaled.node in mask_nodes:
        return None
    return _Dropout(random=random, apply=apply, scaled=scaled, mask_nodes=frozenset(mask_nodes))


def _unscaled_activation(view: GraphView, scaled: Tensor) -> Tensor | None:
    """The activation before the 1/keep_prob scale, if `scaled` is `x * s` or `x / keep`."""
    op = view.op(scaled.node)
    if op not in _SCALE_OPS:
        return None
    left, right = view.inputs(scaled.node)
    if _is_factor(view, right):
        return left
    if op == "Mul" and _is_factor(view, left):
        return right
    return None


def _is_factor(view: GraphView, tensor: Tensor) -> bool:
    """True if `tensor` is a scalar computed from constants and scalar placeholders only."""
    stack, seen = [tensor.node], set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        op = view.op(name)
        if op not in _FACTOR_OPS or len(seen) > 16:
            return False
        if op == "Const":
            if (view.const_shape(Tensor(name)) or ()) not in ((), (1,)):
                return False
            continue  # a Const reads nothing
        if op.startswith("Placeholder") and (view.attr(name, "shape") or []) not in ([], None):
            return False
        stack.extend(t.node for t in view.inputs(name))
    return True
