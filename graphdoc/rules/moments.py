"""Batch moments as TensorFlow's layers compute them, found by data flow.

A decomposed BatchNorm in training mode takes the mean and variance of the
batch in one of these forms:
- `tf.nn.moments`: Mean(x) -> SquaredDifference(x, mean) -> Mean, over axes
  that include the batch axis (tf-slim fused=False, tf.compat.v1 code, Keras 3);
  with keep_dims on NCHW tensors the moments have shape [1, C, 1, 1];
- sums (synchronized BatchNorm, Keras 3 `synchronized=True` and tf_keras
  `SyncBatchNormalization`): Sum(x) / count and Sum(x * x) / count - mean^2,
  the count a Sum of OnesLike(x), so that replicas can add their sums up;
- ghost batches (tf_keras `virtual_batch_size=V`): either form, taken over a
  Reshape of x to [V, -1, ...], whose axes 0 and 1 are both the batch's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from graphdoc import ops
from graphdoc.graph.view import GraphView, Tensor, Use

_BATCH_AXIS = 0
_DIVISION_OPS = frozenset({"RealDiv", "DivNoNan", "Div"})
_SUM_PASS_THROUGH = ops.PASS_THROUGH_OPS | {"IdentityN"}


@dataclass(frozen=True)
class BatchMoments:
    """The batch mean and variance of one BatchNorm layer."""

    mean: str  # the node computing the mean (a Mean, or the division of a Sum)
    variance: str  # the node computing the variance
    internal: frozenset[str]  # the other nodes of the computation
    mean_out: Tensor  # the mean as the normalization reads it (after Squeeze or Reshape)
    variance_out: Tensor
    x: Tensor  # the tensor the layer normalizes
    source: Tensor  # the tensor the moments are taken of: x, or its ghost-batch regrouping
    axes: tuple[int, ...]  # the axes the moments are taken over, of x or its ghost-batch regrouping
    form: str  # how they are computed, for the report
    regroup: str | None = None  # ghost batches: the Reshape of x to [V, -1, ...]

    @property
    def reduce_axes(self) -> tuple[int, ...]:
        """The axes of x the statistics are taken over (ghost batches split x's axis 0 in two)."""
        if self.regroup is None:
            return self.axes
        return tuple(sorted({0, *(axis - 1 for axis in self.axes if axis > 1)}))

    @property
    def channel_axis(self) -> int:
        """The axis of x the statistics are per channel of: the one not reduced."""
        return next(axis for axis in range(len(self.reduce_axes) + 1) if axis not in self.reduce_axes)

    @property
    def kept_shape(self) -> tuple[int, ...] | None:
        """The shape to give the statistics' [C] where it does not broadcast to the mean as the
        normalization reads it (kept dims with the channel axis not last), else None."""
        if self.mean_out.node != self.mean:
            return None
        reduced = {*self.axes, *((0, 1) if self.regroup else ())}  # ghost batches: or a ghost batch's
        rank = len(reduced) + 1  # every axis but the channel's
        channel = next(axis for axis in range(rank) if axis not in reduced)
        return None if channel == rank - 1 else tuple(-1 if axis == channel else 1 for axis in range(rank))


def batch_moments(view: GraphView) -> Iterator[BatchMoments]:
    """Every batch-moments computation in `view`, once each."""
    for name in view.ops_of({"Mean"}):
        moments = _match_mean_form(view, name)
        if moments is not None:
            yield moments
    for name in view.ops_of({"Sum"}):
        moments = _match_sum_form(view, name)
        if moments is not None:
            yield moments


# -- tf.nn.moments --------------------------------------------------------------------------


def _match_mean_form(view: GraphView, mean: str) -> BatchMoments | None:
    source, axes = _batch_reduction(view, mean)
    if source is None:
        return None
    for reader in _readers_through(view, Tensor(mean), ops.PASS_THROUGH_OPS):
        difference = reader.consumer
        if view.op(difference) != "SquaredDifference" or source not in view.inputs(difference):
            continue
        for variance in view.consumers(difference):
            if view.op(variance) == "Mean" and _axes(view, variance) == axes:
                internal = frozenset({difference, *_pass_through_chain(view, Tensor(mean))})
                return _moments(view, source, axes, mean, variance, internal, "tf.nn.moments")
    return None


# -- sums (synchronized BatchNorm) ----------------------------------------------------------


def _match_sum_form(view: GraphView, total: str) -> BatchMoments | None:
    source, axes = _batch_reduction(view, total)
    if source is None or view.op(source.node) in ("Square", "OnesLike"):
        return None
    for mean, count in _divisions(view, Tensor(total)):
        for square in _squares_of(view, Tensor(mean)):
            for variance in view.consumers(square):
                squares_mean = _mean_of_squares(view, variance, square, source, count, axes)
                if squares_mean is not None:
                    internal = frozenset({total, square, *squares_mean, *_count_nodes(view, count)})
                    return _moments(view, source, axes, mean, variance, internal, "sums (synchronized BatchNorm)")
    return None


def _divisions(view: GraphView, total: Tensor) -> Iterator[tuple[str, Tensor]]:
    """(division node, count) for each `total / count` reading `total`, through identities."""
    for use in _readers_through(view, total, _SUM_PASS_THROUGH):
        if view.op(use.consumer) in _DIVISION_OPS and use.slot == 0:
            yield use.consumer, view.inputs(use.consumer)[1]


def _squares_of(view: GraphView, tensor: Tensor) -> Iterator[str]:
    for use in view.uses(tensor):
        if _is_square_of(view, use.consumer, tensor):
            yield use.consumer


def _is_square_of(view: GraphView, node: str, tensor: Tensor) -> bool:
    inputs = view.inputs(node)
    return (view.op(node) == "Square" and inputs == (tensor,)) or (view.op(node) == "Mul" and inputs == (tensor, tensor))


def _mean_of_squares(view, variance: str, square: str, x: Tensor, count: Tensor, axes) -> list[str] | None:
    """The nodes of `Sum(x * x) / count`, if `variance` is that minus `square`, else None."""
    if view.op(variance) != "Sub" or view.inputs(variance)[1] != Tensor(square):
        return None
    division = view.inputs(variance)[0].node
    if view.op(division) not in _DIVISION_OPS or view.inputs(division)[1] != count:
        return None
    total = _through(view, view.inputs(division)[0], _SUM_PASS_THROUGH)
    if view.op(total.node) != "Sum" or _axes(view, total.node) != axes:
        return None
    squared = view.inputs(total.node)[0].node
    return [division, total.node, squared] if _is_square_of(view, squared, x) else None


def _count_nodes(view: GraphView, count: Tensor) -> list[str]:
    total = _through(view, count, _SUM_PASS_THROUGH)
    return [total.node, *(t.node for t in view.inputs(total.node)[:1])] if view.op(total.node) == "Sum" else []


# -- shared ---------------------------------------------------------------------------------


def _batch_reduction(view: GraphView, node: str) -> tuple[Tensor | None, tuple[int, ...]]:
    """The input of a reduction over the batch axis (axis 1 of a ghost-batch regrouping), and
    its axes; (None, ()) for any other reduction."""
    inputs = view.inputs(node)
    if len(inputs) != 2:
        return None, ()
    axes = _axes(view, node)
    # Ghost batches split the batch axis in two: [V, -1, ...], the V samples of a ghost batch
    # along axis 0. A negative axis could only be the batch axis for a rank-1 input, which no
    # BatchNorm normalizes; treat it as a non-batch axis.
    batch_axes = {0, 1} if _ghost_regrouping(view, inputs[0]) else {_BATCH_AXIS}
    return (inputs[0], axes) if batch_axes & set(axes) else (None, ())


def _axes(view: GraphView, node: str) -> tuple[int, ...]:
    axes = view.const_value(view.inputs(node)[1])
    return () if axes is None else tuple(sorted(int(a) for a in axes.reshape(-1)))


def _ghost_regrouping(view: GraphView, tensor: Tensor) -> str | None:
    """The Reshape of x to [V, -1, *x.shape[1:]] that `tensor` is (tf_keras virtual_batch_size),
    perhaps cast to float32 under mixed precision; None if it is not one."""
    reshape = _through(view, tensor, _CASTS).node
    if view.op(reshape) != "Reshape":
        return None
    shape = view.inputs(reshape)[1]
    if view.op(shape.node) != "ConcatV2":
        return None
    head = view.const_value(view.inputs(shape.node)[0])
    if head is None or head.size != 2 or head.reshape(-1)[1] != -1 or head.reshape(-1)[0] <= 0:
        return None
    return reshape


_CASTS = frozenset({"Cast", "Identity"})


def _moments(view, source: Tensor, axes, mean: str, variance: str, internal, form: str) -> BatchMoments:
    regroup = _ghost_regrouping(view, source)
    return BatchMoments(
        mean=mean, variance=variance, internal=internal,
        mean_out=_as_read(view, mean), variance_out=_as_read(view, variance),
        x=view.inputs(regroup)[0] if regroup else source, source=source, axes=axes,
        form=f"{form}, in ghost batches" if regroup else form, regroup=regroup,
    )


def _as_read(view: GraphView, moment: str) -> Tensor:
    """The moment as the normalization reads it: squeezed, or flattened to [C] (tf-slim on NCHW), or as is.

    The variance of the sums form is clipped at zero first (Maximum)."""
    tensor = Tensor(moment)
    for reader in view.consumers(moment):
        if view.op(reader) == "Maximum":
            tensor = Tensor(reader)
    for reader in view.consumers(tensor.node):
        if view.op(reader) == "Squeeze" or (view.op(reader) == "Reshape" and _flattens(view, reader)):
            return Tensor(reader)
    return tensor


def _flattens(view: GraphView, reshape: str) -> bool:
    shape = view.const_value(view.inputs(reshape)[1])
    return shape is not None and shape.size == 1


def _readers_through(view: GraphView, tensor: Tensor, passing: frozenset[str]) -> Iterator[Use]:
    """The uses of `tensor` by nodes not in `passing`, looking through those that are."""
    for use in view.uses(tensor):
        if view.op(use.consumer) in passing:
            yield from _readers_through(view, Tensor(use.consumer), passing)
        else:
            yield use


def _through(view: GraphView, tensor: Tensor, passing: frozenset[str]) -> Tensor:
    """`tensor`'s source, looking back through the ops in `passing`."""
    while view.op(tensor.node) in passing and view.inputs(tensor.node):
        tensor = view.inputs(tensor.node)[0]
    return tensor


def _pass_through_chain(view: GraphView, start: Tensor) -> Iterator[str]:
    for use in view.uses(start):
        if view.op(use.consumer) in ops.PASS_THROUGH_OPS:
            yield use.consumer
            yield from _pass_through_chain(view, Tensor(use.consumer))
