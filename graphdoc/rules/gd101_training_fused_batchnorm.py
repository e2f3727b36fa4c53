"""GD101: a fused BatchNorm in training mode."""

from __future__ import annotations

from collections.abc import Iterator

from graphdoc import ops
from graphdoc.graph.edits import RemoveNodes, SetAttr, SetInput
from graphdoc.graph.view import GraphView, Tensor
from graphdoc.rules.base import Finding, Fix, Rule
from graphdoc.rules.statistics import MovingStatistics, find_update_ops, locate_moving_statistics, scope_of

_MEAN_SLOT, _VARIANCE_SLOT = 3, 4


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
    (freezing usually prunes them) no fix is offered and the finding says so.

    Fix safety:
    Safe: the result is the op TensorFlow builds with training=False, fed the
    statistics stored with the model.
    """

    code = "GD101"
    name = "training-fused-batchnorm"
    summary = "Fused BatchNorm normalizes with batch statistics (is_training=true)"

    def check(self, view: GraphView) -> Iterator[Finding]:
        for name in view.ops_of(ops.FUSED_BATCH_NORM_OPS):
            if view.attr(name, "is_training"):
                yield self._finding(view, name)

    def _finding(self, view: GraphView, name: str) -> Finding:
        node = view.nodes[name]
        how = "is_training=true" if "is_training" in node.attr else "is_training absent, and its default is true"
        message = f"{node.op} normalizes with the batch's mean and variance ({how})"
        inputs = view.inputs(name)
        if len(inputs) < 5:
            return self.finding(view, name, message, unfixable=f"{node.op} has {len(inputs)} inputs, expected 5")
        mean_updates = find_update_ops(view, Tensor(name, 1))
        variance_updates = find_update_ops(view, Tensor(name, 2))
        involved = tuple(sorted(mean_updates.nodes | variance_updates.nodes))
        stats = self._statistics(view, name, mean_updates, variance_updates)
        if isinstance(stats, str):
            return self.finding(view, name, message, nodes=involved, unfixable=stats)
        readers = self._other_readers_of_moments(view, name, mean_updates.nodes | variance_updates.nodes)
        if readers:
            return self.finding(
                view, name, message, nodes=involved,
                unfixable=f"its batch moments are also read by {', '.join(readers[:3])}",
            )
        return self.finding(view, name, message, nodes=involved, fix=self._fix(view, name, stats, involved))

    def _statistics(self, view, name, mean_updates, variance_updates) -> MovingStatistics | str:
        inputs = view.inputs(name)
        channels = _channels(view, inputs[1])
        if view.const_shape(inputs[_MEAN_SLOT]) != (0,):
            # Keras 2 form: the moving statistics are already the inputs.
            mean, variance = view.resolve(inputs[_MEAN_SLOT]), view.resolve(inputs[_VARIANCE_SLOT])
            if view.op(mean.node) == "Const" and view.op(variance.node) == "Const":
                return MovingStatistics(inputs[_MEAN_SLOT], inputs[_VARIANCE_SLOT], "inputs 3 and 4")
            return f"its mean and variance inputs ({mean.node}, {variance.node}) are not constants in this file"
        return locate_moving_statistics(
            view,
            mean_updates=mean_updates,
            variance_updates=variance_updates,
            scope=scope_of(name),
            channels=channels,
        )

    def _other_readers_of_moments(self, view: GraphView, name: str, update_nodes: frozenset[str]) -> list[str]:
        readers = []
        for port in range(1, len(ops.OUTPUT_ARGS[view.op(name)])):
            readers += [use.consumer for use in view.uses(Tensor(name, port)) if use.consumer not in update_nodes]
        return readers

    def _fix(self, view: GraphView, name: str, stats: MovingStatistics, update_nodes: tuple[str, ...]) -> Fix:
        scope = view.scope
        edits = [SetAttr(scope, name, "is_training", False)]
        if "exponential_avg_factor" in view.nodes[name].attr:
            edits.append(SetAttr(scope, name, "exponential_avg_factor", 1.0))
        inputs = view.inputs(name)
        for slot, tensor in ((_MEAN_SLOT, stats.mean), (_VARIANCE_SLOT, stats.variance)):
            if inputs[slot] != tensor:
                edits.append(SetInput(scope, name, slot, tensor))
        if update_nodes:
            edits.append(RemoveNodes(scope, frozenset(update_nodes)))
        summary = f"inference mode, moving statistics from {stats.evidence}"
        if update_nodes:
            summary += f"; {len(update_nodes)} update op(s) removed"
        return Fix(summary, tuple(edits))


def _channels(view: GraphView, scale: Tensor) -> int | None:
    shape = view.const_shape(scale)
    return shape[0] if shape and len(shape) == 1 else None
