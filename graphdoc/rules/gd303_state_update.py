"""GD303: ops that write variables, left in an inference graph."""

from __future__ import annotations

from collections.abc import Iterator

from graphdoc import ops
from graphdoc.graph.edits import RemoveNodes
from graphdoc.graph.model import Model
from graphdoc.graph.outputs import infer_outputs
from graphdoc.graph.view import GraphView
from graphdoc.rules.base import Finding, Fix, Rule
from graphdoc.rules.conds import enclosing_switch


class StateUpdate(Rule):
    """What it finds:
    Ops that write a variable: Assign, AssignSub, AssignVariableOp and their
    kin (moving-average updates, a dropout seed generator's state, optimizer
    steps such as ApplyGradientDescent) left in the graph, often as control
    dependencies of the model's output.

    An update that the outputs wait for (a control input of a node they
    need) runs on every call; one created outside a tf.cond and made a
    control input of its inference branch runs even when the switch says
    inference, and the message says so.

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

    In other formats:
    ONNX: ops of the training domain (Gradient, Momentum, Adagrad, Adam) left
    in an export; their outputs are dropped from the graph's outputs.
    """

    code = "GD303"
    name = "state-update"
    finds = (
        "Assign*, optimizer steps: variable updates left in the graph, saying when the outputs wait for one "
        "(it then runs on every call, whatever the switches say)"
    )
    fixes = "removed with the control dependencies on them"
    summary = "A variable update (Assign*, optimizer step) is left in the inference graph"
    training_behaviour = True  # a branch that updates statistics is a training branch

    def check(self, view: GraphView, model: Model) -> Iterator[Finding]:
        updates = view.ops_of(ops.STATE_UPDATE_OPS)
        needed = view.needed_by(infer_outputs(view)) if updates and not view.scope else set()
        for name in updates:
            readers = view.consumers(name)
            message = self._message(view, name, needed, model.variables)
            if readers:
                yield self.finding(view, name, message, unfixable=f"its result is read by {readers[0]}")
            else:
                yield self.finding(
                    view, name, message, fix=Fix("remove it and the control dependencies on it",
                                                 (RemoveNodes(view.scope, frozenset({name})),)),
                )

    def _message(self, view: GraphView, name: str, needed: set[str], variables: dict[str, str]) -> str:
        target = view.resolve(view.inputs(name)[0]).node
        # A frozen SavedModel calls its variables unknown_N; the object graph knows their names.
        written = f"{variables[target]} ({target})" if target in variables else target
        writes = f"{view.op(name)} writes {written}"
        waiting = [user for user in (*view.control_users(name), *view.consumers(name)) if user in needed]
        if name not in needed or not waiting:
            return f"{writes} at inference"
        switch = enclosing_switch(view, name, set(view.ops_of(ops.SWITCH_OPS)))
        if switch is not None:
            return f"{writes} whenever the branch of {switch[0]} it sits in runs ({waiting[0]} waits for it)"
        return (
            f"{writes} on every inference call, whatever the switches say: {waiting[0]} waits for it, "
            "so running the model changes it"
        )
