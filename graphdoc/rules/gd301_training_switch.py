"""GD301: a boolean placeholder that switches the model into training mode."""

from __future__ import annotations

from collections.abc import Iterator

from graphdoc.graph.edits import MakeConst
from graphdoc.graph.model import Model
from graphdoc.graph.view import GraphView
from graphdoc.rules.base import Finding, Fix, Rule, Severity
from graphdoc.rules.conds import Cond, find_conds


class TrainingSwitch(Rule):
    """What it finds:
    A boolean Placeholder or PlaceholderWithDefault (`is_training`,
    `phase_train`, `training`, `keras_learning_phase`: the name does not
    matter) whose value chooses, through `tf.cond`, between training-mode and
    inference-mode BatchNorm or dropout. In TF1 graphs tf.cond is Switch and
    Merge nodes; in TF2 graphs an If or StatelessIf whose branches are library
    functions. Which value means training is read from the data flow, cond
    by cond: the branch that holds a training-mode BatchNorm, a live dropout
    or a statistics update, or that passes on batch moments computed before
    the cond (tf-slim with fused=False). The predicate may reach the cond
    through Identity, Cast, LogicalNot or a comparison with a constant.
    Behaviour outside every cond (a downstream dropout with its own keep_prob)
    is other rules' business. When the conds disagree about which value means
    inference, or one holds training behaviour on both sides, the finding
    names that cond and offers no fix (`fix --bind NAME=VALUE` decides).

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

    In other formats:
    Keras files: any other layer (a custom class) called with training=True,
    fixed by removing the argument, and a Lambda whose code reads the learning
    phase, which only its code can change.
    """

    code = "GD301"
    name = "training-switch"
    finds = (
        "a bool placeholder (`is_training`, ...) selecting training-mode BatchNorm or dropout through "
        "Switch/Merge or If; every tf.cond on it is judged by what its branches compute (a cond that only "
        "selects batch moments computed outside it counts too), and conds that disagree are named"
    )
    fixes = "bound to its inference value; control flow folded, branches inlined, unused functions dropped"
    summary = "A boolean placeholder selects training-mode behaviour through tf.cond"

    def check(self, view: GraphView, model: Model) -> Iterator[Finding]:
        if view.scope:
            return  # placeholders live in the main graph
        by_placeholder: dict[str, list[Cond]] = {}
        for cond in find_conds(view, model):
            by_placeholder.setdefault(cond.placeholder, []).append(cond)
        for placeholder, conds in by_placeholder.items():
            switching = [cond for cond in conds if cond.training]
            if switching:
                yield self._finding(view, placeholder, conds, switching)

    def _finding(self, view: GraphView, placeholder: str, conds: list[Cond], switching: list[Cond]) -> Finding:
        # The report lists the gates, then the locations of the training behaviour they switch on.
        gates = sorted(switch for cond in conds for switch in cond.switches)
        covered = sorted({location for cond in switching for locations in cond.training.values() for location in locations})
        nodes = (*gates, *covered)
        problem = _disagreement(placeholder, switching)
        if problem is not None:
            message = f"{placeholder} switches training behaviour on both of its values"
            return self.finding(view, placeholder, message, nodes=nodes, unfixable=problem)
        [training_value] = {value for cond in switching for value in cond.training}
        inference = not training_value
        default = _default(view, placeholder)
        count = f"{len(switching)} tf.cond"
        if default is None:
            message = f"{placeholder} must be fed {inference} at inference, or {count} run in training mode"
            severity = Severity.WARNING
        elif default == training_value:
            message = f"{placeholder} defaults to {default}: the graph runs in training mode unless fed {inference}"
            severity = Severity.ERROR
        else:
            message = f"{placeholder} defaults to inference mode, but {count} remain for converters to reject"
            severity = Severity.WARNING
        fix = Fix(
            f"bind {placeholder} to {inference} and remove the control flow it drives",
            (MakeConst(view.scope, placeholder, inference),),
        )
        return self.finding(view, placeholder, message, nodes=nodes, fix=fix, severity=severity)


def _disagreement(placeholder: str, conds: list[Cond]) -> str | None:
    """Why no single value of `placeholder` selects inference in every cond, or None."""
    both = [cond for cond in conds if len(cond.training) > 1]
    if both:
        return f"both branches of {both[0].gate} hold training-mode behaviour; no value selects inference"
    by_value: dict[bool, list[Cond]] = {}
    for cond in conds:
        by_value.setdefault(next(iter(cond.training)), []).append(cond)
    if len(by_value) < 2:
        return None
    fewer, more = sorted(by_value.items(), key=lambda item: len(item[1]))
    return (
        f"{fewer[1][0].gate} runs training behaviour when {placeholder} is {fewer[0]}, but "
        f"{len(more[1])} other tf.cond when it is {more[0]}; no value selects inference in all of them"
    )


def _default(view: GraphView, placeholder: str) -> bool | None:
    if view.op(placeholder) != "PlaceholderWithDefault":
        return None
    value = view.const_value(view.inputs(placeholder)[0])
    return None if value is None or value.size != 1 or value.dtype != bool else bool(value.reshape(()))
