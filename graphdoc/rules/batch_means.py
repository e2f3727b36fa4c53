"""A batch mean that normalizes the tensor it was reduced from: BatchNorm in training mode,
written out as arithmetic (ONNX exports, TFLite conversions), found once for both.

A per-sample mean (global pooling, squeeze-excitation, LayerNorm over the last
axes) reduces no batch axis; a batch mean nothing normalizes with (a loss, a
metric) is not a BatchNorm.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from graphdoc.rules.dataflow import BATCHNORM, MEAN, SQUARED_DIFFERENCE, SUB, Dataflow, passed_on, through


@dataclass(frozen=True)
class BatchMean:
    x: Hashable  # the tensor reduced
    axes: tuple[int, ...]  # the reduced axes, counted from the front, 0 among them
    rank: int
    normalizer: object  # the node that normalizes x with the mean


def normalizing_batch_mean(flow: Dataflow, node) -> BatchMean | None:
    if flow.kind(node) != MEAN:
        return None
    reduced = flow.reduced(node)
    if reduced is None:
        return None
    x, axes, rank = reduced
    if rank < 2 or 0 not in {axis % rank for axis in axes}:
        return None
    normalizer = _normalizer(flow, x, flow.output(node))
    return None if normalizer is None else BatchMean(x, tuple(sorted({a % rank for a in axes})), rank, normalizer)


def _normalizer(flow: Dataflow, x, mean):
    """The node normalizing `x` by `mean`: a BatchNormalization taking it as its mean (first: its
    variance input names the variance), else x - mean, else the squared difference of the two."""
    uses, source = passed_on(flow, mean), through(flow, x)
    readers = [reader for tensor in sorted(uses, key=str) for reader in flow.readers(tensor)]

    def normalizes(reader) -> bool:
        inputs, kind = flow.inputs(reader), flow.kind(reader)
        if kind == BATCHNORM:
            return len(inputs) > 3 and inputs[3] in uses and through(flow, inputs[0]) == source
        if kind == SUB:
            return len(inputs) == 2 and inputs[1] in uses and through(flow, inputs[0]) == source
        return (kind == SQUARED_DIFFERENCE and any(t in uses for t in inputs)
                and any(through(flow, t) == source for t in inputs))

    for kind in (BATCHNORM, SUB, SQUARED_DIFFERENCE):
        found = next((reader for reader in readers if flow.kind(reader) == kind and normalizes(reader)), None)
        if found is not None:
            return found
    return None
