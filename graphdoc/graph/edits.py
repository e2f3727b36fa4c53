"""Small graph edits, as data: what a fix is made of.

Rules never mutate a graph. A fix is a tuple of these edits; the rewriter
applies them to a copy of the GraphDef through the view's checked operations.
Each edit names its scope: "" for the main graph, else a library function.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from graphdoc.graph.view import GraphView, Tensor


@dataclass(frozen=True)
class SetAttr:
    scope: str
    node: str
    key: str
    value: bool | int | float | bytes

    def apply(self, view: GraphView) -> None:
        view.set_attr(self.node, self.key, self.value)

    def describe(self) -> str:
        return f"{self.node}: set {self.key} = {self.value!r}"


@dataclass(frozen=True)
class SetInput:
    scope: str
    node: str
    slot: int
    tensor: Tensor

    def apply(self, view: GraphView) -> None:
        view.set_input(self.node, self.slot, self.tensor)

    def describe(self) -> str:
        return f"{self.node}: input {self.slot} <- {self.tensor}"


@dataclass(frozen=True)
class RedirectUses:
    scope: str
    old: Tensor
    new: Tensor

    def apply(self, view: GraphView) -> None:
        view.redirect_uses(self.old, self.new)

    def describe(self) -> str:
        return f"readers of {self.old} now read {self.new}"


@dataclass(frozen=True)
class MakeIdentity:
    scope: str
    node: str
    tensor: Tensor

    def apply(self, view: GraphView) -> None:
        view.make_identity(self.node, self.tensor)

    def describe(self) -> str:
        return f"{self.node}: becomes Identity({self.tensor})"


@dataclass(frozen=True)
class RemoveNodes:
    scope: str
    names: frozenset[str]

    def apply(self, view: GraphView) -> None:
        view.remove_nodes(self.names)

    def describe(self) -> str:
        return f"remove {len(self.names)} node(s): {', '.join(sorted(self.names)[:3])}" + (
            ", ..." if len(self.names) > 3 else ""
        )


@dataclass(frozen=True)
class AddConst:
    scope: str
    name: str
    value: np.ndarray = field(compare=False)

    def apply(self, view: GraphView) -> None:
        view.add_const(self.name, self.value)

    def describe(self) -> str:
        return f"add constant {self.name} {tuple(self.value.shape)}"


@dataclass(frozen=True)
class MakeConst:
    scope: str
    node: str
    value: bool | float

    def apply(self, view: GraphView) -> None:
        view.make_const(self.node, np.asarray(self.value, dtype=np.bool_ if isinstance(self.value, bool) else np.float32))

    def describe(self) -> str:
        return f"{self.node}: becomes the constant {self.value!r}"


Edit = SetAttr | SetInput | RedirectUses | MakeIdentity | RemoveNodes | AddConst | MakeConst
