"""Where a BatchNorm's moving mean and variance are, and which ops update them.

Shared by the BatchNorm rules; `locate_moving_statistics` is the one search
scan and fix both use. The evidence, in the order it is tried:
1. data flow: the moving-average update ops that read the batch moments write
   to the statistics, whatever they are called (TF1 AssignMovingAvg, Keras
   assign/assign_sub, a hand-written `assign(pop_mean, ...)`);
2. names: tf-slim, tf.contrib and tf.layers keep them at `<scope>/moving_mean`
   and `<scope>/moving_variance`, where the ops' scope may carry prefixes the
   variables' lack (tf-slim MobileNet's doubled `MobilenetV1/MobilenetV1/`);
   Keras 3 BatchNormalization.call reads moving_mean first and
   moving_variance second, as `<layer>/Cast/ReadVariableOp` and
   `<layer>/Cast_1/ReadVariableOp`;
3. an inference-mode BatchNorm with the same scale (an evaluation tower
   built beside the training one) reads them;
4. in a branch function, the arguments its caller binds to such names.
Freezing a training graph for its outputs usually prunes them all, and then
the statistics come from a checkpoint or a calibration run
(graphdoc/sources/completion.py).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from graphdoc import ops
from graphdoc.graph.edits import AddConst, AddNode, Edit
from graphdoc.graph.frames import Frame, frame_of
from graphdoc.graph.model import Model
from graphdoc.graph.storage import DType
from graphdoc.graph.view import FUNCTION_ARG_OP, GraphView, Tensor
from graphdoc.proto import DataType
from graphdoc.rules.base import Applicability, Fix, LayerFormula

# TF1 writes `sub -> mul -> AssignSub` after the moment; Keras 3 writes
# `Squeeze -> mul -> add -> AssignVariableOp`. Four steps cover both with room.
_UPDATE_SEARCH_DEPTH = 5


@dataclass(frozen=True)
class UpdateOps:
    """The moving-average update of one batch moment."""

    nodes: frozenset[str]  # every node on a path from the moment to a state update op
    writes: tuple[str, ...]  # the state update ops themselves


NO_UPDATES = UpdateOps(frozenset(), ())


@dataclass(frozen=True)
class MovingStatistics:
    mean: Tensor
    variance: Tensor
    evidence: str
    # Where the tensors are function arguments: the shapes of what the caller passes.
    shapes: tuple[tuple[int, ...] | None, tuple[int, ...] | None] | None = None
    untrained: str | None = None  # why their values look untrained (GD103), if they do
    frame: Frame | None = None  # the loop frame the tensors are in, if any

    def judged(self, view: GraphView) -> MovingStatistics:
        """These statistics with their values judged, where they are constants of `view`."""
        problem = untrained(view.const_value(self.mean), view.const_value(self.variance))
        return dataclasses.replace(self, untrained=problem) if problem else self


@dataclass(frozen=True)
class BatchNormSite:
    """A training-mode BatchNorm layer: where it is and what its fix needs.

    Findings carry their site, so that statistics from outside the graph (a
    checkpoint, a calibration run) can complete a fix the graph alone could not.
    """

    scope: str  # the graph body: "" or a library function
    node: str  # the node the finding is about
    layer: str  # the layer's name scope, for matching variable names
    channels: int | None
    x: Tensor  # the tensor the layer normalizes
    reduce_axes: tuple[int, ...]  # the axes of x its statistics are taken over
    update_nodes: frozenset[str]
    scale: Tensor | None = None  # gamma, where the layer has one as an input
    frame: Frame | None = None  # the tf.while_loop frame the layer runs in, if any
    kept_shape: tuple[int, ...] | None = None  # the shape it reads its statistics in, where not [C]

    def fix(self, stats: MovingStatistics, *, safe: bool = True) -> Fix:
        raise NotImplementedError

    def _fix(self, summary: str, edits: list, stats: MovingStatistics, *, safe: bool,
             formula: LayerFormula | None = None) -> Fix:
        """A fix wiring in `stats`: unsafe when they look untrained (GD103)."""
        if stats.untrained:
            caveat = f"statistics that are {stats.untrained}; {RECOMPUTE}"
            return Fix(summary, tuple(edits), Applicability.UNSAFE, caveat=caveat, untrained=stats.untrained,
                       formula=formula)
        return Fix(summary, tuple(edits), Applicability.SAFE if safe else Applicability.UNSAFE, formula=formula)

    def placed(self, stats: MovingStatistics) -> tuple[list[Edit], Tensor, Tensor]:
        """Edits that make `stats` readable where the layer reads its statistics, and the tensors to
        read: reshaped to the layer's kept shape ([1, C, 1, 1] on NCHW), and entered into its loop
        frame when they are made outside it."""
        edits: list[Edit] = []
        if not self.kept_shape and self.frame is None:
            return edits, stats.mean, stats.variance
        shape = Tensor(f"{self.node}/statistics_shape")
        if self.kept_shape:
            edits.append(AddConst(self.scope, shape.node, np.asarray(self.kept_shape, dtype=np.int32)))
        placed = []
        for tensor, stat in ((stats.mean, "moving_mean"), (stats.variance, "moving_variance")):
            if self.kept_shape:
                reshaped = f"{self.node}/{stat}/reshaped"
                edits.append(AddNode(self.scope, reshaped, "Reshape", (tensor, shape),
                                     (("T", _FLOAT), ("Tshape", DType(DataType.DT_INT32)))))
                tensor = Tensor(reshaped)
            if self.frame is not None and stats.frame != self.frame:
                entered = f"{self.node}/{stat}/enter"
                edits.append(AddNode(self.scope, entered, "Enter", (tensor,), (
                    ("T", _FLOAT), ("frame_name", self.frame.name), ("is_constant", True),
                    ("parallel_iterations", self.frame.parallel_iterations),
                )))
                tensor = Tensor(entered)
            placed.append(tensor)
        return edits, placed[0], placed[1]

    def check_shapes(self, mean_shape, variance_shape) -> str | None:
        """Why statistics of these shapes cannot belong to this layer, or None."""
        if mean_shape is None or variance_shape is None:
            return "the statistics are not constants with a shape"
        # Statistics kept in the layer's broadcast shape ([1, 1, 1, 1, C] for ghost batches) are [C].
        mean_shape, variance_shape = _per_channel(mean_shape), _per_channel(variance_shape)
        expected = (self.channels,) if self.channels is not None else mean_shape
        if tuple(mean_shape) != expected or tuple(variance_shape) != expected or len(expected) != 1:
            return f"statistics of shapes {tuple(mean_shape)} and {tuple(variance_shape)} do not fit {self.channels} channels"
        return None


_FLOAT = DType(DataType.DT_FLOAT)  # moving statistics are float32, under mixed precision too


def _per_channel(shape: tuple[int, ...]) -> tuple[int, ...]:
    """`shape` without its leading 1s: [1, 1, 1, 1, C] -> [C]."""
    shape = tuple(shape)
    while len(shape) > 1 and shape[0] == 1:
        shape = shape[1:]
    return shape


def find_update_ops(view: GraphView, moment: Tensor) -> UpdateOps:
    """The nodes through which `moment` flows into a variable update, if any."""
    parents: dict[str, str | None] = {}
    frontier = [(use.consumer, moment.node) for use in view.uses(moment)]
    writes: list[str] = []
    for _ in range(_UPDATE_SEARCH_DEPTH):
        next_frontier = []
        for name, parent in frontier:
            if name in parents:
                continue
            parents[name] = parent
            if view.op(name) in ops.STATE_UPDATE_OPS:
                writes.append(name)
            else:
                next_frontier.extend((consumer, name) for consumer in view.consumers(name))
        frontier = next_frontier
    nodes: set[str] = set()
    for write in writes:
        step: str | None = write
        while step is not None and step != moment.node and step not in nodes:
            nodes.add(step)
            step = parents.get(step)
    return UpdateOps(frozenset(nodes), tuple(writes))


def locate_moving_statistics(
    view: GraphView, model: Model, site: BatchNormSite, mean_updates: UpdateOps, variance_updates: UpdateOps
) -> MovingStatistics | str:
    """The moving statistics as constants in the graph, or why they cannot be used.

    The evidence, in order: the targets of the layer's update ops; the
    layer's scope, or a tail of it, naming `moving_mean` and `moving_variance`;
    an inference-mode BatchNorm that shares the layer's scale (an evaluation
    tower); the caller that passes named statistics into this body.
    """
    by_flow = _from_update_targets(view, mean_updates, variance_updates)
    found = by_flow if isinstance(by_flow, MovingStatistics) else None
    # Names before the shared scale: cheaper, and as sure when the layer's scope names them.
    found = found or _from_names(view, site.layer) or _from_shared_scale(view, site)
    found = found or _from_caller(view, model, site.layer)
    if found is not None:
        shapes = found.shapes or (view.const_shape(found.mean), view.const_shape(found.variance))
        problem = site.check_shapes(*shapes)
        if problem:
            return f"{found.evidence}: {problem}"
        found = dataclasses.replace(found, frame=frame_of(view, found.mean)) if site.frame else found
        return found.judged(view)
    if by_flow:
        return by_flow
    return MISSING_STATISTICS.format(layer=site.layer)


MISSING_STATISTICS = (
    "the moving statistics are not in this graph (no update ops, no {layer}/moving_mean): "
    "freezing for the outputs pruned them"
)


def _from_update_targets(view: GraphView, mean: UpdateOps, variance: UpdateOps) -> MovingStatistics | str:
    if not mean.writes or not variance.writes:
        return ""
    targets = []
    for updates in (mean, variance):
        target = view.resolve(view.inputs(updates.writes[0])[0])
        if view.op(target.node) != "Const":
            return (
                f"the moving statistics ({target.node}) are variables whose values are not in this "
                "file; freeze the graph with its variables or give the checkpoint"
            )
        targets.append(target)
    return MovingStatistics(targets[0], targets[1], f"{targets[0].node}, by the update ops' targets")


def _from_shared_scale(view: GraphView, site: BatchNormSite) -> MovingStatistics | None:
    """The statistics an inference-mode fused BatchNorm with the same scale constant reads."""
    if site.scale is None:
        return None
    scale = view.resolve(site.scale)
    for use in view.uses(scale):
        for other in _through_pass_through(view, use.consumer):
            if other == site.node or view.op(other) not in ops.FUSED_BATCH_NORM_OPS or view.attr(other, "is_training"):
                continue
            inputs = view.inputs(other)
            mean, variance = inputs[ops.FUSED_MEAN_SLOT], inputs[ops.FUSED_VARIANCE_SLOT]
            same_scale = view.resolve(inputs[ops.FUSED_SCALE_SLOT]) == scale
            if same_scale and view.const_shape(mean) and view.const_shape(variance):
                return MovingStatistics(mean, variance, f"{view.resolve(mean).node}, read by {other}, "
                                        "an inference-mode BatchNorm with the same scale")
    return None


def _through_pass_through(view: GraphView, node: str) -> list[str]:
    if view.op(node) not in ops.PASS_THROUGH_OPS:
        return [node]
    return [reader for consumer in view.consumers(node) for reader in _through_pass_through(view, consumer)]


# (names of the mean, names of the variance, evidence) per library convention.
_NAMING_CONVENTIONS = (
    (("moving_mean", "moving_mean/read"), ("moving_variance", "moving_variance/read"), "by scope"),
    (("Cast/ReadVariableOp",), ("Cast_1/ReadVariableOp",), "by Keras 3 variable reads"),
)


def _from_names(view: GraphView, layer: str) -> MovingStatistics | None:
    for scope in (scope for level in scope_tails(layer) for scope in level):
        for mean_names, variance_names, evidence in _NAMING_CONVENTIONS:
            mean = _const_named(view, scope, mean_names)
            variance = _const_named(view, scope, variance_names)
            if mean is not None and variance is not None:
                return MovingStatistics(mean, variance, f"{mean.node}, {evidence}")
    return None


def _from_caller(view: GraphView, model: Model, layer: str) -> MovingStatistics | None:
    """In a branch or called function: the arguments its caller binds to named statistics."""
    if not view.scope:
        return None
    for caller_scope, caller in model.call_sites.get(view.scope, []):
        outer = model.view(caller_scope)
        arguments = zip(view.function.signature.input_arg, _call_arguments(outer, caller), strict=False)
        named = {outer.resolve(tensor).node: (arg.name, tensor) for arg, tensor in arguments}
        for scope in (scope for level in scope_tails(layer) for scope in level):
            mean = named.get(f"{scope}/moving_mean")
            variance = named.get(f"{scope}/moving_variance")
            if mean is not None and variance is not None:
                shapes = (outer.const_shape(mean[1]), outer.const_shape(variance[1]))
                return MovingStatistics(Tensor(mean[0]), Tensor(variance[0]),
                                        f"{scope}/moving_mean, passed in by {caller}", shapes)
    return None


def _call_arguments(view: GraphView, caller: str) -> tuple[Tensor, ...]:
    inputs = view.inputs(caller)
    return inputs[1:] if view.op(caller) in ops.IF_OPS | {"Case", "StatelessCase"} else inputs


def scope_tails(scope: str) -> Iterator[tuple[str, ...]]:
    """`scope` and its shorter tails, most specific first, each with its form without a Keras
    call suffix (`_1`) beside it: the graph's op scopes carry prefixes (a model name, a
    doubled variable scope, `StatefulPartitionedCall/`) that the statistics' names lack.
    Made one at a time: the first usually matches."""
    parts = [part for part in scope.split("/") if part]
    for start in range(len(parts)):
        tail = parts[start:]
        yield tuple(dict.fromkeys(["/".join(tail), "/".join([*tail[:-1], _CALL_SUFFIX.sub("", tail[-1])])]))


# Keras suffixes a layer's name scope with `_1`, `_2`, ... each time it is
# called again; the variables keep the layer's own name.
_CALL_SUFFIX = re.compile(r"_\d+$")


def _const_named(view: GraphView, scope: str, names: tuple[str, ...]) -> Tensor | None:
    for name in names:
        if f"{scope}/{name}" in view.nodes:
            tensor = view.resolve(Tensor(f"{scope}/{name}"))
            return tensor if view.op(tensor.node) in ("Const", FUNCTION_ARG_OP) else None
    return None


def layer_scope(view: GraphView, model: Model, node: str) -> str:
    """The name scope of the layer `node` belongs to; inside a branch function, under its
    caller's; a tf.cond's own scope (`cond`, `cond_1`) and a loop body's (`while`) are not part of
    the layer's."""
    scope = scope_of(node)
    if view.scope:
        callers = model.call_sites.get(view.scope, [])
        if callers:
            scope = "/".join(part for part in (scope_of(callers[0][1]), scope) if part)
    scope = scope_of(scope) if _COND_SCOPE.fullmatch(scope.rpartition("/")[2]) else scope
    # A tf.while_loop's body runs under `<scope>/while/`; its variables were made without it.
    scope = "/".join(part for part in scope.split("/") if not _WHILE_SCOPE.fullmatch(part))
    return scope or node  # a layer at the root of the graph is known by its node's name


_COND_SCOPE = re.compile(r"cond(_\d+)?")
_WHILE_SCOPE = re.compile(r"while(_\d+)?")


RECOMPUTE = "recompute them with fix --calibrate DATA (representative inputs)"


def untrained(mean: np.ndarray | None, variance: np.ndarray | None) -> str | None:
    """Why statistics with these values were never trained, or None."""
    if mean is None or variance is None or mean.size == 0 or variance.size == 0:
        return None
    # Three reductions for trained statistics: every BatchNorm of a large graph comes
    # through here. A float32 sum overflows only for statistics as broken as non-finite ones.
    if not math.isfinite(float(np.add.reduce(mean, axis=None)) + float(np.add.reduce(variance, axis=None))):
        return "not finite"
    lowest = float(np.minimum.reduce(variance, axis=None))
    if lowest < 0:
        return "negative in the variance"
    if lowest == 1 and float(np.maximum.reduce(variance, axis=None)) == 1 and not mean.any():
        return "still their initial values (mean 0 and variance 1 in every channel: the update ops never ran)"
    return None


def scope_of(name: str) -> str:
    return name.rpartition("/")[0]
