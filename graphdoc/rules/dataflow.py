"""Graph bodies as the format-neutral rules read them: ops by kind, tensors, constants.

ONNX exports and TFLite conversions spell training mode out in plain
arithmetic (batch means, compared random masks); the rules that find it there
(rules/masks.py, rules/batch_means.py) are written once, against this
protocol, and each format adapts its graph to it (onnx/rules.py, tflite/rules.py).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol

import numpy as np

# Op kinds, as a format's dataflow names them.
RANDOM, BINARY_RANDOM, COMPARE, UNARY, ADD, SUB, MUL, DIV, SELECT = (
    "random", "binary random", "compare", "unary", "add", "sub", "mul", "div", "select")
MEAN, SQUARED_DIFFERENCE, BATCHNORM = "mean", "squared difference", "batchnorm"  # BATCHNORM: x, ..., mean (slot 3)
PASS = "pass"  # passes its first input on unchanged in value: Identity, Squeeze, Reshape


class Dataflow(Protocol):
    """A graph body as the format-neutral rules read it; tensors and nodes are whatever the format uses."""

    def kind(self, node) -> str: ...  # one of the kinds above, or "" for any other op

    def inputs(self, node) -> list: ...

    def output(self, node) -> Hashable: ...  # the first output

    def readers(self, tensor) -> list: ...

    def producing(self, tensor): ...  # the node computing `tensor`, or None

    def constant(self, tensor) -> np.ndarray | None: ...

    def name(self, node) -> str: ...

    def reduced(self, node) -> tuple[Hashable, list[int], int] | None: ...  # a MEAN's input, its axes, its rank


def through(flow: Dataflow, tensor):
    """`tensor` with the pass-through ops that compute it stripped (Squeeze(Identity(t)) -> t)."""
    node = flow.producing(tensor)
    while node is not None and flow.kind(node) == PASS:
        tensor = flow.inputs(node)[0]
        node = flow.producing(tensor)
    return tensor


def passed_on(flow: Dataflow, tensor) -> set:
    """`tensor` and what passes it on unchanged."""
    found, stack = set(), [tensor]
    while stack:
        current = stack.pop()
        found.add(current)
        stack += [flow.output(reader) for reader in flow.readers(current) if flow.kind(reader) == PASS]
    return found
