"""GD304: CheckNumerics in an inference graph."""

import tensorflow as tf

import graphs
import tfrun
from graphdoc.loading import load
from graphdoc.rewrite import fix
from helpers import count_ops, findings_of


def _guarded(x):
    return tf.debugging.check_numerics(tf.nn.relu(x), "activation") * 2.0


def test_check_numerics_is_reported_and_bypassed(write):
    graph = graphs.build(_guarded)
    [finding] = findings_of(write(graph), "GD304")
    fixed = fix(load(write(graph, "model2.pb"))).fixed.graph_def.SerializeToString()
    assert count_ops(fixed, {"CheckNumerics", "CheckNumericsV2"}) == 0
    batch = graphs.random_batch((8,))
    assert (tfrun.run(fixed, {"input:0": batch}, ["output:0"])[0] == tfrun.run(graph, {"input:0": batch}, ["output:0"])[0]).all()


def test_graphs_without_check_numerics_have_no_finding(write):
    assert findings_of(write(graphs.build(tf.nn.relu)), "GD304") == []
