"""GD303: variable updates left in an inference graph."""

import graphs
from graphdoc import ops
from graphdoc.loading import load
from graphdoc.rewrite import fix
from helpers import count_ops, findings_of


def test_inline_moving_average_updates_are_reported_and_removed(build, write):
    pair = build("slim_fused_inline_updates")
    found = findings_of(write(pair.training), "GD303")
    assert len(found) == count_ops(pair.training, ops.STATE_UPDATE_OPS) == 4
    assert all("AssignSubVariableOp writes conv" in f.message for f in found)
    fixed = fix(load(write(pair.training))).fixed.graph_def.SerializeToString()
    assert count_ops(fixed, ops.STATE_UPDATE_OPS) == 0
    assert findings_of(write(pair.inference, "inference.pb"), "GD303") == []


def test_an_update_whose_result_is_read_is_not_removed(write):
    import tensorflow as tf

    def body(x):
        counter = tf.compat.v1.Variable(0.0, name="counter", use_resource=False)
        return x + tf.compat.v1.assign_add(counter, 1.0)

    found = {f.message.split()[0]: f for f in findings_of(write(graphs.build(body)), "GD303")}
    assert found["AssignAdd"].fix is None and "read by" in found["AssignAdd"].unfixable
    assert found["Assign"].fix is not None  # the variable's initializer: nothing reads it
