"""Fixed graphs compute what TensorFlow builds in inference mode, with the same weights."""

import pytest

import graphs
import tfrun
from graphdoc import ops
from graphdoc.errors import FixError
from graphdoc.loading import load
from graphdoc.rewrite import fix
from helpers import count_ops, findings_of

TOLERANCE = 1e-5

FIXABLE_MODELS = [
    "slim_fused_inline_updates",
    "slim_fused_named_statistics",
    "slim_unfused_named_statistics",
    "slim_unfused_inline_updates",
    "v1_dropout_keep_prob_tensor",
    "legacy_fused_batch_norm_v1",
    "legacy_fused_batch_norm_v2",
    "keras2_fused",
    "keras3_cnn",
    "keras3_mobilenet_v1",
    "slim_switch_control_flow_v1",
    "slim_switch_control_flow_v2",
]


def _fixed(write, pair):
    report = fix(load(write(pair.training)))
    assert report.applied and not report.remaining
    return report.fixed.graph_def.SerializeToString()


def _output(graph, x):
    return tfrun.run(graph, {"input:0": x}, ["output:0"])[0]


@pytest.mark.parametrize("name", FIXABLE_MODELS)
def test_fixed_graph_matches_the_inference_build(build, write, name):
    pair = build(name)
    fixed = _fixed(write, pair)
    batch = graphs.random_batch(pair.input_shape)
    expected = _output(pair.inference, batch)
    assert tfrun.relative_error(_output(fixed, batch), expected) <= TOLERANCE
    for i in range(len(batch)):
        alone = _output(fixed, batch[i : i + 1])
        assert tfrun.relative_error(alone, expected[i : i + 1]) <= TOLERANCE


@pytest.mark.parametrize("name", FIXABLE_MODELS)
def test_fixed_graph_is_batch_independent_and_deterministic(build, write, name):
    pair = build(name)
    fixed = _fixed(write, pair)
    first = graphs.random_batch(pair.input_shape, seed=1)
    other = graphs.random_batch(pair.input_shape, seed=2)
    other[0] = first[0]  # the same image among different companions
    a, b = _output(fixed, first), _output(fixed, other)
    assert tfrun.relative_error(a[0], b[0]) <= TOLERANCE
    assert (_output(fixed, first) == a).all()


@pytest.mark.parametrize("name", ["slim_fused_named_statistics", "keras3_cnn", "v1_dropout_keep_prob_tensor"])
def test_training_graph_really_differs_from_the_inference_build(build, name):
    # Guards the tests above: the models' training mode must be visible in the numbers.
    pair = build(name)
    batch = graphs.random_batch(pair.input_shape)
    assert tfrun.relative_error(_output(pair.training, batch), _output(pair.inference, batch)) > 1e-2


def test_fix_removes_update_ops_so_the_frozen_graph_imports(build, write):
    pair = build("slim_fused_inline_updates")
    # As frozen, AssignSubVariableOp on a constant does not import into TensorFlow.
    with pytest.raises(ValueError):
        tfrun.run(pair.training, {}, [])
    fixed = _fixed(write, pair)
    assert count_ops(fixed, ops.STATE_UPDATE_OPS | ops.RANDOM_OPS) == 0
    assert findings_of(write(fixed, "fixed.pb")) == []


def test_fix_keeps_the_keep_prob_placeholder_out_of_the_fixed_graph(build, write):
    fixed = _fixed(write, build("v1_dropout_keep_prob_tensor"))
    assert "keep_prob" not in {node.name for node in graphs.parse(fixed).node}


def test_op_count_changes_are_reported(build, write):
    report = fix(load(write(build("keras3_cnn").training)))
    changes = {op: (before, after) for op, before, after in report.op_changes()}
    assert changes["StatelessRandomUniformV2"] == (1, 0)
    assert changes["SquaredDifference"] == (2, 0)


def test_missing_statistics_stop_the_fix_instead_of_being_invented(build, write):
    with pytest.raises(FixError, match="lack moving statistics"):
        fix(load(write(build("slim_resnet_v1").training)))


def test_unfixable_dropout_remains_reported(write):
    import tensorflow as tf

    def unscaled(x):
        return x * tf.cast(tf.random.uniform(tf.shape(x)) >= 0.5, tf.float32)

    report = fix(load(write(graphs.build(unscaled))))
    assert not report.applied
    assert [f.code for f in report.remaining] == ["GD201"]
