"""A loaded ONNX model: the ModelProto and where it came from."""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import ClassVar

from graphdoc.errors import GraphdocError, LoadError, first_line
from graphdoc.graph.model import ModelOfAnotherFormat
from graphdoc.graph.ports import Port
from graphdoc.onnx.proto import dtype_name, messages, onnx_package
from graphdoc.onnx.view import OnnxView


@dataclass(eq=False)
class OnnxModel(ModelOfAnotherFormat):
    """An ONNX ModelProto with its origin; the reports read it as they read graph.model.Model."""

    kind: ClassVar[str] = "onnx"
    proto: object  # onnx.ModelProto
    path: Path

    @property
    def format(self) -> str:
        opsets = ", ".join(f"{entry.domain or 'ai.onnx'} {entry.version}" for entry in self.proto.opset_import)
        return f"ONNX (IR version {self.proto.ir_version}, opset {opsets})"

    @cached_property
    def main(self) -> OnnxView:
        return OnnxView(self.proto.graph)

    @property
    def views(self) -> list[OnnxView]:
        """The main graph, then the subgraphs of its If, Loop and Scan nodes."""
        return [self.main, *self.functions]

    @cached_property
    def functions(self) -> list[OnnxView]:
        """The subgraphs, each under its scope (`IF_NODE/then_branch`): what `show SCOPE::NODE` reaches."""
        return list(self.main.subviews())

    def size(self) -> tuple[int, int]:
        """Nodes in every body, and how many subgraphs hold some of them."""
        views = self.views
        return sum(len(view.nodes) for view in views), len(views) - 1

    def op_counts(self) -> Counter:
        return Counter(node.op_type for view in self.views for node in view.nodes.values())


    def ports(self, outputs: list[str] | None = None) -> tuple[list[Port], list[Port]]:
        """What a caller feeds and fetches, with dtype and shape (-1 for a symbolic dimension)."""
        graph = self.proto.graph
        feeds = [_port(value) for value in graph.input if value.name in self.main.feeds]
        wanted = set(outputs or self.main.outputs)
        return feeds, [_port(value) for value in graph.output if value.name in wanted]

    def serialize(self) -> bytes:
        return self.proto.SerializeToString()


def onnx_outputs(model: OnnxModel, requested: list[str] | None) -> list[str]:
    """The graph outputs named (all of them by default), checked."""
    outputs = list(model.main.outputs)
    for name in requested or []:
        if name not in outputs:
            close = difflib.get_close_matches(name, outputs, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f" (it has: {', '.join(outputs[:8])})"
            raise GraphdocError(f"output {name!r} is not an output of this model{hint}")
    return list(requested) if requested else outputs


def _port(value) -> Port:
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        return Port(value.name, kind or "?", None)
    tensor = value.type.tensor_type
    dtype = dtype_name(tensor.elem_type) if tensor.elem_type else "?"
    if not tensor.HasField("shape"):
        return Port(value.name, dtype, None)
    return Port(value.name, dtype, [dim.dim_value if dim.HasField("dim_value") else -1 for dim in tensor.shape.dim])


def load_onnx(path: Path, data: bytes) -> OnnxModel:
    try:
        model_class = messages().ModelProto
    except ImportError:
        raise LoadError(f"{path} is an ONNX model; reading it needs the onnx package (pip install onnx)") from None
    try:
        proto = model_class.FromString(data)
    except Exception as error:  # protobuf's DecodeError and others: all of them the file's
        raise LoadError(f"{path}: not a readable ONNX model ({first_line(error)})") from None
    if not proto.HasField("graph") or not proto.graph.node:
        raise LoadError(f"{path}: parsed as an ONNX model but its graph has no nodes; is it the right file?")
    if any(tensor.data_location == messages().TensorProto.EXTERNAL for tensor in proto.graph.initializer):
        try:
            onnx_package().external_data_helper.load_external_data_for_model(proto, str(path.parent))
        except OSError as error:
            raise LoadError(f"{path}: its weights are in a separate file that could not be read ({error})") from None
    renamed = _name_nodes_uniquely(proto.graph)
    notes = [f"{renamed} node(s) shared a name with another: each now goes by its name and first output"] if renamed else []
    return OnnxModel(proto=proto, path=path, notes=notes)


def _name_nodes_uniquely(graph) -> int:
    """ONNX lets nodes share a name (or have none); findings and fixes name nodes, so a node
    whose name another already has becomes NAME__FIRST_OUTPUT, in this graph and its subgraphs.
    Returns how many were renamed. (Unnamed nodes go by their first output, which is unique.)"""
    seen, renamed = set(), 0
    for node in graph.node:
        if node.name and node.name in seen:
            node.name = f"{node.name}__{node.output[0] if node.output else len(seen)}"
            renamed += 1
        seen.add(node.name or (node.output[0] if node.output else ""))
        for attribute in node.attribute:
            if attribute.type == 5:  # AttributeProto.GRAPH
                renamed += _name_nodes_uniquely(attribute.g)
    return renamed
