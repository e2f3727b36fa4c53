"""What training mode looks like in an ONNX graph, as graphdoc findings.

The codes are the TensorFlow rules' where the meaning is the same (`graphdoc
rule GD101` explains the bug); the patterns are ONNX's own:

- GD101: `BatchNormalization` with training_mode=1, on batch statistics; fixed
  by training_mode=0, the stored running statistics it already takes as inputs.
- GD102: a normalization fed by a `ReduceMean` over axes that include the
  batch axis, of the tensor it normalizes (tf2onnx converts a TF training
  BatchNorm into this, an inference-mode BatchNormalization whose mean and
  variance are computed from its own input). Fixed by the moving statistics,
  from the model's initializers where the exporter kept them, or a checkpoint.
- GD201: a `Dropout` whose training_mode is true (a constant, its default, or a
  graph input fed at run time), or a random mask (RandomUniform(Like),
  RandomNormal(Like) compared against a rate, Bernoulli) multiplied into an
  activation; fixed by reading the activation itself.
- GD303: ops of the training domain (Gradient, Momentum, Adagrad, Adam); their
  outputs are dropped from the graph's outputs.

Per-sample normalizations (LayerNormalization, InstanceNormalization,
GroupNormalization, a ReduceMean over the last axes) reduce no batch axis and
are not reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from graphdoc.onnx.edits import AddInitializer, DropGraphOutputs, KeepOutputs, Redirect, SetAttribute
from graphdoc.onnx.shapes import Shapes
from graphdoc.onnx.view import OnnxView, attribute, node_name
from graphdoc.rules import dataflow
from graphdoc.rules.base import Finding, Fix
from graphdoc.rules.batch_means import normalizing_batch_mean
from graphdoc.rules.dataflow import through
from graphdoc.rules.masks import applied_mask

RANDOM_OPS = frozenset({"RandomUniform", "RandomUniformLike", "RandomNormal", "RandomNormalLike", "Bernoulli"})
_TRAINING_DOMAIN = "ai.onnx.preview.training"
STATISTICS_NAMES = (("moving_mean", "moving_variance"), ("running_mean", "running_var"))


@dataclass(frozen=True)
class BatchNormFormula:
    """What a fixed BatchNormalization must compute, for verification: its own scale and bias
    (as found) with the statistics the fix chose."""

    scope: str
    node: str
    mean: np.ndarray = field(compare=False)
    variance: np.ndarray = field(compare=False)


@dataclass(frozen=True)
class BatchMoments:
    """A batch mean (and its variance) that normalizes the tensor it was reduced from: a pending
    fix (rules.base.PendingFix) until statistics are found, in the model or by calibration."""

    scope: str
    node: str  # the ReduceMean of the mean
    layer: str  # the name scope the statistics go by
    x: str
    mean: str
    variance: str | None
    normalizer: str  # the BatchNormalization or Sub that uses the mean
    by_batchnorm: bool  # whether the normalizer is a BatchNormalization (its formula can be checked)
    channels: int | None
    axes: tuple[int, ...]  # the reduced axes of x
    rank: int
    keeps_dims: tuple[bool, bool]  # whether the mean and the variance keep the reduced axes

    def check_shapes(self, mean_shape, variance_shape) -> str | None:  # CheckpointStatistics asks this
        if self.channels is not None and (list(mean_shape) != [self.channels] or list(variance_shape) != [self.channels]):
            return f"statistics of shape {list(mean_shape)}, for a layer of {self.channels} channels"
        return None

    def constant_shape(self, which: int, size: int) -> tuple[int, ...]:
        """The shape the graph computes the mean (0) or the variance (1) in, for `size` channels."""
        if self.keeps_dims[which] and self.rank - len(self.axes) == 1:
            return tuple(1 if axis in self.axes else size for axis in range(self.rank))
        return (size,)

    def fix(self, statistics, *, safe: bool = True) -> Fix:
        return _moments_fix(self, statistics.mean, statistics.variance, statistics.evidence, safe=safe)


def training_batchnorms(view: OnnxView) -> Iterator[Finding]:
    for name, node in view.nodes.items():
        if node.op_type != "BatchNormalization" or not attribute(node, "training_mode", 0):
            continue
        edits = [SetAttribute(view.scope, name, "training_mode", 0), KeepOutputs(view.scope, name, 1)]
        # The updated running statistics become the stored ones: what inference would read.
        edits += [Redirect(view.scope, node.output[index], node.input[index + 2])
                  for index in (1, 2) if len(node.output) > index and node.output[index]]
        mean, variance = view.value(node.input[3]), view.value(node.input[4])
        formula = None if mean is None or variance is None else BatchNormFormula(view.scope, name, mean, variance)
        yield Finding(
            code="GD101", scope=view.scope, node=name,
            message="BatchNormalization with training_mode=1 normalizes with the batch's mean and variance "
                    "(onnxruntime runs it so at every optimization level, without a warning)",
            fix=Fix("training_mode=0: normalize with the running statistics it takes as inputs", tuple(edits),
                    formula=formula),
        )


def batch_moments(view: OnnxView, shapes: Shapes, lookup: Callable) -> Iterator[Finding]:
    """`lookup(moments)` gives a layer's statistics (sources.Statistics), or a sentence why not."""
    for name, node in view.nodes.items():
        moments = _batch_moments(view, name, node, shapes)
        if moments is None:
            continue
        message = ("normalized by the batch's own mean (ReduceMean over axes including the batch axis, "
                   "of the tensor it normalizes); results depend on the rest of the batch")
        if moments.variance is None:
            yield Finding("GD102", view.scope, name, message, nodes=(moments.normalizer,),
                          unfixable="its variance is computed in a form graphdoc does not recognize")
            continue
        found = lookup(moments)
        if isinstance(found, str):
            yield Finding("GD102", view.scope, name, message, nodes=(moments.normalizer,), unfixable=found,
                          site=moments)
            continue
        yield Finding("GD102", view.scope, name, message, nodes=(moments.normalizer,), fix=moments.fix(found),
                      site=moments)


def _batch_moments(view: OnnxView, name: str, node, shapes: Shapes) -> BatchMoments | None:
    flow = _OnnxFlow(view, shapes)
    found = normalizing_batch_mean(flow, node)
    if found is None:
        return None
    x, mean, normalizer = found.x, node.output[0], node_name(found.normalizer)
    kept = [axis for axis in range(found.rank) if axis not in found.axes]
    shape = shapes.shape(x, infer=False)
    channels = shape[kept[0]] if shape and len(kept) == 1 and shape[kept[0]] > 0 else None
    variance = _variance(flow, node, x, mean, list(found.axes), found.rank, found.normalizer)
    return BatchMoments(view.scope, name, _layer(normalizer if "/" in normalizer else name), x, mean, variance,
                        normalizer, found.normalizer.op_type == "BatchNormalization", channels, found.axes,
                        found.rank, (_keeps_dims(view, mean), variance is not None and _keeps_dims(view, variance)))


def _rank(shapes: Shapes, x: str, axes: list[int]) -> int | None:
    """The rank of `x`: as recorded; else, for axes counted from the front, one more than it
    reduces (a normalization keeps one channel axis); else as shape inference finds it."""
    recorded = shapes.rank(x, infer=False)
    if recorded is not None:
        return recorded
    return len(set(axes)) + 1 if min(axes) >= 0 else shapes.rank(x)


def _axes(view: OnnxView, node) -> list[int] | None:
    axes = attribute(node, "axes")
    if axes is None and len(node.input) > 1 and node.input[1]:  # opset 18: an input
        value = view.value(node.input[1])
        axes = None if value is None else [int(a) for a in np.ravel(value)]
    return None if axes is None else list(axes)


def _variance(flow: _OnnxFlow, mean_node, x, mean, axes, rank, normalizer) -> str | None:
    """The batch variance beside the batch mean: E[(x - mean)^2] or E[x^2] - mean^2, over the same axes."""
    view = flow.view
    if normalizer.op_type == "BatchNormalization":
        candidate = through(flow, normalizer.input[4])
        return candidate if view.producing(candidate) is not None and mean in view.upstream(candidate) else None
    for node in view.nodes.values():
        if node is mean_node or node.op_type != "ReduceMean" or sorted(a % rank for a in (_axes(view, node) or [])) != axes:
            continue
        upstream = view.upstream(node.input[0], limit=16)
        if mean in upstream and x in upstream:
            return node.output[0]
        if x in upstream:  # E[x^2]: the variance is what subtracts the squared mean from it
            for reader in view.readers(node.output[0]):
                if reader.op_type == "Sub" and mean in view.upstream(reader.input[1], limit=8):
                    return reader.output[0]
    return None


def _layer(name: str) -> str:
    """The name scope a layer's statistics go by: `conv1/BatchNorm/moments/mean` -> `conv1/BatchNorm`."""
    scope = name.rsplit("/", 1)[0] if "/" in name else name
    return scope.removesuffix("/moments")


def _moments_fix(moments: BatchMoments, mean: np.ndarray, variance: np.ndarray, source: str, *,
                 safe: bool = True) -> Fix:
    """Both moments become constants of the moving statistics, in the shape the graph computed them."""
    edits, values = [], []
    for which, (kind, tensor, value) in enumerate((("mean", moments.mean, mean), ("variance", moments.variance, variance))):
        constant = np.asarray(value, np.float32).reshape(moments.constant_shape(which, np.size(value)))
        values.append(constant)
        name = f"{moments.layer}/graphdoc_moving_{kind}"
        edits += [AddInitializer(moments.scope, name, constant), Redirect(moments.scope, tensor, name)]
    formula = (BatchNormFormula(moments.scope, moments.normalizer, np.ravel(values[0]), np.ravel(values[1]))
               if moments.by_batchnorm else None)
    return Fix(f"batch moments -> moving statistics ({source})", tuple(edits), applicability=safe,
               caveat="" if safe else "calibrated statistics", formula=formula)


def _keeps_dims(view: OnnxView, tensor: str, depth: int = 4) -> bool:
    """Whether `tensor`, a moment, keeps the axes it was reduced over: as its reduction says, or
    the reduction it is computed from (a variance divided by a count, E[x^2] - mean^2)."""
    node = view.producing(tensor)
    if node is None or depth == 0:
        return False
    if node.op_type.startswith("Reduce"):
        return bool(attribute(node, "keepdims", 1))
    if node.op_type in ("Div", "Sub", "Mul", "Add", "Identity"):
        return _keeps_dims(view, node.input[0], depth - 1)
    return False


def live_dropout(view: OnnxView, model_inputs: set[str]) -> Iterator[Finding]:
    for name, node in view.nodes.items():
        if node.op_type == "Dropout":
            finding = _dropout(view, name, node, model_inputs)
        elif node.op_type in RANDOM_OPS:
            finding = _random_mask(view, name, node)
        else:
            continue
        if finding is not None:
            yield finding


def _dropout(view: OnnxView, name: str, node, model_inputs: set[str]) -> Finding | None:
    switch = node.input[2] if len(node.input) > 2 else ""
    if not switch:
        return None  # training_mode absent: inference, an identity
    value = view.value(switch)
    ratio = view.value(node.input[1]) if len(node.input) > 1 and node.input[1] else np.float32(0.5)
    if value is not None and switch not in model_inputs and not bool(np.ravel(value)[0]):
        return None
    if ratio is not None and float(np.ravel(ratio)[0]) == 0.0:
        return None
    how = (f"its training_mode is the graph input {switch!r}, fed at run time" if switch in model_inputs
           else "its training_mode is true")
    message = (f"Dropout runs live: {how}; onnxruntime removes it at its default optimization level but runs it "
               "with optimizations disabled, so the file computes different things depending on a session option")
    if len(node.output) > 1 and node.output[1] and view.readers(node.output[1]):
        return Finding("GD201", view.scope, name, message, unfixable=f"its mask {node.output[1]!r} is read by the graph")
    return Finding("GD201", view.scope, name, message,
                   fix=Fix("read the activation itself (Dropout bypassed)", (Redirect(view.scope, node.output[0], node.input[0]),)))


def _random_mask(view: OnnxView, name: str, node) -> Finding | None:
    """A random op whose values become a 0/1 mask that multiplies (or selects) an activation."""
    mask = applied_mask(_OnnxFlow(view), node)
    if mask is None:
        return None
    message = (f"a random mask ({node.op_type} -> {mask.applied_by.op_type}) drops activations at random: dropout "
               "left in training mode")
    return Finding("GD201", view.scope, name, message, nodes=mask.path,
                   fix=Fix("read the activation itself (the mask and its scaling bypassed)",
                           (Redirect(view.scope, mask.output, mask.activation),)))


# ONNX's ops as the format-neutral rules (rules/dataflow.py) know them.
_KINDS = {
    **dict.fromkeys(("RandomUniform", "RandomUniformLike", "RandomNormal", "RandomNormalLike"), dataflow.RANDOM),
    "Bernoulli": dataflow.BINARY_RANDOM,
    **dict.fromkeys(("Less", "LessOrEqual", "Greater", "GreaterOrEqual"), dataflow.COMPARE),
    **dict.fromkeys(("Not", "Floor", "Ceil", "Round"), dataflow.UNARY),
    **dict.fromkeys(("Identity", "Squeeze", "Unsqueeze", "Reshape", "Flatten", "Cast"), dataflow.PASS),
    "Add": dataflow.ADD, "Sub": dataflow.SUB, "Mul": dataflow.MUL, "Div": dataflow.DIV, "Where": dataflow.SELECT,
    "ReduceMean": dataflow.MEAN, "BatchNormalization": dataflow.BATCHNORM,
}


@dataclass(frozen=True)
class _OnnxFlow:
    """An ONNX graph body as the format-neutral rules read one (rules/dataflow.py)."""

    view: OnnxView
    shapes: Shapes | None = None  # for the rank of what a ReduceMean reduces

    def kind(self, node) -> str:
        return _KINDS.get(node.op_type, "")

    def inputs(self, node) -> list[str]:
        return [tensor for tensor in node.input if tensor]  # "" is an optional input left out

    def output(self, node) -> str:
        return node.output[0]

    def readers(self, tensor: str) -> list:
        return self.view.readers(tensor)

    def producing(self, tensor: str):
        return self.view.producing(tensor)

    def constant(self, tensor: str):
        return self.view.value(tensor)

    def name(self, node) -> str:
        return node_name(node)

    def reduced(self, node) -> tuple[str, list[int], int] | None:
        axes = _axes(self.view, node)
        if axes is None or min(axes) > 0 or self.shapes is None:
            return None  # no batch axis reduced (known before asking shape inference, which costs)
        rank = _rank(self.shapes, node.input[0], axes)
        return None if rank is None else (node.input[0], axes, rank)


def training_leftovers(view: OnnxView) -> Iterator[Finding]:
    if view.scope:
        return
    for name, node in view.nodes.items():
        if node.domain != _TRAINING_DOMAIN:
            continue
        dropped = [output for output in node.output if output in view.outputs]
        yield Finding(
            "GD303", view.scope, name, f"{node.op_type} (a training op: gradients or an optimizer step) is left in "
            "the graph; inference does not compute it",
            fix=Fix(f"drop its outputs from the graph's outputs ({', '.join(dropped) or 'none'})",
                    (DropGraphOutputs(view.scope, tuple(dropped)),)),
        )
