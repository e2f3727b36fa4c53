"""Removing control flow whose predicate has become a constant.

After a training switch is bound to its inference value, TF1 graphs still hold
Switch/Merge pairs and TF2 graphs If/StatelessIf nodes that always take the
same branch. Converters reject both, so they are folded away:
- Switch/Merge (control flow v1): the dead output of each Switch, and
  everything only it feeds, is removed; the live output is wired to the
  Switch's input; a Merge left with one live input becomes that input.
- If/StatelessIf (control flow v2): the taken branch function is inlined
  under the If's name, and the If is removed.
Library functions no longer called from anywhere are dropped afterwards.
"""

from __future__ import annotations

from graphdoc.graph.model import Model, called_functions
from graphdoc.graph.view import EditError, GraphView, Tensor
from graphdoc.ops import IF_OPS, MERGE_OPS, SWITCH_OPS
from graphdoc.proto import FunctionDef, NodeDef
from graphdoc.rules.conds import constant_predicate


def fold_constant_control_flow(model: Model) -> int:
    """Fold every Switch and If of the main graph whose predicate is constant; returns how many."""
    folded = fold_constant_switches(model.main)
    for _ in range(16):  # an inlined branch may hold further constant Ifs
        inlined = inline_constant_ifs(model)
        folded += inlined + fold_constant_switches(model.main)
        if not inlined:
            break
    remove_unused_functions(model)
    return folded


# -- control flow v1 ---------------------------------------------------------------------------


def fold_constant_switches(view: GraphView) -> int:
    live_ports = {}
    for name in view.ops_of(SWITCH_OPS):
        predicate = constant_predicate(view, view.inputs(name)[1])
        if predicate is not None:
            live_ports[name] = int(predicate)
    if not live_ports:
        return 0
    dead_tensors = {Tensor(name, 1 - port) for name, port in live_ports.items()}
    dead = _dead_nodes(view, dead_tensors)
    for name, port in live_ports.items():
        view.redirect_uses(Tensor(name, port), view.inputs(name)[0])
    merges = [name for name in view.ops_of(MERGE_OPS) if name not in dead]
    collapsed = set(live_ports)
    for merge in merges:
        live = [t for t in view.inputs(merge) if t not in dead_tensors and t.node not in dead]
        if len(live) == 1 and len(live) < len(view.inputs(merge)) and not view.uses(Tensor(merge, 1)):
            view.redirect_uses(Tensor(merge, 0), live[0])
            collapsed.add(merge)
    view.remove_nodes(dead | collapsed)
    return len(live_ports)


def _dead_nodes(view: GraphView, dead_tensors: set[Tensor]) -> set[str]:
    """Nodes that can never run: TensorFlow propagates deadness through every op but Merge."""
    dead: set[str] = set()
    frontier = [use.consumer for tensor in dead_tensors for use in view.uses(tensor)]
    while frontier:
        name = frontier.pop()
        if name in dead:
            continue
        if view.op(name) in MERGE_OPS and not all(
            t in dead_tensors or t.node in dead for t in view.inputs(name)
        ):
            continue  # a Merge lives while any input lives
        dead.add(name)
        frontier.extend(view.consumers(name))
        frontier.extend(view.control_users(name))
    return dead


# -- control flow v2 ---------------------------------------------------------------------------


def inline_constant_ifs(model: Model) -> int:
    view = model.main
    functions = {f.signature.name: f for f in model.graph_def.library.function}
    inlined = 0
    for name in list(view.ops_of(IF_OPS)):
        predicate = constant_predicate(view, view.inputs(name)[0])
        if predicate is None:
            continue
        branch = view.nodes[name].attr["then_branch" if predicate else "else_branch"].func.name
        if branch not in functions:
            raise EditError(f"{name} calls {branch}, which is not in the function library")
        _inline(view, name, functions[branch], arguments=view.inputs(name)[1:])
        inlined += 1
    return inlined


def _inline(view: GraphView, call: str, function: FunctionDef, arguments: tuple[Tensor, ...]) -> None:
    """Copy `function`'s body into `view` under `call/`, then let the call's readers read its results."""
    if len(function.signature.input_arg) != len(arguments):
        raise EditError(
            f"{call} passes {len(arguments)} argument(s) to {function.signature.name}, "
            f"which takes {len(function.signature.input_arg)}"
        )
    body = GraphView(function.node_def, function=function)
    prefix = view.unique_name(call + "/inlined") + "/"
    bound = {arg.name: tensor for arg, tensor in zip(function.signature.input_arg, arguments, strict=True)}

    def outside(tensor: Tensor) -> Tensor:
        return bound[tensor.node] if tensor.node in bound else Tensor(prefix + tensor.node, tensor.port)

    for name in body.topological_order():  # producers first: add_node needs its inputs
        node = NodeDef()
        node.CopyFrom(body.nodes[name])
        node.name = prefix + name
        del node.input[:]
        node.input.extend(str(outside(tensor)) for tensor in body.inputs(name))
        node.input.extend(f"^{prefix}{control}" for control in body.control_inputs(name) if control in body.nodes)
        view.add_node(node)
    for index, result in enumerate(body.returns):
        view.redirect_uses(Tensor(call, index), outside(result))
    view.remove_nodes({call})


def remove_unused_functions(model: Model) -> int:
    """Drop library functions that no node of the graph, or of a used function, calls."""
    library = model.graph_def.library
    used = called_functions(model.graph_def)
    kept = [f for f in library.function if f.signature.name in used]
    removed = len(library.function) - len(kept)
    if removed:
        del library.function[:]
        library.function.extend(kept)
        model.__dict__.pop("functions", None)
    return removed
