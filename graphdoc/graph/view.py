"""An index over one graph body: the main graph or one library function.

The GraphDef (or FunctionDef) protobuf stays the single source of truth; the
view only holds names, parsed input references and consumer lists, never a
copy of attributes or tensor payloads. Rules read the graph through it; a
networkx graph over the same index is built on request.
"""

from __future__ import annotations

import contextlib
import gc
import graphlib
from collections.abc import Iterable
from functools import cached_property
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from graphdoc import ops
from graphdoc.proto import FunctionDef, NodeDef

if TYPE_CHECKING:
    import networkx as nx

FUNCTION_ARG_OP = "_Arg"


# NamedTuples rather than dataclasses: a million-node graph creates millions of them.
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


# tuple.__new__ skips the Python-level constructor NamedTuple generates: the
# index creates one Tensor per input of every node.
_new = tuple.__new__
_LARGEST_CONST_READ = 1 << 20


class GraphView:
    """Names, edges and consumers of one graph body.

    `scope` is "" for the main graph and the function's name for a library
    function; in a function, the input arguments appear as nodes of op `_Arg`.
    """

    def __init__(self, node_defs: Iterable[NodeDef], *, function: FunctionDef | None = None):
        self._container = node_defs
        self.scope = function.signature.name if function is not None else ""
        self.function = function
        self.nodes: dict[str, NodeDef] = {}
        self.duplicates: list[str] = []
        self.args: dict[str, object] = {}
        if function is not None:
            self.args = {arg.name: arg for arg in function.signature.input_arg}
        nodes = self.nodes
        for node in node_defs:
            name = node.name  # each access converts a protobuf string
            if name in nodes:
                self.duplicates.append(name)
            nodes[name] = node
        self._inputs: dict[str, tuple[Tensor, ...]] = {}
        self._controls: dict[str, tuple[str, ...]] = {}
        self._data_users: dict[str, list[str]] = {}
        self._control_users: dict[str, list[str]] = {}
        self._ref_text: dict[Tensor, str] = {}  # function bodies only: how each tensor is written
        with _collector_paused():
            for node in self.nodes.values():
                self._index_inputs(node)
        self.returns: list[Tensor] = []
        if function is not None:
            for out_arg in function.signature.output_arg:
                ref = function.ret.get(out_arg.name)
                if ref is not None:
                    self.returns.append(self._parse_data_ref(ref))

    # -- building -----------------------------------------------------------

    def _index_inputs(self, node: NodeDef) -> None:
        # The hot loop of loading: a million-node graph runs it for every input.
        name = node.name
        data: list[Tensor] = []
        controls: list[str] = []
        data_users = self._data_users
        for ref in node.input:
            if ref[0] == "^":
                controls.append(ref[1:])
                self._control_users.setdefault(ref[1:], []).append(name)
                continue
            tensor = self._parse_data_ref(ref)
            if tensor.node in data_users:
                data_users[tensor.node].append(name)
            else:
                data_users[tensor.node] = [name]
            data.append(tensor)
        self._inputs[name] = tuple(data)
        if controls:
            self._controls[name] = tuple(controls)

    def _parse_data_ref(self, ref: str) -> Tensor:
        if self.function is None:
            if ":" not in ref:  # the common case, inlined: this runs for every input
                return _new(Tensor, (ref, 0))
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
        node = self.nodes.get(name)
        arg_names = ops.OUTPUT_ARGS.get(node.op, ()) if node is not None else ()
        if out_arg in arg_names:
            return Tensor(name, arg_names.index(out_arg) + index)
        return Tensor(name, index)

    # -- reading --------------------------------------------------------------

    def __contains__(self, name: str) -> bool:
        return name in self.nodes or name in self.args

    def __len__(self) -> int:
        return len(self.nodes)

    def op(self, name: str) -> str:
        node = self.nodes.get(name)
        if node is not None:
            return node.op
        return FUNCTION_ARG_OP if name in self.args else ""

    def ops_of(self, op_types: frozenset[str] | set[str]) -> list[str]:
        """Names of the nodes whose op is one of `op_types`, in file order."""
        by_op = self._names_by_op
        present = [op for op in op_types if op in by_op]
        found = [name for op in present for name in by_op[op] if name in self.nodes]
        return found if len(present) <= 1 else sorted(found, key=self.position)

    def position(self, name: str) -> int:
        """Where `name` stood in the file; nodes added later come after all others."""
        return self._positions.get(name, len(self._positions))

    @cached_property
    def _positions(self) -> dict[str, int]:
        # Only sorting across op types needs it; most scans never do.
        return {name: index for index, name in enumerate(self.nodes)}

    @cached_property
    def _names_by_op(self) -> dict[str, list[str]]:
        # Built once: every rule asks for the nodes of a few op types, and
        # reading node.op from the protobuf for every node, per rule, adds up.
        by_op: dict[str, list[str]] = {}
        for name, node in self.nodes.items():
            by_op.setdefault(node.op, []).append(name)
        return by_op

    def inputs(self, name: str) -> tuple[Tensor, ...]:
        """The data inputs of a node, in slot order."""
        return self._inputs.get(name, ())

    def control_inputs(self, name: str) -> tuple[str, ...]:
        return self._controls.get(name, ())

    def uses(self, tensor: Tensor) -> list[Use]:
        """The data input slots that read `tensor`.

        Derived from the consumers of its node when asked: rules ask about a
        few tensors, and keeping a list per tensor for all of them would cost
        every load a tuple and a list per input.
        """
        return [
            _new(Use, (consumer, slot))
            for consumer in dict.fromkeys(self._data_users.get(tensor.node, ()))
            for slot, read in enumerate(self._inputs[consumer])
            if read == tensor
        ]

    def consumers(self, name: str) -> list[str]:
        """The nodes that read any output of `name` as data, each once."""
        return list(dict.fromkeys(self._data_users.get(name, ())))

    def control_users(self, name: str) -> list[str]:
        return self._control_users.get(name, [])

    def attr(self, name: str, key: str) -> object:
        """An attribute as a Python value, falling back to the OpDef default."""
        node = self.nodes[name]
        if key in node.attr:
            return _attr_python_value(node.attr[key])
        return ops.ATTR_DEFAULTS.get(node.op, {}).get(key)

    def const_value(self, tensor: Tensor) -> np.ndarray | None:
        """The value of a Const (seen through Identity), or None if not constant."""
        source = self.resolve(tensor)
        node = self.nodes.get(source.node)
        if node is None or node.op != "Const" or "value" not in node.attr:
            return None
        # Rules read small constants (axes, rates); a declared shape of absurd
        # size would have numpy allocate it.
        dims = [dim.size for dim in node.attr["value"].tensor.tensor_shape.dim]
        if any(size < 0 for size in dims) or int(np.prod(dims, dtype=np.float64)) > _LARGEST_CONST_READ:
            return None
        # tensorboard's decoder costs a few hundred milliseconds to import:
        # pay it only when a rule really needs a constant's value.
        from tensorboard.util.tensor_util import make_ndarray

        try:
            return make_ndarray(node.attr["value"].tensor)
        except (TypeError, ValueError, KeyError):
            return None

    def const_shape(self, tensor: Tensor) -> tuple[int, ...] | None:
        """The shape of a Const's value, read from its TensorProto header."""
        source = self.resolve(tensor)
        node = self.nodes.get(source.node)
        if node is None or node.op != "Const" or "value" not in node.attr:
            return None
        return tuple(dim.size for dim in node.attr["value"].tensor.tensor_shape.dim)

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
        consumed = set(self._data_users) | set(self._control_users)
        if self.function is not None:
            consumed |= {tensor.node for tensor in self.returns}
        return [name for name in self.nodes if name not in consumed]

    # -- checked edits --------------------------------------------------------
    # Each edit changes the NodeDefs in place and keeps the index consistent, so
    # a long list of edits costs time linear in what it touches.

    def set_attr(self, name: str, key: str, value: object) -> None:
        _set_attr_value(self.nodes[name].attr[key], value)

    def set_input(self, name: str, slot: int, tensor: Tensor) -> None:
        """Make data input `slot` of `name` read `tensor`."""
        if tensor.node not in self:
            raise EditError(f"cannot rewire {name}: {tensor} does not exist")
        node = self.nodes[name]
        node.input[slot] = self.ref_text(tensor)  # data inputs precede control inputs
        self._forget_reader(self._inputs[name][slot], name)
        self._record_reader(tensor, name)
        inputs = list(self._inputs[name])
        inputs[slot] = tensor
        self._inputs[name] = tuple(inputs)

    def redirect_uses(self, old: Tensor, new: Tensor) -> None:
        """Make every data use of `old` read `new` instead."""
        for use in list(self.uses(old)):
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
        self.nodes[added.name] = added
        self._index_inputs(added)
        self._ops_changed()

    def add_const(self, name: str, value: np.ndarray) -> Tensor:
        """Add a Const node holding `value`; refuses a name that is taken."""
        if name in self:
            raise EditError(f"cannot add {name}: the name is taken")
        node = self._container.add(name=name, op="Const")
        _set_const_value(node, value)
        self.nodes[name] = node
        self._inputs[name] = ()
        self._ops_changed()
        return Tensor(name)

    def make_const(self, name: str, value: np.ndarray) -> None:
        """Turn `name` (a placeholder, say) into a Const holding `value`, keeping its name."""
        self._detach_inputs(name)
        node = self.nodes[name]
        node.op = "Const"
        node.attr.clear()
        del node.input[:]
        _set_const_value(node, value)
        self._ops_changed()

    def make_identity(self, name: str, tensor: Tensor) -> None:
        """Turn `name` into Identity(tensor), keeping its name, dtype and control inputs."""
        node = self.nodes[name]
        dtype = node.attr["T"].type if "T" in node.attr else None
        controls = self.control_inputs(name)
        self._detach_inputs(name)
        node.op = "Identity"
        node.attr.clear()
        if dtype is not None:
            node.attr["T"].type = dtype
        del node.input[:]
        node.input.extend([self.ref_text(tensor), *(f"^{control}" for control in controls)])
        self._index_inputs(node)
        self._ops_changed()

    def unique_name(self, base: str, taken: set[str] = frozenset()) -> str:
        """`base`, or `base_1`, `base_2`, ... : the first name no node has."""
        name, index = base, 0
        while name in self or name in taken:
            index += 1
            name = f"{base}_{index}"
        return name

    def remove_nodes(self, names: set[str] | frozenset[str]) -> None:
        """Erase `names`; control dependencies on them are dropped.

        Refuses when a node outside `names` still reads one of them as data.
        Names already gone are skipped: two fixes may remove the same update op.
        Every consumer list is filtered once, so a prune of most of a large
        graph stays linear.
        """
        names = {name for name in names if name in self.nodes}
        for name in names:
            for user in self._data_users.get(name, ()):
                if user not in names:
                    raise EditError(f"cannot remove {name}: {user} still reads it")
        waiting = {user for name in names for user in self._control_users.get(name, ()) if user not in names}
        for user in waiting:
            node = self.nodes[user]
            kept = [ref for ref in node.input if not (ref[0] == "^" and ref[1:] in names)]
            del node.input[:]
            node.input.extend(kept)
            remaining = tuple(c for c in self._controls[user] if c not in names)
            self._set_controls(user, remaining)
        read = {tensor.node for name in names for tensor in self._inputs.get(name, ())}
        for producer in read:
            self._data_users[producer] = [user for user in self._data_users[producer] if user not in names]
        awaited = {control for name in names for control in self._controls.get(name, ())}
        for control in awaited:
            self._control_users[control] = [user for user in self._control_users[control] if user not in names]
        for name in names:
            self._inputs.pop(name, None)
            self._controls.pop(name, None)
            self._control_users.pop(name, None)
            self._data_users.pop(name, None)
            del self.nodes[name]

    def keep_only(self, names: set[str]) -> int:
        """Drop every node not in `names` (a prune); returns how many went."""
        doomed = set(self.nodes) - names
        if doomed:
            self.remove_nodes(doomed)
        return len(doomed)

    def compact(self) -> None:
        """Write removals back to the protobuf, in one pass, after a batch of edits."""
        if len(self._container) == len(self.nodes):
            return
        # Deleting entries one by one moves the rest each time (quadratic), and
        # rebuilding the field copies every message (weights included). A stable
        # sort that moves the removed nodes to the end only moves pointers; one
        # truncation then drops them, and the kept messages stay where the index
        # points.
        nodes = self.nodes
        self._container.sort(key=lambda node: node.name not in nodes)
        del self._container[len(nodes):]
        self._ops_changed()

    def topological_order(self) -> list[str]:
        """Producers before consumers; file order for a graph with a TF1 while loop (a cycle)."""
        sorter = graphlib.TopologicalSorter()
        for name in self.nodes:
            sorter.add(name, *(t.node for t in self._inputs[name] if t.node in self.nodes), *self.control_inputs(name))
        try:
            return [name for name in sorter.static_order() if name in self.nodes]
        except graphlib.CycleError:
            return list(self.nodes)

    def dangling_input(self) -> tuple[str, str] | None:
        """A (consumer, missing producer) pair, or None when every input exists."""
        for name, inputs in self._inputs.items():
            for tensor in inputs:
                if tensor.node not in self:
                    return name, str(tensor)
        for name, controls in self._controls.items():
            for control in controls:
                if control not in self:
                    return name, f"^{control}"
        return None

    def in_file_order(self) -> bool:
        """Whether every node comes after its inputs in the file, as TensorFlow writes graphs.

        Such a graph has no cycle; only graphs that break the order need the full check.
        """
        positions = self._positions
        for name, inputs in self._inputs.items():
            here = positions.get(name)
            if here is None:
                return False
            for tensor in inputs:
                if positions.get(tensor.node, here) >= here:
                    return False
        for name, controls in self._controls.items():
            here = positions.get(name)
            if here is None or any(positions.get(control, here) >= here for control in controls):
                return False
        return True

    def find_cycle(self, *, ignore_inputs_of: frozenset[str] = frozenset()) -> list[str] | None:
        """Nodes on a cycle, or None; the inputs of `ignore_inputs_of` ops are left out (loop back edges).

        Kahn's algorithm over the index already built: graphlib would build a
        second graph of its own, which costs 7 s at a million nodes; this is linear
        and allocates one counter per node.
        """
        if self.in_file_order():
            return None
        skip = {name for op in ignore_inputs_of for name in self._names_by_op.get(op, ())}
        controls = self._controls
        waiting = {name: len(inputs) + len(controls.get(name, ())) for name, inputs in self._inputs.items()}
        for name in skip:
            waiting[name] = 0
        ready = [name for name, count in waiting.items() if count == 0]
        ready.extend(self.args)
        while ready:
            name = ready.pop()
            for users in (self._data_users.get(name, ()), self._control_users.get(name, ())):
                for user in users:
                    if user in skip or user not in waiting:
                        continue
                    waiting[user] -= 1
                    if waiting[user] == 0:
                        ready.append(user)
        stuck = [name for name, count in waiting.items() if count > 0]
        return stuck or None

    # -- index bookkeeping ----------------------------------------------------

    def _ops_changed(self) -> None:
        self.__dict__.pop("_names_by_op", None)
        self.__dict__.pop("networkx", None)

    def _record_reader(self, tensor: Tensor, reader: str) -> None:
        self._data_users.setdefault(tensor.node, []).append(reader)

    def _forget_reader(self, tensor: Tensor, reader: str) -> None:
        self._data_users[tensor.node].remove(reader)

    def _detach_inputs(self, name: str) -> None:
        for tensor in self._inputs[name]:
            self._forget_reader(tensor, name)
        for control in self._controls.pop(name, ()):
            self._control_users[control].remove(name)
        self._inputs[name] = ()

    def _set_controls(self, name: str, controls: tuple[str, ...]) -> None:
        if controls:
            self._controls[name] = controls
        else:
            self._controls.pop(name, None)

    @cached_property
    def networkx(self) -> "nx.MultiDiGraph":
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
        for name, inputs in self._inputs.items():
            for slot, tensor in enumerate(inputs):
                graph.add_edge(tensor.node, name, src_output=tensor.port, dst_input=slot, control=False)
            for control in self.control_inputs(name):
                graph.add_edge(control, name, control=True)
        return graph


class EditError(Exception):
    """An edit that would leave the graph inconsistent."""


def _set_const_value(node: NodeDef, value: np.ndarray) -> None:
    from tensorboard.util.tensor_util import make_tensor_proto

    tensor = make_tensor_proto(np.asarray(value))
    node.attr["dtype"].type = tensor.dtype
    node.attr["value"].tensor.CopyFrom(tensor)


def _set_attr_value(attr, value: object) -> None:
    if isinstance(value, bool):
        attr.b = value
    elif isinstance(value, int):
        attr.i = value
    elif isinstance(value, float):
        attr.f = value
    elif isinstance(value, bytes):
        attr.s = value
    else:
        raise TypeError(f"unsupported attribute value {value!r}")


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


def _parse_graph_ref(ref: str) -> Tensor:
    if ":" not in ref:
        return _new(Tensor, (ref, 0))
    name, _, port = ref.rpartition(":")
    return _new(Tensor, (name, int(port))) if port.isdigit() else _new(Tensor, (ref, 0))


def _attr_python_value(value) -> object:
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
