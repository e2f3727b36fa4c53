"""The protobuf side of a graph view: where its data lives and how values cross over.

The view indexes names and edges; everything else stays in the NodeDefs,
which live in their protobuf container. Here: reading the fields the index
needs in one pass, fetching a NodeDef by id, the live NodeDefs by name,
attribute values to and from Python, and the compact int arrays the index
is made of.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Mapping
from itertools import compress

import numpy as np

from graphdoc.proto import NodeDef, TensorProto


def read_fields(node_defs: Iterable[NodeDef]) -> tuple[list[str], array, list[str], list[str], list[int]]:
    """Names, op codes, op names (by code), every input reference (flat) and each node's input count.

    One pass touches each NodeDef once: reading the fields in separate passes
    made (and kept) a Python wrapper per NodeDef and per input field, about
    twice the time and 400 MB more at a million nodes. Ops are coded as they
    are read, so a million op strings never exist at once.
    """
    names: list[str] = []
    codes = array("i")
    code_of: dict[str, int] = {}
    refs: list[str] = []
    counts: list[int] = []
    add_name, add_code, add_refs, add_count = names.append, codes.append, refs.extend, counts.append
    for node in node_defs:
        add_name(node.name)
        add_code(code_of.setdefault(node.op, len(code_of)))
        inputs = node.input
        add_count(len(inputs))
        add_refs(inputs)
    return names, codes, list(code_of), refs, counts


class NodeStore:
    """The NodeDef of each id, fetched from the container the first time it is asked for.

    A Python wrapper around a NodeDef costs about 180 bytes, and rules look at
    a fraction of the nodes: wrappers are made for those only.
    """

    def __init__(self, container, count: int):
        self._container = container
        self.order = array("i", range(count))  # the id of each container entry, in order
        self._fetched: dict[int, NodeDef] = {}
        self._position: array | None = None  # id -> container entry, once the order changed

    def __getitem__(self, index: int) -> NodeDef:
        node = self._fetched.get(index)
        if node is None:
            position = index if self._position is None else self._position[index]
            node = self._fetched[index] = self._container[position]
        return node

    def add(self, index: int, node: NodeDef) -> None:
        """A NodeDef just appended to the container."""
        self._fetched[index] = node
        self.order.append(index)

    def keep_live(self, alive: bytearray) -> None:
        """After the container dropped its dead entries (keeping the order of the others)."""
        order = np.array(self.order, dtype=np.int64)
        order = order[np.frombuffer(alive, dtype=np.uint8)[order] == 1]
        self.order = int_array(order)
        position = np.full(len(alive), -1, dtype=np.int64)
        position[order] = np.arange(len(order))
        self._position = int_array(position)  # indexed one id at a time: an array, not numpy
        self._fetched = {index: node for index, node in self._fetched.items() if alive[index]}


class NodesByName(Mapping):
    """The live NodeDefs of a view by name, without a dictionary of their own.

    It holds the view's index, not the view: no reference cycle, so a view is
    freed as soon as nothing uses it.
    """

    __slots__ = ("_alive", "_ids", "_names", "_store")

    def __init__(self, ids: dict[str, int], alive: bytearray, store: NodeStore, names: list[str]):
        self._ids, self._alive, self._store, self._names = ids, alive, store, names

    # Rules look names up all the time: each method does its own lookup.
    def __getitem__(self, name: str) -> NodeDef:
        index = self._ids.get(name)
        if index is None or not self._alive[index]:
            raise KeyError(name)
        return self._store[index]

    def get(self, name: str, default=None):
        index = self._ids.get(name)
        return default if index is None or not self._alive[index] else self._store[index]

    def __contains__(self, name: object) -> bool:
        index = self._ids.get(name)
        return index is not None and self._alive[index] == 1

    def __iter__(self) -> Iterator[str]:
        return compress(self._names, self._alive)

    def __len__(self) -> int:
        return self._alive.count(1)


def attr_python_value(value) -> object:
    kind = value.WhichOneof("value")
    if kind == "list":
        lst = value.list
        for field in ("i", "f", "s", "b", "type"):
            items = getattr(lst, field)
            if items:
                return list(items)
        return []
    if kind == "shape":
        return None if value.shape.unknown_rank else [dim.size for dim in value.shape.dim]
    return getattr(value, kind) if kind else None


class DType(int):
    """A DataType enum value, for attributes that hold a type (`T`, `dtype`)."""


def set_attr_value(attr, value: object) -> None:
    if isinstance(value, DType):
        attr.type = value
    elif isinstance(value, bool):
        attr.b = value
    elif isinstance(value, int):
        attr.i = value
    elif isinstance(value, float):
        attr.f = value
    elif isinstance(value, bytes):
        attr.s = value
    else:
        raise TypeError(f"unsupported attribute value {value!r}")


def const_tensor(value: np.ndarray) -> TensorProto:
    """`value` as a TensorProto; TypeError or ValueError when TensorFlow has no dtype for it."""
    from tensorboard.util.tensor_util import make_tensor_proto

    return make_tensor_proto(np.asarray(value))


def set_const_value(node: NodeDef, tensor: TensorProto) -> None:
    """Make `node`'s `dtype` and `value` attributes hold `tensor` (made by const_tensor)."""
    node.attr["dtype"].type = tensor.dtype
    node.attr["value"].tensor.CopyFrom(tensor)


def int_array(values: np.ndarray) -> array:
    """A compact array of ints that Python indexes fast (numpy is slow one element at a time)."""
    return array("i", np.ascontiguousarray(values, dtype=np.int32).tobytes())
