"""Which nodes of a graph body are its outputs when nobody says."""

from __future__ import annotations

from graphdoc import ops
from graphdoc.graph.view import GraphView

_NOT_OUTPUTS = ops.NEVER_OUTPUTS | ops.PLACEHOLDER_OPS


def infer_outputs(view: GraphView) -> list[str]:
    """Nodes nothing reads, except constants, inputs, variable updates and tf.data datasets (a
    pipeline left behind by the training script is no model output)."""
    return [name for name in view.sinks() if view.op(name) not in _NOT_OUTPUTS and not _is_dataset(view.op(name))]


def _is_dataset(op: str) -> bool:
    return op.endswith(("Dataset", "DatasetV2", "DatasetV3"))
