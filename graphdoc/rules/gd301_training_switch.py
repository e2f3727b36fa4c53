"""GD301: a boolean placeholder that switches the model into training mode."""

from __future__ import annotations

from collections.abc import Iterator

from graphdoc import ops
from graphdoc.graph.edits import MakeConst
from graphdoc.graph.model import Model
from graphdoc.graph.view import GraphView, Tensor
from graphdoc.rules.base import Finding, Fix, Rule, Severity
from graphdoc.rules.training_behaviour import training_functions, training_nodes

_BRANCH_SEARCH_DEPTH = 12
_DT_BOOL = 10


class TrainingSwitch(Rule):
    """What it finds:
    A boolean Placeholder or PlaceholderWithDefault (`is_training`,
    `phase_train`, `training`, `keras_learning_phase`: the name does not
    matter) whose value chooses, through `tf.cond`, between training-mode and
    inference-mode BatchNorm or dropout. In TF1 graphs tf.cond is Switch and
    Merge nodes; in TF2 graphs an If or StatelessIf whose branches are library
    functions. Which value means training is read from the data flow: the
    branch that holds the training-mode BatchNorm or the live dropout.

    Why it is wrong:
    A default of True runs training mode unless the serving code remembers to
    feed False (an error); a switch without a default must be fed on every
    call (a warning, naming the value). Either way the graph keeps Switch,
    Merge or If nodes that TensorRT, OpenCV, TOCO and MNN reject.

    Fix:
    The placeholder becomes a constant holding its inference value; then the
    control flow it drove is removed: dead branches pruned, Switch/Merge
    collapsed, the taken branch of each If inlined, and functions no longer
    called dropped. The fixed graph needs no feed but its real inputs.

    Fix safety:
    Safe: the value is the one that selects the branch without training
    behaviour, which is what the model computes when fed that value.
    """

    code = "GD301"
    name = "training-switch"
    summary = "A boolean placeholder selects training-mode behaviour through tf.cond"

    def check(self, view: GraphView, model: Model) -> Iterator[Finding]:
        if view.scope:
            return  # placeholders live in the main graph
        gates = _gates_by_placeholder(view)
        if not gates:
            return
        sides, covered = _training_sides(view, model, gates)
        for placeholder, gate_nodes in gates.items():
            if placeholder in sides:
                yield self._finding(view, placeholder, gate_nodes, sides[placeholder], covered.get(placeholder, []))

    def _finding(
        self, view: GraphView, placeholder: str, gates: list[str], sides: set[bool], covered: list[str]
    ) -> Finding:
        # The report lists the gates, then the locations of the training behaviour they switch on.
        nodes = (*sorted(gates), *sorted(covered))
        if len(sides) > 1:
            return self.finding(
                view, placeholder, f"{placeholder} switches training behaviour on both of its values",
                nodes=nodes, unfixable="both branches hold training-mode behaviour; no value selects inference",
            )
        [training_value] = sides
        inference = not training_value
        default = _default(view, placeholder)
        if default is None:
            message = f"{placeholder} must be fed {inference} at inference, or {len(gates)} tf.cond run in training mode"
            severity = Severity.WARNING
        elif default == training_value:
            message = f"{placeholder} defaults to {default}: the graph runs in training mode unless fed {inference}"
            severity = Severity.ERROR
        else:
            message = f"{placeholder} defaults to inference mode, but {len(gates)} tf.cond remain for converters to reject"
            severity = Severity.WARNING
        fix = Fix(
            f"bind {placeholder} to {inference} and remove the control flow it drives",
            (MakeConst(view.scope, placeholder, inference),),
        )
        return self.finding(view, placeholder, message, nodes=nodes, fix=fix, severity=severity)


def _gates_by_placeholder(view: GraphView) -> dict[str, list[str]]:
    """Switch and If nodes whose predicate is a boolean placeholder, by placeholder."""
    gates: dict[str, list[str]] = {}
    for name in view.ops_of(ops.SWITCH_OPS | ops.IF_OPS):
        inputs = view.inputs(name)
        predicate = inputs[1] if view.op(name) in ops.SWITCH_OPS else inputs[0]
        source = view.resolve(predicate).node
        if view.op(source) in ops.PLACEHOLDER_OPS and view.attr(source, "dtype") == _DT_BOOL:
            gates.setdefault(source, []).append(name)
    return gates


def _training_sides(
    view: GraphView, model: Model, gates: dict[str, list[str]]
) -> tuple[dict[str, set[bool]], dict[str, list[str]]]:
    """For each placeholder: the values under which its gates lead to training
    behaviour, and where that behaviour is (finding locations)."""
    gate_owner = {gate: placeholder for placeholder, names in gates.items() for gate in names}
    sides: dict[str, set[bool]] = {}
    covered: dict[str, list[str]] = {}
    for node in training_nodes(view, model):
        found = _enclosing_switch(view, node, gate_owner)
        if found is not None:
            switch, port = found
            sides.setdefault(gate_owner[switch], set()).add(bool(port))
            covered.setdefault(gate_owner[switch], []).append(node)
    branch_training = training_functions(model)
    for gate, placeholder in gate_owner.items():
        if view.op(gate) not in ops.IF_OPS:
            continue
        attrs = view.nodes[gate].attr
        for value, branch in ((True, "then_branch"), (False, "else_branch")):
            function = attrs[branch].func.name
            if function in branch_training:
                sides.setdefault(placeholder, set()).add(value)
                covered.setdefault(placeholder, []).extend(f"{function}::{n}" for n in branch_training[function])
    return sides, covered


def _enclosing_switch(view: GraphView, node: str, gates: dict[str, str]) -> tuple[str, int] | None:
    """The gate Switch output that `node` runs behind, found walking its inputs back."""
    frontier, seen = [node], {node}
    for _ in range(_BRANCH_SEARCH_DEPTH):
        next_frontier = []
        for name in frontier:
            producers = [*view.inputs(name), *(Tensor(c) for c in view.control_inputs(name))]
            for tensor in producers:
                if tensor.node in gates:
                    return tensor.node, tensor.port
                if tensor.node not in seen and view.op(tensor.node) not in ops.MERGE_OPS:
                    seen.add(tensor.node)
                    next_frontier.append(tensor.node)
        frontier = next_frontier
    return None


def _default(view: GraphView, placeholder: str) -> bool | None:
    if view.op(placeholder) != "PlaceholderWithDefault":
        return None
    value = view.const_value(view.inputs(placeholder)[0])
    return None if value is None or value.size != 1 or value.dtype != bool else bool(value.reshape(()))
