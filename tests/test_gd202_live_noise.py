"""GD202: Gaussian noise left active (GaussianNoise, GaussianDropout).

The Keras 3 and tf_keras layers, trained and checked against their inference
build, are in test_keras_layer_forms.py; these are the edge cases.
"""

import numpy as np
import tensorflow as tf

import graphs
import tfrun
from graphdoc import api
from helpers import findings_of


def test_tf_keras_noise_layers_in_a_tf1_graph_are_reported_and_fixed_to_identities(write, tmp_path):
    import tf_keras

    def body(x):
        x = tf_keras.layers.GaussianNoise(0.5)(x, training=True)
        return tf_keras.layers.GaussianDropout(0.3)(x, training=True)

    path = write(graphs.build(body))
    findings = findings_of(path)
    assert [f.code for f in findings] == ["GD202", "GD202"]
    assert {"added to" in f.message for f in findings} == {True, False}
    report = api.fix(api.load(path))
    data = graphs.random_batch((8,))
    [fixed] = tfrun.run(report.fixed.graph_def.SerializeToString(), {"input:0": data}, ["output:0"])
    np.testing.assert_array_equal(fixed, data)  # both layers are identities at inference


def test_a_sample_drawn_on_purpose_is_not_noise(write):
    # A VAE's reparameterization: mean + exp(log_var / 2) * eps, the scale computed from the input.
    def body(x):
        mean, log_var = x[:, :4], x[:, 4:]
        return mean + tf.exp(log_var / 2) * tf.random.normal(tf.shape(mean))

    assert findings_of(write(graphs.build(body))) == []


def test_multiplicative_noise_of_mean_zero_is_not_gaussian_dropout(write):
    # x * N(0, 1): no layer of Keras emits it; it changes the activation's mean, so no identity is right.
    def body(x):
        return x * tf.random.normal(tf.shape(x))

    assert findings_of(write(graphs.build(body))) == []


def test_noise_read_elsewhere_too_is_not_taken_for_a_layer(write):
    # The sample also leaves the graph: removing its application would not remove the randomness.
    def body(x):
        noise = tf.random.normal(tf.shape(x), stddev=0.1)
        return tf.concat([x + noise, noise], axis=1)

    assert findings_of(write(graphs.build(body)), "GD202") == []
