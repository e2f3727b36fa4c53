"""Every edit primitive refuses what it cannot do, with an EditError naming the node.

A refused edit must leave the view and its protobuf exactly as they were (the
fixer reports the refusal and writes nothing), and the view must still agree
with one built afresh from the protobuf.
"""

import numpy as np
import pytest

from graphdoc.graph.view import EditError, GraphView, Tensor
from test_graph_view import answers  # everything a rule can ask of a view
from graphdoc.proto import FunctionDef, GraphDef, NodeDef


def tiny_graph() -> GraphDef:
    """c (Const), p (Placeholder), a = Add(c, p) waiting for p, r = Relu(a)."""
    graph = GraphDef()
    graph.node.add(name="c", op="Const")
    graph.node.add(name="p", op="Placeholder")
    graph.node.add(name="a", op="Add", input=["c", "p", "^p"]).attr["T"].type = 1
    graph.node.add(name="r", op="Relu", input=["a"])
    return graph


@pytest.fixture
def graph() -> GraphDef:
    return tiny_graph()


@pytest.fixture
def view(graph: GraphDef) -> GraphView:
    view = GraphView(graph.node)
    view.inputs("a"), view.consumers("c")  # the lazily built parts exist before the edit
    return view


def refused(graph: GraphDef, view: GraphView, edit, names: str) -> None:
    """Run `edit`, expect an EditError mentioning `names`, and check nothing changed."""
    before, written = answers(view), graph.SerializeToString(deterministic=True)
    with pytest.raises(EditError, match=names):
        edit()
    assert graph.SerializeToString(deterministic=True) == written
    assert answers(view) == before == answers(GraphView(graph.node))


MISSING = ["nope", "r"]  # never defined; defined, then removed


def missing_node(view: GraphView, name: str) -> str:
    if name == "r":
        view.remove_nodes(["r"])
        view.compact()
    return name


@pytest.mark.parametrize("name", MISSING)
def test_make_const_refuses_a_node_that_does_not_exist(graph, view, name):
    name = missing_node(view, name)
    refused(graph, view, lambda: view.make_const(name, np.float32(1)), name)


@pytest.mark.parametrize("name", MISSING)
def test_make_identity_refuses_a_node_that_does_not_exist(graph, view, name):
    name = missing_node(view, name)
    refused(graph, view, lambda: view.make_identity(name, Tensor("c")), name)


def test_make_identity_refuses_a_tensor_that_does_not_exist(graph, view):
    refused(graph, view, lambda: view.make_identity("a", Tensor("nope", 1)), "a.*nope:1")


@pytest.mark.parametrize("name", MISSING)
def test_set_attrs_refuses_a_node_that_does_not_exist(graph, view, name):
    name = missing_node(view, name)
    refused(graph, view, lambda: view.set_attrs(name, [("T", 1)]), name)


def test_set_attrs_refuses_a_value_it_cannot_write_and_sets_none_of_the_others(graph, view):
    refused(graph, view, lambda: view.set_attrs("a", [("keep", True), ("bad", object())]), "bad of a")
    assert "keep" not in graph.node[2].attr


@pytest.mark.parametrize("name", MISSING)
def test_set_inputs_refuses_a_node_that_does_not_exist(graph, view, name):
    name = missing_node(view, name)
    refused(graph, view, lambda: view.set_inputs(name, [(0, Tensor("c"))]), name)


@pytest.mark.parametrize("slot", [2, 5, -1])
def test_set_inputs_refuses_a_slot_out_of_range(graph, view, slot):
    # Slot 2 of `a` is its control input ^p in the NodeDef: writing it would turn a wait into a read.
    refused(graph, view, lambda: view.set_inputs("a", [(0, Tensor("p")), (slot, Tensor("c"))]), f"a.*input {slot}")
    refused(graph, view, lambda: view.set_input("a", slot, Tensor("c")), f"a.*input {slot}")


def test_set_inputs_refuses_a_tensor_that_does_not_exist(graph, view):
    refused(graph, view, lambda: view.set_inputs("a", [(0, Tensor("p")), (1, Tensor("nope"))]), "a.*nope")


@pytest.mark.parametrize("name", MISSING)
def test_replace_node_refuses_a_node_that_does_not_exist(graph, view, name):
    name = missing_node(view, name)
    refused(graph, view, lambda: view.replace_node(name, NodeDef(name=name, op="Identity", input=["c"])), name)


@pytest.mark.parametrize("inputs", [["c", "nope"], ["c", "^nope"]])
def test_replace_node_refuses_inputs_that_do_not_exist(graph, view, inputs):
    refused(graph, view, lambda: view.replace_node("a", NodeDef(name="a", op="Add", input=inputs)), "a.*nope")


def test_replace_node_refuses_a_node_of_another_name(graph, view):
    refused(graph, view, lambda: view.replace_node("a", NodeDef(name="b", op="Identity", input=["c"])), "a.*b")


@pytest.mark.parametrize("name", MISSING)
def test_redirect_uses_refuses_a_node_that_does_not_exist(graph, view, name):
    name = missing_node(view, name)
    refused(graph, view, lambda: view.redirect_uses(Tensor(name), Tensor("c")), name)
    refused(graph, view, lambda: view.redirect_uses(Tensor("c"), Tensor(name)), name)


def test_add_node_refuses_a_name_that_is_taken(graph, view):
    refused(graph, view, lambda: view.add_node(NodeDef(name="a", op="Identity", input=["c"])), "a.*taken")


@pytest.mark.parametrize("inputs", [["nope"], ["c", "^nope"]])
def test_add_node_refuses_inputs_that_do_not_exist(graph, view, inputs):
    refused(graph, view, lambda: view.add_node(NodeDef(name="b", op="Identity", input=inputs)), "b.*nope")


def test_add_const_refuses_a_name_that_is_taken(graph, view):
    refused(graph, view, lambda: view.add_const("p", np.float32(1)), "p.*taken")


def test_const_edits_refuse_a_value_tensorflow_cannot_hold(graph, view):
    value = np.array([object()])
    refused(graph, view, lambda: view.add_const("b", value), "b")
    refused(graph, view, lambda: view.make_const("p", value), "p")


def test_remove_nodes_refuses_while_a_survivor_reads_them(graph, view):
    refused(graph, view, lambda: view.remove_nodes(["a"]), "a.*r still reads it")


def test_a_function_argument_is_not_a_node_to_edit():
    function = FunctionDef()
    function.signature.name = "f"
    function.signature.input_arg.add(name="x")
    function.node_def.add(name="y", op="Identity", input=["x"])
    view = GraphView(function.node_def, function=function)
    with pytest.raises(EditError, match="x into a Const: it is a function argument"):
        view.make_const("x", np.float32(1))
    assert view.inputs("y") == (Tensor("x"),)


def test_a_valid_sequence_of_edits_still_works(graph, view):
    scale = view.add_const("scale", np.float32(2))
    view.add_node(NodeDef(name="m", op="Mul", input=["p", "scale"]))
    view.redirect_uses(Tensor("a"), Tensor("m"))  # r reads m: nothing reads a any more
    view.set_input("m", 0, Tensor("c"))
    view.set_attrs("a", [("T", 2)])
    view.make_identity("r", Tensor("m"))
    view.make_const("p", np.float32(3))
    view.replace_node("a", NodeDef(name="a", op="Sub", input=["c", "p"]))
    view.remove_nodes(["a"])
    view.compact()
    assert answers(view) == answers(GraphView(graph.node))
    assert [node.name for node in graph.node] == ["c", "p", "r", "scale", "m"]
    assert view.inputs("m") == (Tensor("c"), scale)
    assert (view.op("r"), view.inputs("r")) == ("Identity", (Tensor("m"),))
    assert view.const_value(Tensor("p")) == np.float32(3)
    assert view.dangling_input() is None
