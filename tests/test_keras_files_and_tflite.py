"""Keras model files (.keras, .h5) and .tflite models: where users keep their models.

Keras: functional models whose layers were called with training=True, saved
by Keras 3 and tf_keras in both formats, trained for real steps; the clean
save of the same layer objects is the reference. TFLite: converted by
TensorFlow's converter from training-mode graphs built with tf-slim and
tf.compat.v1 layers, and from their inference builds.
"""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import zoo_keras
from graphdoc import api
from graphdoc.cli import main
from graphdoc.errors import LoadError

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
KERAS_CASES = {
    "keras3 .keras": lambda d: zoo_keras.keras3_baked(d, ".keras"),
    "keras3 .h5": lambda d: zoo_keras.keras3_baked(d, ".h5"),
    "tf_keras .h5": lambda d: zoo_keras.tf_keras_baked(d, ".h5"),
    "tf_keras .keras": lambda d: zoo_keras.tf_keras_baked(d, ".keras"),
    "keras3 custom layer": zoo_keras.keras3_custom_layer,
    "keras3 nested model": zoo_keras.nested_functional,
}


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return {name: build(tmp_path_factory.mktemp(name.replace(" ", "_").replace(".", ""))) for name, build in
            KERAS_CASES.items()}


def _found(path) -> dict[str, str]:
    return {finding.node: finding.code for finding in api.scan(api.load(path))}


def _load(case, path):
    if case.flavour == "tf_keras":
        import tf_keras

        return tf_keras.models.load_model(str(path), compile=False, custom_objects=case.custom_objects)
    import keras

    return keras.saving.load_model(str(path), compile=False, custom_objects=case.custom_objects, safe_mode=False)


def _relative(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


@pytest.mark.parametrize("name", list(KERAS_CASES))
def test_scan_names_each_layer_called_with_training_and_nothing_on_the_clean_save(name, cases, capsys):
    case = cases[name]
    assert _found(case.path) == case.expected
    assert _found(case.clean) == {}
    assert main(["scan", str(case.clean)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert ("Keras runs this model in inference mode by default; if your serving code calls it with "
            "training=True, scan that export.") in out


@pytest.mark.parametrize("name", list(KERAS_CASES))
def test_fix_writes_a_file_keras_loads_that_equals_the_clean_model_in_inference(name, cases, tmp_path):
    case = cases[name]
    fixed = tmp_path / f"fixed{case.path.suffix}"
    assert main(["fix", str(case.path), "-o", str(fixed)]) == 0
    assert _found(fixed) == {}
    data = zoo_keras.zoo.training_data(case.input_shape, 6, seed=5)
    model, clean = _load(case, fixed), _load(case, case.clean)
    expected = np.asarray(clean(data, training=False))
    assert _relative(model(data), expected) <= 1e-5
    for index in (0, 5):
        assert _relative(model(data[index:index + 1]), expected[index:index + 1]) <= 1e-5


def test_fix_leaves_the_weights_as_they_were_stored(cases, tmp_path):
    case = cases["keras3 .keras"]
    fixed = tmp_path / "fixed.keras"
    assert main(["fix", str(case.path), "-o", str(fixed), "--no-verify"]) == 0
    with zipfile.ZipFile(case.path) as before, zipfile.ZipFile(fixed) as after:
        assert before.namelist() == after.namelist()
        for member in before.namelist():
            if member != "config.json":
                assert before.read(member) == after.read(member), member
        changed = json.loads(after.read("config.json"))
    assert "training" not in json.dumps(changed)


def test_a_layer_kept_on_purpose_keeps_its_training_call(cases, tmp_path, monkeypatch):
    case = cases["tf_keras .h5"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "graphdoc.toml").write_text('keep = ["drop1"]\n')
    assert main(["fix", str(case.path), "-o", "fixed.h5"]) == 0
    found = api.scan(api.load(tmp_path / "fixed.h5"), keep=("drop1",))
    assert [(f.node, bool(f.kept)) for f in found] == [("drop1", True)]


def test_a_lambda_reading_the_learning_phase_is_reported_and_left_to_its_code(tmp_path):
    case = zoo_keras.tf_keras_lambda_learning_phase(tmp_path)
    [finding] = api.scan(api.load(case.path))
    assert (finding.node, finding.code, finding.fix) == ("mc_dropout", "GD301", None)
    assert "learning phase" in finding.message
    assert _found(case.clean) == {}


def test_a_weights_only_file_cannot_be_judged_and_says_so(tmp_path, capsys):
    path = zoo_keras.weights_only(tmp_path)
    with pytest.raises(LoadError, match="weights only"):
        api.load(path)
    assert main(["scan", str(path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_scanning_keras_files_needs_neither_tensorflow_nor_keras_nor_the_custom_class(cases):
    """A fresh process, where the custom layer's class was never defined."""
    paths = [str(cases["keras3 custom layer"].path), str(cases["tf_keras .h5"].path)]
    script = (f"import sys; from graphdoc.cli import main; code = main(['scan', *{paths!r}, '--format', 'json']); "
              "print(code, sorted(m for m in ('tensorflow', 'keras', 'tf_keras') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    *report, last = done.stdout.strip().splitlines()
    assert last == "1 []"
    found = {(model["path"], f["node"]) for model in json.loads("\n".join(report))["models"] for f in model["findings"]}
    assert (paths[0], "noisy_scale") in found and (paths[0], "drop1") in found


# --- TFLite


@pytest.fixture(scope="module")
def tflite_cases(tmp_path_factory):
    return {"slim": zoo_keras.tflite_slim_training(tmp_path_factory.mktemp("slim")),
            "v1 layers": zoo_keras.tflite_v1_dropout(tmp_path_factory.mktemp("v1"))}


@pytest.mark.parametrize("name", ["slim", "v1 layers"])
def test_tflite_training_conversions_are_reported_and_inference_ones_are_not(name, tflite_cases):
    case = tflite_cases[name]
    findings = api.scan(api.load(case.training))
    assert {code: sum(f.code == code for f in findings) for code in case.expected} == case.expected
    assert sorted(f.node for f in findings if f.code == "GD102") == sorted(case.batch_norm_means)
    assert sorted(f.node for f in findings if f.code == "GD201") == sorted(case.random_ops)
    assert not {f.node for f in findings} & set(case.per_sample_means)
    assert api.scan(api.load(case.inference)) == []


def test_the_training_tflite_really_depends_on_the_batch(tflite_cases):
    case = tflite_cases["slim"]
    data = zoo_keras.zoo.training_data((8, 8, 3), 8, seed=2)
    other = zoo_keras.zoo.training_data((8, 8, 3), 8, seed=3)
    other[0] = data[0]
    assert _relative(zoo_keras.run_tflite(case.training, data)[:1], zoo_keras.run_tflite(case.training, other)[:1]) > 1e-4


def test_fixing_a_tflite_says_to_fix_the_source_graph_and_convert_again(tflite_cases, tmp_path, capsys):
    output = tmp_path / "fixed.tflite"
    assert main(["fix", str(tflite_cases["slim"].training), "-o", str(output)]) == 2
    err = capsys.readouterr().err
    assert "fix the graph it was converted from" in err and "convert FIXED.pb again" in err
    assert "conv1/BatchNorm" in err and not output.exists()


def test_scanning_a_tflite_imports_no_tensorflow(tflite_cases):
    path = str(tflite_cases["v1 layers"].training)
    script = (f"import sys; from graphdoc.cli import main; code = main(['scan', {path!r}]); "
              "print(code, sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "1 []"


def test_a_directory_of_models_in_every_format_is_scanned_model_by_model(cases, tflite_cases, tmp_path, capsys):
    import shutil

    folder = tmp_path / "models"
    folder.mkdir()
    for source in (cases["keras3 .keras"].path, cases["tf_keras .h5"].path, tflite_cases["slim"].training,
                   SAMPLES / "torch_convnet_training.onnx", SAMPLES / "slim_convnet_training.pb"):
        shutil.copy(source, folder / source.name)
    assert main(["scan", str(folder), "-j", "2", "--format", "json"]) == 1
    models = json.loads(capsys.readouterr().out)["models"]
    kinds = {Path(model["path"]).suffix: {f["code"] for f in model["findings"]} for model in models}
    assert kinds == {".keras": {"GD102", "GD201", "GD202"}, ".h5": {"GD102", "GD201", "GD202"},
                     ".tflite": {"GD102", "GD201"}, ".onnx": {"GD101", "GD201"}, ".pb": {"GD101", "GD201", "GD303"}}
