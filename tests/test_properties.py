"""Property-based tests: random valid graphs, with and without training-mode layers.

For every graph hypothesis builds: scan never crashes; the fixed graph imports
into TensorFlow and runs; fixing it again changes nothing; nothing is found in
it; and a graph with no training-mode layer comes out byte-identical.
"""

import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphs
import tfrun
from graphdoc.cli import main
from graphdoc.loading import load
from graphdoc.scanning import scan

CHANNELS = 3
TRAINING_LAYERS = {"fused_bn_training", "moments_bn_training", "dropout", "dropout_keep_prob"}
LAYERS = sorted(TRAINING_LAYERS | {"conv", "relu", "fused_bn_inference", "layer_norm", "global_pool_skip"})


def _statistics(scope):
    with tf.name_scope(scope):
        gamma = tf.constant(np.linspace(0.5, 1.5, CHANNELS), tf.float32, name="gamma")
        beta = tf.constant(np.linspace(-0.2, 0.2, CHANNELS), tf.float32, name="beta")
        mean = tf.constant(np.linspace(-1, 1, CHANNELS), tf.float32, name="moving_mean")
        variance = tf.constant(np.linspace(0.5, 2, CHANNELS), tf.float32, name="moving_variance")
    return gamma, beta, mean, variance


def _layer(kind, x, index):
    scope = f"layer{index}"
    if kind == "conv":
        kernel = tf.constant(np.eye(CHANNELS).reshape(1, 1, CHANNELS, CHANNELS) * 0.9, tf.float32)
        return tf.nn.conv2d(x, kernel, 1, "SAME", name=f"{scope}/conv")
    if kind == "relu":
        return tf.nn.relu(x, name=f"{scope}/relu")
    if kind in ("fused_bn_training", "fused_bn_inference"):
        gamma, beta, mean, variance = _statistics(f"{scope}/BatchNorm")
        training = kind == "fused_bn_training"
        empty = tf.constant([], tf.float32)
        return tf.raw_ops.FusedBatchNormV3(
            x=x, scale=gamma, offset=beta, mean=empty if training else mean, variance=empty if training else variance,
            epsilon=0.001, is_training=training, name=f"{scope}/BatchNorm/FusedBatchNormV3",
        )[0]
    if kind == "moments_bn_training":
        with tf.name_scope(f"{scope}/bn") as name:
            gamma, beta, _, _ = _statistics(name)
            mean, variance = tf.nn.moments(x, [0, 1, 2])
            return tf.nn.batch_normalization(x, mean, variance, beta, gamma, 0.001)
    if kind == "layer_norm":
        mean, variance = tf.nn.moments(x, [1, 2, 3], keepdims=True, name=f"{scope}/ln")
        return tf.nn.batch_normalization(x, mean, variance, None, None, 0.001)
    if kind == "dropout":
        return tf.nn.dropout(x, rate=0.4, name=f"{scope}/dropout")
    if kind == "dropout_keep_prob":
        keep = tf.compat.v1.placeholder_with_default(0.7, [], name=f"{scope}/keep_prob")
        return tf.compat.v1.nn.dropout(x, keep_prob=keep, name=f"{scope}/dropout")
    if kind == "global_pool_skip":
        return x + tf.reduce_mean(x, axis=[1, 2], keepdims=True)
    raise AssertionError(kind)


def _build(kinds) -> bytes:
    def body(x):
        for index, kind in enumerate(kinds):
            x = _layer(kind, x, index)
        return x

    return graphs.build(body, (None, 4, 4, CHANNELS))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(LAYERS), min_size=1, max_size=6))
def test_random_graphs_fix_cleanly(tmp_path_factory, kinds):
    directory = tmp_path_factory.mktemp("graph")
    original, fixed, again = directory / "model.pb", directory / "fixed.pb", directory / "again.pb"
    original.write_bytes(_build(kinds))
    findings = scan(load(original))  # never crashes
    assert bool(findings) == bool(TRAINING_LAYERS & set(kinds))
    assert main(["fix", str(original), "-o", str(fixed), "--no-verify"]) == 0
    batch = np.random.default_rng(0).normal(size=(2, 4, 4, CHANNELS)).astype(np.float32)
    out = tfrun.run(fixed.read_bytes(), {"input:0": batch}, ["output:0"])[0]  # imports and runs
    assert out.shape == batch.shape
    assert scan(load(fixed)) == []
    assert main(["fix", str(fixed), "-o", str(again), "--no-verify"]) == 0
    assert again.read_bytes() == fixed.read_bytes()  # idempotent
    if not findings:
        assert fixed.read_bytes() == original.read_bytes()  # clean graphs untouched
