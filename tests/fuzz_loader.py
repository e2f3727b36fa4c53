"""A fuzz target for the loader, and a bounded mutation driver for CI.

`check_one(data)` is the target: whatever the bytes, loading them either
gives a model or raises LoadError, and a model that loads can be scanned and
fixed without any exception but GraphdocError. It has the shape atheris and
other coverage-guided fuzzers call (one bytes argument); CI drives it with the
deterministic mutations below for a bounded number of iterations.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from graphdoc.errors import GraphdocError, LoadError
from graphdoc.loading import load
from graphdoc.rewrite import fix
from graphdoc.scanning import scan


def check_one(data: bytes, *, name: str = "fuzz.pb") -> str:
    """Run the loader, scan and fix on `data`; return what happened. Any other exception is a bug."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / name
        path.write_bytes(data)
        try:
            model = load(path)
        except LoadError:
            return "refused"
        scan(model)
        try:
            fix(model)
        except GraphdocError:
            return "loaded, fix refused"
        return "loaded and fixed"


def mutations(seeds: list[bytes], count: int, seed: int = 0):
    """`count` mutants of the seeds: bit flips, byte changes, truncations, splices, duplicated chunks."""
    rng = random.Random(seed)
    for _ in range(count):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            if not data:
                break
            kind = rng.randrange(5)
            at = rng.randrange(len(data))
            if kind == 0:
                data[at] ^= 1 << rng.randrange(8)
            elif kind == 1:
                data[at] = rng.randrange(256)
            elif kind == 2:
                del data[at:]
            elif kind == 3:
                other = rng.choice(seeds)
                start = rng.randrange(len(other))
                data[at:at] = other[start : start + rng.randint(1, 64)]
            else:
                data[at:at] = data[at : at + rng.randint(1, 32)]
        yield bytes(data)


_OPS = ["FusedBatchNormV3", "FusedBatchNorm", "Mean", "SquaredDifference", "Squeeze", "SelectV2", "Mul",
        "RealDiv", "GreaterEqual", "Floor", "RandomUniform", "StatelessRandomUniformV2", "Switch", "Merge",
        "If", "PlaceholderWithDefault", "Placeholder", "AssignSubVariableOp", "Identity", "Const",
        "CheckNumerics", "StopGradient", "Rsqrt", "AddV2", "Sub", "Cast", "NoOp", "Shape"]


def structured_mutations(seed_graph: bytes, count: int, seed: int = 0):
    """`count` GraphDefs edited at the message level, so they parse and reach the rules."""
    from tensorboard.util.tensor_util import make_tensor_proto

    from graphdoc.proto import GraphDef

    rng = random.Random(seed)
    for _ in range(count):
        graph = GraphDef.FromString(seed_graph)
        nodes = list(graph.node)
        for _ in range(rng.randint(1, 4)):
            node = rng.choice(nodes)
            kind = rng.randrange(7)
            if kind == 0:
                node.op = rng.choice(_OPS)
            elif kind == 1 and node.input:
                del node.input[rng.randrange(len(node.input))]
            elif kind == 2:
                node.input.append(rng.choice(nodes).name + rng.choice(["", ":1", ":2", ":7"]))
            elif kind == 3:
                node.attr["is_training"].CopyFrom(rng.choice(nodes).attr.get("T", node.attr["is_training"]))
            elif kind == 4:
                node.attr.clear()
            elif kind == 5:
                shape = [rng.choice([0, 1, 3, -1, 2**40]) for _ in range(rng.randint(0, 3))]
                node.attr["value"].tensor.CopyFrom(make_tensor_proto(rng.choice([0, 1, 2, -1]), dtype=None))
                node.attr["value"].tensor.tensor_shape.Clear()
                for size in shape:
                    node.attr["value"].tensor.tensor_shape.dim.add(size=size)
            else:
                node.input.insert(0, "^" + rng.choice(nodes).name)
        yield graph.SerializeToString()
