"""A model's inputs and outputs as a user calls them: name, dtype and shape."""

from __future__ import annotations

from dataclasses import dataclass

from graphdoc.graph.view import GraphView
from graphdoc.ops import PLACEHOLDER_OPS
from graphdoc.proto import DataType


@dataclass(frozen=True)
class Port:
    name: str  # the tensor to feed or fetch ("input:0")
    dtype: str  # "float32", or "?" where the graph does not say
    shape: list[int] | None  # -1 for a dimension left open, None for an unknown rank

    @property
    def shape_text(self) -> str:
        return "?" if self.shape is None else "[" + ", ".join(str(d) for d in self.shape) + "]"

    def __str__(self) -> str:
        return f"{self.name} {self.dtype} {self.shape_text}"

    def record(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": self.shape}


def input_ports(view: GraphView) -> list[Port]:
    """The placeholders, what a caller feeds (those with a default may be left out)."""
    return [placeholder_port(view, name) for name in view.ops_of(PLACEHOLDER_OPS)]


def placeholder_port(view: GraphView, name: str) -> Port:
    return Port(f"{name}:0", _dtype(view, name, "dtype"), view.attr(name, "shape"))


def output_ports(view: GraphView, outputs: list[str]) -> list[Port]:
    """`outputs`' first tensors, with the dtype and shape the graph records for them."""
    return [Port(f"{name}:0", _dtype(view, name, "T"), _recorded_shape(view, name)) for name in outputs if name in view]


def _dtype(view: GraphView, name: str, key: str) -> str:
    value = view.attr(name, key)
    if not isinstance(value, int) or value not in DataType.values():
        return "?"
    return _NUMPY_NAMES.get(value, DataType.Name(value).removeprefix("DT_").lower())


# TensorFlow's enum names, as numpy and tf.dtypes spell them.
_NUMPY_NAMES = {DataType.DT_FLOAT: "float32", DataType.DT_DOUBLE: "float64", DataType.DT_HALF: "float16"}


def _recorded_shape(view: GraphView, name: str) -> list[int] | None:
    shapes = view.attr(name, "_output_shapes")
    if not shapes:
        return None
    first = shapes[0]
    return list(first) if isinstance(first, (list, tuple)) else None
