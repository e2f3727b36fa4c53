"""The columnar index stays the protobuf's exact mirror through any sequence of edits.

The view answers queries from arrays built at load plus an overlay of edited
nodes. After every random edit, each answer must equal the answer of a view
built afresh from the edited protobuf: a broken overlay (a reader not
recorded, a removed node still counted, a stale slot) shows up as a difference.
"""

import networkx as nx
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from graphdoc.graph.view import EditError, GraphView, Tensor
from graphdoc.proto import GraphDef

OPS = ("Const", "Identity", "Add", "Mul", "Relu", "Split")


def random_graph(draw) -> GraphDef:
    """Nodes in file order; each reads earlier outputs (ports 0-1), some wait for earlier nodes."""
    graph = GraphDef()
    count = draw(st.integers(3, 14))
    for index in range(count):
        node = graph.node.add(name=f"n{index}", op=draw(st.sampled_from(OPS)) if index else "Const")
        if index == 0 or node.op == "Const":
            node.op = "Const"
            continue
        for _ in range(draw(st.integers(1, 3))):
            producer, port = draw(st.integers(0, index - 1)), draw(st.integers(0, 1))
            node.input.append(f"n{producer}" if port == 0 else f"n{producer}:{port}")
        for _ in range(draw(st.integers(0, 2))):
            node.input.append(f"^n{draw(st.integers(0, index - 1))}")
    return graph


def answers(view: GraphView) -> dict:
    """Everything a rule can ask, in a form that does not depend on how the view was built."""
    names = sorted(view.nodes)
    return {
        "nodes": names,
        "ops": {name: view.op(name) for name in names},
        "inputs": {name: view.inputs(name) for name in names},
        "controls": {name: view.control_inputs(name) for name in names},
        "consumers": {name: sorted(view.consumers(name)) for name in names},
        "control_users": {name: sorted(view.control_users(name)) for name in names},
        "uses": {(name, port): sorted(view.uses(Tensor(name, port))) for name in names for port in range(3)},
        "read_ports": {name: view.read_ports(name) for name in names},
        "by_op": {op: sorted(view.ops_of({op})) for op in OPS},
        "counts": view.op_counts(),
        "sinks": sorted(view.sinks()),
        "dangling": view.dangling_input(),
        "ordered": view.find_cycle() is None,
        "needed": sorted(view.needed_by(names[-1:])),
    }


def random_edit(draw, view: GraphView, step: int) -> None:
    names = list(view.nodes)
    name = draw(st.sampled_from(names))
    kind = draw(st.sampled_from(["set_input", "set_inputs", "identity", "const", "add_const", "add_node", "remove",
                                 "redirect"]))
    target = Tensor(draw(st.sampled_from(names)), draw(st.integers(0, 1)))
    if kind == "set_input" and view.inputs(name):
        view.set_input(name, draw(st.integers(0, len(view.inputs(name)) - 1)), target)
    elif kind == "set_inputs" and view.inputs(name):
        slots = draw(st.lists(st.integers(0, len(view.inputs(name)) - 1), min_size=1, max_size=3))
        view.set_inputs(name, [(slot, Tensor(draw(st.sampled_from(names)), draw(st.integers(0, 1)))) for slot in slots])
    elif kind == "identity":
        view.make_identity(name, target)
    elif kind == "const":
        view.make_const(name, np.float32(step))
    elif kind == "add_const":
        view.add_const(view.unique_name(f"c{step}"), np.float32(step))
    elif kind == "add_node":
        node = GraphDef().node.add(name=view.unique_name(f"a{step}"), op="Add")
        node.input.extend([str(target), names[0], f"^{name}"])
        view.add_node(node)
    elif kind == "remove":
        try:
            view.remove_nodes({name, *draw(st.lists(st.sampled_from(names), max_size=3))})
        except EditError:
            pass  # refused: something outside still reads one of them
    elif kind == "redirect":
        view.redirect_uses(Tensor(name, draw(st.integers(0, 1))), target)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_every_answer_matches_a_fresh_view_after_every_edit(data):
    graph = random_graph(data.draw)
    view = GraphView(graph.node)
    for step in range(data.draw(st.integers(1, 12))):
        if not view.nodes:
            break
        random_edit(data.draw, view, step)
        view.compact()
        assert answers(view) == answers(GraphView(graph.node)), f"after edit {step}"


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_needed_by_is_what_the_outputs_depend_on_with_and_without_cycles(data):
    # The ground truth is networkx's ancestors over the NodeDefs' inputs as written.
    # A back edge makes a cycle (as a TF1 while loop does), which the prune
    # handles differently from the acyclic case: both must agree with it.
    graph = random_graph(data.draw)
    names = [node.name for node in graph.node]
    for _ in range(data.draw(st.integers(0, 2))):
        reader, producer = sorted(data.draw(st.lists(st.sampled_from(range(len(names))), min_size=2, max_size=2)))
        graph.node[reader].input.append(f"^{names[producer]}" if data.draw(st.booleans()) else names[producer])
    outputs = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3))
    truth = nx.DiGraph()
    truth.add_nodes_from(names)
    truth.add_edges_from((ref.lstrip("^").partition(":")[0], node.name) for node in graph.node for ref in node.input)
    expected = set(outputs).union(*(nx.ancestors(truth, output) for output in outputs))
    view = GraphView(graph.node)
    assert view.needed_by(outputs) == expected
    assert view.keep_only_needed_by(outputs) == len(names) - len(expected)
    assert set(view.nodes) == expected


def test_bulk_removal_refuses_a_live_reader_and_drops_control_dependencies():
    graph = GraphDef()
    graph.node.add(name="keep", op="Const")
    for index in range(3000):  # above the size where removal switches to array operations
        graph.node.add(name=f"gone{index}", op="Identity", input=["keep"])
    graph.node.add(name="reader", op="Identity", input=["gone5"])
    graph.node.add(name="waiter", op="NoOp", input=["^gone7", "^keep"])
    view = GraphView(graph.node)
    doomed = {f"gone{index}" for index in range(3000)}
    try:
        view.remove_nodes(doomed)
    except EditError as error:
        assert "gone5" in str(error) and "reader" in str(error)
    else:
        raise AssertionError("removing a node that is still read was allowed")
    view.remove_nodes(doomed | {"reader"})
    view.compact()
    assert [node.name for node in graph.node] == ["keep", "waiter"]
    assert list(graph.node[1].input) == ["^keep"]
    assert answers(view) == answers(GraphView(graph.node))


def test_dangling_references_and_duplicates_are_reported_not_indexed_as_nodes():
    graph = GraphDef()
    graph.node.add(name="a", op="Const")
    graph.node.add(name="b", op="Identity", input=["ghost:1"])
    graph.node.add(name="a", op="Relu", input=["b"])
    view = GraphView(graph.node)
    assert view.duplicates == ["a"]
    assert view.dangling_input() == ("b", "ghost:1")
    assert "ghost" not in view and sorted(view.nodes) == ["a", "b"]
    assert view.op("a") == "Relu" and view.consumers("b") == ["a"]


def test_set_inputs_checks_every_tensor_before_changing_anything():
    graph = GraphDef()
    graph.node.add(name="a", op="Const")
    graph.node.add(name="b", op="Const")
    graph.node.add(name="sum", op="Add", input=["a", "a", "^b"])
    view = GraphView(graph.node)
    try:
        view.set_inputs("sum", [(0, Tensor("b")), (1, Tensor("ghost"))])
    except EditError as error:
        assert "ghost" in str(error)
    else:
        raise AssertionError("rewiring to a tensor that does not exist was allowed")
    assert list(graph.node[2].input) == ["a", "a", "^b"] and view.inputs("sum") == (Tensor("a"), Tensor("a"))
    view.set_inputs("sum", [(0, Tensor("b")), (1, Tensor("b", 1))])
    assert list(graph.node[2].input) == ["b", "b:1", "^b"]
    assert answers(view) == answers(GraphView(graph.node))


def test_control_inputs_stay_right_after_a_compaction_makes_edited_nodes_loaded_ones():
    graph = GraphDef()
    graph.node.add(name="a", op="Const")
    graph.node.add(name="b", op="Const")
    graph.node.add(name="c", op="Identity", input=["a"])
    view = GraphView(graph.node)
    assert view.control_inputs("c") == ()  # asked before the edits: nothing cached may go stale
    view.add_node(GraphDef().node.add(name="d", op="Identity", input=["a", "^c"]))
    view.remove_nodes(["b"])
    view.compact()
    assert view.control_inputs("d") == ("c",)
    assert answers(view) == answers(GraphView(graph.node))
