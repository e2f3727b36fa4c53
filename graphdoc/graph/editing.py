"""Checked edits of a graph body: the operations fixes are applied through.

Each edit changes the NodeDefs in place and keeps the index consistent, so a
long list of edits costs time linear in what it touches. Each checks its
preconditions before it changes anything and refuses with an EditError that
names the node: a refused edit leaves the view and its protobuf as they were,
so the fixer can report it and write nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

import numpy as np

from graphdoc.graph.index import CONTROL, Tensor
from graphdoc.graph.queries import GraphQueries
from graphdoc.graph.storage import const_tensor, set_attr_value, set_const_value
from graphdoc.proto import AttrValue, NodeDef, TensorProto

# Removing more nodes than this at once checks the readers with array
# operations over the whole graph rather than node by node.
_BULK_REMOVAL = 2048


class EditError(Exception):
    """An edit that would leave the graph inconsistent."""


class CheckedEdits(GraphQueries):
    """set_attrs, set_inputs, redirect_uses, add_node, add_const, make_const,
    make_identity, replace_node, remove_nodes, and compact after a batch."""

    def set_attrs(self, name: str, values: Iterable[tuple[str, object]]) -> None:
        """Set each (key, value) attribute of `name`."""
        node = self._store[self._node_id(name, "set attributes of {}")]
        # Converted first: a value of the wrong type must not leave the keys before it set.
        staged = [(key, _attr_value(name, key, value)) for key, value in values]
        attrs = node.attr
        for key, value in staged:
            attrs[key].CopyFrom(value)

    def set_input(self, name: str, slot: int, tensor: Tensor) -> None:
        """Make data input `slot` of `name` read `tensor`."""
        self.set_inputs(name, ((slot, tensor),))

    def set_inputs(self, name: str, tensors: Iterable[tuple[int, Tensor]]) -> None:
        """Make each data input `slot` of `name` read its tensor: (slot, tensor) pairs, one index update."""
        index = self._node_id(name, "rewire {}")
        tensors = tuple(tensors)
        inputs = list(self.inputs(name))
        for slot, tensor in tensors:
            # A slot past the data inputs would overwrite a control input in the NodeDef.
            if not 0 <= slot < len(inputs):
                raise EditError(f"cannot rewire {name}: it has no data input {slot} (it has {len(inputs)})")
            if tensor.node not in self:
                raise EditError(f"cannot rewire {name}: {tensor} does not exist")
        node = self._store[index]
        for slot, tensor in tensors:
            node.input[slot] = self.ref_text(tensor)  # data inputs precede control inputs
            inputs[slot] = tensor
        self._set_inputs(index, tuple(inputs), self.control_inputs(name))

    def redirect_uses(self, old: Tensor, new: Tensor) -> None:
        """Make every data use of `old` read `new` instead."""
        if old.node not in self:
            raise EditError(f"cannot redirect the uses of {old}: {old.node} does not exist")
        if new.node not in self:
            raise EditError(f"cannot redirect the uses of {old} to {new}: {new.node} does not exist")
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
        data, controls = self._checked_inputs(node, "add {}")
        added = self._container.add()
        added.CopyFrom(node)
        self._set_inputs(self._claim(added), data, controls)

    def add_const(self, name: str, value: np.ndarray) -> Tensor:
        """Add a Const node holding `value`; refuses a name that is taken."""
        if name in self:
            raise EditError(f"cannot add {name}: the name is taken")
        tensor = _const_tensor(name, value)
        node = self._container.add(name=name, op="Const")
        set_const_value(node, tensor)
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
        index = self._node_id(name, "turn {} into a Const")
        tensor = _const_tensor(name, value)
        node = self._store[index]
        self._set_inputs(index, (), ())
        node.op = "Const"
        node.attr.clear()
        del node.input[:]
        set_const_value(node, tensor)
        self._set_op(index, "Const")

    def replace_node(self, name: str, node: NodeDef) -> None:
        """Make `name` the node `node` (same name; its op, attributes and inputs), inputs existing."""
        index = self._node_id(name, "replace {}")
        if node.name != name:
            raise EditError(f"cannot replace {name} with a node named {node.name}")
        data, controls = self._checked_inputs(node, "replace {}")
        self._store[index].CopyFrom(node)
        self._set_inputs(index, data, controls)
        self._set_op(index, node.op)

    def make_identity(self, name: str, tensor: Tensor) -> None:
        """Turn `name` into Identity(tensor), keeping its name, dtype and control inputs."""
        index = self._node_id(name, "turn {} into an Identity")
        if tensor.node not in self:
            raise EditError(f"cannot turn {name} into an Identity of {tensor}: {tensor.node} does not exist")
        node = self._store[index]
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

    # -- preconditions --------------------------------------------------------

    def _node_id(self, name: str, action: str) -> int:
        """The id of the live node `name`; refuses `action` ("rewire {}") when there is none."""
        index = self._live_id(name)
        if index is None:
            why = "it is a function argument, not a node" if name in self.args else "there is no node of that name"
            raise EditError(f"cannot {action.format(name)}: {why}")
        return index

    def _checked_inputs(self, node: NodeDef, action: str) -> tuple[tuple[Tensor, ...], tuple[str, ...]]:
        """The data and control inputs of `node`; refuses `action` when one reads a node that does not exist."""
        data = tuple(self._parse_data_ref(ref) for ref in node.input if not ref.startswith("^"))
        controls = tuple(ref[1:] for ref in node.input if ref.startswith("^"))
        missing = next((tensor for tensor in data if tensor.node not in self), None)
        if missing is not None:
            raise EditError(f"cannot {action.format(node.name)}: {missing} does not exist")
        missing = next((control for control in controls if control not in self), None)
        if missing is not None:
            raise EditError(f"cannot {action.format(node.name)}: its control input {missing} does not exist")
        return data, controls

    # -- removal --------------------------------------------------------------

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
        data = crossing & (port != CONTROL)
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


def _attr_value(name: str, key: str, value: object) -> AttrValue:
    attr = AttrValue()
    try:
        set_attr_value(attr, value)
    except (TypeError, ValueError) as error:
        raise EditError(f"cannot set attribute {key} of {name}: {error}") from None
    return attr


def _const_tensor(name: str, value: np.ndarray) -> TensorProto:
    try:
        return const_tensor(value)
    except (TypeError, ValueError) as error:
        raise EditError(f"cannot give {name} the constant value {value!r}: {error}") from None
