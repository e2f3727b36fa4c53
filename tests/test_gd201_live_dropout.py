"""GD201: live dropout, in every form TensorFlow has emitted."""

import pytest

import graphs
from helpers import findings_of


@pytest.mark.parametrize(
    ("body", "random_op"),
    [
        (graphs.tf1_early_dropout, "RandomUniform"),
        (graphs.tf113_dropout, "RandomUniform"),
        (graphs.tf2_dropout, "RandomUniform"),
    ],
)
def test_hand_built_dropout_forms_are_reported_with_a_fix(write, body, random_op):
    [finding] = findings_of(write(graphs.build(body)))
    assert finding.code == "GD201"
    assert random_op in finding.message
    assert finding.fix is not None


@pytest.mark.parametrize(
    "name", ["v1_dropout_keep_prob_tensor", "keras3_cnn", "keras3_mobilenet_v1", "slim_fused_inline_updates"]
)
def test_dropout_in_models_is_reported_once(build, write, name):
    pair = build(name)
    [finding] = findings_of(write(pair.training), "GD201")
    assert finding.fix is not None
    assert findings_of(write(pair.inference, "inference.pb"), "GD201") == []


def test_keras3_stateless_dropout_is_recognized(build, write):
    [finding] = findings_of(write(build("keras3_cnn").training), "GD201")
    assert "StatelessRandomUniformV2" in finding.message


def test_additive_noise_is_not_dropout(write):
    assert [f.code for f in findings_of(write(graphs.build(graphs.gaussian_noise)))] == ["GD202"]


def test_mask_without_an_inverted_scale_is_reported_but_not_fixed(write):
    import tensorflow as tf

    def unscaled(x):
        return x * tf.cast(tf.random.uniform(tf.shape(x)) >= 0.5, tf.float32)

    [finding] = findings_of(write(graphs.build(unscaled)))
    assert finding.fix is None and "scale" in finding.unfixable
