"""The columnar index of one graph body, and the overlay that edits write to.

The view never copies attributes or tensor payloads; it indexes names and
edges, columnar, because a graph of a million nodes cannot afford a Python
object per edge:

- every name gets an integer id, in file order (names that are read but not
  defined, and function arguments, get ids after the nodes);
- the inputs of the nodes as loaded are three flat arrays (producer id, port,
  and where each node's inputs start), with port -1 for a control input;
- who reads a node is the same arrays sorted by producer, built on first use.

Edits leave those arrays alone: a node whose inputs change is moved to a small
overlay (its inputs as tuples, and its reads listed per producer), and a
removed node is marked dead. Every query combines the arrays with the overlay,
so a fix of 50,000 layers costs what it touches, and a prune of half a
million nodes is a few array operations; a rebase folds the overlay back into
the arrays after a batch of edits.
"""

from __future__ import annotations

import contextlib
import gc
from array import array
from collections.abc import Iterable, Mapping
from functools import cached_property
from itertools import accumulate
from typing import NamedTuple

import numpy as np

from graphdoc import ops
from graphdoc.graph.storage import NodesByName, NodeStore, int_array, read_fields
from graphdoc.proto import FunctionDef, NodeDef

FUNCTION_ARG_OP = "_Arg"
CONTROL = -1  # the port recorded for a control input


# NamedTuples rather than dataclasses: rules create many of them.
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


class ColumnarIndex:
    """Ids, op codes and edge arrays of one graph body, plus the overlay of edited nodes.

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

    def _live_id(self, name: str) -> int | None:
        index = self._ids.get(name)
        return index if index is not None and self._alive[index] else None

    # -- input references ---------------------------------------------------

    def _parse_refs(self, refs: list[str]) -> tuple[list[int], list[int]]:
        """Producer ids and ports of input references; port -1 marks a control input."""
        # A plain node name is by far the commonest reference: one lookup each.
        producers = list(map(self._ids.get, refs)) if self.function is None else [None] * len(refs)
        ports = [0] * len(refs)
        for index in [index for index, producer in enumerate(producers) if producer is None]:
            ref = refs[index]
            if ref.startswith("^"):
                producers[index], ports[index] = self._id_for(ref[1:]), CONTROL
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
        arg_names = ops.OUTPUT_ARGS.get(self._node_op(name), ())
        if out_arg in arg_names:
            return Tensor(name, arg_names.index(out_arg) + index)
        return Tensor(name, index)

    def ref_text(self, tensor: Tensor) -> str:
        """How to write a reference to `tensor` as a NodeDef input in this body."""
        known = self._ref_text.get(tensor)
        if known is not None:
            return known
        if self.function is None or tensor.node in self.args:
            return str(tensor)
        op = self._node_op(tensor.node)
        arg_names = ops.OUTPUT_ARGS.get(op)
        if arg_names:
            return f"{tensor.node}:{arg_names[tensor.port]}:0"
        return f"{tensor.node}:{ops.SINGLE_OUTPUT_ARG.get(op, 'output')}:{tensor.port}"

    def _node_op(self, name: str) -> str:
        """The op of the live node `name`, or "" (an argument has no OpDef outputs to name)."""
        index = self._live_id(name)
        return "" if index is None else self._op_names[self._op_codes[index]]

    # -- the loaded edges ---------------------------------------------------

    @cached_property
    def _base_edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(producer, port, owner) of every input of the nodes as loaded."""
        counts = np.diff(np.frombuffer(self._base_start, dtype=np.int32))
        owner = np.repeat(np.arange(self._base_nodes, dtype=np.int32), counts)
        # Views of the loaded arrays, which are never resized (a rebase replaces them).
        return np.frombuffer(self._base_producer, dtype=np.int32), np.frombuffer(self._base_port, dtype=np.int32), owner

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
        chosen = port == CONTROL if control else port != CONTROL
        producer, port, owner = producer[chosen], port[chosen], owner[chosen]
        # The slot of a data edge is its rank among its reader's data inputs.
        slot = np.arange(len(owner)) - group_starts(owner, self._base_nodes)[owner]
        order = np.argsort(producer, kind="stable")
        start = group_starts(producer, len(self._names))
        return int_array(start), int_array(owner[order]), int_array(port[order]), int_array(slot[order])

    @cached_property
    def _base_waits(self) -> bytearray:
        """Whether each loaded node has a control input: most have none, and need no slicing."""
        _, port, owner = self._base_edges
        waits = np.zeros(self._base_nodes, dtype=np.uint8)
        waits[owner[port == CONTROL]] = 1
        return bytearray(waits.tobytes())

    # -- the overlay --------------------------------------------------------

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
            ports += [CONTROL] * (len(owners) - len(ports))
            self._edited_edge_arrays = tuple(np.array(values, dtype=np.int64) for values in (producers, ports, owners))
        return self._edited_edge_arrays

    def _rebase(self) -> None:
        """Make the current edges the loaded ones: an empty overlay makes every later query cheap."""
        producer, port, owner = self._edges()
        order = np.argsort(owner, kind="stable")
        start = group_starts(owner, len(self._names))
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

    # -- whole-body arrays --------------------------------------------------

    def _alive_array(self) -> np.ndarray:
        return np.frombuffer(self._alive, dtype=np.uint8).astype(bool)

    def _op_code_array(self) -> np.ndarray:
        return np.array(self._op_codes, dtype=np.int32)

    def _live_ids_where(self, mask: np.ndarray) -> list[int]:
        return np.flatnonzero(mask & self._alive_array()).tolist()


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


def group_starts(keys: np.ndarray, count: int) -> np.ndarray:
    """Where each key's entries start in `keys` sorted (count + 1 offsets, for keys 0..count-1)."""
    start = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=count), out=start[1:])
    return start


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
