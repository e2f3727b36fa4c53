"""GD202: Gaussian noise that is still added to, or multiplied into, activations."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from graphdoc.graph.edits import MakeIdentity
from graphdoc.graph.model import Model
from graphdoc.graph.view import GraphView, Tensor
from graphdoc.ops import ADD_OPS
from graphdoc.rules.base import Finding, Fix, Rule
from graphdoc.rules.matchers import is_scalar_factor

NORMAL_OPS = frozenset({
    "RandomStandardNormal", "StatelessRandomNormal", "StatelessRandomNormalV2",
    "TruncatedNormal", "StatelessTruncatedNormal",
})
# The arithmetic that makes a standard normal sample the layer's noise: * stddev, + mean.
_NOISE_OPS = ADD_OPS | frozenset({"Mul", "Sub", "Identity", "Cast"})
_MAX_WALK = 6


@dataclass(frozen=True)
class _Noise:
    random: str
    apply: str  # the Add or Mul that applies the noise to the activation
    activation: Tensor
    mean: float  # the noise's mean: 0 for additive noise, 1 for multiplicative
    nodes: frozenset[str]


class LiveNoise(Rule):
    """What it finds:
    Keras' training-only noise layers left active: GaussianNoise adds
    `stddev * N(0, 1)` to the activation, GaussianDropout multiplies it by
    `1 + stddev * N(0, 1)`. The proof is data flow: a normal random op,
    scaled and shifted by constants only, added to (mean 0) or multiplied
    into (mean 1) a tensor that is not itself random.
    A sample drawn on purpose (a VAE's `mean + std * eps`, where std is
    computed from the input) is neither and is not flagged.

    Why it is wrong:
    Both layers exist to regularize training and are identities at
    inference. Left active, the same input gives a different answer on every
    call.

    Fix:
    The node that applies the noise becomes an Identity of the activation;
    the random ops are then unused and pruned.

    Fix safety:
    Safe: this is what `training=False` builds, an identity.

    In other formats:
    Keras files: GaussianNoise or GaussianDropout called with training=True;
    fixed by removing the argument.
    """

    code = "GD202"
    name = "live-noise"
    finds = "Gaussian noise added to (GaussianNoise) or multiplied into (GaussianDropout) an activation"
    fixes = "the node applying it becomes an identity"
    summary = "Gaussian noise is added to or multiplied into activations at inference (GaussianNoise, GaussianDropout)"
    training_behaviour = True

    def check(self, view: GraphView, model: Model) -> Iterator[Finding]:
        for random in view.ops_of(NORMAL_OPS):
            noise = _noise_from(view, random)
            if noise is not None:
                yield self._finding(view, noise)

    def _finding(self, view: GraphView, noise: _Noise) -> Finding:
        kind = "added to" if noise.mean == 0 else "multiplied into"
        message = f"live noise: a sample of {view.op(noise.random)} is {kind} {noise.activation} here"
        fix = Fix(f"pass {noise.activation} through without noise", (
            MakeIdentity(view.scope, noise.apply, noise.activation),
        ))
        return self.finding(view, noise.apply, message, nodes=tuple(sorted(noise.nodes)), fix=fix)


def _noise_from(view: GraphView, random: str) -> _Noise | None:
    """Follow a normal sample through its constant scale and shift to where it meets an activation."""
    tensor, mean, nodes = Tensor(random), 0.0, {random}
    for _ in range(_MAX_WALK):
        consumers = view.consumers(tensor.node)
        if len(consumers) != 1 or view.op(consumers[0]) not in _NOISE_OPS:
            return None
        node = consumers[0]
        others = [t for t in view.inputs(node) if t != tensor]
        if view.op(node) in ("Identity", "Cast") or (others and all(is_scalar_factor(view, t) for t in others)):
            mean = _shifted_mean(view, node, others, mean)
            tensor = Tensor(node)
            nodes.add(node)
            continue
        if len(others) != 1 or view.op(node) not in (ADD_OPS | {"Mul"}):
            return None
        # A mean-0 sample added, or a mean-1 sample multiplied: the noise layers' forms.
        if (view.op(node) == "Mul") == (mean == 1.0) and mean in (0.0, 1.0):
            return _Noise(random, node, others[0], mean, frozenset(nodes))
        return None
    return None


def _shifted_mean(view: GraphView, node: str, others: list[Tensor], mean: float) -> float:
    """The sample's mean after `node`; NaN once it is not known (a shift that is not a constant)."""
    op = view.op(node)
    if op in ("Identity", "Cast"):
        return mean
    value = view.const_value(others[0])
    if value is None or value.size != 1:
        return float("nan")
    constant = float(value.reshape(-1)[0])
    if op == "Mul":
        return mean * constant
    return mean + constant if op in ADD_OPS else mean - constant
