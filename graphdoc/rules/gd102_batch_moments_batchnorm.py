"""GD102: a decomposed BatchNorm that normalizes with the batch's moments."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from graphdoc.graph.edits import RedirectUses, RemoveNodes
from graphdoc.graph.frames import frame_of
from graphdoc.graph.model import Model
from graphdoc.graph.view import GraphView, Tensor
from graphdoc.ops import ADD_OPS
from graphdoc.rules.base import Finding, Fix, LayerFormula, Rule
from graphdoc.rules.matchers import computed_from
from graphdoc.rules.moments import BatchMoments, batch_moments
from graphdoc.rules.statistics import (
    BatchNormSite,
    MovingStatistics,
    find_update_ops,
    layer_scope,
    locate_moving_statistics,
    scope_of,
)

# How many steps back a renorm correction (r, d) is looked for from the scale and offset it multiplies into.
_CORRECTION_DEPTH = 7


@dataclass(frozen=True)
class _Normalization:
    """`tf.nn.batch_normalization(x, mean, variance, offset, scale, epsilon)` as found around the moments:
    x * m + (offset - mean * m) with m = rsqrt(variance + epsilon) * scale."""

    output: Tensor
    scale: Tensor | None  # gamma, without renorm's r
    offset: Tensor | None  # beta, without renorm's d
    epsilon: float
    # Batch renormalization: (composed tensor, what it is without the correction) pairs,
    # r * gamma -> gamma and d * gamma + beta -> beta, and the names of r and d.
    uncorrected: tuple[tuple[Tensor, Tensor], ...] = ()
    corrections: tuple[str, ...] = ()


class BatchMomentsBatchNorm(Rule):
    """What it finds:
    BatchNorm written out as separate ops, where the mean and variance are
    moments of the batch: `tf.nn.moments` followed by
    `tf.nn.batch_normalization` (tf-slim with fused=False, tf.compat.v1 code,
    and every Keras 3 BatchNormalization layer, which never emits
    FusedBatchNorm). The proof is data flow, in each form TensorFlow's layers
    take the moments: a Mean over axes that include the batch axis, a
    SquaredDifference of its input and that mean, and a second Mean over the
    same axes; or sums, as synchronized BatchNorm takes them (Sum(x) / count
    and Sum(x * x) / count - mean^2); either over ghost batches (x reshaped to
    [V, -1, ...] by tf_keras `virtual_batch_size`); and batch renormalization,
    which also scales and shifts by corrections r and d computed from the
    batch. Per-sample normalizations (LayerNorm, GroupNorm, InstanceNorm,
    moments over H and W only) and global average pooling reduce over
    non-batch axes and are not flagged.

    Why it is wrong:
    The layer normalizes with the statistics of the current batch instead of
    the moving statistics learned in training: one image's output depends on
    the other images in the batch.

    Fix:
    The normalization is rewired to read the moving mean and variance instead
    of the batch moments, found by data flow (the moving-average update ops
    write to them) or by the `<scope>/moving_mean` naming convention, and
    shaped as the layer reads them ([1, C, 1, 1] where NCHW moments keep their
    dimensions; entered into the loop frame of a BatchNorm inside a
    `tf.while_loop`). Renorm's r and d are dropped and ghost batches are
    undone: in inference mode both layers are plain BatchNorm. The moments
    and the update ops are then unused and pruned. When the statistics are
    not in the graph, `fix --checkpoint` or `fix --calibrate` supplies them;
    without either, fix stops and names the layer.

    Fix safety:
    Safe: `tf.nn.batch_normalization` fed the moving statistics is exactly the
    inference-mode layer. Unsafe with calibrated statistics, which only
    estimate the learned ones.

    In other formats:
    ONNX: a normalization fed by a ReduceMean over axes including the batch
    axis of the tensor it normalizes (tf2onnx's form of a training BatchNorm,
    and decomposed ones); fixed with the moving statistics from the model's
    initializers or `--checkpoint`. Keras files: a BatchNormalization called
    with training=True; fixed by removing the argument. TFLite: a MEAN over the
    batch axes that normalizes; reported, to be fixed in the source graph.
    """

    code = "GD102"
    name = "batch-moments-batchnorm"
    finds = (
        "decomposed BatchNorm normalizing with batch moments: `tf.nn.moments` over the batch axis (tf-slim "
        "`fused=False`, every Keras 3 layer, NCHW moments with kept dims), synchronized BatchNorm's sums and "
        "counts, ghost batches (`virtual_batch_size`), batch renormalization's r and d"
    )
    fixes = (
        "normalization rewired to the moving statistics, shaped as the layer reads them; renorm's corrections"
        " dropped, ghost batches undone"
    )
    summary = "Decomposed BatchNorm normalizes with batch moments (tf.nn.moments over the batch axis)"
    training_behaviour = True

    def check(self, view: GraphView, model: Model) -> Iterator[Finding]:
        for moments in batch_moments(view):
            if _normalization_readers(view, moments):
                yield self._finding(view, model, moments)

    def _finding(self, view: GraphView, model: Model, moments: BatchMoments) -> Finding:
        message = f"BatchNorm normalizes with the mean and variance of the batch ({moments.form})"
        mean_updates = find_update_ops(view, moments.mean_out)
        variance_updates = find_update_ops(view, moments.variance_out)
        normalization = _normalization(view, moments)
        site = DecomposedBatchNormSite(
            scope=view.scope,
            node=moments.mean,
            layer=_layer_scope(view, model, moments.mean),
            channels=_channels(view, normalization),
            x=moments.x,
            reduce_axes=moments.reduce_axes,
            update_nodes=mean_updates.nodes | variance_updates.nodes,
            frame=frame_of(view, Tensor(moments.mean)),
            kept_shape=moments.kept_shape,
            mean_out=moments.mean_out,
            variance_out=moments.variance_out,
            regroup=moments.regroup,
            normalization=normalization,
            channel_axis=moments.channel_axis,
        )
        corrections = normalization.corrections if normalization else ()
        involved = {moments.variance, *moments.internal, *site.update_nodes, *corrections}
        fields = {"nodes": tuple(sorted(involved))}
        stats = locate_moving_statistics(view, model, site, mean_updates, variance_updates)
        if isinstance(stats, str):
            return self.finding(view, moments.mean, message, unfixable=stats, site=site, **fields)
        return self.finding(view, moments.mean, message, fix=site.fix(stats), site=site, **fields)


@dataclass(frozen=True)
class DecomposedBatchNormSite(BatchNormSite):
    mean_out: Tensor = Tensor("")  # the batch mean as the normalization reads it
    variance_out: Tensor = Tensor("")
    regroup: str | None = None  # ghost batches: the Reshape of x to [V, -1, ...], undone by the fix
    normalization: _Normalization | None = None
    channel_axis: int = -1

    def fix(self, stats: MovingStatistics, *, safe: bool = True) -> Fix:
        """The normalization reads `stats` instead of the batch moments, without renorm's
        corrections and on x itself rather than its ghost batches."""
        edits, mean, variance = self.placed(stats)
        if self.update_nodes:
            edits.append(RemoveNodes(self.scope, self.update_nodes))
        edits += [RedirectUses(self.scope, self.mean_out, mean), RedirectUses(self.scope, self.variance_out, variance)]
        normalization = self.normalization
        if normalization is not None:
            edits += [RedirectUses(self.scope, composed, plain) for composed, plain in normalization.uncorrected]
        if self.regroup:
            edits.append(RedirectUses(self.scope, Tensor(self.regroup), self.x))
        summary = f"normalize with the moving statistics ({stats.evidence})"
        if normalization is not None and normalization.corrections:
            summary += "; renorm's corrections r and d dropped"
        if self.update_nodes:
            summary += f"; {len(self.update_nodes)} update op(s) removed"
        return self._fix(summary, edits, stats, safe=safe, formula=self._formula(stats))

    def _formula(self, stats: MovingStatistics) -> LayerFormula | None:
        normalization = self.normalization
        if normalization is None:
            return None
        return LayerFormula(
            scope=self.scope, layer=self.layer, x=self.x, output=normalization.output,
            mean=stats.mean, variance=stats.variance, scale=normalization.scale, offset=normalization.offset,
            epsilon=normalization.epsilon, channel_axis=self.channel_axis,
        )


def _normalization_readers(view: GraphView, moments: BatchMoments) -> list[str]:
    """Readers of the moments outside the moments computation itself."""
    skip = moments.internal | {moments.variance}
    readers = []
    for tensor in (moments.mean_out, moments.variance_out):
        readers += [use.consumer for use in view.uses(tensor) if use.consumer not in skip]
    return readers


def _normalization(view: GraphView, moments: BatchMoments) -> _Normalization | None:
    """The `tf.nn.batch_normalization` that reads the moments, or None if it is written some other
    way (the fix then only rewires the moments, and verification has no formula to check)."""
    source = moments.source
    for add in view.consumers(moments.variance_out.node):
        epsilon = _scalar_operand(view, add) if view.op(add) in ADD_OPS else None
        for rsqrt in (c for c in view.consumers(add) if view.op(c) == "Rsqrt"):
            if epsilon is None:
                continue
            for multiplier, scale in _multipliers(view, rsqrt):
                found = _around(view, moments, source, multiplier, scale, epsilon)
                if found is not None:
                    return found
    return None


def _multipliers(view: GraphView, rsqrt: str) -> Iterator[tuple[str, Tensor | None]]:
    """(m, scale): m = rsqrt * scale, or rsqrt itself for a layer without scale."""
    for consumer in view.consumers(rsqrt):
        if view.op(consumer) == "Mul":
            others = [t for t in view.inputs(consumer) if t.node != rsqrt]
            if len(others) == 1:
                yield consumer, others[0]
    yield rsqrt, None


def _around(view, moments: BatchMoments, source: Tensor, multiplier: str, scale, epsilon) -> _Normalization | None:
    """The normalization x * m + (offset - mean * m) around the multiplier m, if it is there."""
    scaled = _mul_reading(view, multiplier, source)
    shifted = _mul_reading(view, multiplier, moments.mean_out)
    if scaled is None or shifted is None:
        return None
    for output in view.consumers(scaled):
        inputs = view.inputs(output)
        if view.op(output) not in ADD_OPS or Tensor(scaled) not in inputs:
            continue
        shift = next(t for t in inputs if t != Tensor(scaled))
        offset = view.inputs(shift.node)[0] if view.op(shift.node) == "Sub" else None
        if view.inputs(shift.node)[-1] != Tensor(shifted):
            continue
        return _without_corrections(view, moments, Tensor(output), scale, offset, epsilon)
    return None


def _mul_reading(view: GraphView, multiplier: str, tensor: Tensor) -> str | None:
    for consumer in view.consumers(multiplier):
        if view.op(consumer) == "Mul" and tensor in view.inputs(consumer):
            return consumer
    return None


def _without_corrections(view, moments, output: Tensor, scale, offset, epsilon) -> _Normalization | None:
    """The normalization, with renorm's r (scale = r * gamma) and d (offset = d * gamma + beta)
    told apart from gamma and beta."""
    uncorrected, corrections = [], []
    batch = {moments.mean_out.node, moments.variance_out.node, moments.mean, moments.variance}
    if scale is not None and view.op(scale.node) == "Mul":
        r, gamma = _split_product(view, scale, batch)
        if r is not None:
            uncorrected.append((scale, gamma))
            corrections.append(r.node)
            scale = gamma
    if offset is not None and view.op(offset.node) in ADD_OPS:
        for term, beta in (view.inputs(offset.node), view.inputs(offset.node)[::-1]):
            d = _split_product(view, term, batch)[0] if view.op(term.node) == "Mul" else None
            if d is not None:
                uncorrected.append((offset, beta))
                corrections.append(d.node)
                offset = beta
                break
    return _Normalization(output, scale, offset, epsilon, tuple(uncorrected), tuple(corrections))


def _split_product(view, product: Tensor, batch: set[str]) -> tuple[Tensor | None, Tensor | None]:
    """(the factor computed from the batch moments, the other factor) of a Mul, or (None, None)."""
    left, right = view.inputs(product.node)[:2]
    for factor, other in ((left, right), (right, left)):
        if computed_from(view, factor, batch, _CORRECTION_DEPTH) and not computed_from(
                view, other, batch, _CORRECTION_DEPTH):
            return factor, other
    return None, None


def _scalar_operand(view: GraphView, node: str) -> float | None:
    for operand in view.inputs(node):
        value = view.const_value(operand)
        if value is not None and value.size == 1:
            return float(value.reshape(-1)[0])
    return None


def _channels(view: GraphView, normalization: _Normalization | None) -> int | None:
    """The layer's channel count, from the shape of gamma (or beta)."""
    if normalization is None:
        return None
    for tensor in (normalization.scale, normalization.offset):
        shape = view.const_shape(tensor) if tensor is not None else None
        if shape is not None and len(shape) == 1:
            return shape[0]
    return None


def _layer_scope(view: GraphView, model: Model, mean: str) -> str:
    # `<layer>/moments/mean`: the layer's scope is what precedes `moments`.
    scope = layer_scope(view, model, mean)
    layer = scope_of(scope) if scope.endswith("moments") else scope
    return layer or scope  # `moments/mean` at the root of the graph: the layer is `moments`
