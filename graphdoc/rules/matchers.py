"""Small data-flow tests the rules share."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from graphdoc import ops
from graphdoc.graph.view import GraphView, Tensor

# Ops a keep probability, rate or noise scale is computed with.
_FACTOR_OPS = frozenset({"Const", "Identity", "Sub", "RealDiv", "Mul", "Cast", "Reciprocal", "Sqrt", "Placeholder",
                         "PlaceholderWithDefault"})


def computed_from(view: GraphView, tensor: Tensor, nodes: set[str], depth: int) -> bool:
    """Whether `tensor` is computed from any of `nodes`, at most `depth` steps back."""
    frontier, seen = [tensor.node], set()
    for _ in range(depth + 1):
        if any(node in nodes for node in frontier):
            return True
        seen.update(frontier)
        frontier = [t.node for node in frontier for t in view.inputs(node) if t.node not in seen]
    return False


def is_scalar_factor(view: GraphView, tensor: Tensor) -> bool:
    """True if `tensor` is a scalar computed from constants and scalar placeholders only."""
    op = view.op(tensor.node)  # the common cases first: every dropout asks about several operands
    if op == "Const":
        return (view.const_shape(tensor) or ()) in ((), (1,))
    if op not in _FACTOR_OPS:
        return False
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


# -- random masks (live dropout) ------------------------------------------------------------

# Ops through which random numbers become a 0/1 mask: arithmetic on the
# uniform sample, then a threshold (Floor of keep + u, or u >= rate), then a cast.
_ARITHMETIC_OPS = frozenset({"Add", "AddV2", "Sub", "Mul", "RealDiv", "Identity"})
_THRESHOLD_OPS = frozenset({"Floor", "GreaterEqual", "Greater", "Less", "LessEqual"})
_MASK_OPS = _ARITHMETIC_OPS | _THRESHOLD_OPS | frozenset({"Cast"})
_APPLY_OPS = frozenset({"Mul", "SelectV2", "Select"})
_MAX_WALK = 8


@dataclass(frozen=True)
class RandomMask:
    """A random 0/1 mask applied to an activation: what live dropout is."""

    random: str
    apply: str  # the Mul or SelectV2 that multiplies the activation by the mask
    scaled: Tensor  # the activation as the mask is applied to it
    mask: Tensor
    mask_nodes: frozenset[str]


def random_masks(view: GraphView) -> list[RandomMask]:
    """Every 0/1 mask drawn from a random op and applied to an activation (live dropout), once
    each, by the node that applies it."""
    found: dict[str, RandomMask] = {}
    for random in view.ops_of(ops.RANDOM_OPS):
        for mask in _masks_from(view, random):
            found.setdefault(mask.apply, mask)
    return list(found.values())


def _masks_from(view: GraphView, random: str) -> Iterator[RandomMask]:
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
                if op in _MASK_OPS and consumer not in visited and _reads_only_random(view, consumer, visited):
                    visited.add(consumer)
                    next_frontier.append((consumer, is_mask or op in _THRESHOLD_OPS))
        frontier = next_frontier


def _as_application(view: GraphView, random: str, apply: str, mask_slot: int, mask_nodes: set[str]) -> RandomMask | None:
    inputs = view.inputs(apply)
    if view.op(apply) == "Mul":
        scaled = inputs[1 - mask_slot]
    else:  # SelectV2(mask, x * scale, zeros)
        if mask_slot != 0 or len(inputs) != 3:
            return None
        scaled = inputs[1]
    # The mask times a constant is more of the mask (AlphaDropout's alpha' * (1 - mask)).
    if scaled.node in mask_nodes or is_scalar_factor(view, scaled):
        return None
    mask = inputs[mask_slot]
    return RandomMask(random=random, apply=apply, scaled=scaled, mask=mask, mask_nodes=frozenset(mask_nodes))


def _reads_only_random(view: GraphView, node: str, random_derived: set[str]) -> bool:
    """Whether every input of `node` carries the random value or is a scalar factor: past a node that
    mixes in an activation, the value is no longer a mask."""
    # A Const of any shape is no activation: decided without reading its shape.
    return all(t.node in random_derived or view.op(t.node) == "Const" or is_scalar_factor(view, t)
               for t in view.inputs(node))
