"""GD303: ops that write variables, left in an inference graph."""

from __future__ import annotations

from collections.abc import Iterator

from graphdoc import ops
from graphdoc.graph.edits import RemoveNodes
from graphdoc.graph.model import Model
from graphdoc.graph.view import GraphView
from graphdoc.rules.base import Finding, Fix, Rule


class StateUpdate(Rule):
    """What it finds:
    Ops that write a variable: Assign, AssignSub, AssignVariableOp and their
    kin (moving-average updates, a dropout seed generator's state, optimizer
    steps such as ApplyGradientDescent) left in the graph, often as control
    dependencies of the model's output.

    Why it is wrong:
    Inference must not change the model. In a frozen graph the variable is a
    constant by now, so the op cannot even be imported ("Input 0 of node
    AssignSubVariableOp was passed float from ... incompatible with expected
    resource"), and converters reject it.

    Fix:
    The op is removed, together with the control dependencies on it; what
    only computed its new value is then unused and pruned.

    Fix safety:
    Safe: nothing the outputs compute reads a variable update's result.
    """

    code = "GD303"
    name = "state-update"
    summary = "A variable update (Assign*, optimizer step) is left in the inference graph"

    def check(self, view: GraphView, model: Model) -> Iterator[Finding]:
        for name in view.ops_of(ops.STATE_UPDATE_OPS):
            readers = view.consumers(name)
            message = f"{view.op(name)} writes {view.resolve(view.inputs(name)[0]).node} at inference"
            if readers:
                yield self.finding(view, name, message, unfixable=f"its result is read by {readers[0]}")
            else:
                yield self.finding(
                    view, name, message, fix=Fix("remove it and the control dependencies on it",
                                                 (RemoveNodes(view.scope, frozenset({name})),)),
                )
