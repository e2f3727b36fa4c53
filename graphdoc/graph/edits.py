"""Small graph edits, as data: what a fix is made of.

Rules never mutate a graph. A fix is a tuple of these edits; the rewriter
applies them through the view's checked operations, to a copy or in place.
Each edit names its scope: "" for the main graph, else a library function.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from graphdoc.graph.view import GraphView, Tensor


@dataclass(frozen=True)
class SetAttrs:
    scope: str
    node: str
    values: tuple[tuple[str, bool | int | float | bytes], ...]  # (key, value) pairs

    def apply(self, view: GraphView) -> None:
        view.set_attrs(self.node, self.values)


@dataclass(frozen=True)
class SetInputs:
    scope: str
    node: str
    tensors: tuple[tuple[int, Tensor], ...]  # (data input slot, the tensor it is to read) pairs

    def apply(self, view: GraphView) -> None:
        view.set_inputs(self.node, self.tensors)


@dataclass(frozen=True)
class RedirectUses:
    scope: str
    old: Tensor
    new: Tensor

    def apply(self, view: GraphView) -> None:
        view.redirect_uses(self.old, self.new)


@dataclass(frozen=True)
class MakeIdentity:
    scope: str
    node: str
    tensor: Tensor

    def apply(self, view: GraphView) -> None:
        view.make_identity(self.node, self.tensor)


@dataclass(frozen=True)
class RemoveNodes:
    scope: str
    names: frozenset[str]

    def apply(self, view: GraphView) -> None:
        view.remove_nodes(self.names)


@dataclass(frozen=True)
class AddConst:
    scope: str
    name: str
    value: np.ndarray = field(compare=False)

    def apply(self, view: GraphView) -> None:
        view.add_const(self.name, self.value)


@dataclass(frozen=True)
class MakeConst:
    scope: str
    node: str
    value: bool | float

    def apply(self, view: GraphView) -> None:
        view.make_const(self.node, np.asarray(self.value, dtype=np.bool_ if isinstance(self.value, bool) else np.float32))


Edit = SetAttrs | SetInputs | RedirectUses | MakeIdentity | RemoveNodes | AddConst | MakeConst
