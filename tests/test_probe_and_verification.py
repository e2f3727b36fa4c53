"""Proof by behaviour: probe, verified fixes, compare, and the refusal to run unsafe graphs."""

import pytest
import tensorflow as tf

import graphs
import zoo
from graphdoc.cli import main
from graphdoc.loading import load
from graphdoc.scanning import scan
from graphdoc.verify.probe import probe

SAMPLE = "samples/mobilenet_v1_0.25_128_training.pb"



def _probe(path):
    model = load(path)
    return probe(model, scan(model))


def test_mobilenet_first_divergence_is_the_first_batchnorm(build, write):
    report = _probe(SAMPLE)
    first = report.roots[0]
    # conv1 is the model's first convolution; conv1_bn the BatchNorm right after it.
    assert first.node == "conv1_bn_1/moments/mean"
    assert first.finding.code == "GD102"
    assert first.batch_difference > 1e-2
    assert _probe(write(build("keras3_mobilenet_v1").inference)).roots == []


def test_dropout_alone_shows_run_to_run_randomness(write):
    report = _probe(write(graphs.build(graphs.tf2_dropout)))
    [root] = report.roots
    assert root.op == "RandomUniform" and root.run_difference > 1e-2
    assert root.finding.code == "GD201"


def test_seeded_stateless_dropout_is_caught_by_the_batch_shape(write):
    pair = zoo.keras_pair(zoo.keras_dropout_only(), (8,))
    report = _probe(write(pair.training))
    [root] = report.roots
    assert root.op == "StatelessRandomUniformV2"
    assert root.run_difference == 0  # the same mask on every run ...
    assert root.batch_difference > 1e-2  # ... but not for every position in the batch
    assert _probe(write(pair.inference, "inference.pb")).roots == []


def test_probe_command_exit_codes(build, write, capsys):
    assert main(["probe", SAMPLE]) == 1
    assert "conv1_bn_1/moments/mean" in capsys.readouterr().out
    assert main(["probe", str(write(build("keras3_cnn").inference))]) == 0


@pytest.mark.parametrize("name", ["slim_fused_inline_updates", "slim_unfused_named_statistics", "keras3_cnn",
                                  "v1_dropout_keep_prob_tensor", "slim_switch_control_flow_v1",
                                  "slim_switch_control_flow_v2", "legacy_fused_batch_norm_v1"])
def test_fix_prints_a_passing_verification(build, write, tmp_path, capsys, name):
    assert main(["fix", str(write(build(name).training)), "-o", str(tmp_path / "fixed.pb")]) == 0
    out = capsys.readouterr().out
    assert out.count("passed") == 3 and "FAILED" not in out


def test_a_broken_fix_is_caught_and_nothing_is_written(build, write, tmp_path, capsys, monkeypatch):
    from graphdoc.graph.edits import SetAttrs
    from graphdoc.rules.gd101_training_fused_batchnorm import FusedBatchNormSite

    honest_fix = FusedBatchNormSite.fix

    def forgets_inference_mode(self, stats, *, safe=True):
        fix = honest_fix(self, stats, safe=safe)
        return type(fix)(fix.summary, tuple(e for e in fix.edits if not isinstance(e, SetAttrs)), fix.safe)

    monkeypatch.setattr(FusedBatchNormSite, "fix", forgets_inference_mode)
    output = tmp_path / "fixed.pb"
    assert main(["fix", str(write(build("slim_fused_inline_updates").training)), "-o", str(output)]) == 2
    captured = capsys.readouterr()
    assert "failed verification (batch-independent and deterministic" in captured.err
    assert "FAILED" in captured.out
    assert not output.exists()


def _writes_a_file(path):
    def body(x):
        write = tf.io.write_file(str(path), "touched")
        with tf.control_dependencies([write]):
            return tf.identity(x * 2.0)

    return body


def test_graphs_that_write_files_are_refused_unless_allowed(write, tmp_path, capsys):
    target = tmp_path / "written.txt"
    model = write(graphs.build(_writes_a_file(target)))
    assert main(["probe", str(model)]) == 2
    assert "WriteFile" in capsys.readouterr().err
    assert not target.exists()
    assert main(["probe", str(model), "--allow-unsafe-ops"]) == 0
    assert target.exists()


def test_fix_verification_refuses_unsafe_graphs_too(write, tmp_path, capsys):
    target = tmp_path / "written.txt"

    def body(x):
        return _writes_a_file(target)(graphs.tf2_dropout(x))

    output = tmp_path / "fixed.pb"
    assert main(["fix", str(write(graphs.build(body))), "-o", str(output)]) == 2
    assert "refusing to run the graph for verifying the fix" in capsys.readouterr().err
    assert not output.exists() and not target.exists()
    assert main(["fix", str(write(graphs.build(body), "again.pb")), "-o", str(output), "--no-verify"]) == 0


def test_compare_reports_output_differences_and_op_counts(build, write, tmp_path, capsys):
    pair = build("keras3_cnn")
    training, inference = write(pair.training), write(pair.inference, "inference.pb")
    assert main(["compare", str(training), str(inference)]) == 1
    out = capsys.readouterr().out
    assert "SquaredDifference" in out and "Max rel diff" in out
    fixed = tmp_path / "fixed.pb"
    main(["fix", str(training), "-o", str(fixed)])
    capsys.readouterr()
    assert main(["compare", str(fixed), str(inference)]) == 0
