"""GD301: is_training placeholders that switch BatchNorm and dropout through tf.cond."""

import pytest
import tensorflow as tf

import graphs
import tfrun
from graphdoc import ops
from graphdoc.loading import load
from graphdoc.rewrite import fix
from graphdoc.rules import Severity
from helpers import findings_of

SWITCHED = ["slim_switch_control_flow_v1", "slim_switch_control_flow_v2"]
CONTROL_FLOW = ops.SWITCH_OPS | ops.MERGE_OPS | ops.IF_OPS


@pytest.mark.parametrize("name", SWITCHED)
def test_default_true_is_an_error_with_a_fix(build, write, name):
    [finding] = findings_of(write(build(name).training), "GD301")
    assert finding.node == "is_training"
    assert finding.level() is Severity.ERROR
    assert "defaults to True" in finding.message and "fed False" in finding.message
    # The BatchNorm and dropout behind the switch go with its training branch.
    others = findings_of(write(build(name).training, "again.pb"))
    assert all(f.fix is not None for f in others)


@pytest.mark.parametrize("name", SWITCHED)
def test_fixed_graph_has_no_control_flow_and_needs_only_the_image(build, write, name):
    pair = build(name)
    report = fix(load(write(pair.training)))
    graph_def = report.fixed.graph_def
    assert not {node.op for node in graph_def.node} & (CONTROL_FLOW | ops.PLACEHOLDER_OPS - {"Placeholder"})
    assert not graph_def.library.function
    assert [node.name for node in graph_def.node if node.op == "Placeholder"] == ["input"]
    batch = graphs.random_batch(pair.input_shape)
    fixed = graph_def.SerializeToString()
    expected = tfrun.run(pair.inference, {"input:0": batch}, ["output:0"])[0]
    assert tfrun.relative_error(tfrun.run(fixed, {"input:0": batch}, ["output:0"])[0], expected) <= 1e-5
    alone = tfrun.run(fixed, {"input:0": batch[:1]}, ["output:0"])[0]
    assert tfrun.relative_error(alone, expected[:1]) <= 1e-5


def _switched(default):
    """A hand-built tf.cond on a bool placeholder: dropout when true, identity when false."""

    def body(x):
        flag = (
            tf.compat.v1.placeholder(tf.bool, [], name="phase_train")
            if default is None
            else tf.compat.v1.placeholder_with_default(default, [], name="phase_train")
        )
        return tf.cond(flag, lambda: tf.nn.dropout(x, rate=0.5), lambda: tf.identity(x))

    return body


def test_placeholder_without_default_is_a_warning_naming_the_value(write):
    [finding] = findings_of(write(graphs.build(_switched(None))), "GD301")
    assert finding.level() is Severity.WARNING
    assert "must be fed False" in finding.message


def test_default_false_still_reports_the_control_flow(write):
    [finding] = findings_of(write(graphs.build(_switched(False))), "GD301")
    assert finding.level() is Severity.WARNING
    assert "defaults to inference mode" in finding.message


def test_training_on_both_sides_is_not_guessed(write):
    def body(x):
        flag = tf.compat.v1.placeholder_with_default(True, [], name="flag")
        return tf.cond(flag, lambda: tf.nn.dropout(x, rate=0.5), lambda: tf.nn.dropout(x, rate=0.2))

    [finding] = findings_of(write(graphs.build(body)), "GD301")
    assert finding.fix is None and "both branches" in finding.unfixable


def test_a_bool_placeholder_that_switches_nothing_is_not_reported(write):
    def body(x):
        flag = tf.compat.v1.placeholder_with_default(True, [], name="use_relu")
        return tf.cond(flag, lambda: tf.nn.relu(x), lambda: tf.identity(x))

    assert findings_of(write(graphs.build(body))) == []


def _negated_switch(x):
    """tf.cond on `not is_eval` (and on `is_eval == False`): training when is_eval is False."""
    is_eval = tf.compat.v1.placeholder_with_default(False, [], name="is_eval")
    y = tf.cond(tf.logical_not(is_eval), lambda: tf.nn.dropout(x, rate=0.5), lambda: tf.identity(x))
    return tf.cond(tf.equal(is_eval, False), lambda: tf.nn.dropout(y, rate=0.5), lambda: tf.identity(y))


@pytest.mark.parametrize("v2", [False, True])
def test_a_negated_predicate_is_bound_to_the_value_that_selects_inference(write, v2):
    from tensorflow.python.ops import control_flow_util

    previous = control_flow_util.ENABLE_CONTROL_FLOW_V2
    control_flow_util.ENABLE_CONTROL_FLOW_V2 = v2
    try:
        graph = graphs.build(_negated_switch)
    finally:
        control_flow_util.ENABLE_CONTROL_FLOW_V2 = previous
    [finding] = findings_of(write(graph), "GD301")
    assert "defaults to False" in finding.message and "fed True" in finding.message
    fixed = fix(load(write(graph, "again.pb"))).fixed.graph_def.SerializeToString()
    x = graphs.random_batch((8,))
    assert tfrun.relative_error(tfrun.run(fixed, {"input:0": x}, ["output:0"])[0], x) == 0


def test_conds_that_disagree_are_named_not_guessed(write):
    def body(x):
        flag = tf.compat.v1.placeholder_with_default(True, [], name="flag")
        y = tf.cond(flag, lambda: tf.nn.dropout(x, rate=0.5), lambda: tf.identity(x), name="first")
        y = tf.cond(flag, lambda: tf.nn.dropout(y, rate=0.5), lambda: tf.identity(y), name="second")
        return tf.cond(flag, lambda: tf.identity(y), lambda: tf.nn.dropout(y, rate=0.5), name="odd_one")

    [finding] = findings_of(write(graphs.build(body)), "GD301")
    assert finding.fix is None
    assert finding.unfixable.startswith("odd_one runs training behaviour when flag is False, but 2 other tf.cond")


def test_a_branch_that_only_updates_statistics_is_a_training_branch(write):
    def body(x):
        flag = tf.compat.v1.placeholder_with_default(True, [], name="is_training")
        seen = tf.compat.v1.get_variable("seen", [], initializer=tf.zeros_initializer(), use_resource=True)

        def training():
            with tf.control_dependencies([seen.assign_add(1.0)]):
                return tf.identity(x)

        return tf.cond(flag, training, lambda: tf.identity(x))

    [finding] = findings_of(write(graphs.build(body)), "GD301")
    assert "defaults to True" in finding.message and finding.fix is not None
