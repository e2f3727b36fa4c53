"""Small data-flow tests the rules share."""

from __future__ import annotations

from graphdoc.graph.view import GraphView, Tensor

# Ops a keep probability, rate or noise scale is computed with.
_FACTOR_OPS = frozenset({"Const", "Identity", "Sub", "RealDiv", "Mul", "Cast", "Reciprocal", "Sqrt", "Placeholder",
                         "PlaceholderWithDefault"})


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
