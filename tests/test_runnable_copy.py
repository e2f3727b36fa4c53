"""What probe, compare and verification run instead of the file: its runnable copy
(graphdoc/verify/runnable.py) and the placeholders an iterator's outputs become at load.

Each neutralization leaves what the outputs compute unchanged: the copy, run
on the same inputs, gives the original's outputs wherever the original can
run at all.
"""

import numpy as np
import tensorflow as tf

import tfrun
import zoo
from graphdoc import api
from graphdoc.verify.runnable import runnable

SHAPE = (8, 8, 3)


def _slim_training_graph():
    """A tf-slim conv + fused BatchNorm in training mode, its moving-average updates inline."""
    slim = zoo._slim()
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        x = tf.compat.v1.placeholder(tf.float32, (None, *SHAPE), name="input")
        y = slim.conv2d(x, 4, 3, normalizer_fn=slim.batch_norm, scope="conv1",
                        normalizer_params={"is_training": True, "updates_collections": None})
        tf.identity(y, name="output")
    return graph


def test_removing_the_variable_writes_leaves_the_outputs_as_the_training_session_computes_them(tmp_path):
    graph = _slim_training_graph()
    data = zoo.training_data(SHAPE, 4)
    with graph.as_default(), tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
            session, graph.as_graph_def(), ["output"]).SerializeToString()
        # The original, where it can run: in its session, with its variables (the updates run too).
        expected = session.run("output:0", {"input:0": data})
    path = tmp_path / "frozen.pb"
    path.write_bytes(frozen)
    prepared = runnable(api.load(path))
    assert prepared.neutralized and "variable update" in prepared.neutralized[0]
    [actual] = tfrun.run(prepared.model.graph_def.SerializeToString(), {"input:0": data}, ["output:0"])
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)


def test_relaxing_a_fixed_batch_leaves_the_outputs_of_that_batch_unchanged(tmp_path):
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (4, *SHAPE), name="input")
        mean, variance = tf.nn.moments(x, [0, 1, 2])
        tf.identity(tf.nn.batch_normalization(x, mean, variance, None, None, 1e-3), name="output")
    original = graph.as_graph_def().SerializeToString()
    path = tmp_path / "fixed.pb"
    path.write_bytes(original)
    prepared = runnable(api.load(path))
    assert prepared.relaxed and "fixed at 4" in prepared.neutralized[0]
    data = zoo.training_data(SHAPE, 4)
    [expected] = tfrun.run(original, {"input:0": data}, ["output:0"])
    [actual] = tfrun.run(prepared.model.graph_def.SerializeToString(), {"input:0": data}, ["output:0"])
    np.testing.assert_array_equal(actual, expected)
    assert api.load(path).main.attr("input", "shape")[0] == 4  # the model itself keeps its batch


def test_an_iterator_made_placeholders_computes_what_the_iterator_fed(tmp_path):
    images = zoo.training_data(SHAPE, 6)
    labels = np.arange(6, dtype=np.int64)
    graph = tf.Graph()
    with graph.as_default():
        dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(6)
        x, y = tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()
        scaled = tf.reduce_mean(x, axis=[1, 2, 3]) * tf.cast(y, tf.float32)
        tf.identity(scaled, name="output")
        with tf.compat.v1.Session() as session:
            expected = session.run("output:0")  # the original runs: its dataset is in the graph
    path = tmp_path / "iterator.pb"
    path.write_bytes(graph.as_graph_def().SerializeToString())
    model = api.load(path)
    assert model.notes and "IteratorGetNext_1" in model.notes[0]
    assert model.main.ops_of({"Placeholder"}) == ["IteratorGetNext_1", "IteratorGetNext"] or set(
        model.main.ops_of({"Placeholder"})) == {"IteratorGetNext", "IteratorGetNext_1"}
    feeds = {"IteratorGetNext:0": images, "IteratorGetNext_1:0": labels}
    [actual] = tfrun.run(model.graph_def.SerializeToString(), feeds, ["output:0"])
    np.testing.assert_array_equal(actual, expected)


def test_a_batch_the_graph_hard_codes_stays_fixed_and_the_probe_says_what_it_checked(tmp_path):
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (2, 6), name="input")
        # Relaxed to a batch of 4, this would fold two samples into each row instead of failing.
        tf.identity(tf.reshape(x, [2, -1]) * 2.0, name="output")
    path = tmp_path / "hard_coded.pb"
    path.write_bytes(graph.as_graph_def().SerializeToString())
    prepared = runnable(api.load(path), outputs=["output"])
    assert not prepared.relaxed and "stays fixed at 2" in prepared.neutralized[-1]
    report = api.probe(api.load(path))
    assert report.roots == [] and report.batch == 2
    assert any("between two batches of 2" in note for note in report.notes), report.notes


def test_a_batch_fixed_at_one_that_cannot_be_relaxed_is_checked_for_randomness_only(tmp_path):
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (1, 6), name="input")
        noisy = tf.reshape(x, [1, -1]) + tf.random.uniform([1, 6])
        tf.identity(noisy, name="output")
    path = tmp_path / "one.pb"
    path.write_bytes(graph.as_graph_def().SerializeToString())
    report = api.probe(api.load(path))
    assert [root.kind for root in report.roots] == ["changes between runs"]
    assert any("only run-to-run randomness" in note for note in report.notes), report.notes
