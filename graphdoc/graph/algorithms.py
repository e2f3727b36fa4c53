"""Whole-graph algorithms over the index: what the outputs need (and the
prunes built on it), order and cycles, dangling inputs, sinks, and input
counts. Each works on the edge arrays at once rather than node by node: at a
million nodes a Python step per node costs seconds.
"""

from __future__ import annotations

import graphlib
from array import array
from collections.abc import Iterable, Mapping
from itertools import chain, compress

import numpy as np

from graphdoc.graph.editing import CheckedEdits
from graphdoc.graph.index import CONTROL, Tensor, group_starts
from graphdoc.graph.storage import int_array


class GraphAlgorithms(CheckedEdits):
    """needed_by and the prunes, topological_order, find_cycle, dangling_input, sinks."""

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
        start, producers = group_starts(owner, len(self._names)), producer[np.argsort(owner, kind="stable")]
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
        return self._names[owner[first]], f"^{name}" if port == CONTROL else str(Tensor(name, port))

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
        counts = np.bincount(owner[port != CONTROL], minlength=len(self._names))
        codes = self._op_code_array()
        outside = (counts < fewest[codes]) | (counts > most[codes])
        return [(self._names[index], int(counts[index])) for index in self._live_ids_where(outside)]


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The concatenation of range(start, end) for each pair, as one array."""
    lengths = ends - starts
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    return offsets + np.arange(len(offsets))
