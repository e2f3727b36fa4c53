"""GD201: dropout that still drops activations."""

from __future__ import annotations

from collections.abc import Iterator

from graphdoc.graph.edits import MakeIdentity
from graphdoc.graph.model import Model
from graphdoc.graph.view import GraphView, Tensor
from graphdoc.ops import ADD_OPS
from graphdoc.rules.base import Finding, Fix, Rule
from graphdoc.rules.matchers import RandomMask, computed_from, is_scalar_factor, random_masks

_SCALE_OPS = frozenset({"Mul", "RealDiv"})


class LiveDropout(Rule):
    """What it finds:
    Dropout that is active in the exported graph: an activation multiplied by,
    or selected with, a 0/1 mask derived from a random op. Every form
    TensorFlow has emitted is recognized by this data flow, not by names:
    TF 1.x `Floor(keep_prob + RandomUniform)` times `x / keep_prob`; the
    TF 1.13 form `x * (1/keep) * Cast(RandomUniform >= rate)`; TF 2.x
    `SelectV2(RandomUniform >= rate, x * scale, 0)`, with Sub and RealDiv when
    keep_prob is a tensor; the Keras 3 stateless form built on
    StatelessRandomUniformV2; and AlphaDropout's affine form,
    `a * (x * mask + alpha' * (1 - mask)) + b`.

    Why it is wrong:
    At inference the model should see every activation. A live dropout zeroes
    a random share of them on every call, so the same input gives a
    different answer each time; the stateless seeded form gives the same mask
    on every run but a different one for each batch shape.

    Fix:
    The masking node becomes an Identity of the activation before scaling;
    the random ops and the mask are then unused and pruned. TensorFlow's
    dropout is inverted (scaled by 1/keep_prob in training), so inference
    needs no rescale. AlphaDropout's whole affine transform becomes the
    identity, as it is at inference. When neither an inverted-dropout scale
    nor AlphaDropout's transform is found, no fix is offered.

    Fix safety:
    Safe: this is what `training=False` builds, an identity.

    In other formats:
    ONNX: a Dropout whose training_mode is true or a graph input, and random
    masks (RandomUniform(Like), RandomNormal(Like), Bernoulli compared into a
    mask); bypassed. Keras files: a dropout layer called with training=True.
    TFLite: RANDOM_UNIFORM compared into a mask; reported.
    """

    code = "GD201"
    name = "live-dropout"
    finds = (
        "an activation multiplied or selected by a mask derived from a random op (TF 1.x, TF 1.13, TF 2.x, "
        "Keras 3 stateless forms, AlphaDropout's affine mask)"
    )
    fixes = "the masking node becomes an identity of the unscaled activation"
    summary = "Dropout drops activations at inference (a random mask multiplies the activation)"
    training_behaviour = True

    def check(self, view: GraphView, model: Model) -> Iterator[Finding]:
        for dropout in random_masks(view):
            yield self._finding(view, dropout)

    def _finding(self, view: GraphView, dropout: RandomMask) -> Finding:
        message = f"live dropout: a random mask from {view.op(dropout.random)} is applied here"
        involved = tuple(sorted(dropout.mask_nodes))
        activation, end = _unscaled_activation(view, dropout.scaled), dropout.apply
        if activation is None:
            activation, end = dropout.scaled, _alpha_dropout_end(view, dropout)
        if end is None:
            return self.finding(
                view, dropout.apply, message, nodes=involved,
                unfixable="no inverted-dropout scale (x * 1/keep or x / keep) found before the mask",
            )
        fix = Fix(f"pass {activation} through unmasked", (MakeIdentity(view.scope, end, activation),))
        return self.finding(view, dropout.apply, message, nodes=involved, fix=fix)


def _alpha_dropout_end(view: GraphView, dropout: RandomMask) -> str | None:
    """AlphaDropout, `a * (x * mask + alpha' * (1 - mask)) + b`: the node computing it, or None."""
    combined = _single_consumer(view, dropout.apply, ADD_OPS)
    if combined is None or not any(computed_from(view, t, {dropout.mask.node}, 3) for t in view.inputs(combined)
                                   if t.node != dropout.apply):
        return None
    scaled = _single_consumer(view, combined, frozenset({"Mul"}))
    shifted = _single_consumer(view, scaled, ADD_OPS) if scaled else None
    if shifted is None or not all(is_scalar_factor(view, t) for t in (*view.inputs(scaled), *view.inputs(shifted))
                                  if t.node not in (combined, scaled)):
        return None
    return shifted


def _single_consumer(view: GraphView, node: str, op_types: frozenset[str]) -> str | None:
    consumers = view.consumers(node)
    return consumers[0] if len(consumers) == 1 and view.op(consumers[0]) in op_types else None


def _unscaled_activation(view: GraphView, scaled: Tensor) -> Tensor | None:
    """The activation before the 1/keep_prob scale, if `scaled` is `x * s` or `x / keep`."""
    op = view.op(scaled.node)
    if op not in _SCALE_OPS:
        return None
    left, right = view.inputs(scaled.node)
    if is_scalar_factor(view, right):
        return left
    if op == "Mul" and is_scalar_factor(view, left):
        return right
    return None
