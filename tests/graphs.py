"""Tiny hand-built graphs for the edge cases no model library emits any more."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from graphdoc.proto import GraphDef


def build(body, input_shape=(None, 8)) -> bytes:
    """A graph with `input` -> body(x) -> `output`, as serialized GraphDef bytes."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, input_shape, name="input")
        tf.identity(body(x), name="output")
    return graph.as_graph_def().SerializeToString()


def tf1_early_dropout(x, keep_prob=0.7):
    """TF 1.x up to about 1.12: Floor(keep_prob + U) * (x / keep_prob)."""
    keep = tf.constant(keep_prob, name="dropout/keep_prob")
    uniform = tf.random.uniform(tf.shape(x), name="dropout/random_uniform")
    mask = tf.floor(keep + uniform, name="dropout/Floor")
    return tf.multiply(tf.divide(x, keep, name="dropout/div"), mask, name="dropout/mul")


def tf113_dropout(x, rate=0.3):
    """TF 1.13 era: x * (1/keep) * Cast(U >= rate)."""
    scaled = tf.multiply(x, 1.0 / (1.0 - rate), name="dropout/mul")
    keep = tf.cast(tf.random.uniform(tf.shape(x)) >= rate, tf.float32, name="dropout/Cast")
    return tf.multiply(scaled, keep, name="dropout/mul_1")


def tf2_dropout(x, rate=0.5):
    return tf.nn.dropout(x, rate=rate, seed=1)


def gaussian_noise(x):
    """Additive noise: random, but no dropout mask."""
    return x + tf.random.normal(tf.shape(x), stddev=0.1)


def global_average_pool(x):
    return tf.reduce_mean(x, axis=[1, 2])


def instance_moments_normalization(x):
    """tf.nn.moments over H and W only: per-sample, never a training-mode BatchNorm."""
    mean, variance = tf.nn.moments(x, axes=[1, 2], keepdims=True)
    return tf.nn.batch_normalization(x, mean, variance, None, None, 1e-3)


def parse(data: bytes) -> GraphDef:
    graph_def = GraphDef()
    graph_def.ParseFromString(data)
    return graph_def


def without_attr(data: bytes, op: str, attr: str) -> bytes:
    """The same graph with `attr` stripped from every `op` node, as strip_default_attrs does."""
    graph_def = parse(data)
    for node in graph_def.node:
        if node.op == op and attr in node.attr:
            del node.attr[attr]
    return graph_def.SerializeToString()


def with_float_attr(data: bytes, op: str, attr: str, value: float) -> bytes:
    graph_def = parse(data)
    for node in graph_def.node:
        if node.op == op:
            node.attr[attr].f = value
    return graph_def.SerializeToString()


def random_batch(shape, seed=0, n=4) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype(np.float32)

