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
