"""GD103: moving statistics that training never updated."""

import numpy as np
import pytest
import tensorflow as tf

import graphs
import zoo
import zoo_tf1
from graphdoc import api
from graphdoc.cli import main
from helpers import findings_of


@pytest.fixture(scope="module")
def wrong_and_right(tmp_path_factory):
    """The same tf-slim model trained without and with its UPDATE_OPS."""
    return zoo_tf1.untrained_statistics(tmp_path_factory.mktemp("untrained"))


def test_fires_on_the_model_whose_update_ops_never_ran_and_not_on_the_trained_one(wrong_and_right):
    wrong, right = wrong_and_right
    untrained = [f for f in api.scan(api.load(wrong.prefix, outputs=["output"])) if f.code == "GD103"]
    assert {f.node for f in untrained} == {"conv1/BatchNorm/FusedBatchNormV3", "conv2/BatchNorm/FusedBatchNormV3"}
    assert all("mean 0 and variance 1" in f.message for f in untrained)
    assert not [f for f in api.scan(api.load(right.prefix, outputs=["output"])) if f.code == "GD103"]


def test_fix_with_such_a_checkpoint_exits_2_naming_calibration_and_writes_nothing(tmp_path, capsys, wrong_and_right):
    wrong, right = wrong_and_right
    model, output = tmp_path / "model.pb", tmp_path / "fixed.pb"
    model.write_bytes(wrong.pair.training)
    assert main(["fix", str(model), "-o", str(output), "--checkpoint", wrong.prefix]) == 2
    error = capsys.readouterr().err
    assert "--calibrate" in error and "--unsafe-fixes" in error and "conv1/BatchNorm" in error
    assert not output.exists()
    model.write_bytes(right.pair.training)
    assert main(["fix", str(model), "-o", str(output), "--checkpoint", right.prefix]) == 0


def test_unsafe_fixes_wires_them_in_and_calibration_recomputes_them(tmp_path, wrong_and_right):
    wrong, _ = wrong_and_right
    model = tmp_path / "model.pb"
    model.write_bytes(wrong.pair.training)
    forced = api.fix(api.load(model), checkpoint=wrong.prefix, unsafe_fixes=True)
    assert any(f.code == "GD103" for f in forced.remaining)  # the result still normalizes with 0 and 1
    data = tmp_path / "data.npy"
    np.save(data, zoo.training_data((16, 16, 3), 64))
    calibrated = api.fix(api.load(model), checkpoint=wrong.prefix, calibrate=data, unsafe_fixes=True)
    assert not [f for f in calibrated.remaining if f.code in ("GD101", "GD103")]


def _inference_batch_norm(mean, variance):
    def body(x):
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(
            x, tf.ones([3]), tf.zeros([3]), mean=tf.constant(mean, tf.float32),
            variance=tf.constant(variance, tf.float32), is_training=False,
        )
        return y

    return graphs.build(body, (None, 4, 4, 3))


@pytest.mark.parametrize(
    "mean, variance, why",
    [([0, 0, 0], [1, 1, 1], "initial values"), ([0.1, 0, 0], [1, -0.5, 1], "negative"),
     ([0, np.nan, 0], [1, 1, 1], "not finite")],
)
def test_an_inference_batchnorm_with_untrained_statistics(write, mean, variance, why):
    [finding] = findings_of(write(_inference_batch_norm(mean, variance)), "GD103")
    assert why in finding.message and finding.fix is None and "--calibrate" in finding.unfixable


def test_trained_statistics_are_not_flagged(write):
    assert findings_of(write(_inference_batch_norm([0.1, -0.2, 0.0], [0.9, 1.0, 1.2])), "GD103") == []
