"""Tensor shapes, from ONNX shape inference, run once and only when a rule asks."""

from __future__ import annotations

from functools import cached_property

from graphdoc.onnx.proto import onnx_package

# Initializers larger than this go to shape inference as typed inputs, without their values:
# inference needs their shapes, and copying a model's weights into it would cost more than
# the whole scan.
_VALUES_UP_TO = 1024


class Shapes:
    """Shapes the file records (graph inputs, outputs, value_info, initializers), and where it
    records none, those shape inference finds (which imports the onnx package: asked for only
    when the recorded ones do not say)."""

    def __init__(self, proto):
        self.proto = proto

    def shape(self, tensor: str, *, infer: bool = True) -> list[int] | None:
        """Dimensions of `tensor` (-1 where symbolic or unknown), or None if its rank is unknown."""
        recorded = self._recorded.get(tensor)
        return recorded if recorded is not None or not infer else self._inferred.get(tensor)

    def rank(self, tensor: str, *, infer: bool = True) -> int | None:
        shape = self.shape(tensor, infer=infer)
        return None if shape is None else len(shape)

    @cached_property
    def _recorded(self) -> dict[str, list[int]]:
        return _shapes_in(self.proto)

    @cached_property
    def _inferred(self) -> dict[str, list[int]]:
        onnx = onnx_package()
        try:
            return _shapes_in(onnx.shape_inference.infer_shapes(_without_large_values(self.proto)))
        except Exception:  # a model shape inference cannot follow: only the recorded shapes
            return {}


def _shapes_in(model) -> dict[str, list[int]]:
    shapes: dict[str, list[int]] = {}
    for graph in _graphs(model.graph):
        for value in [*graph.input, *graph.output, *graph.value_info]:
            tensor = value.type.tensor_type
            if value.type.WhichOneof("value") == "tensor_type" and tensor.HasField("shape"):
                shapes[value.name] = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
        for initializer in graph.initializer:
            shapes[initializer.name] = list(initializer.dims)
    return shapes


def _without_large_values(proto):
    slim = type(proto)()
    slim.CopyFrom(proto) if not any(_large(t) for t in proto.graph.initializer) else _copy_slim(proto, slim)
    return slim


def _copy_slim(proto, slim) -> None:
    graph = proto.graph
    slim.ir_version = proto.ir_version
    slim.opset_import.extend(proto.opset_import)
    slim.functions.extend(proto.functions)
    slim.graph.name = graph.name
    slim.graph.node.extend(graph.node)
    slim.graph.input.extend(graph.input)
    slim.graph.output.extend(graph.output)
    slim.graph.value_info.extend(graph.value_info)
    declared = {value.name for value in graph.input}
    for tensor in graph.initializer:
        if not _large(tensor):
            slim.graph.initializer.append(tensor)
        elif tensor.name not in declared:
            slim.graph.input.append(onnx_package().helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims)))


def _large(tensor) -> bool:
    count = 1
    for dim in tensor.dims:
        count *= dim
    return count > _VALUES_UP_TO


def _graphs(graph):
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == 5:  # AttributeProto.GRAPH
                yield from _graphs(attr.g)
