"""ONNX's protobuf messages and values, without the cost of importing the onnx package.

`import onnx` imports ml_dtypes, which takes 0.6 s to import in its version
0.7.0 (0.007 s in 0.6.0; measured on this project's machine): more than
reading and scanning a 100 MB model. Scanning needs only the messages, which
onnx generates into one protobuf module, `onnx/onnx_ml_pb2.py`; that module is
loaded on its own, under its own name, so that a later `import onnx` (fix,
probe) finds it in sys.modules and uses the same classes. What the scan reads
of tensors and attributes (small constants: a dropout's switch, reduction
axes, statistics) is decoded here; everything else uses the onnx package.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

_MODULE = "onnx.onnx_ml_pb2"


def messages():
    """The module of ONNX's messages (ModelProto, NodeProto, TensorProto, AttributeProto, ...)."""
    if _MODULE in sys.modules:
        return sys.modules[_MODULE]
    package = importlib.util.find_spec("onnx")  # locates the package without running its __init__
    if package is None or package.origin is None:
        raise ImportError("the onnx package is not installed")
    location = Path(package.origin).with_name("onnx_ml_pb2.py")
    if not location.is_file():  # a layout this does not know: pay for the whole package
        return onnx_package().onnx_ml_pb2
    spec = importlib.util.spec_from_file_location(_MODULE, location)
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE] = module
    spec.loader.exec_module(module)
    return module


def onnx_package():
    """The onnx package itself (checker, helper, shape inference), sharing the messages above."""
    import onnx

    if not hasattr(onnx, "onnx_ml_pb2"):  # loaded first by messages(): the package has not bound it
        onnx.onnx_ml_pb2 = sys.modules[_MODULE]
    return onnx


# TensorProto.DataType values, as numpy names them.
NUMPY_NAMES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 9: "bool",
               10: "float16", 11: "float64", 12: "uint32", 13: "uint64"}
# Where each type's values are when they are not in raw_data (onnx.proto's comments say which field).
_TYPED_FIELDS = {1: "float_data", 11: "double_data", 6: "int32_data", 7: "int64_data", 9: "int32_data",
                 2: "int32_data", 3: "int32_data", 4: "int32_data", 5: "int32_data", 12: "uint64_data",
                 13: "uint64_data"}


def dtype_name(data_type: int) -> str:
    if data_type in NUMPY_NAMES:
        return NUMPY_NAMES[data_type]
    name = messages().TensorProto.DataType.Name(data_type) if data_type else "?"
    return name.lower()


def to_array(tensor) -> np.ndarray | None:
    """A TensorProto's values, for the numeric types; None for others (strings, external data)."""
    if tensor.data_type not in NUMPY_NAMES or tensor.data_location == 1:  # 1: EXTERNAL
        return None
    dtype = np.dtype(NUMPY_NAMES[tensor.data_type])
    shape = tuple(tensor.dims)
    if tensor.raw_data:
        return np.frombuffer(tensor.raw_data, dtype.newbyteorder("<")).astype(dtype).reshape(shape)
    if tensor.data_type == 10:  # float16: its bits, one per int32
        return np.asarray(tensor.int32_data, np.uint16).view(np.float16).reshape(shape)
    return np.asarray(getattr(tensor, _TYPED_FIELDS[tensor.data_type]), dtype).reshape(shape)


def attribute_value(attribute):
    """An AttributeProto's value: a number, a list of them, bytes, a tensor's values or a graph."""
    kinds = messages().AttributeProto
    readers = {kinds.FLOAT: lambda a: a.f, kinds.INT: lambda a: a.i, kinds.STRING: lambda a: a.s,
               kinds.TENSOR: lambda a: to_array(a.t), kinds.GRAPH: lambda a: a.g,
               kinds.FLOATS: lambda a: list(a.floats), kinds.INTS: lambda a: list(a.ints),
               kinds.STRINGS: lambda a: list(a.strings)}
    return readers[attribute.type](attribute) if attribute.type in readers else None
