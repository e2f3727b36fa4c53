"""TensorFlow's meaning of a node's values: attributes with their OpDef
defaults, constants (seen through Identity-like ops) and their shapes."""

from __future__ import annotations

import math

import numpy as np

from graphdoc import ops
from graphdoc.graph.index import Tensor
from graphdoc.graph.queries import GraphQueries
from graphdoc.graph.storage import attr_python_value

# DataType enum values whose tensor_content is a plain little-endian array.
_RAW_DTYPES = {1: np.dtype("<f4"), 2: np.dtype("<f8"), 3: np.dtype("<i4"), 9: np.dtype("<i8")}
# The fields of a TensorProto that holds no values.
_NO_VALUES = frozenset({"dtype", "tensor_shape", "version_number"})
_LARGEST_CONST_READ = 1 << 20


class TensorValues(GraphQueries):
    """Attribute and constant values as TensorFlow reads them."""

    def attr(self, name: str, key: str) -> object:
        """An attribute as a Python value, falling back to the OpDef default."""
        value = self.nodes[name].attr.get(key)
        if value is not None:
            return attr_python_value(value)
        return ops.ATTR_DEFAULTS.get(self.op(name), {}).get(key)

    def const_value(self, tensor: Tensor) -> np.ndarray | None:
        """The value of a Const (seen through Identity), or None if not constant."""
        value = self._const_attr(tensor)
        if value is None:
            return None
        # Rules read small constants (axes, rates); a declared shape of absurd
        # size would have numpy allocate it.
        proto = value.tensor
        dims = [dim.size for dim in proto.tensor_shape.dim]
        size = math.prod(dims)
        if size > _LARGEST_CONST_READ or any(dim < 0 for dim in dims):
            return None
        # Most weights are stored as raw little-endian bytes: read them without the decoder
        # (a tenth of its time, which counts when every BatchNorm's statistics are read).
        dtype = _RAW_DTYPES.get(proto.dtype)
        content = proto.tensor_content
        if dtype is not None and len(content) == size * dtype.itemsize:
            array = np.frombuffer(content, dtype=dtype)
            return array.reshape(dims) if len(dims) != 1 else array
        if dtype is not None and {field.name for field, _ in proto.ListFields()} <= _NO_VALUES:
            # No values at all: TensorFlow reads that as zeros (how it writes a scalar 0.0).
            return np.zeros(dims, dtype=dtype)
        # tensorboard's decoder costs a few hundred milliseconds to import:
        # pay it only when a rule really needs a constant's value.
        from tensorboard.util.tensor_util import make_ndarray

        try:
            return make_ndarray(value.tensor)
        except (TypeError, ValueError, KeyError):
            return None

    def const_shape(self, tensor: Tensor) -> tuple[int, ...] | None:
        """The shape of a Const's value, read from its TensorProto header."""
        value = self._const_attr(tensor)
        if value is None:
            return None
        return tuple([dim.size for dim in value.tensor.tensor_shape.dim])

    def _const_attr(self, tensor: Tensor):
        """The `value` attribute of the Const behind `tensor`, or None."""
        index = self._ids.get(tensor.node)
        # Most tensors asked about are Consts themselves: one lookup, no walk.
        if index is None or not self._alive[index] or self._op_codes[index] != self._op_code_of.get("Const"):
            index = self._live_id(self.resolve(tensor).node)
            if index is None or self._op_names[self._op_codes[index]] != "Const":
                return None
        return self._store[index].attr.get("value")

    def resolve(self, tensor: Tensor) -> Tensor:
        """Follow Identity-like ops back to the tensor that really holds the value."""
        seen = 0
        while self.op(tensor.node) in ops.PASS_THROUGH_OPS and seen < 64:
            inputs = self.inputs(tensor.node)
            if not inputs:
                break
            tensor = inputs[0]
            seen += 1
        return tensor
