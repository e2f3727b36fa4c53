"""SavedModels as their users name things: signature output keys."""

import zoo
import tfrun
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
