"""SavedModels and checkpoints as their users name things: signature output keys, output candidates."""

import tfrun
import zoo
from graphdoc import api
from graphdoc.cli import main


def test_a_signature_output_key_names_an_output(tmp_path):
    path, reference = zoo.keras2_saved_model(tmp_path)
    model = api.load(path)
    assert model.aliases == {"output": "Identity:0"}  # the key the signature gives, the node that computes it
    output = tmp_path / "fixed.pb"
    assert main(["fix", path, "--outputs", "output", "-o", str(output)]) == 0
    data = zoo.training_data((8, 8, 3), 4)
    [fixed] = tfrun.run(output.read_bytes(), {"input:0": data}, ["Identity:0"])
    [expected] = tfrun.run(reference, {"input:0": data}, ["output:0"])
    assert tfrun.relative_error(fixed, expected) <= 1e-5


def test_a_checkpoint_without_outputs_offers_candidates_and_a_misspelling_gets_a_suggestion(tmp_path, capsys):
    import zoo_tf1

    prefix = zoo_tf1.train_tf1(zoo.slim_conv_stack(fused=True), (8, 8, 3), tmp_path, steps=2).prefix
    assert main(["scan", prefix]) == 2
    assert "name the model's outputs with --outputs (candidates: output" in capsys.readouterr().err
    assert main(["scan", prefix, "--outputs", "outptu"]) == 2
    assert "did you mean output" in capsys.readouterr().err


def test_a_savedmodel_variable_is_named_as_its_object_graph_names_it(tmp_path):
    path, _ = zoo.keras2_saved_model(tmp_path)
    messages = [f.message for f in api.scan(api.load(path)) if f.code == "GD303"]
    assert messages and all("bn1/moving_" in message for message in messages), messages


def test_reports_name_what_to_feed_and_fetch(tmp_path, capsys):
    import json

    path, _ = zoo.keras2_saved_model(tmp_path)
    main(["scan", path])
    assert "feed input:0 float32 [-1, 8, 8, 3]; fetch Identity:0 float32" in capsys.readouterr().out
    main(["scan", path, "--format", "json"])
    [model] = json.loads(capsys.readouterr().out)["models"]
    assert model["inputs"] == [{"name": "input:0", "dtype": "float32", "shape": [-1, 8, 8, 3]}]
    assert model["output_tensors"][0]["name"] == "Identity:0"
