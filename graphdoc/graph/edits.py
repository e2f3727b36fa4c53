"""Small graph edits, as data: what a fix is made of.

Rules never mutate a graph. A fix is a tuple of these edits; the rewriter
applies them through the view's checked operations, to a copy or in place.
Each edit names its scope: "" for the main graph, else a library function,
and the nodes it changes (`changes`) or erases (`erases`), so that fixes
which would step on each other are told apart before any is applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from graphdoc.graph.storage import DType, set_attr_value
from graphdoc.graph.view import GraphView, Tensor
from graphdoc.proto import NodeDef


@dataclass(frozen=True)
class SetAttrs:
    scope: str
    node: str
    values: tuple[tuple[str, bool | int | float | bytes], ...]  # (key, value) pairs

    def changes(self) -> frozenset[str]:
        return frozenset({self.node})

    def apply(self, view: GraphView) -> None:
        view.set_attrs(self.node, self.values)


@dataclass(frozen=True)
class SetInputs:
    scope: str
    node: str
    tensors: tuple[tuple[int, Tensor], ...]  # (data input slot, the tensor it is to read) pairs

    def changes(self) -> frozenset[str]:
        return frozenset({self.node})

    def apply(self, view: GraphView) -> None:
        view.set_inputs(self.node, self.tensors)


@dataclass(frozen=True)
class RedirectUses:
    scope: str
    old: Tensor
    new: Tensor

    def changes(self) -> frozenset[str]:
        return frozenset()  # the readers of `old`, whoever they are when it runs

    def apply(self, view: GraphView) -> None:
        view.redirect_uses(self.old, self.new)


@dataclass(frozen=True)
class MakeIdentity:
    scope: str
    node: str
    tensor: Tensor

    def changes(self) -> frozenset[str]:
        return frozenset({self.node})

    def apply(self, view: GraphView) -> None:
        view.make_identity(self.node, self.tensor)


@dataclass(frozen=True)
class RemoveNodes:
    scope: str
    names: frozenset[str]

    def changes(self) -> frozenset[str]:
        return frozenset()

    def erases(self) -> frozenset[str]:
        return self.names

    def apply(self, view: GraphView) -> None:
        view.remove_nodes(self.names)


@dataclass(frozen=True)
class AddConst:
    scope: str
    name: str
    value: np.ndarray = field(compare=False)

    def changes(self) -> frozenset[str]:
        return frozenset({self.name})

    def apply(self, view: GraphView) -> None:
        view.add_const(self.name, self.value)


@dataclass(frozen=True)
class MakeConst:
    """Turn `node` into a constant: a bool or float32 scalar, or an array as given."""

    scope: str
    node: str
    value: bool | float | np.ndarray = field(compare=False)

    def changes(self) -> frozenset[str]:
        return frozenset({self.node})

    def apply(self, view: GraphView) -> None:
        value = self.value
        if not isinstance(value, np.ndarray):
            value = np.asarray(value, dtype=np.bool_ if isinstance(value, bool) else np.float32)
        view.make_const(self.node, value)


@dataclass(frozen=True)
class AddNode:
    """Add a node `op(inputs)` with attributes; its inputs must exist."""

    scope: str
    name: str
    op: str
    inputs: tuple[Tensor, ...]
    attrs: tuple[tuple[str, DType | bool | int | float | bytes], ...] = ()

    def changes(self) -> frozenset[str]:
        return frozenset({self.name})

    def apply(self, view: GraphView) -> None:
        node = NodeDef(name=self.name, op=self.op, input=[view.ref_text(tensor) for tensor in self.inputs])
        for key, value in self.attrs:
            set_attr_value(node.attr[key], value)
        view.add_node(node)


Edit = SetAttrs | SetInputs | RedirectUses | MakeIdentity | RemoveNodes | AddConst | MakeConst | AddNode


def erased_by(edit: Edit) -> frozenset[str]:
    """The nodes `edit` erases (two fixes may erase the same node: an update op both remove)."""
    return edit.erases() if isinstance(edit, RemoveNodes) else frozenset()
