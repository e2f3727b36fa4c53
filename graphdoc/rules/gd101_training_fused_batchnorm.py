"""GD101: a fused BatchNorm in training mode."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from graphdoc import ops
from graphdoc.graph.edits import RemoveNodes, SetAttrs, SetInputs
from graphdoc.graph.frames import frame_of
from graphdoc.graph.model import Model
from graphdoc.graph.view import GraphView, Tensor
from graphdoc.rules.base import Finding, Fix, LayerFormula, Rule
from graphdoc.rules.statistics import (
    NO_UPDATES,
    BatchNormSite,
    MovingStatistics,
    find_update_ops,
    locate_moving_statistics,
    layer_scope,
)

_MEAN_SLOT, _VARIANCE_SLOT = ops.FUSED_MEAN_SLOT, ops.FUSED_VARIANCE_SLOT


class TrainingModeFusedBatchNorm(Rule):
    """What it finds:
    FusedBatchNorm, FusedBatchNormV2 and FusedBatchNormV3 nodes whose
    `is_training` attribute is true. The attribute's OpDef default is true, so
    a node without it (SavedModels strip attributes equal to their default) is
    in training mode too. Both forms seen in exported graphs are found: the TF1
    form (tf-slim, tf.layers, tf.contrib) whose mean and variance inputs are
    empty constants, and the Keras 2 form whose mean and variance inputs are
    the moving statistics with an exponential_avg_factor below 1.

    Why it is wrong:
    In training mode the op ignores its mean and variance inputs and
    normalizes every channel with the mean and variance of the current batch.
    The output for one image then depends on the other images in the batch,
    and a batch of one normalizes each channel to beta exactly.

    Fix:
    `is_training` is set to false and the mean and variance inputs are wired
    to the layer's moving statistics, found by data flow (the moving-average
    update ops write to them; Keras 2 already feeds them in) or by the
    `<scope>/moving_mean` naming convention. The update ops, which cannot run
    in a frozen graph, are removed. When the statistics are not in the graph
    (freezing usually prunes them), `fix --checkpoint` or `fix --calibrate`
    supplies them; without either, fix stops and names the layer.

    Fix safety:
    Safe: the result is the op TensorFlow builds with training=False, fed the
    statistics stored with the model or its checkpoint. Unsafe with
    calibrated statistics, which only estimate the learned ones.

    In other formats:
    ONNX: a BatchNormalization with training_mode=1 (PyTorch's exporter in
    training mode writes it); fixed by training_mode=0, its two extra outputs
    dropped and their readers given the running statistics it takes as inputs.
    """

    code = "GD101"
    name = "training-fused-batchnorm"
    finds = "`FusedBatchNorm`/`V2`/`V3` with `is_training` true, or absent (its default is true)"
    fixes = "inference mode, fed the moving statistics; update ops removed"
    summary = "Fused BatchNorm normalizes with batch statistics (is_training=true)"
    training_behaviour = True

    def check(self, view: GraphView, model: Model) -> Iterator[Finding]:
        for name in view.ops_of(ops.FUSED_BATCH_NORM_OPS):
            if view.attr(name, "is_training"):
                yield self._finding(view, model, name)

    def _finding(self, view: GraphView, model: Model, name: str) -> Finding:
        node = view.nodes[name]
        attrs = node.attr
        how = "is_training=true" if "is_training" in attrs else "is_training absent, and its default is true"
        message = f"{node.op} normalizes with the batch's mean and variance ({how})"
        inputs = view.inputs(name)
        if len(inputs) < 5:
            return self.finding(view, name, message, unfixable=f"{node.op} has {len(inputs)} inputs, expected 5")
        # A frozen graph rarely reads the batch moments: then there is nothing to search.
        moments_read = bool(view.read_ports(name) - {0})
        mean_updates = find_update_ops(view, Tensor(name, 1)) if moments_read else NO_UPDATES
        variance_updates = find_update_ops(view, Tensor(name, 2)) if moments_read else NO_UPDATES
        site = FusedBatchNormSite(
            scope=view.scope,
            node=name,
            layer=layer_scope(view, model, name),
            channels=_channels(view, inputs[1]),
            x=inputs[0],
            reduce_axes=(0, 2, 3) if view.attr(name, "data_format") == b"NCHW" else (0, 1, 2),
            update_nodes=mean_updates.nodes | variance_updates.nodes,
            scale=inputs[ops.FUSED_SCALE_SLOT],
            frame=frame_of(view, Tensor(name)),
            sets_avg_factor="exponential_avg_factor" in attrs,
            offset=inputs[ops.FUSED_SCALE_SLOT + 1],
            # FusedBatchNorm's default epsilon, where the attribute is left out.
            epsilon=attrs["epsilon"].f if "epsilon" in attrs else 0.0001,
        )
        fields = {"nodes": tuple(sorted(site.update_nodes)), "site": site}
        readers = _other_readers_of_moments(view, name, site.update_nodes) if moments_read else []
        if readers:
            return self.finding(
                view, name, message, unfixable=f"its batch moments are also read by {', '.join(readers[:3])}",
                **{**fields, "site": None},
            )
        stats = _statistics(view, model, site, mean_updates, variance_updates)
        if isinstance(stats, str):
            return self.finding(view, name, message, unfixable=stats, **fields)
        return self.finding(view, name, message, fix=site.fix(stats), **fields)


@dataclass(frozen=True)
class FusedBatchNormSite(BatchNormSite):
    sets_avg_factor: bool = False
    offset: Tensor | None = None  # beta
    epsilon: float = 0.0001

    def fix(self, stats: MovingStatistics, *, safe: bool = True) -> Fix:
        """Inference mode, fed `stats`, with the moving-average updates removed."""
        attrs: tuple[tuple[str, bool | float], ...] = (("is_training", False),)
        if self.sets_avg_factor:
            # Only read in training mode; 1.0 is what an inference build writes.
            # Not added where absent: TF 1.x releases before 2.2 do not know it.
            attrs += (("exponential_avg_factor", 1.0),)
        edits, mean, variance = self.placed(stats)
        edits += [
            SetAttrs(self.scope, self.node, attrs),
            SetInputs(self.scope, self.node, ((_MEAN_SLOT, mean), (_VARIANCE_SLOT, variance))),
        ]
        if self.update_nodes:
            edits.append(RemoveNodes(self.scope, self.update_nodes))
        summary = f"inference mode with the moving statistics ({stats.evidence})"
        if self.update_nodes:
            summary += f"; {len(self.update_nodes)} update op(s) removed"
        formula = LayerFormula(
            scope=self.scope, layer=self.layer, x=self.x, output=Tensor(self.node), mean=stats.mean,
            variance=stats.variance, scale=self.scale, offset=self.offset, epsilon=self.epsilon,
            channel_axis=1 if self.reduce_axes == (0, 2, 3) else -1,
        )
        return self._fix(summary, edits, stats, safe=safe, formula=formula)


def _statistics(
    view: GraphView, model: Model, site: FusedBatchNormSite, mean_updates, variance_updates
) -> MovingStatistics | str:
    mean_input, variance_input = view.inputs(site.node)[_MEAN_SLOT : _VARIANCE_SLOT + 1]
    if view.const_shape(mean_input) == (0,):
        # TF1 form: empty placeholders for the statistics, which live elsewhere.
        return locate_moving_statistics(view, model, site, mean_updates, variance_updates)
    # Keras 2 form: the moving statistics are already the inputs.
    mean, variance = view.resolve(mean_input), view.resolve(variance_input)
    if view.op(mean.node) != "Const" or view.op(variance.node) != "Const":
        return f"its mean and variance inputs ({mean.node}, {variance.node}) are not constants in this file"
    return MovingStatistics(mean_input, variance_input, "inputs 3 and 4").judged(view)


def _other_readers_of_moments(view: GraphView, name: str, update_nodes: frozenset[str]) -> list[str]:
    """Readers of outputs 1 and up (batch moments, reserve space) other than the update ops.

    OptionalFromValue does not count: control flow v2 wraps a branch's
    intermediates in it for the gradient, which a frozen graph never takes.
    """
    return [
        consumer
        for consumer in view.consumers(name)
        if consumer not in update_nodes and view.op(consumer) not in _GRADIENT_PLUMBING
        and any(t.node == name and t.port > 0 for t in view.inputs(consumer))
    ]


_GRADIENT_PLUMBING = frozenset({"OptionalFromValue"})


def _channels(view: GraphView, scale: Tensor) -> int | None:
    shape = view.const_shape(scale)
    return shape[0] if shape and len(shape) == 1 else None
