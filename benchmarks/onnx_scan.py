"""How long `graphdoc scan` takes on a large ONNX model, and with how much memory.

Writes a model of about SIZE_MB megabytes (default 100) built with onnx.helper:
blocks of Conv (the weights), BatchNormalization with training_mode=1, Relu
and Dropout with training_mode true, and a tf2onnx-style block (a
BatchNormalization whose mean is a ReduceMean over the batch axes) every tenth
block. Then times cold `graphdoc scan` processes (wall time and peak RSS).

    python benchmarks/onnx_scan.py [SIZE_MB] [ROUNDS]
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CHANNELS = 256


def large_model(size_mb: int, seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    per_block = CHANNELS * CHANNELS * 4  # a 1x1 convolution's weights, float32
    blocks = max(1, size_mb * (1 << 20) // per_block)
    nodes, initializers, x = [], [], "input"
    for index in range(blocks):
        name = f"block{index}"
        initializers += [
            numpy_helper.from_array(rng.standard_normal((CHANNELS, CHANNELS, 1, 1), np.float32), f"{name}/w"),
            *(numpy_helper.from_array(rng.uniform(0.5, 2, CHANNELS).astype(np.float32), f"{name}/{part}")
              for part in ("scale", "bias", "mean", "var")),
        ]
        nodes.append(helper.make_node("Conv", [x, f"{name}/w"], [f"{name}/conv"], name=f"{name}/conv"))
        if index % 10 == 9:
            nodes.append(helper.make_node("ReduceMean", [f"{name}/conv"], [f"{name}/batch_mean"], name=f"{name}/mean",
                                          axes=[0, 2, 3], keepdims=0))
            mean = f"{name}/batch_mean"
            nodes.append(helper.make_node("BatchNormalization", [f"{name}/conv", f"{name}/scale", f"{name}/bias", mean,
                                                                 f"{name}/var"], [f"{name}/bn"], name=f"{name}/bn"))
        else:
            nodes.append(helper.make_node("BatchNormalization", [f"{name}/conv", f"{name}/scale", f"{name}/bias",
                                                                 f"{name}/mean", f"{name}/var"],
                                          [f"{name}/bn", f"{name}/rm", f"{name}/rv"], name=f"{name}/bn", training_mode=1))
        nodes.append(helper.make_node("Relu", [f"{name}/bn"], [f"{name}/relu"], name=f"{name}/relu"))
        x = f"{name}/relu"
    initializers.append(numpy_helper.from_array(np.array(True), "training"))
    initializers.append(numpy_helper.from_array(np.array(0.5, np.float32), "ratio"))
    nodes.append(helper.make_node("Dropout", [x, "ratio", "training"], ["output"], name="dropout"))
    graph = helper.make_graph(
        nodes, "large", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", CHANNELS, 8, 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", CHANNELS, 8, 8])], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of one process."""
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - start
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "large.onnx"
        path.write_bytes(large_model(size).SerializeToString())
        print(f"{path.stat().st_size / 1e6:.0f} MB, {len(onnx.load(str(path)).graph.node)} nodes")
        graphdoc = str(Path(sys.executable).with_name("graphdoc"))
        for _ in range(rounds):
            wall, peak = timed([graphdoc, "scan", str(path), "--format", "concise"])
            print(f"graphdoc scan: {wall:.2f} s wall, peak RSS so far {peak:.0f} MiB")


if __name__ == "__main__":
    main()
