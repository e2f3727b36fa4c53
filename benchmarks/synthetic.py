"""Synthetic training-mode graphs of any size, written with protobuf alone (no TensorFlow needed).

Each block is 20 nodes: a 1x1 convolution with a bias, a training-mode
FusedBatchNormV3 (TF1 form: empty mean/variance inputs, the moving statistics
frozen beside it as `<block>/BatchNorm/moving_mean`), a ReLU and a TF 2.x
dropout (Shape -> RandomUniform -> GreaterEqual -> SelectV2). 50,000 blocks make
a 1,000,000-node graph with 50,000 BatchNorm and 50,000 dropout findings.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from tensorboard.compat.proto.graph_pb2 import GraphDef
from tensorboard.util.tensor_util import make_tensor_proto

CHANNELS = 4
FLOAT, INT32 = 1, 3


def synthetic_graph(blocks: int, seed: int = 0) -> GraphDef:
    rng = np.random.default_rng(seed)
    graph = GraphDef()
    graph.versions.producer = 1994
    _node(graph, "input", "Placeholder", [], dtype=FLOAT, shape=[-1, 8, 8, CHANNELS])
    x = "input"
    for index in range(blocks):
        x = _block(graph, f"block{index}", x, rng)
    _node(graph, "output", "Identity", [x], T=FLOAT)
    return graph


def _block(graph: GraphDef, scope: str, x: str, rng) -> str:
    bn = f"{scope}/BatchNorm"
    const = lambda name, value: _const(graph, name, np.asarray(value, np.float32))  # noqa: E731
    const(f"{scope}/weights", rng.normal(size=(1, 1, CHANNELS, CHANNELS)))
    _node(graph, f"{scope}/Conv2D", "Conv2D", [x, f"{scope}/weights"], T=FLOAT, strides=[1, 1, 1, 1],
          padding=b"SAME", data_format=b"NHWC")
    const(f"{scope}/bias", rng.normal(size=CHANNELS))
    _node(graph, f"{scope}/BiasAdd", "BiasAdd", [f"{scope}/Conv2D", f"{scope}/bias"], T=FLOAT, data_format=b"NHWC")
    const(f"{bn}/gamma", rng.uniform(0.5, 1.5, CHANNELS))
    const(f"{bn}/beta", rng.normal(size=CHANNELS))
    const(f"{bn}/Const", np.zeros(0))
    const(f"{bn}/Const_1", np.zeros(0))
    const(f"{bn}/moving_mean", rng.normal(size=CHANNELS))
    const(f"{bn}/moving_variance", rng.uniform(0.5, 2.0, CHANNELS))
    _node(graph, f"{bn}/FusedBatchNormV3", "FusedBatchNormV3",
          [f"{scope}/BiasAdd", f"{bn}/gamma", f"{bn}/beta", f"{bn}/Const", f"{bn}/Const_1"],
          T=FLOAT, U=FLOAT, epsilon=0.001, is_training=True, data_format=b"NHWC", exponential_avg_factor=1.0)
    _node(graph, f"{scope}/Relu", "Relu", [f"{bn}/FusedBatchNormV3"], T=FLOAT)
    drop = f"{scope}/dropout"
    _node(graph, f"{drop}/Shape", "Shape", [f"{scope}/Relu"], T=FLOAT, out_type=INT32)
    _node(graph, f"{drop}/random_uniform/RandomUniform", "RandomUniform", [f"{drop}/Shape"],
          T=INT32, dtype=FLOAT, seed=0, seed2=0)
    const(f"{drop}/GreaterEqual/y", 0.1)
    _node(graph, f"{drop}/GreaterEqual", "GreaterEqual", [f"{drop}/random_uniform/RandomUniform", f"{drop}/GreaterEqual/y"], T=FLOAT)
    const(f"{drop}/Const", 1.0 / 0.9)
    _node(graph, f"{drop}/Mul", "Mul", [f"{scope}/Relu", f"{drop}/Const"], T=FLOAT)
    const(f"{drop}/Const_1", 0.0)
    _node(graph, f"{drop}/SelectV2", "SelectV2", [f"{drop}/GreaterEqual", f"{drop}/Mul", f"{drop}/Const_1"], T=FLOAT)
    return f"{drop}/SelectV2"


def _const(graph: GraphDef, name: str, value: np.ndarray) -> None:
    node = graph.node.add(name=name, op="Const")
    node.attr["dtype"].type = FLOAT
    node.attr["value"].tensor.CopyFrom(make_tensor_proto(value))


# Written here rather than with graphdoc's own helpers: the graphs that measure graphdoc
# should not be built by the code under measurement.
def _node(graph: GraphDef, name: str, op: str, inputs: list[str], **attrs) -> None:
    node = graph.node.add(name=name, op=op)
    node.input.extend(inputs)
    for key, value in attrs.items():
        attr = node.attr[key]
        if key in ("T", "U", "dtype", "out_type"):
            attr.type = value
        elif key == "shape":
            for size in value:
                attr.shape.dim.add(size=size)
        elif isinstance(value, bool):
            attr.b = value
        elif isinstance(value, int):
            attr.i = value
        elif isinstance(value, float):
            attr.f = value
        elif isinstance(value, bytes):
            attr.s = value
        else:
            attr.list.i.extend(value)


if __name__ == "__main__":
    blocks, path = int(sys.argv[1]), Path(sys.argv[2])
    path.write_bytes(synthetic_graph(blocks).SerializeToString())
    print(f"wrote {path}: {20 * blocks + 2} nodes")
