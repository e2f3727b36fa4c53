"""Running frozen graphs with TensorFlow: the numerical truth the tests compare against."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def run(graph_bytes: bytes, feeds: dict[str, np.ndarray], fetches: list[str]) -> list[np.ndarray]:
    """Import a frozen GraphDef with `tf.compat.v1.import_graph_def` and run it once."""
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(graph_bytes)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        return session.run(fetches, feeds)


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Largest absolute difference, relative to the largest magnitude of `expected`."""
    scale = max(float(np.max(np.abs(expected))), 1e-12)
    return float(np.max(np.abs(actual - expected))) / scale


def error_against_inference(pair, fixed: bytes) -> float:
    """Largest relative error of the `fixed` graph against `pair`'s inference build: on a batch of 6,
    and on samples 0 and 5 alone against their rows of the batch."""
    import zoo

    data = zoo.training_data(pair.input_shape, 6, seed=3)
    expected = run(pair.inference, {"input:0": data}, ["output:0"])[0]
    errors = [relative_error(run(fixed, {"input:0": data}, ["output:0"])[0], expected)]
    for i in (0, 5):
        alone = run(fixed, {"input:0": data[i : i + 1]}, ["output:0"])[0]
        errors.append(relative_error(alone, expected[i : i + 1]))
    return max(errors)
