"""Where a BatchNorm's moving mean and variance are, and which ops update them.

Shared by the BatchNorm rules. The evidence, strongest first:
1. data flow: the moving-average update ops that read the batch moments write
   to the statistics (TF1 AssignMovingAvg, Keras assign/assign_sub);
2. names: tf-slim, tf.contrib and tf.layers keep them at `<scope>/moving_mean`
   and `<scope>/moving_variance`; Keras 3 BatchNormalization.call reads
   moving_mean first and moving_variance second, as `<layer>/Cast/ReadVariableOp`
   and `<layer>/Cast_1/ReadVariableOp` (gamma and beta follow as Cast_2, Cast_3).
Freezing a training graph for its outputs usually prunes both, and then the
statistics are simply not in the file.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphdoc import ops
from graphdoc.graph.view import GraphView, Tensor
from graphdoc.rules.base import Fix

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

    def fix(self, stats: MovingStatistics, *, safe: bool = True) -> Fix:
        raise NotImplementedError

    def check_shapes(self, mean_shape, variance_shape) -> str | None:
        """Why statistics of these shapes cannot belong to this layer, or None."""
        if mean_shape is None or variance_shape is None:
            return "the statistics are not constants with a shape"
        expected = (self.channels,) if self.channels is not None else mean_shape
        if tuple(mean_shape) != expected or tuple(variance_shape) != expected or len(expected) != 1:
            return f"statistics of shapes {tuple(mean_shape)} and {tuple(variance_shape)} do not fit {self.channels} channels"
        return None


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
    view: GraphView, site: BatchNormSite, mean_updates: UpdateOps, variance_updates: UpdateOps
) -> MovingStatistics | str:
    """The moving statistics as constants in the graph, or why they cannot be used."""
    by_flow = _from_update_targets(view, mean_updates, variance_updates)
    found = by_flow if isinstance(by_flow, MovingStatistics) else _from_names(view, site.layer)
    if found is not None:
        problem = site.check_shapes(view.const_shape(found.mean), view.const_shape(found.variance))
        return f"{found.evidence}: {problem}" if problem else found
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
    return MovingStatistics(targets[0], targets[1], "the update ops' targets")


# (names of the mean, names of the variance, evidence) per library convention.
_NAMING_CONVENTIONS = (
    (("moving_mean", "moving_mean/read"), ("moving_variance", "moving_variance/read"), "names {scope}/moving_*"),
    (("Cast/ReadVariableOp",), ("Cast_1/ReadVariableOp",), "Keras 3 variable reads {scope}/Cast*"),
)


def _from_names(view: GraphView, scope: str) -> MovingStatistics | None:
    for mean_names, variance_names, evidence in _NAMING_CONVENTIONS:
        mean = _const_named(view, scope, mean_names)
        variance = _const_named(view, scope, variance_names)
        if mean is not None and variance is not None:
            return MovingStatistics(mean, variance, evidence.format(scope=scope))
    return None


def _const_named(view: GraphView, scope: str, names: tuple[str, ...]) -> Tensor | None:
    for name in names:
        if f"{scope}/{name}" in view.nodes:
            tensor = view.resolve(Tensor(f"{scope}/{name}"))
            return tensor if view.op(tensor.node) == "Const" else None
    return None


def scope_of(name: str) -> str:
    return name.rpartition("/")[0]
