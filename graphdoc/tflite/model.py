"""A .tflite model read from its flatbuffer: operators, tensors, and constant buffers."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import ClassVar

import numpy as np

from graphdoc.errors import LoadError, first_line
from graphdoc.graph.model import ModelOfAnotherFormat
from graphdoc.graph.ports import Port

# TensorType values of the schema, as numpy names them.
_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16", 9: "int8",
           10: "float64"}


@dataclass(frozen=True)
class Operator:
    index: int
    op: str  # the builtin's name: "MEAN", "RANDOM_UNIFORM"; a custom op's own name
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(eq=False)
class TfliteModel(ModelOfAnotherFormat):
    kind: ClassVar[str] = "tflite"
    flatbuffer: object  # tflite.Model
    path: Path

    @property
    def format(self) -> str:
        return f"TensorFlow Lite model (schema version {self.flatbuffer.Version()})"

    @cached_property
    def subgraph(self):
        return self.flatbuffer.Subgraphs(0)

    @cached_property
    def operators(self) -> list[Operator]:
        import tflite

        codes = self.flatbuffer
        found = []
        for index in range(self.subgraph.OperatorsLength()):
            operator = self.subgraph.Operators(index)
            code = codes.OperatorCodes(operator.OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            name = code.CustomCode().decode() if code.CustomCode() else tflite.opcode2name(builtin)
            found.append(Operator(index, name, tuple(int(i) for i in operator.InputsAsNumpy() if i >= 0),
                                  tuple(int(i) for i in operator.OutputsAsNumpy())))
        return found

    @cached_property
    def producers(self) -> dict[int, Operator]:
        return {tensor: operator for operator in self.operators for tensor in operator.outputs}

    @cached_property
    def readers(self) -> dict[int, list[Operator]]:
        readers = defaultdict(list)
        for operator in self.operators:
            for tensor in dict.fromkeys(operator.inputs):
                readers[tensor].append(operator)
        return readers

    def name(self, tensor: int) -> str:
        return self.subgraph.Tensors(tensor).Name().decode()

    def shape(self, tensor: int) -> list[int] | None:
        """The tensor's dimensions (-1 where the signature leaves one open), None without a rank."""
        entry = self.subgraph.Tensors(tensor)
        if not entry.ShapeSignatureIsNone() and entry.ShapeSignatureLength():
            return [int(d) for d in entry.ShapeSignatureAsNumpy()]
        return None if entry.ShapeIsNone() else [int(d) for d in entry.ShapeAsNumpy()] if entry.ShapeLength() else []

    def value(self, tensor: int) -> np.ndarray | None:
        """A constant tensor's values (its buffer's data), None for computed tensors."""
        entry = self.subgraph.Tensors(tensor)
        buffer = self.flatbuffer.Buffers(entry.Buffer())
        if buffer is None or buffer.DataLength() == 0 or entry.Type() not in _DTYPES:
            return None
        return np.frombuffer(buffer.DataAsNumpy().tobytes(), np.dtype(_DTYPES[entry.Type()]).newbyteorder("<"))

    def size(self) -> tuple[int, int]:
        return len(self.operators), self.flatbuffer.SubgraphsLength() - 1

    def op_counts(self) -> Counter:
        return Counter(operator.op for operator in self.operators)


    def outputs(self) -> list[str]:
        return [self.name(int(t)) for t in self.subgraph.OutputsAsNumpy()]

    def ports(self, outputs: list[str] | None = None) -> tuple[list[Port], list[Port]]:
        def port(tensor: int) -> Port:
            return Port(self.name(tensor), _DTYPES.get(self.subgraph.Tensors(tensor).Type(), "?"), self.shape(tensor))

        feeds = [port(int(t)) for t in self.subgraph.InputsAsNumpy()]
        fetches = [port(int(t)) for t in self.subgraph.OutputsAsNumpy()]
        return feeds, [p for p in fetches if outputs is None or p.name in outputs]


def load_tflite(path: Path, data: bytes) -> TfliteModel:
    try:
        import tflite
    except ImportError:
        raise LoadError(f"{path} is a TensorFlow Lite model; reading it needs the tflite package "
                        "(pip install tflite)") from None
    try:
        model = TfliteModel(tflite.Model.GetRootAs(data, 0), path)
        if model.flatbuffer.SubgraphsLength() == 0:
            raise LoadError(f"{path}: a TensorFlow Lite model without subgraphs; is it the right file?")
        model.readers  # reads every operator now: a damaged file fails here, not in the middle of a scan
    except LoadError:
        raise
    except Exception as error:  # a damaged flatbuffer fails in struct unpacking, index errors, ...
        raise LoadError(f"{path}: not a readable TensorFlow Lite model ({first_line(error)})") from None
    return model
