"""What rules ask of a graph body: ops, inputs, and who reads what.

These are the per-node hot paths of a scan (a rule asks for ops and inputs
of most of a million nodes): each reads the index's fields directly, with no
helper call in between, and combines the loaded arrays with the overlay.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from graphdoc.graph.index import CONTROL, FUNCTION_ARG_OP, ColumnarIndex, Tensor, Use

# tuple.__new__ skips the Python-level constructor NamedTuple generates.
_new = tuple.__new__


class GraphQueries(ColumnarIndex):
    """Read queries over the index: nodes, ops, inputs, uses, consumers."""

    def __contains__(self, name: str) -> bool:
        return name in self.nodes or name in self.args

    def __len__(self) -> int:
        return len(self.nodes)

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
                if port != CONTROL
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
            if port == CONTROL
        ])

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
