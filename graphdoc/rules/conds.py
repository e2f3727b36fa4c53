"""The tf.cond nodes a boolean placeholder drives, and what each of their branches computes.

A model usually has many conds on one switch: every BatchNorm, dropout and
statistics update of a TF1 model written with a tensor `is_training` opens its
own. Each is judged by its branches' contents:
- control flow v1: a cond is the Switch nodes that read one predicate (the
  cond's `pred_id`); a node runs in a branch when walking its inputs back
  reaches a Switch output before any Merge;
- control flow v2: a cond is an If or StatelessIf; its branches are library
  functions, judged with everything they call;
- either way, a cond that only *selects* a value computed outside it (tf-slim
  with fused=False takes the batch moments before the cond) holds training
  behaviour on the side that passes that value through.
Behaviour outside every cond (a dropout downstream, fed by its own keep_prob)
belongs to no branch.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from graphdoc import ops
from graphdoc.graph.model import Model
from graphdoc.graph.view import GraphView, Tensor
from graphdoc.rules.base import Finding
from graphdoc.rules.training_behaviour import training_findings, training_functions

# How far back from a training node its enclosing Switch may be: a fused
# BatchNorm reads one directly, a dropout mask through a few arithmetic ops.
_BRANCH_SEARCH_DEPTH = 12
_DT_BOOL = 10
# Ops a predicate passes through on its way from the placeholder to a cond.
_PREDICATE_PASS_THROUGH = ops.PASS_THROUGH_OPS | {"Cast", "Squeeze", "Reshape"}
_PREDICATE_NEGATIONS = frozenset({"LogicalNot"})
_PREDICATE_COMPARISONS = frozenset({"Equal", "NotEqual"})  # with a boolean constant
# Ops through which a batch moment reaches the cond that selects it.
_SELECTION_PASS_THROUGH = ops.PASS_THROUGH_OPS | {"Squeeze"}


@dataclass
class Cond:
    """One tf.cond driven by a boolean placeholder."""

    gate: str  # the If node, or the predicate node its Switch nodes read
    placeholder: str
    inverted: bool  # the cond's true branch runs when the placeholder is False
    switches: list[str] = field(default_factory=list)  # v1: the cond's Switch nodes; v2: [the If]
    # The placeholder's value -> where training behaviour runs under it (finding locations).
    training: dict[bool, list[str]] = field(default_factory=dict)

    def add(self, branch: bool, locations: list[str]) -> None:
        """Training behaviour in the cond's `branch` (True: the then-branch)."""
        self.training.setdefault(branch != self.inverted, []).extend(locations)

    @property
    def kind(self) -> str:
        return "If" if self.gate in self.switches else "Switch/Merge"


def trace_predicate(view: GraphView, tensor: Tensor) -> tuple[str, bool] | None:
    """The boolean placeholder `tensor` is computed from, and whether it is negated on the way."""
    source, inverted = predicate_source(view, tensor)
    if view.op(source.node) in ops.PLACEHOLDER_OPS and view.attr(source.node, "dtype") == _DT_BOOL:
        return source.node, inverted
    return None


def constant_predicate(view: GraphView, tensor: Tensor) -> bool | None:
    """The value of a predicate computed from a boolean constant alone, or None."""
    source, inverted = predicate_source(view, tensor)
    value = view.const_value(source)
    if value is None or value.dtype != bool or value.size != 1:
        return None
    return bool(value.reshape(())) != inverted


def predicate_source(view: GraphView, tensor: Tensor) -> tuple[Tensor, bool]:
    """Where a predicate comes from, seen through casts, negations and comparisons with a
    boolean constant, and whether it is negated on the way."""
    inverted = False
    for _ in range(16):
        op = view.op(tensor.node)
        inputs = view.inputs(tensor.node)
        if op in _PREDICATE_PASS_THROUGH and inputs:
            tensor = inputs[0]
        elif op in _PREDICATE_NEGATIONS and inputs:
            tensor, inverted = inputs[0], not inverted
        elif op in _PREDICATE_COMPARISONS and len(inputs) == 2 and (found := _compared_with_constant(view, inputs)):
            tensor, constant = found
            # p == True and p != False are p; p == False and p != True are not p.
            inverted ^= (not constant) != (op == "NotEqual")
        else:
            break
    return tensor, inverted


def _compared_with_constant(view: GraphView, inputs: tuple[Tensor, ...]) -> tuple[Tensor, bool] | None:
    for operand, other in ((inputs[0], inputs[1]), (inputs[1], inputs[0])):
        value = view.const_value(other)
        if value is not None and value.dtype == bool and value.size == 1:
            return operand, bool(value.reshape(()))
    return None


def find_conds(view: GraphView, model: Model) -> list[Cond]:
    """Every cond of the main graph driven by a boolean placeholder, its branches judged."""
    conds = _conds_by_gate(view)
    if not conds:
        return []
    switch_owner = {switch: cond for cond in conds.values() for switch in cond.switches if cond.kind != "If"}
    findings = training_findings(view, model)
    for finding in findings:
        found = enclosing_switch(view, finding.node, switch_owner)
        if found is not None:
            switch, port = found
            switch_owner[switch].add(bool(port), [finding.location])
    _judge_if_branches(view, model, [c for c in conds.values() if c.kind == "If"])
    _judge_selections(view, model, conds, findings)
    return list(conds.values())


def _conds_by_gate(view: GraphView) -> dict[str, Cond]:
    conds: dict[str, Cond] = {}
    for name in view.ops_of(ops.SWITCH_OPS | ops.IF_OPS):
        is_if = view.op(name) in ops.IF_OPS
        predicate = view.inputs(name)[0 if is_if else 1]
        traced = trace_predicate(view, predicate)
        if traced is None:
            continue
        gate = name if is_if else predicate.node
        cond = conds.setdefault(gate, Cond(gate, *traced))
        cond.switches.append(name)
    return conds


def enclosing_switch(view: GraphView, node: str, switches: Collection[str]) -> tuple[str, int] | None:
    """The Switch output that `node` runs behind, found walking its inputs back (not past a Merge)."""
    frontier, seen = [node], {node}
    for _ in range(_BRANCH_SEARCH_DEPTH):
        next_frontier = []
        for name in frontier:
            producers = [*view.inputs(name), *(Tensor(c) for c in view.control_inputs(name))]
            for tensor in producers:
                if tensor.node in switches:
                    return tensor.node, tensor.port
                if tensor.node not in seen and view.op(tensor.node) not in ops.MERGE_OPS:
                    seen.add(tensor.node)
                    next_frontier.append(tensor.node)
        frontier = next_frontier
    return None


def _judge_if_branches(view: GraphView, model: Model, conds: list[Cond]) -> None:
    branch_training = training_functions(model)
    for cond in conds:
        for branch, function in _branches(view, cond.gate):
            if function in branch_training:
                cond.add(branch, [f"{function}::{node}" for node in branch_training[function]] or [cond.gate])


def _branches(view: GraphView, gate: str) -> Iterator[tuple[bool, str]]:
    attrs = view.nodes[gate].attr
    yield True, attrs["then_branch"].func.name
    yield False, attrs["else_branch"].func.name


def _judge_selections(view: GraphView, model: Model, conds: dict[str, Cond], findings: list[Finding]) -> None:
    """Conds that pass a batch moment computed outside them through one branch only."""
    for finding in findings:
        for reader, tensor in _readers_of_products(view, finding):
            cond = _cond_of(view, reader, conds)
            if cond is None:
                continue
            for branch in _branches_passing(view, model, reader, tensor):
                cond.add(branch, [finding.location])


def _readers_of_products(view: GraphView, finding: Finding) -> Iterator[tuple[str, Tensor]]:
    """Switch and If nodes reading what `finding`'s nodes compute, with the tensor they read."""
    if finding.scope:
        return
    for node in (finding.node, *finding.nodes):
        if node not in view:
            continue
        frontier = [Tensor(node, port) for port in view.read_ports(node)]
        for _ in range(4):
            next_frontier = []
            for tensor in frontier:
                for use in view.uses(tensor):
                    op = view.op(use.consumer)
                    if op in ops.SWITCH_OPS | ops.IF_OPS:
                        yield use.consumer, use.slot
                    elif op in _SELECTION_PASS_THROUGH:
                        next_frontier.append(Tensor(use.consumer))
            frontier = next_frontier


def _cond_of(view: GraphView, node: str, conds: dict[str, Cond]) -> Cond | None:
    if node in conds:
        return conds[node]
    if view.op(node) in ops.SWITCH_OPS:
        return conds.get(view.inputs(node)[1].node)
    return None


def _branches_passing(view: GraphView, model: Model, reader: str, slot: int) -> list[bool]:
    """The branches of cond node `reader` through which its input `slot` flows out unchanged."""
    if view.op(reader) in ops.SWITCH_OPS:
        ports = view.read_ports(reader) if slot == 0 else set()
        return [bool(port) for port in ports] if len(ports) == 1 else []
    passing = []
    for branch, function in _branches(view, reader):
        body = _function_view(model, function)
        arg = body.function.signature.input_arg[slot - 1].name if body is not None and slot >= 1 else None
        if arg is not None and any(body.resolve(result).node == arg for result in body.returns):
            passing.append(branch)
    return passing if len(passing) == 1 else []


def _function_view(model: Model, name: str) -> GraphView | None:
    try:
        return model.view(name)
    except KeyError:
        return None
