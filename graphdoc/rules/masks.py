"""Random dropout masks written out as arithmetic, found once for every format that writes them so.

ONNX exports and TFLite conversions both spell dropout as a random op whose
values are compared into a 0/1 mask that multiplies (or selects) the
activation, scaled by 1/keep: `x * Cast(U >= rate) * scale`,
`Where(U >= rate, x * scale, 0)`, tf2onnx's `Cast(m) * (x * scale) + Cast(Not m) * 0`.
The walk is written here against rules/dataflow.py, in which each format
names its ops by kind; TensorFlow graphs have their own, richer matchers
(rules/matchers.py).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from graphdoc.rules.dataflow import ADD, BINARY_RANDOM, COMPARE, DIV, MUL, PASS, SELECT, SUB, UNARY, Dataflow

# What a random value passes through on its way to being a mask (with constants only).
_MASK_KINDS = frozenset({COMPARE, UNARY, PASS, ADD, SUB, MUL, DIV})

@dataclass(frozen=True)
class AppliedMask:
    path: tuple[str, ...]  # the mask's nodes, then the one applying it to the activation
    applied_by: object  # that node (a multiplication or a select)
    output: Hashable  # what the dropout computes: the masked activation, scaled
    activation: Hashable  # what it drops, without the 1/keep scaling


def applied_mask(flow: Dataflow, random_node) -> AppliedMask | None:
    """The mask `random_node`'s values make and the activation it drops; None for noise (values
    never compared into a mask: a VAE's sample), or a mask applied more than once."""
    region = _mask_region(flow, random_node)
    if region is None:
        return None
    tensors, zeros, path = region
    applying = {id(reader): reader for tensor in tensors for reader in flow.readers(tensor)
                if flow.kind(reader) in (MUL, SELECT) and len(_outside(flow, reader, tensors)) == 1}
    if len(applying) != 1:
        return None
    [node] = applying.values()
    [operand] = _outside(flow, node, tensors)
    inputs = flow.inputs(node)
    if flow.kind(node) == SELECT and (inputs[1] != operand or not _all_zero(flow, inputs[2])):
        return None
    return AppliedMask((*path, flow.name(node)), node, _scaled_output(flow, flow.output(node), zeros),
                       _unscaled(flow, operand))


def _mask_region(flow: Dataflow, node):
    """The tensors computed from `node`'s random values and constants alone, those of them known to
    be zero (a mask multiplied by 0), and their nodes; None unless the values become binary."""
    start = flow.output(node)
    tensors, zeros, path, stack = {start}, set(), [], [start]
    binary = flow.kind(node) == BINARY_RANDOM
    while stack:
        for reader in flow.readers(stack.pop()):
            output = flow.output(reader)
            if flow.kind(reader) not in _MASK_KINDS or _outside(flow, reader, tensors) or output in tensors:
                continue
            binary |= flow.kind(reader) == COMPARE
            if flow.kind(reader) == MUL and any(_all_zero(flow, t) for t in flow.inputs(reader)):
                zeros.add(output)
            tensors.add(output)
            path.append(flow.name(reader))
            stack.append(output)
    return (tensors, zeros, path) if binary else None


def _outside(flow: Dataflow, node, region: set) -> list:
    """`node`'s inputs that are neither in `region` nor constants."""
    return [t for t in flow.inputs(node) if t not in region and flow.constant(t) is None]


def _scaled_output(flow: Dataflow, output, zeros: set):
    """Past the 1/keep scaling after the mask, and past the written-out select's zero branch."""
    while len(flow.readers(output)) == 1:
        reader = flow.readers(output)[0]
        if _scalar_factor(flow, reader, output) is not None:
            output = flow.output(reader)
        elif flow.kind(reader) == ADD and any(t in zeros for t in flow.inputs(reader) if t != output):
            output = flow.output(reader)
        else:
            break
    return output


def _unscaled(flow: Dataflow, tensor):
    """The activation before the 1/keep scaling applied to it ahead of the mask."""
    node = flow.producing(tensor)
    if node is not None and flow.kind(node) in (MUL, DIV):
        inputs = flow.inputs(node)
        for operand in inputs[: 2 if flow.kind(node) == MUL else 1]:
            if _scalar_factor(flow, node, operand) is not None:
                return operand
    return tensor


def _scalar_factor(flow: Dataflow, node, operand):
    """The constant scalar `node` multiplies or divides `operand` by, if it is one."""
    inputs = flow.inputs(node)
    if flow.kind(node) not in (MUL, DIV) or operand not in inputs:
        return None
    others = [t for t in inputs if t != operand]
    if len(others) != 1 or (flow.kind(node) == DIV and inputs[0] != operand):
        return None
    value = flow.constant(others[0])
    return value if value is not None and np.size(value) == 1 else None


def _all_zero(flow: Dataflow, tensor) -> bool:
    value = flow.constant(tensor)
    return value is not None and np.size(value) > 0 and not np.any(value)
