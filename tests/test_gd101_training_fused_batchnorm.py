"""GD101: fused BatchNorm in training mode."""

import pytest

import graphs
from graphdoc import ops
from helpers import count_ops, findings_of

FUSED_TRAINING_MODELS = [
    "slim_fused_inline_updates",
    "slim_fused_named_statistics",
    "slim_resnet_v1",
    "legacy_fused_batch_norm_v1",
    "legacy_fused_batch_norm_v2",
    "keras2_fused",
]


@pytest.mark.parametrize("name", FUSED_TRAINING_MODELS)
def test_every_training_mode_fused_batchnorm_is_reported(build, write, name):
    pair = build(name)
    found = findings_of(write(pair.training), "GD101")
    assert len(found) == count_ops(pair.training, ops.FUSED_BATCH_NORM_OPS) > 0
    assert findings_of(write(pair.inference, "inference.pb")) == []


def test_missing_is_training_attribute_means_training_mode(build, write):
    # SavedModels strip attributes equal to their default; the default of is_training is true.
    inference = build("slim_fused_named_statistics").inference
    stripped = graphs.without_attr(inference, "FusedBatchNormV3", "is_training")
    found = findings_of(write(stripped), "GD101")
    assert len(found) == 2
    assert all("absent" in f.message for f in found)


def test_statistics_found_by_data_flow_from_the_update_ops(build, write):
    found = findings_of(write(build("slim_fused_inline_updates").training), "GD101")
    assert all(f.fix is not None and "update ops" in f.fix.summary for f in found)


def test_keras2_form_uses_its_own_mean_and_variance_inputs(build, write):
    # Keras 2 in TF 2 feeds the moving statistics with an exponential_avg_factor below 1.
    graph = graphs.with_float_attr(build("keras2_fused").training, "FusedBatchNormV3", "exponential_avg_factor", 0.01)
    [finding] = findings_of(write(graph), "GD101")
    assert "inputs 3 and 4" in finding.fix.summary


def test_no_fix_when_freezing_pruned_the_statistics(build, write):
    found = findings_of(write(build("slim_resnet_v1").training), "GD101")
    assert found and all(f.fix is None for f in found)
    assert all("not in this graph" in f.unfixable and "moving_mean" in f.unfixable for f in found)


def test_statistics_with_the_wrong_shape_are_refused(build, write):
    graph_def = graphs.parse(build("slim_fused_named_statistics").training)
    for node in graph_def.node:
        if node.name == "conv1/BatchNorm/moving_variance":
            node.attr["value"].tensor.tensor_shape.dim[0].size = 3
    [conv1, conv2] = findings_of(write(graph_def.SerializeToString()), "GD101")
    assert conv1.fix is None and "channels" in conv1.unfixable
    assert conv2.fix is not None
