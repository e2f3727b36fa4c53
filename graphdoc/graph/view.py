"""An index over one graph body: the main graph or one library function.

The GraphDef (or FunctionDef) protobuf stays the single source of truth; the
view never copies attributes or tensor payloads. It is columnar, because a
graph of a million nodes cannot afford a Python object per edge:

- every name gets an integer id, in file order (names that are read but not
  defined, and function arguments, get ids after the nodes);
- the inputs of the nodes as loaded are three flat arrays (producer id, port,
  and where each node's inputs start), with port -1 for a control input;
- who reads a node is the same arrays sorted by producer, built on first use.

Edits leave those arrays alone: a node whose inputs change is moved to a small
overlay (its inputs as tuples, and its reads listed per producer), and a
removed node is marked dead. Every query combines the arrays with the overlay,
so a fix of 50,000 layers costs what it touches, and a prune of half a
million nodes is a few array operations. Rules read the graph through the
query methods; a networkx graph over the same index is built on request.
The NodeDefs themselves, and the conversion of values, are in storage.py.
"""

from __future__ import annotations

import contextlib
import gc
import graphlib
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping
from functools import cached_property, partial
from itertools import accumulate, chain, compress
from typing import TYPE_CHECKING, NamedTuple

import math

import numpy as np

from graphdoc import ops
from graphdoc.graph.storage import (
    NodesByName,
    NodeStore,
    attr_python_value,
    int_array,
    read_fields,
    set_attr_value,
    set_const_value,
)
from graphdoc.proto import FunctionDef, NodeDef

if TYPE_CHECKING:
    import networkx as nx

FUNCTION_ARG_OP = "_Arg"


# NamedTuples rather than dataclasses: rules create many of them.
# DataType enum values whose tensor_content is a plain little-endian array.
_RAW_DTYPES = {1: np.dtype("<f4"), 2: np.dtype("<f8"), 3: np.dtype("<i4"), 9: np.dtype("<i8")}


class Tensor(NamedTuple):
    """One output of a node: `node:port`."""

    node: str
    port: int = 0

    def __str__(self) -> str:
        return self.node if self.port == 0 else f"{self.node}:{self.port}"


class Use(NamedTuple):
    """A data input slot that reads a tensor."""

    consumer: str
    slot: int


# tuple.__new__ skips the Python-level constructor NamedTuple generates.
_new = tuple.__new__
_LARGEST_CONST_READ = 1 << 20
_CONTROL = -1  # the port recorded for a control input
# Removing more nodes than this at once checks the readers with array
# operations over the whole graph rather than node by node.
_BULK_REMOVAL = 2048


class GraphView:
    """Names, edges and consumers of one graph body.

    `scope` is "" for the main graph and the function's name for a library
    function; in a function, the input arguments appear as nodes of op `_Arg`.
    """

    def __init__(self, node_defs: Iterable[NodeDef], *, function: FunctionDef | None = None):
        self._container = node_defs
        self.scope = function.signature.name if function is not None else ""
        self.function = function
        self.args: dict[str, object] = {}
        if function is not None:
            self.args = {arg.name: arg for arg in function.signature.input_arg}
        self._ref_text: dict[Tensor, str] = {}  # function bodies only: how each tensor is written
        # The overlay: nodes whose inputs were edited (or that were added), and
        # their reads, by producer id: {producer: {reader: how many inputs}}.
        # Edits come in batches, so the reads are recorded when next asked for.
        self._edited: dict[int, tuple[tuple[Tensor, ...], tuple[str, ...]]] = {}
        self._edited_data_readers: dict[int, dict[int, int]] = {}
        self._edited_control_readers: dict[int, dict[int, int]] = {}
        self._recorded: dict[int, tuple[list[int], list[int]]] = {}  # what each edited node's reads were recorded as
        self._unrecorded: set[int] = set()
        self._ops_of_cache: dict[frozenset[str], list[str]] = {}
        self._edited_edge_arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        # The data inputs of loaded nodes as rules asked for them: they never
        # change (an edited node's inputs live in the overlay).
        self._loaded_inputs: dict[int, tuple[Tensor, ...]] = {}
        with _collector_paused():
            self._index(node_defs)
        self.returns: list[Tensor] = []
        if function is not None:
            for out_arg in function.signature.output_arg:
                ref = function.ret.get(out_arg.name)
                if ref is not None:
                    self.returns.append(self._parse_data_ref(ref))

    # -- building -----------------------------------------------------------

    def _index(self, node_defs: Iterable[NodeDef]) -> None:
        # The hot path of loading: the fields are read in one pass (each read
        # costs about half a microsecond), and the rest is dictionary lookups
        # and array operations.
        names, self._op_codes, self._op_names, refs, counts = read_fields(node_defs)
        count = len(names)
        self._names: list[str] = names
        self._ids: dict[str, int] = {name: index for index, name in enumerate(names)}
        self._alive = bytearray(b"\x01") * count
        self._undefined: set[int] = set()  # ids of names that are read (or arguments) but no node has
        self.duplicates: list[str] = []
        if len(self._ids) < count:
            self._mark_duplicates()
        self._op_code_of: dict[str, int] = {op: code for code, op in enumerate(self._op_names)}
        self._store = NodeStore(node_defs, count)
        producers, ports = self._parse_refs(refs)
        del refs
        for name in self.args:
            self._id_for(name)
        self._base_nodes = count
        self._base_start = array("i", [0])
        self._base_start.extend(accumulate(counts))
        self._base_producer = array("i", producers)
        self._base_port = array("i", ports)
        # The NodeDefs by name, in file order (nodes added later come last).
        self.nodes: Mapping[str, NodeDef] = NodesByName(self._ids, self._alive, self._store, self._names)

    def _mark_duplicates(self) -> None:
        ids, alive = self._ids, self._alive
        for index, name in enumerate(self._names):
            if ids[name] != index:  # a later node of the same name shadows this one
                self.duplicates.append(name)
                alive[index] = 0

    def _parse_refs(self, refs: list[str]) -> tuple[list[int], list[int]]:
        """Producer ids and ports of input references; port -1 marks a control input."""
        # A plain node name is by far the commonest reference: one lookup each.
        producers = list(map(self._ids.get, refs)) if self.function is None else [None] * len(refs)
        ports = [0] * len(refs)
        for index in [index for index, producer in enumerate(producers) if producer is None]:
            ref = refs[index]
            if ref.startswith("^"):
                producers[index], ports[index] = self._id_for(ref[1:]), _CONTROL
            else:
                tensor = self._parse_data_ref(ref)
                producers[index], ports[index] = self._id_for(tensor.node), tensor.port
        return producers, ports

    def _parse_data_ref(self, ref: str) -> Tensor:
        if self.function is None:
            return _parse_graph_ref(ref)
        tensor = self._parse_function_ref(ref)
        self._ref_text.setdefault(tensor, ref)
        return tensor

    def _parse_function_ref(self, ref: str) -> Tensor:
        # Inside a function: `arg` for an input argument, `node:out_arg:index` otherwise.
        parts = ref.split(":")
        if len(parts) == 1:
            return Tensor(ref, 0)
        name, out_arg = parts[0], parts[1]
        index = int(parts[2]) if len(parts) > 2 else 0
        arg_names = ops.OUTPUT_ARGS.get(self.op(name), ())
        if out_arg in arg_names:
            return Tensor(name, arg_names.index(out_arg) + index)
        return Tensor(name, index)

    def _id_for(self, name: str) -> int:
        """The id of `name`; a name nothing defines (yet) gets a dead id of its own."""
        known = self._ids.get(name)
        if known is not None:
            return known
        self._ids[name] = len(self._names)
        self._names.append(name)
        self._undefined.add(len(self._names) - 1)
        self._alive.append(0)
        self._op_codes.append(self._op_code(""))
        return len(self._names) - 1

    def _ids_of(self, names: list[str]) -> list[int]:
        """[self._id_for(name) for name in names], with one dictionary lookup for each known name."""
        ids = list(map(self._ids.get, names))
        for position in [position for position, index in enumerate(ids) if index is None]:
            ids[position] = self._id_for(names[position])
        return ids

    def _op_code(self, op: str) -> int:
        code = self._op_code_of.get(op)
        if code is None:
            code = self._op_code_of[op] = len(self._op_names)
            self._op_names.append(op)
        return code

    # -- reading --------------------------------------------------------------

    def __contains__(self, name: str) -> bool:
        return name in self.nodes or name in self.args

    def __len__(self) -> int:
        return len(self.nodes)

    def _live_id(self, name: str) -> int | None:
        index = self._ids.get(name)
        return index if index is not None and self._alive[index] else None

    def op(self, name: str) -> str:
        index = self._ids.get(name)  # _live_id, inlined: rules ask for ops all the time
        if index is not None and self._alive[index]:
            return self._op_names[self._op_codes[index]]
        return FUNCTION_ARG_OP if name in self.args else ""

    def ops_of(self, op_types: frozenset[str] | set[str]) -> list[str]:
        """Names of the nodes whose op is one of `op_types`, in file order."""
        key = frozenset(op_types)
        found = self._ops_of_cache.get(key)
        if found is None:
            codes = [self._op_code_of[op] for op in key if op in self._op_code_of]
            found = [self._names[index] for index in self._live_ids_where(np.isin(self._op_code_array(), codes))]
            self._ops_of_cache[key] = found
        return list(found)

    def op_counts(self) -> Counter:
        """How many nodes of each op the body holds."""
        live = self._op_code_array()[self._alive_array()]
        counts = np.bincount(live, minlength=len(self._op_names))
        return Counter({op: int(count) for op, count in zip(self._op_names, counts.tolist(), strict=True) if count})

    def inputs(self, name: str) -> tuple[Tensor, ...]:
        """The data inputs of a node, in slot order."""
        index = self._ids.get(name)
        if index is None or not self._alive[index]:
            return ()
        edited = self._edited.get(index)
        if edited is not None:
            return edited[0]
        loaded = self._loaded_inputs.get(index)
        if loaded is None:
            start, end = self._base_start[index], self._base_start[index + 1]
            names = self._names
            loaded = self._loaded_inputs[index] = tuple([
                _new(Tensor, (names[producer], port))
                for producer, port in zip(self._base_producer[start:end], self._base_port[start:end])
                if port != _CONTROL
            ])
        return loaded

    def control_inputs(self, name: str) -> tuple[str, ...]:
        index = self._live_id(name)
        if index is None:
            return ()
        edited = self._edited.get(index)
        if edited is not None:
            return edited[1]
        if not self._base_waits[index]:
            return ()
        start, end = self._base_start[index], self._base_start[index + 1]
        names = self._names
        return tuple([
            names[producer]
            for producer, port in zip(self._base_producer[start:end], self._base_port[start:end])
            if port == _CONTROL
        ])

    @cached_property
    def _base_waits(self) -> bytearray:
        """Whether each loaded node has a control input: most have none, and need no slicing."""
        _, port, owner = self._base_edges
        waits = np.zeros(self._base_nodes, dtype=np.uint8)
        waits[owner[port == _CONTROL]] = 1
        return bytearray(waits.tobytes())

    def uses(self, tensor: Tensor) -> list[Use]:
        """The data input slots that read `tensor`, in file order."""
        index = self._ids.get(tensor.node)
        if index is None:
            return []
        start, readers, ports, slots = self._base_data_readers
        names, alive, edited = self._names, self._alive, self._edited
        found = []
        if index + 1 < len(start):
            port = tensor.port
            found = [
                _new(Use, (names[readers[k]], slots[k]))
                for k in range(start[index], start[index + 1])
                if ports[k] == port and alive[readers[k]] and readers[k] not in edited
            ]
        for reader in self._overlay(control=False).get(index, {}):
            if alive[reader]:
                found += [_new(Use, (names[reader], slot)) for slot, read in enumerate(edited[reader][0]) if read == tensor]
        return found

    def read_ports(self, name: str) -> set[int]:
        """The output ports of `name` that some node reads as data."""
        index = self._ids.get(name)
        if index is None:
            return set()
        start, readers, ports, _ = self._base_data_readers
        alive, edited = self._alive, self._edited
        found = set()
        if index + 1 < len(start):
            found = {
                ports[k]
                for k in range(start[index], start[index + 1])
                if alive[readers[k]] and readers[k] not in edited
            }
        for reader in self._overlay(control=False).get(index, {}):
            if alive[reader]:
                found.update(tensor.port for tensor in edited[reader][0] if tensor.node == name)
        return found

    def consumers(self, name: str) -> list[str]:
        """The nodes that read any output of `name` as data, each once, in file order."""
        index = self._ids.get(name)
        if index is None:
            return []
        names = self._names
        readers = self._readers(index, control=False)
        if len(readers) > 1:
            readers = dict.fromkeys(readers)
        return [names[reader] for reader in readers]

    def control_users(self, name: str) -> list[str]:
        index = self._ids.get(name)
        if index is None:
            return []
        names = self._names
        return [names[reader] for reader in self._readers(index, control=True)]

    def _readers(self, index: int, *, control: bool) -> list[int]:
        """Ids of the live nodes that read `index` (as data, or as a control input)."""
        start, readers = (self._base_control_readers if control else self._base_data_readers)[:2]
        alive, edited = self._alive, self._edited
        found = []
        if index + 1 < len(start):
            found = [reader for reader in readers[start[index] : start[index + 1]] if alive[reader] and reader not in edited]
        for reader, count in self._overlay(control=control).get(index, {}).items():
            if alive[reader]:
                found.extend((reader,) * count)
        return found

    @cached_property
    def _base_data_readers(self) -> tuple[list[int], ...]:
        """(start, reader, port, slot): the loaded data edges by producer, readers in file order."""
        return self._invert(control=False)

    @cached_property
    def _base_control_readers(self) -> tuple[list[int], ...]:
        return self._invert(control=True)

    def _invert(self, *, control: bool) -> tuple[list[int], ...]:
        # Built when a rule first asks who reads a node.
        producer, port, owner = self._base_edges
        chosen = port == _CONTROL if control else port != _CONTROL
        producer, port, owner = producer[chosen], port[chosen], owner[chosen]
        # The slot of a data edge is its rank among its reader's data inputs.
        slot = np.arange(len(owner)) - _group_starts(owner, self._base_nodes)[owner]
        order = np.argsort(producer, kind="stable")
        start = _group_starts(producer, len(self._names))
        return int_array(start), int_array(owner[order]), int_array(port[order]), int_array(slot[order])

    @cached_property
    def _base_edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(producer, port, owner) of every input of the nodes as loaded."""
        counts = np.diff(np.frombuffer(self._base_start, dtype=np.int32))
        owner = np.repeat(np.arange(self._base_nodes, dtype=np.int32), counts)
        # Views of the loaded arrays, which are never resized (a rebase replaces them).
        return np.frombuffer(self._base_producer, dtype=np.int32), np.frombuffer(self._base_port, dtype=np.int32), owner

    def _edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(producer, port, reader) ids of every input of every live node, loaded or edited."""
        live = self._alive_array()
        producer, port, owner = self._base_edges
        loaded = live[: self._base_nodes].copy()
        loaded[self._edited_ids()] = False
        keep = loaded[owner]
        edited_producer, edited_port, edited_owner = self._edited_edges()
        keep_edited = live[edited_owner]
        return (
            np.concatenate([producer[keep], edited_producer[keep_edited]]),
            np.concatenate([port[keep], edited_port[keep_edited]]),
            np.concatenate([owner[keep], edited_owner[keep_edited]]),
        )

    def _edited_ids(self) -> np.ndarray:
        edited = np.fromiter(self._edited, dtype=np.int64, count=len(self._edited))
        return edited[edited < self._base_nodes]

    def _edited_edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(producer, port, reader) ids of the inputs of the edited nodes; kept until the next edit."""
        if self._edited_edge_arrays is None:
            edited = self._edited
            producers = self._ids_of([tensor.node for data, _ in edited.values() for tensor in data])
            producers += self._ids_of([control for _, controls in edited.values() for control in controls])
            ports = [tensor.port for data, _ in edited.values() for tensor in data]
            owners = [index for index, (data, _) in edited.items() for _ in data]
            owners += [index for index, (_, controls) in edited.items() for _ in controls]
            ports += [_CONTROL] * (len(owners) - len(ports))
            self._edited_edge_arrays = tuple(np.array(values, dtype=np.int64) for values in (producers, ports, owners))
        return self._edited_edge_arrays

    def _alive_array(self) -> np.ndarray:
        return np.frombuffer(self._alive, dtype=np.uint8).astype(bool)

    def _op_code_array(self) -> np.ndarray:
        return np.array(self._op_codes, dtype=np.int32)

    def _live_ids_where(self, mask: np.ndarray) -> list[int]:
        return np.flatnonzero(mask & self._alive_array()).tolist()

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

    def ref_text(self, tensor: Tensor) -> str:
        """How to write a reference to `tensor` as a NodeDef input in this body."""
        known = self._ref_text.get(tensor)
        if known is not None:
            return known
        if self.function is None or tensor.node in self.args:
            return str(tensor)
        op = self.op(tensor.node)
        arg_names = ops.OUTPUT_ARGS.get(op)
        if arg_names:
            return f"{tensor.node}:{arg_names[tensor.port]}:0"
        return f"{tensor.node}:{ops.SINGLE_OUTPUT_ARG.get(op, 'output')}:{tensor.port}"

    def sinks(self) -> list[str]:
        """Nodes whose outputs nothing reads, in file order (candidate outputs)."""
        read = np.zeros(len(self._names), dtype=bool)
        read[self._edges()[0]] = True
        if self.function is not None:
            read[[self._ids[tensor.node] for tensor in self.returns if tensor.node in self._ids]] = True
        return [self._names[index] for index in self._live_ids_where(~read)]

    def input_count_outliers(self, bounds: Mapping[str, tuple[int, int | None]]) -> list[tuple[str, int]]:
        """(node, data input count) of the nodes whose op has `bounds` (fewest, most) outside them."""
        fewest = np.zeros(len(self._op_names), dtype=np.int64)
        most = np.full(len(self._op_names), np.iinfo(np.int64).max)
        for op, (low, high) in bounds.items():
            if op in self._op_code_of:
                fewest[self._op_code_of[op]] = low
                most[self._op_code_of[op]] = np.iinfo(np.int64).max if high is None else high
        _, port, owner = self._edges()
        counts = np.bincount(owner[port != _CONTROL], minlength=len(self._names))
        codes = self._op_code_array()
        outside = (counts < fewest[codes]) | (counts > most[codes])
        return [(self._names[index], int(counts[index])) for index in self._live_ids_where(outside)]

    # -- checked edits --------------------------------------------------------
    # Each edit changes the NodeDefs in place and keeps the index consistent, so
    # a long list of edits costs time linear in what it touches.

    def set_attrs(self, name: str, values: Iterable[tuple[str, object]]) -> None:
        """Set each (key, value) attribute of `name`."""
        attrs = self.nodes[name].attr
        for key, value in values:
            set_attr_value(attrs[key], value)

    def set_input(self, name: str, slot: int, tensor: Tensor) -> None:
        """Make data input `slot` of `name` read `tensor`."""
        self.set_inputs(name, ((slot, tensor),))

    def set_inputs(self, name: str, tensors: Iterable[tuple[int, Tensor]]) -> None:
        """Make each data input `slot` of `name` read its tensor: (slot, tensor) pairs, one index update."""
        tensors = tuple(tensors)
        for _, tensor in tensors:
            if tensor.node not in self:
                raise EditError(f"cannot rewire {name}: {tensor} does not exist")
        node = self.nodes[name]
        inputs = list(self.inputs(name))
        for slot, tensor in tensors:
            node.input[slot] = self.ref_text(tensor)  # data inputs precede control inputs
            inputs[slot] = tensor
        self._set_inputs(self._ids[name], tuple(inputs), self.control_inputs(name))

    def redirect_uses(self, old: Tensor, new: Tensor) -> None:
        """Make every data use of `old` read `new` instead."""
        for use in self.uses(old):
            self.set_input(use.consumer, use.slot, new)
        if self.function is not None:
            for out_arg, ref in self.function.ret.items():
                if self._parse_data_ref(ref) == old:
                    self.function.ret[out_arg] = self.ref_text(new)

    def add_node(self, node: NodeDef) -> None:
        """Append a copy of `node`; its inputs must already exist (add producers first)."""
        if node.name in self:
            raise EditError(f"cannot add {node.name}: the name is taken")
        added = self._container.add()
        added.CopyFrom(node)
        index = self._claim(added)
        data = tuple(self._parse_data_ref(ref) for ref in added.input if not ref.startswith("^"))
        controls = tuple(ref[1:] for ref in added.input if ref.startswith("^"))
        self._set_inputs(index, data, controls)

    def add_const(self, name: str, value: np.ndarray) -> Tensor:
        """Add a Const node holding `value`; refuses a name that is taken."""
        if name in self:
            raise EditError(f"cannot add {name}: the name is taken")
        node = self._container.add(name=name, op="Const")
        set_const_value(node, value)
        self._set_inputs(self._claim(node), (), ())
        return Tensor(name)

    def _claim(self, node: NodeDef) -> int:
        """Give a node just appended to the container its id."""
        index = self._ids.get(node.name)
        if index is None or index not in self._undefined:
            # A new name, or the name of a removed node whose NodeDef may still
            # be in the container: a fresh id.
            self._ids.pop(node.name, None)
            index = self._id_for(node.name)
        # A name that was read but never defined keeps its id: the nodes that
        # read it are recorded under it.
        self._undefined.discard(index)
        self._store.add(index, node)
        self._alive[index] = 1
        self._op_codes[index] = self._op_code(node.op)
        self._ops_changed()
        return index

    def make_const(self, name: str, value: np.ndarray) -> None:
        """Turn `name` (a placeholder, say) into a Const holding `value`, keeping its name."""
        index = self._ids[name]
        node = self.nodes[name]
        self._set_inputs(index, (), ())
        node.op = "Const"
        node.attr.clear()
        del node.input[:]
        set_const_value(node, value)
        self._set_op(index, "Const")

    def replace_node(self, name: str, node: NodeDef) -> None:
        """Make `name` the node `node` (same name; its op, attributes and inputs), inputs existing."""
        if node.name != name:
            raise EditError(f"cannot replace {name} with a node named {node.name}")
        data = tuple(self._parse_data_ref(ref) for ref in node.input if not ref.startswith("^"))
        controls = tuple(ref[1:] for ref in node.input if ref.startswith("^"))
        for tensor in data:
            if tensor.node not in self:
                raise EditError(f"cannot replace {name}: {tensor} does not exist")
        index = self._ids[name]
        self.nodes[name].CopyFrom(node)
        self._set_inputs(index, data, controls)
        self._set_op(index, node.op)

    def make_identity(self, name: str, tensor: Tensor) -> None:
        """Turn `name` into Identity(tensor), keeping its name, dtype and control inputs."""
        index = self._ids[name]
        node = self.nodes[name]
        attrs, inputs = node.attr, node.input  # each access makes a wrapper: once each
        dtype = attrs["T"].type if "T" in attrs else None
        controls = self.control_inputs(name)
        node.op = "Identity"
        attrs.clear()
        if dtype is not None:
            attrs["T"].type = dtype
        del inputs[:]
        inputs.extend([self.ref_text(tensor), *(f"^{control}" for control in controls)])
        self._set_inputs(index, (tensor,), controls)
        self._set_op(index, "Identity")

    def unique_name(self, base: str, taken: set[str] = frozenset()) -> str:
        """`base`, or `base_1`, `base_2`, ... : the first name no node has."""
        name, index = base, 0
        while name in self or name in taken:
            index += 1
            name = f"{base}_{index}"
        return name

    def remove_nodes(self, names: Iterable[str]) -> None:
        """Erase `names`; control dependencies on them are dropped.

        Refuses when a node outside `names` still reads one of them as data.
        Names already gone are skipped: two fixes may remove the same update op.
        """
        self._remove({index for index in map(self._live_id, names) if index is not None})

    def _remove(self, doomed: set[int]) -> None:
        if len(doomed) > _BULK_REMOVAL:
            waiting = self._readers_outside_bulk(doomed)
        else:
            waiting = self._readers_outside(doomed)
        gone = {self._names[index] for index in doomed} if waiting else set()
        for reader in sorted(waiting):
            self._drop_control_inputs(reader, gone)
        for index in doomed:
            self._alive[index] = 0
        self._ops_changed()

    def _readers_outside(self, doomed: set[int]) -> set[int]:
        """Nodes outside `doomed` that wait for one of them; raises if one reads one as data."""
        for index in doomed:
            for reader in self._readers(index, control=False):
                if reader not in doomed:
                    raise EditError(f"cannot remove {self._names[index]}: {self._names[reader]} still reads it")
        return {reader for index in doomed for reader in self._readers(index, control=True) if reader not in doomed}

    def _readers_outside_bulk(self, doomed: set[int]) -> set[int]:
        """`_readers_outside` for many nodes at once: one pass over the edges."""
        is_doomed = np.zeros(len(self._names), dtype=bool)
        is_doomed[np.fromiter(doomed, dtype=np.int64, count=len(doomed))] = True
        producer, port, owner = self._edges()
        crossing = is_doomed[producer] & ~is_doomed[owner]
        data = crossing & (port != _CONTROL)
        if data.any():
            first = int(np.flatnonzero(data)[0])
            raise EditError(f"cannot remove {self._names[producer[first]]}: {self._names[owner[first]]} still reads it")
        return set(owner[crossing].tolist())

    def _drop_control_inputs(self, reader: int, gone: set[str]) -> None:
        name = self._names[reader]
        node = self._store[reader]
        kept = [ref for ref in node.input if not (ref[0] == "^" and ref[1:] in gone)]
        del node.input[:]
        node.input.extend(kept)
        controls = tuple(control for control in self.control_inputs(name) if control not in gone)
        self._set_inputs(reader, self.inputs(name), controls)

    def needed_by(self, outputs: Iterable[str]) -> set[str]:
        """Every node an output depends on, through data or control inputs."""
        return set(compress(self._names, self._needed_mask(outputs).tolist()))

    def keep_only_needed_by(self, outputs: Iterable[str]) -> int:
        """Drop every node no output depends on (a prune); returns how many went."""
        doomed = np.flatnonzero(self._alive_array() & ~self._needed_mask(outputs)).tolist()
        self._remove(set(doomed))
        return len(doomed)

    def keep_only(self, names: set[str]) -> int:
        """Drop every node not in `names`; returns how many went."""
        doomed = [name for name in self.nodes if name not in names]
        self.remove_nodes(doomed)
        return len(doomed)

    def _needed_mask(self, outputs: Iterable[str]) -> np.ndarray:
        """Which ids are live nodes that an output depends on."""
        producer, _, owner = self._edges()
        wanted = [index for index in map(self._live_id, outputs) if index is not None]
        start, producers = _grouped_by_owner(producer, owner, len(self._names))
        if self._in_id_order(producer, owner):
            return self._needed_by_elimination(wanted, start, producers)
        return self._needed_by_walk(wanted, int_array(start), int_array(producers))

    def _needed_by_elimination(self, wanted: list[int], start: np.ndarray, producers: np.ndarray) -> np.ndarray:
        # Without cycles, a node is unneeded exactly when it is not wanted and
        # every node that reads it is unneeded. Starting from the nodes nothing
        # reads, each sweep removes the inputs whose last reader just went: a
        # handful of array operations per sweep, as many sweeps as the longest
        # unneeded chain (a few, for what fixes leave behind).
        readers = np.bincount(producers, minlength=len(self._names))
        removable = self._alive_array()
        removable[wanted] = False
        gone = removable & (readers == 0)
        frontier = np.flatnonzero(gone)
        while len(frontier):
            inputs, counts = np.unique(producers[_ranges(start[frontier], start[frontier + 1])], return_counts=True)
            readers[inputs] -= counts
            frontier = inputs[(readers[inputs] == 0) & removable[inputs]]
            gone[frontier] = True
        return self._alive_array() & ~gone

    def _needed_by_walk(self, wanted: list[int], start: array, producers: array) -> np.ndarray:
        # A graph with a cycle (a TF1 while loop): a depth-first walk from the
        # outputs, one array slice per node.
        needed = bytearray(len(self._names))
        stack = list(wanted)
        while stack:
            index = stack.pop()
            if not needed[index]:
                needed[index] = 1
                stack.extend(producers[start[index] : start[index + 1]])
        return self._alive_array() & (np.frombuffer(needed, dtype=np.uint8) == 1)

    def compact(self) -> None:
        """Write removals back to the protobuf, in one pass, after a batch of edits."""
        alive = self._alive
        if len(self.nodes) == len(self._store.order):
            return
        # Deleting entries one by one moves the rest each time (quadratic), and
        # rebuilding the field copies every message (weights included). A stable
        # sort that moves the removed nodes to the end only moves pointers; one
        # truncation then drops them, and the kept messages stay where the index
        # points. The sort asks for each entry's key once, in container order:
        # next(removed, entry) hands out the flags in turn with no Python frame.
        order = np.frombuffer(self._store.order, dtype=np.int32)
        removed = iter((np.frombuffer(alive, dtype=np.uint8)[order] == 0).tolist())
        self._container.sort(key=partial(next, removed))
        self._store.keep_live(alive)
        del self._container[len(self._store.order):]
        self._ops_changed()
        self._rebase()

    def topological_order(self) -> list[str]:
        """Producers before consumers; file order for a graph with a TF1 while loop (a cycle)."""
        sorter = graphlib.TopologicalSorter()
        for name in self.nodes:
            inputs = [tensor.node for tensor in self.inputs(name) if tensor.node in self.nodes]
            sorter.add(name, *inputs, *self.control_inputs(name))
        try:
            return [name for name in sorter.static_order() if name in self.nodes]
        except graphlib.CycleError:
            return list(self.nodes)

    def dangling_input(self) -> tuple[str, str] | None:
        """A (consumer, missing producer) pair, or None when every input exists."""
        producer, port, owner = self._edges()
        defined = self._alive_array()
        defined[[self._ids[name] for name in self.args]] = True
        missing = np.flatnonzero(~defined[producer])
        if not len(missing):
            return None
        first = missing[np.argmin(owner[missing])]  # the first reader in file order
        name, port = self._names[producer[first]], int(port[first])
        return self._names[owner[first]], f"^{name}" if port == _CONTROL else str(Tensor(name, port))

    def in_file_order(self) -> bool:
        """Whether every node comes after its inputs in the file, as TensorFlow writes graphs.

        Such a graph has no cycle; only graphs that break the order need the full check.
        """
        producer, _, owner = self._edges()
        return self._in_id_order(producer, owner)

    def _in_id_order(self, producer: np.ndarray, owner: np.ndarray) -> bool:
        # Ids follow the file (nodes added later come last); arguments come before every node.
        rank = np.arange(len(self._names))
        rank[[self._ids[name] for name in self.args]] = -1
        return not np.any(rank[producer] >= owner)

    def find_cycle(self, *, ignore_inputs_of: frozenset[str] = frozenset()) -> list[str] | None:
        """Nodes on a cycle, or None; the inputs of `ignore_inputs_of` ops are left out (loop back edges).

        Kahn's algorithm over the index: graphlib would build a second graph of
        its own, which costs seconds at a million nodes.
        """
        if self.in_file_order():
            return None
        skip = set(self.ops_of(ignore_inputs_of))
        waiting = {
            name: 0 if name in skip else len(self.inputs(name)) + len(self.control_inputs(name)) for name in self.nodes
        }
        ready = [name for name, count in waiting.items() if count == 0]
        ready.extend(self.args)
        while ready:
            name = ready.pop()
            for user in chain(self._data_reader_names(name), self.control_users(name)):
                if user in skip or user not in waiting:
                    continue
                waiting[user] -= 1
                if waiting[user] == 0:
                    ready.append(user)
        stuck = [name for name, count in waiting.items() if count > 0]
        return stuck or None

    def _data_reader_names(self, name: str) -> list[str]:
        """The readers of `name` as data, once per input slot that reads it."""
        index = self._ids.get(name)
        return [] if index is None else [self._names[reader] for reader in self._readers(index, control=False)]

    # -- index bookkeeping ----------------------------------------------------

    def _set_inputs(self, index: int, data: tuple[Tensor, ...], controls: tuple[str, ...]) -> None:
        """Give node `index` these inputs in the overlay (its loaded ones no longer count)."""
        self._edited[index] = (data, controls)
        self._unrecorded.add(index)
        self._edited_edge_arrays = None

    def _overlay(self, *, control: bool) -> dict[int, dict[int, int]]:
        """The edited nodes' reads by producer, brought up to date."""
        if self._unrecorded:
            id_for = self._id_for
            for index in self._unrecorded:
                data, controls = self._recorded.pop(index, ((), ()))
                _forget(self._edited_data_readers, data, index)
                _forget(self._edited_control_readers, controls, index)
                data, controls = self._edited[index]
                reads = [id_for(tensor.node) for tensor in data], [id_for(control) for control in controls]
                _record(self._edited_data_readers, reads[0], index)
                _record(self._edited_control_readers, reads[1], index)
                self._recorded[index] = reads
            self._unrecorded.clear()
        return self._edited_control_readers if control else self._edited_data_readers

    def _rebase(self) -> None:
        """Make the current edges the loaded ones: an empty overlay makes every later query cheap."""
        producer, port, owner = self._edges()
        order = np.argsort(owner, kind="stable")
        start = _group_starts(owner, len(self._names))
        self._base_nodes = len(self._names)
        self._base_start = int_array(start)
        self._base_producer = int_array(producer[order])
        self._base_port = int_array(port[order])
        for overlay in (self._edited, self._edited_data_readers, self._edited_control_readers, self._recorded,
                        self._unrecorded, self._loaded_inputs):
            overlay.clear()
        self._edited_edge_arrays = None
        for derived in ("_base_edges", "_base_data_readers", "_base_control_readers", "_base_waits"):
            self.__dict__.pop(derived, None)

    def _set_op(self, index: int, op: str) -> None:
        self._op_codes[index] = self._op_code(op)
        self._ops_changed()

    def _ops_changed(self) -> None:
        self._ops_of_cache.clear()
        self.__dict__.pop("networkx", None)

    @cached_property
    def networkx(self) -> nx.MultiDiGraph:
        """The body as a networkx MultiDiGraph.

        One node per NodeDef (attribute `op`; the NodeDef itself under `node_def`),
        one edge per input: data edges carry `src_output` and `dst_input`, control
        edges carry `control=True`.
        """
        import networkx as nx  # only the networkx view pays for networkx's import

        graph = nx.MultiDiGraph()
        for name, node in self.nodes.items():
            graph.add_node(name, op=node.op, node_def=node)
        for name in self.args:
            graph.add_node(name, op=FUNCTION_ARG_OP, node_def=None)
        for name in self.nodes:
            for slot, tensor in enumerate(self.inputs(name)):
                graph.add_edge(tensor.node, name, src_output=tensor.port, dst_input=slot, control=False)
            for control in self.control_inputs(name):
                graph.add_edge(control, name, control=True)
        return graph


class EditError(Exception):
    """An edit that would leave the graph inconsistent."""


# The fields of a TensorProto that holds no values.
_NO_VALUES = frozenset({"dtype", "tensor_shape", "version_number"})


@contextlib.contextmanager
def _collector_paused():
    # Indexing a million nodes allocates millions of small tuples that live as
    # long as the view; Python's cyclic collector would traverse them again and
    # again (measured: a third of the indexing time at a million nodes).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _group_starts(keys: np.ndarray, count: int) -> np.ndarray:
    """Where each key's entries start in `keys` sorted (count + 1 offsets, for keys 0..count-1)."""
    start = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=count), out=start[1:])
    return start


def _grouped_by_owner(producer: np.ndarray, owner: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, producers): the producers node i reads are producers[start[i]:start[i + 1]]."""
    return _group_starts(owner, count), producer[np.argsort(owner, kind="stable")]


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The concatenation of range(start, end) for each pair, as one array."""
    lengths = ends - starts
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    return offsets + np.arange(len(offsets))


def _parse_graph_ref(ref: str) -> Tensor:
    if ":" not in ref:
        return _new(Tensor, (ref, 0))
    name, _, port = ref.rpartition(":")
    return _new(Tensor, (name, int(port))) if port.isdigit() else _new(Tensor, (ref, 0))


def _record(readers: dict[int, dict[int, int]], producers: list[int], reader: int) -> None:
    for producer in producers:
        counts = readers.setdefault(producer, {})
        counts[reader] = counts.get(reader, 0) + 1


def _forget(readers: dict[int, dict[int, int]], producers: list[int], reader: int) -> None:
    for producer in producers:
        counts = readers[producer]
        if counts[reader] == 1:
            del counts[reader]
        else:
            counts[reader] -= 1
