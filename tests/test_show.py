"""`graphdoc show` (directed depth, nodes inside functions, DOT to stdout, an SVG that marks what matters)
and `graphdoc rule` (a list, families, names)."""

import os
import shutil
from pathlib import Path

import pytest

from graphdoc.cli import main

SLIM = Path(__file__).resolve().parent.parent / "samples" / "slim_convnet_training.pb"
BATCHNORM = "conv1/BatchNorm/FusedBatchNormV3"


def test_depth_counts_steps_along_the_edges_not_across_them(capsys):
    assert main(["show", str(SLIM), BATCHNORM, "--depth", "1", "--dot", "-"]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith(("digraph", "strict digraph")) and '"conv1/Conv2D"' in dot  # an input: one step up
    # The Conv2D's own weights are two steps away: up to the Conv2D, then up again.
    assert "conv1/weights" not in dot


def test_the_drawing_marks_the_node_its_finding_and_what_the_fix_changes(capsys):
    assert main(["show", str(SLIM), BATCHNORM, "--depth", "1", "--dot", "-"]) == 0
    dot = capsys.readouterr().out
    focus = next(line for line in dot.splitlines() if line.startswith(f'"{BATCHNORM}" ['))
    assert "fillcolor" in focus
    assert any("AssignMovingAvg/sub" in line and "dashed" in line for line in dot.splitlines())  # the fix removes it
    assert "legend" in dot and "changed or removed by the fix" in dot


def test_a_node_inside_a_library_function_is_reachable(build, write, capsys):
    path = write(build("slim_switch_control_flow_v2").training)
    assert main(["scan", str(path), "--format", "concise"]) == 1
    located = next(line for line in capsys.readouterr().out.splitlines() if "::" in line)
    scope_node = located.split(": ")[0].split(":", 1)[1]  # path:FUNCTION::NODE: CODE ...
    assert main(["show", str(path), scope_node, "--depth", "1"]) == 0
    assert scope_node.split("::")[1] in capsys.readouterr().out
    assert main(["show", str(path), "no_such_function::x"]) == 2
    assert "not a library function the graph calls" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("dot") is None and not os.environ.get("CI"),
                    reason="needs Graphviz's dot program, not installed here (CI installs it and runs this test)")
def test_the_svg_has_its_legend(tmp_path):
    svg = tmp_path / "node.svg"
    assert main(["show", str(SLIM), BATCHNORM, "--svg", str(svg)]) == 0
    assert "the node shown" in svg.read_text() and "#fde2df" in svg.read_text()


def test_rule_lists_the_rules_and_takes_a_family_or_a_name(capsys):
    assert main(["rule"]) == 0
    listing = capsys.readouterr().out
    assert listing.count("\n") >= 9 and "GD202  live-noise" in listing and "What it finds" not in listing
    assert main(["rule", "GD2"]) == 0
    family = capsys.readouterr().out
    assert "GD201 live-dropout" in family and "GD202 live-noise" in family and "GD101" not in family
    assert main(["rule", "batch-moments-batchnorm"]) == 0
    assert "GD102 batch-moments-batchnorm" in capsys.readouterr().out
    assert main(["rule", "GD9"]) == 2


# --- show MODEL: what the model takes and gives


def test_show_without_a_node_lists_feeds_and_fetches_with_dtype_and_shape(capsys):
    assert main(["show", str(SLIM)]) == 0
    out = capsys.readouterr().out
    assert "Feed" in out and "Fetch" in out
    feed = next(line for line in out.splitlines() if "input:0" in line)
    assert "float32" in feed and "[-1, 16, 16, 3]" in feed


def _two_signature_saved_model(directory: Path) -> Path:
    import tensorflow as tf

    class Classifier(tf.Module):
        def __init__(self):
            self.weights = tf.Variable(tf.ones((4, 3)))

        @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32, name="pixels")])
        def classify(self, pixels):
            return {"probs": tf.nn.softmax(pixels @ self.weights), "logits": pixels @ self.weights}

        @tf.function(input_signature=[tf.TensorSpec((2, 4), tf.float32, name="pixels")])
        def embed(self, pixels):
            return {"embedding": tf.cast(pixels * 2.0, tf.float16)}

    module = Classifier()
    path = directory / "classifier"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.classify, "embed": module.embed})
    return path


def test_show_lists_every_signature_by_key_and_the_json_follows_its_schema(tmp_path, capsys):
    import json

    from test_reports_next_steps import _validate

    path = _two_signature_saved_model(tmp_path)
    assert main(["show", str(path), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    _validate(report, "show-v1")
    signatures = report["signatures"]
    assert set(signatures) == {"serving_default", "embed"}
    assert signatures["serving_default"]["loaded"] and not signatures["embed"]["loaded"]
    assert signatures["serving_default"]["inputs"] == [{"name": "pixels", "dtype": "float32", "shape": [-1, 4]}]
    assert [port["name"] for port in signatures["serving_default"]["outputs"]] == ["logits", "probs"]
    assert signatures["embed"]["outputs"] == [{"name": "embedding", "dtype": "float16", "shape": [2, 4]}]
    assert set(report["output_keys"]) == {"logits", "probs"}  # the frozen graph's fetches, by key
    assert main(["show", str(path), "--signature", "embed"]) == 0
    out = capsys.readouterr().out
    assert "Signature 'embed' (frozen into the graph above)" in out
    assert "Signature 'serving_default'" in out and "embedding" in out


def test_show_without_a_node_refuses_drawing_options(capsys):
    assert main(["show", str(SLIM), "--svg", "n.svg"]) == 2
    assert "name the node" in capsys.readouterr().err
