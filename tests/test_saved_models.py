"""SavedModels: signatures traced in training mode, reported through their functions and frozen fixed."""

import pytest
from tensorflow.core.protobuf import saved_model_pb2

import tfrun
import zoo
from graphdoc.cli import main
from graphdoc.errors import LoadError
from graphdoc.loading import load
from helpers import findings_of

TOLERANCE = 1e-5



@pytest.fixture(scope="module")
def keras3_training_signature(tmp_path_factory):
    return zoo.keras_saved_model(zoo.keras_cnn(), (16, 16, 3), tmp_path_factory.mktemp("k3"), training=True)


@pytest.fixture(scope="module")
def keras2_stripped(tmp_path_factory):
    return zoo.keras2_saved_model(tmp_path_factory.mktemp("k2"))


def _compare(fixed_path, reference, input_shape):
    data = zoo.training_data(input_shape, 4, seed=2)
    expected = tfrun.run(reference, {"input:0": data}, ["output:0"])[0]
    fixed = fixed_path.read_bytes()
    errors = [tfrun.relative_error(tfrun.run(fixed, {"input:0": data}, ["Identity:0"])[0], expected)]
    errors += [tfrun.relative_error(tfrun.run(fixed, {"input:0": data[i : i + 1]}, ["Identity:0"])[0], expected[i : i + 1])
               for i in range(len(data))]
    return max(errors)


def test_keras3_training_signature_is_reported_and_fixed_to_a_frozen_graph(tmp_path, keras3_training_signature):
    path, reference = keras3_training_signature
    codes = sorted({f.code for f in findings_of(path)})
    assert codes == ["GD102", "GD201", "GD303"]
    assert main(["fix", path, "-o", str(tmp_path / "fixed.pb")]) == 0
    assert findings_of(tmp_path / "fixed.pb") == []
    assert _compare(tmp_path / "fixed.pb", reference, (16, 16, 3)) <= TOLERANCE


def test_keras3_inference_signature_is_clean(tmp_path):
    path, _ = zoo.keras_saved_model(zoo.keras_cnn(), (16, 16, 3), tmp_path, training=False)
    assert findings_of(path) == []


def test_stripped_is_training_in_a_saved_model_means_training_mode(tmp_path, keras2_stripped):
    path, reference = keras2_stripped
    saved = saved_model_pb2.SavedModel.FromString(open(f"{path}/saved_model.pb", "rb").read())
    batch_norms = [node for function in saved.meta_graphs[0].graph_def.library.function
                   for node in function.node_def if node.op == "FusedBatchNormV3"]
    # Training-mode nodes lost the attribute (it equals the default); inference-mode ones keep `false`.
    assert any("is_training" not in node.attr for node in batch_norms)
    assert all(not node.attr["is_training"].b for node in batch_norms if "is_training" in node.attr)
    assert [f.code for f in findings_of(path, "GD101")] == ["GD101"]
    assert main(["fix", path, "-o", str(tmp_path / "fixed.pb")]) == 0
    assert _compare(tmp_path / "fixed.pb", reference, (8, 8, 3)) <= TOLERANCE


def test_unknown_signature_lists_the_available_ones(keras2_stripped):
    with pytest.raises(LoadError, match="has no signature 'serve'.*serving_default"):
        load(keras2_stripped[0], signature="serve")


def test_saved_model_pb_passed_as_a_file_points_to_its_directory(keras2_stripped):
    with pytest.raises(LoadError, match="pass its directory instead: graphdoc scan"):
        load(f"{keras2_stripped[0]}/saved_model.pb")
