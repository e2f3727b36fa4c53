"""GD302: keep_prob / rate placeholders whose default keeps dropout on."""

import pytest
import tensorflow as tf

import graphs
from helpers import findings_of


def test_keep_prob_tensor_with_a_default_below_one(build, write):
    [finding] = findings_of(write(build("v1_dropout_keep_prob_tensor").training), "GD302")
    assert finding.node == "keep_prob"
    assert "keep probability defaults to 0.5" in finding.message
    assert finding.fix.edits[0].value == 1.0


def test_rate_placeholder_binds_to_zero(write):
    def body(x):
        return tf.nn.dropout(x, rate=tf.compat.v1.placeholder_with_default(0.3, [], name="rate"))

    [finding] = findings_of(write(graphs.build(body)), "GD302")
    assert "dropout rate defaults to 0.3" in finding.message
    assert finding.fix.edits[0].value == 0.0


@pytest.mark.parametrize("value", [1.0])
def test_keep_prob_defaulting_to_one_is_fine(write, value):
    def body(x):
        keep = tf.compat.v1.placeholder_with_default(value, [], name="keep_prob")
        return tf.compat.v1.nn.dropout(x, keep_prob=keep)

    assert findings_of(write(graphs.build(body)), "GD302") == []
