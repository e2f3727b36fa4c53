"""GD102: a decomposed BatchNorm that normalizes with the batch's moments."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from graphdoc import ops
from graphdoc.graph.edits import RedirectUses, RemoveNodes
from graphdoc.graph.model import Model
from graphdoc.graph.view import GraphView, Tensor
from graphdoc.rules.base import Finding, Fix, Rule
from graphdoc.rules.statistics import (
    BatchNormSite,
    MovingStatistics,
    find_update_ops,
    layer_scope,
    locate_moving_statistics,
    scope_of,
)

_BATCH_AXIS = 0


@dataclass(frozen=True)
class _Moments:
    """A `tf.nn.moments` computation over the batch axis, as found in the graph."""

    mean: str  # the Mean over x
    variance: str  # the Mean over SquaredDifference(x, mean)
    internal: frozenset[str]  # StopGradient and SquaredDifference between them
    mean_out: Tensor  # the mean as the normalization reads it (after Squeeze)
    variance_out: Tensor


class BatchMomentsBatchNorm(Rule):
    """What it finds:
    BatchNorm written out as separate ops, `tf.nn.moments` followed by
    `tf.nn.batch_normalization` (tf-slim with fused=False, tf.compat.v1 code,
    and every Keras 3 BatchNormalization layer, which never emits
    FusedBatchNorm), where the mean and variance are moments of the batch. The
    proof is data flow: a Mean over axes that include the batch axis, taken
    over a tensor x, a SquaredDifference of x and that mean, and a second Mean
    over the batch axis of it, whose results feed the normalization of x.
    Per-sample normalizations (LayerNorm, GroupNorm, InstanceNorm, moments
    over H and W only) and global average pooling reduce over non-batch axes
    and are not flagged.

    Why it is wrong:
    The layer normalizes with the statistics of the current batch instead of
    the moving statistics learned in training: one image's output depends on
    the other images in the batch.

    Fix:
    The normalization is rewired to read the moving mean and variance instead
    of the batch moments, found by data flow (the moving-average update ops
    write to them) or by the `<scope>/moving_mean` naming convention; the
    moments and the update ops are then unused and pruned. When the
    statistics are not in the graph, `fix --checkpoint` or `fix --calibrate`
    supplies them; without either, fix stops and names the layer.

    Fix safety:
    Safe: `tf.nn.batch_normalization` fed the moving statistics is exactly the
    inference-mode layer. Unsafe with calibrated statistics, which only
    estimate the learned ones.
    """

    code = "GD102"
    name = "batch-moments-batchnorm"
    summary = "Decomposed BatchNorm normalizes with batch moments (tf.nn.moments over the batch axis)"
    training_behaviour = True

    def check(self, view: GraphView, model: Model) -> Iterator[Finding]:
        for name in view.ops_of({"Mean"}):
            moments = _match_moments(view, name)
            if moments is not None and _normalization_readers(view, moments):
                yield self._finding(view, model, moments)

    def _finding(self, view: GraphView, model: Model, moments: _Moments) -> Finding:
        message = "BatchNorm normalizes with the mean and variance of the batch (moments over the batch axis)"
        mean_updates = find_update_ops(view, moments.mean_out)
        variance_updates = find_update_ops(view, moments.variance_out)
        site = DecomposedBatchNormSite(
            scope=view.scope,
            node=moments.mean,
            layer=_layer_scope(view, model, moments.mean),
            channels=_channels(view, moments),
            x=view.inputs(moments.mean)[0],
            reduce_axes=tuple(view.const_value(view.inputs(moments.mean)[1]).reshape(-1).tolist()),
            update_nodes=mean_updates.nodes | variance_updates.nodes,
            mean_out=moments.mean_out,
            variance_out=moments.variance_out,
        )
        fields = {"nodes": tuple(sorted({moments.variance, *moments.internal, *site.update_nodes}))}
        if moments.mean_out.node == moments.mean and not _channels_last(view, moments.mean):
            reason = "the moments keep their reduced dimensions and the channel axis is not last"
            return self.finding(view, moments.mean, message, unfixable=reason, **fields)
        stats = locate_moving_statistics(view, model, site, mean_updates, variance_updates)
        if isinstance(stats, str):
            return self.finding(view, moments.mean, message, unfixable=stats, site=site, **fields)
        return self.finding(view, moments.mean, message, fix=site.fix(stats), site=site, **fields)


@dataclass(frozen=True)
class DecomposedBatchNormSite(BatchNormSite):
    mean_out: Tensor = Tensor("")  # the batch mean as the normalization reads it
    variance_out: Tensor = Tensor("")

    def fix(self, stats: MovingStatistics, *, safe: bool = True) -> Fix:
        """The normalization reads `stats` instead of the batch moments."""
        edits = []
        if self.update_nodes:
            edits.append(RemoveNodes(self.scope, self.update_nodes))
        edits += [
            RedirectUses(self.scope, self.mean_out, stats.mean),
            RedirectUses(self.scope, self.variance_out, stats.variance),
        ]
        summary = f"normalize with the moving statistics ({stats.evidence})"
        if self.update_nodes:
            summary += f"; {len(self.update_nodes)} update op(s) removed"
        return self._fix(summary, edits, stats, safe=safe)


def _match_moments(view: GraphView, mean: str) -> _Moments | None:
    if not _reduces_batch_axis(view, mean):
        return None
    x = view.inputs(mean)[0]
    for reader in _readers_through_pass_through(view, Tensor(mean)):
        if view.op(reader.node) != "SquaredDifference" or x not in view.inputs(reader.node):
            continue
        for variance in view.consumers(reader.node):
            if view.op(variance) == "Mean" and _reduces_batch_axis(view, variance):
                internal = frozenset(
                    {reader.node} | {n for n in _pass_through_chain(view, Tensor(mean), reader.node)}
                )
                return _Moments(
                    mean=mean,
                    variance=variance,
                    internal=internal,
                    mean_out=_after_squeeze(view, mean),
                    variance_out=_after_squeeze(view, variance),
                )
    return None


def _reduces_batch_axis(view: GraphView, mean: str) -> bool:
    inputs = view.inputs(mean)
    if len(inputs) != 2:
        return False
    axes = view.const_value(inputs[1])
    # A negative axis could only be the batch axis for a rank-1 input, which
    # no BatchNorm normalizes; treat it as a non-batch axis.
    return axes is not None and _BATCH_AXIS in axes.reshape(-1).tolist()


def _readers_through_pass_through(view: GraphView, tensor: Tensor) -> Iterator[Tensor]:
    """Nodes that read `tensor` directly or through StopGradient/Identity."""
    for use in view.uses(tensor):
        if view.op(use.consumer) in ops.PASS_THROUGH_OPS:
            yield from _readers_through_pass_through(view, Tensor(use.consumer))
        else:
            yield Tensor(use.consumer)


def _pass_through_chain(view: GraphView, start: Tensor, end: str) -> Iterator[str]:
    for use in view.uses(start):
        if view.op(use.consumer) in ops.PASS_THROUGH_OPS:
            yield use.consumer
            yield from _pass_through_chain(view, Tensor(use.consumer), end)


def _after_squeeze(view: GraphView, mean: str) -> Tensor:
    for reader in view.consumers(mean):
        if view.op(reader) == "Squeeze":
            return Tensor(reader)
    return Tensor(mean)


def _normalization_readers(view: GraphView, moments: _Moments) -> list[str]:
    """Readers of the moments outside the moments computation itself."""
    skip = moments.internal | {moments.variance}
    readers = []
    for tensor in (moments.mean_out, moments.variance_out):
        readers += [use.consumer for use in view.uses(tensor) if use.consumer not in skip]
    return readers


def _channels_last(view: GraphView, mean: str) -> bool:
    axes = view.const_value(view.inputs(mean)[1])
    return axes is not None and sorted(axes.reshape(-1).tolist()) == list(range(len(axes.reshape(-1))))


def _channels(view: GraphView, moments: _Moments) -> int | None:
    """The layer's channel count, from the shape of gamma where one scales the normalization."""
    # variance -> add(eps) -> Rsqrt -> Mul(rsqrt, gamma): gamma's shape is the channel count.
    for add in view.consumers(moments.variance_out.node):
        for rsqrt in view.consumers(add):
            if view.op(rsqrt) != "Rsqrt":
                continue
            for mul in view.consumers(rsqrt):
                for operand in view.inputs(mul):
                    shape = view.const_shape(operand)
                    if view.op(mul) == "Mul" and shape is not None and len(shape) == 1:
                        return shape[0]
    return None


def _layer_scope(view: GraphView, model: Model, mean: str) -> str:
    # `<layer>/moments/mean`: the layer's scope is what precedes `moments`.
    scope = layer_scope(view, model, mean)
    return scope_of(scope) if scope.endswith("moments") else scope
