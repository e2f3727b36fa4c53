"""TensorFlow's protobuf messages, taken from tensorboard's copy.

tensorboard ships the same .proto definitions (under its own package name, so
they never clash with TensorFlow's in one process) and imports in a few
milliseconds, where `import tensorflow` costs seconds. Only code that runs a
graph imports TensorFlow.
"""

from tensorboard.compat.proto.attr_value_pb2 import AttrValue
from tensorboard.compat.proto.function_pb2 import FunctionDef
from tensorboard.compat.proto.graph_pb2 import GraphDef
from tensorboard.compat.proto.node_def_pb2 import NodeDef
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.types_pb2 import DataType

__all__ = ["AttrValue", "DataType", "FunctionDef", "GraphDef", "NodeDef", "TensorProto"]
