"""Moving statistics from checkpoints, SavedModel variables and calibration data."""

import numpy as np
import pytest

import tfrun
import zoo
from graphdoc.cli import main
from graphdoc.errors import GraphdocError, LoadError
from graphdoc.loading import load
from graphdoc.scanning import scan
from graphdoc.sources.calibration import MIN_CALIBRATION_SAMPLES

TOLERANCE = 1e-5
# Calibrated statistics are estimates from a finite sample: measured at about
# 1.4e-2 with 256 samples on the slim model below.
CALIBRATION_TOLERANCE = 3e-2



@pytest.fixture(scope="module")
def slim_trained(tmp_path_factory):
    return zoo.train_tf1(zoo.slim_conv_stack(fused=True), (16, 16, 3), tmp_path_factory.mktemp("slim"))


@pytest.fixture(scope="module")
def slim_unfused_trained(tmp_path_factory):
    return zoo.train_tf1(zoo.slim_conv_stack(fused=False), (16, 16, 3), tmp_path_factory.mktemp("slim_unfused"))


@pytest.fixture(scope="module")
def legacy_trained(tmp_path_factory):
    return zoo.train_tf1(zoo.legacy_fused_batch_norm("FusedBatchNormV2"), (8, 8, 3), tmp_path_factory.mktemp("v2"))


@pytest.fixture(scope="module")
def legacy_v1_trained(tmp_path_factory):
    return zoo.train_tf1(zoo.legacy_fused_batch_norm("FusedBatchNorm"), (8, 8, 3), tmp_path_factory.mktemp("v1"))


@pytest.fixture(scope="module")
def keras_trained(tmp_path_factory):
    return zoo.train_keras(zoo.keras_cnn(), (16, 16, 3), tmp_path_factory.mktemp("keras"))


@pytest.fixture(scope="module")
def mobilenet_trained(tmp_path_factory):
    return zoo.train_keras(zoo.keras_mobilenet_v1(), (128, 128, 3), tmp_path_factory.mktemp("mobilenet"), steps=2)


def _fix_and_compare(tmp_path, pair, *options):
    model, output = tmp_path / "model.pb", tmp_path / "fixed.pb"
    model.write_bytes(pair.training)
    assert main(["fix", str(model), "-o", str(output), *options]) == 0
    data = zoo.training_data(pair.input_shape, 6, seed=3)
    expected = tfrun.run(pair.inference, {"input:0": data}, ["output:0"])[0]
    fixed = output.read_bytes()
    errors = [tfrun.relative_error(tfrun.run(fixed, {"input:0": data}, ["output:0"])[0], expected)]
    for i in range(len(data)):
        alone = tfrun.run(fixed, {"input:0": data[i : i + 1]}, ["output:0"])[0]
        errors.append(tfrun.relative_error(alone, expected[i : i + 1]))
    return max(errors)


@pytest.mark.parametrize("trained", ["slim_trained", "slim_unfused_trained", "legacy_trained", "legacy_v1_trained"])
def test_tf1_checkpoint_supplies_the_pruned_statistics(request, tmp_path, trained):
    trained = request.getfixturevalue(trained)
    assert _fix_and_compare(tmp_path, trained.pair, "--checkpoint", trained.prefix) <= TOLERANCE


def test_checkpoint_statistics_are_the_trained_ones(slim_trained):
    # Guards the test above: training moved the statistics away from their initial 0 and 1.
    from graphdoc.tf.checkpoints import CheckpointVariables

    variables = CheckpointVariables(__import__("pathlib").Path(slim_trained.prefix))
    assert np.abs(variables.read("conv1/BatchNorm/moving_mean")).max() > 0.1
    assert np.abs(variables.read("conv1/BatchNorm/moving_variance") - 1).max() > 0.1


@pytest.mark.parametrize("which", ["object-based checkpoint", "SavedModel variables"])
def test_keras3_statistics_from_tf2_checkpoints_despite_name_suffixes(tmp_path, keras_trained, which):
    pair, checkpoint, saved_model_variables = keras_trained
    source = checkpoint if which == "object-based checkpoint" else saved_model_variables
    assert _fix_and_compare(tmp_path, pair, "--checkpoint", source) <= TOLERANCE


def test_mobilenet_statistics_from_its_checkpoint(tmp_path, mobilenet_trained):
    pair, checkpoint, _ = mobilenet_trained
    assert _fix_and_compare(tmp_path, pair, "--checkpoint", checkpoint) <= TOLERANCE


def test_checkpoint_directory_with_paths_from_another_machine(tmp_path, slim_trained):
    directory = __import__("pathlib").Path(slim_trained.prefix).parent
    (directory / "checkpoint").write_text(
        'model_checkpoint_path: "/home/someone/experiments/run7/model.ckpt"\n'
        'all_model_checkpoint_paths: "/home/someone/experiments/run7/model.ckpt"\n'
    )
    assert _fix_and_compare(tmp_path, slim_trained.pair, "--checkpoint", str(directory)) <= TOLERANCE


def test_meta_checkpoint_scans_like_its_frozen_form(write, slim_trained):
    from_checkpoint = scan(load(slim_trained.prefix, outputs=["output"]))
    from_frozen = scan(load(write(slim_trained.pair.training)))
    assert [(f.code, f.node) for f in from_checkpoint] == [(f.code, f.node) for f in from_frozen]
    assert len(from_checkpoint) == 3


def test_meta_checkpoint_is_fixed_from_its_own_variables(tmp_path, slim_trained):
    output = tmp_path / "fixed.pb"
    assert main(["fix", slim_trained.prefix, "--outputs", "output", "-o", str(output)]) == 0
    data = zoo.training_data((16, 16, 3), 4, seed=3)
    expected = tfrun.run(slim_trained.pair.inference, {"input:0": data}, ["output:0"])[0]
    assert tfrun.relative_error(tfrun.run(output.read_bytes(), {"input:0": data}, ["output:0"])[0], expected) <= TOLERANCE


def test_old_meta_graphs_with_stale_output_shapes_import(tmp_path, slim_trained):
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef

    meta_path = __import__("pathlib").Path(slim_trained.prefix + ".meta")
    meta = MetaGraphDef.FromString(meta_path.read_bytes())
    for node in meta.graph_def.node:  # shapes that no longer match, as TF 1.x wrote them
        node.attr["_output_shapes"].list.shape.add().dim.add(size=12345)
    prefix = tmp_path / "old.ckpt"
    for suffix in (".index", ".data-00000-of-00001"):
        (tmp_path / f"old.ckpt{suffix}").write_bytes(open(slim_trained.prefix + suffix, "rb").read())
    (tmp_path / "old.ckpt.meta").write_bytes(meta.SerializeToString())
    assert len(scan(load(prefix, outputs=["output"]))) == 3


def test_checkpoint_without_meta_or_outputs_is_explained(tmp_path, slim_trained):
    with pytest.raises(LoadError, match="--outputs"):
        load(slim_trained.prefix)
    prefix = tmp_path / "nometa.ckpt"
    (tmp_path / "nometa.ckpt.index").write_bytes(open(slim_trained.prefix + ".index", "rb").read())
    with pytest.raises(LoadError, match="without a .meta graph"):
        load(prefix, outputs=["output"])


def test_checkpoint_without_the_layers_names_them(tmp_path, capsys, slim_trained, keras_trained):
    pair, _, _ = keras_trained
    model, output = tmp_path / "model.pb", tmp_path / "fixed.pb"
    model.write_bytes(pair.training)
    assert main(["fix", str(model), "-o", str(output), "--checkpoint", slim_trained.prefix]) == 2
    error = capsys.readouterr().err
    assert "bn1_1" in error and "no bn1_1/moving_mean" in error
    assert not output.exists()


def test_statistics_of_the_wrong_shape_are_refused(slim_trained):
    from pathlib import Path

    from graphdoc.graph.view import Tensor
    from graphdoc.rules.gd101_training_fused_batchnorm import FusedBatchNormSite
    from graphdoc.sources.checkpoint import CheckpointStatistics

    site = FusedBatchNormSite(
        scope="", node="conv1/BatchNorm/FusedBatchNormV3", layer="conv1/BatchNorm", channels=3,
        x=Tensor("conv1/Conv2D"), reduce_axes=(0, 1, 2), update_nodes=frozenset(),
    )
    found = CheckpointStatistics(Path(slim_trained.prefix)).lookup(site)
    assert isinstance(found, str) and "(8,)" in found and "do not fit 3 channels" in found


def test_calibration_comes_close_to_the_checkpoint(tmp_path, slim_trained):
    data = tmp_path / "calibration.npy"
    np.save(data, zoo.training_data((16, 16, 3), 256, seed=9))
    assert _fix_and_compare(tmp_path, slim_trained.pair, "--calibrate", str(data), "--unsafe-fixes") <= CALIBRATION_TOLERANCE


def test_calibration_that_ignored_the_data_would_be_far_off(tmp_path, slim_trained):
    # Guards the tolerance above: calibrating on data from another distribution misses by far more.
    data = tmp_path / "calibration.npy"
    np.save(data, np.random.default_rng(0).normal(size=(256, 16, 16, 3)).astype(np.float32))
    assert _fix_and_compare(tmp_path, slim_trained.pair, "--calibrate", str(data), "--unsafe-fixes") > 5 * CALIBRATION_TOLERANCE


def test_too_little_calibration_data_is_refused(tmp_path, capsys, slim_trained):
    data, model, output = tmp_path / "few.npy", tmp_path / "model.pb", tmp_path / "fixed.pb"
    np.save(data, zoo.training_data((16, 16, 3), MIN_CALIBRATION_SAMPLES - 1))
    model.write_bytes(slim_trained.pair.training)
    assert main(["fix", str(model), "-o", str(output), "--calibrate", str(data)]) == 2
    assert f"calibration needs at least {MIN_CALIBRATION_SAMPLES}" in capsys.readouterr().err
    assert not output.exists()


def test_calibration_data_must_match_the_inputs(tmp_path, slim_trained):
    from graphdoc.sources.calibration import load_inputs

    np.savez(tmp_path / "wrong.npz", images=np.zeros((40, 16, 16, 3), np.float32))
    with pytest.raises(GraphdocError, match="no array for the input 'input'"):
        load_inputs(tmp_path / "wrong.npz", ["input"])


def test_a_folder_of_images_calibrates_like_the_same_pixels_preprocessed(tmp_path, slim_trained):
    import tensorflow as tf

    pixels = np.random.default_rng(4).integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(pixels):
        (folder / f"{i:03d}.png").write_bytes(tf.io.encode_png(image).numpy())
    np.save(tmp_path / "same.npy", pixels.astype(np.float32) / 127.5 - 1.0)
    model = tmp_path / "model.pb"
    model.write_bytes(slim_trained.pair.training)
    for source, output in ((folder, "from_images.pb"), (tmp_path / "same.npy", "from_array.pb")):
        assert main(["fix", str(model), "-o", str(tmp_path / output), "--calibrate", str(source), "--unsafe-fixes"]) == 0
    data = zoo.training_data((16, 16, 3), 4)
    a, b = (tfrun.run((tmp_path / name).read_bytes(), {"input:0": data}, ["output:0"])[0]
            for name in ("from_images.pb", "from_array.pb"))
    assert tfrun.relative_error(a, b) <= TOLERANCE


def test_a_saved_model_directory_supplies_its_variables(tmp_path, keras_trained):
    pair, _, saved_model_variables = keras_trained
    saved_model = __import__("pathlib").Path(saved_model_variables).parent.parent
    assert _fix_and_compare(tmp_path, pair, "--checkpoint", str(saved_model)) <= TOLERANCE


def test_calibrated_statistics_are_held_back_without_unsafe_fixes(tmp_path, capsys, slim_trained):
    data, model, output = tmp_path / "data.npy", tmp_path / "model.pb", tmp_path / "fixed.pb"
    np.save(data, zoo.training_data((16, 16, 3), 64))
    model.write_bytes(slim_trained.pair.training)
    assert main(["fix", str(model), "-o", str(output), "--calibrate", str(data)]) == 2
    error = capsys.readouterr().err
    assert "unsafe fix" in error and "--unsafe-fixes" in error and "conv1/BatchNorm" in error
    assert not output.exists()


def test_an_ambiguous_match_is_reported_not_guessed(tmp_path):
    import tensorflow as tf

    from graphdoc.graph.view import Tensor
    from graphdoc.rules.gd102_batch_moments_batchnorm import DecomposedBatchNormSite
    from graphdoc.sources.checkpoint import CheckpointStatistics

    graph = tf.Graph()
    with graph.as_default():
        for scope in ("bn", "bn_1"):  # a layer `bn_1`, and `bn` whose second call Keras would name bn_1
            with tf.compat.v1.variable_scope(scope):
                tf.compat.v1.get_variable("moving_mean", [4], initializer=tf.zeros_initializer())
                tf.compat.v1.get_variable("moving_variance", [4], initializer=tf.ones_initializer())
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            prefix = tf.compat.v1.train.Saver().save(session, str(tmp_path / "model.ckpt"))
    site = DecomposedBatchNormSite(
        scope="", node="bn_1/moments/mean", layer="bn_1", channels=4, x=Tensor("x"), reduce_axes=(0,),
        update_nodes=frozenset(),
    )
    found = CheckpointStatistics(__import__("pathlib").Path(prefix)).lookup(site)
    assert isinstance(found, str) and found.startswith("ambiguous") and "bn_1" in found and "bn" in found
