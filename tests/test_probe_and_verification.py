"""Proof by behaviour: probe, verified fixes, compare, and the refusal to run unsafe graphs."""

import numpy as np
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
    # The fourth check, each fixed BatchNorm against its formula, runs where the fix rewired one
    # (binding a switch takes the inference branch as it is).
    unwired = ("v1_dropout_keep_prob_tensor", "slim_switch_control_flow_v1", "slim_switch_control_flow_v2")
    checks = 3 if name in unwired else 4
    assert out.count("passed") == checks and "FAILED" not in out


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


def test_fetches_are_grouped_within_the_budget():
    from graphdoc.tf.runner import chunks

    groups = list(chunks(["a", "b", "c", "d", "e"], [3, 3, 3, 10, 1], budget=6))
    assert groups == [["a", "b"], ["c"], ["d"], ["e"]]  # a fetch larger than the budget goes alone
    assert list(chunks(["a", "b", "c"], [0, 0, 0], budget=6, most=2)) == [["a", "b"], ["c"]]


def test_estimated_bytes_count_the_batch_of_every_run(write):
    from graphdoc.tf.runner import GraphRunner

    with GraphRunner(load(write(graphs.build(graphs.tf2_dropout))).graph_def) as runner:
        assert runner.estimated_bytes("input:0", (1, 4, 4, 4)) == 13 * 8 * 4  # float32 [None, 8]
        assert runner.estimated_bytes("output:0", (1, 4)) == 5 * 8 * 4


def test_sizes_follow_the_inputs_where_the_graph_leaves_dimensions_unknown(write):
    from graphdoc.tf.runner import GraphRunner

    graph_def = load(write(graphs.build(graphs.tf2_dropout, input_shape=(None, None, 8)))).graph_def
    with GraphRunner(graph_def) as runner:
        assert runner.estimated_bytes("output:0", (1,)) == 8 * 4  # an unknown dimension counts as 1
    with GraphRunner(graph_def, {"input": np.zeros((4, 100, 8), np.float32)}) as runner:
        assert runner.estimated_bytes("output:0", (1, 4)) == 5 * 100 * 8 * 4
        [value] = runner.run(["output:0"], {"input": np.ones((2, 100, 8), np.float32)})
        assert value.shape == (2, 100, 8)  # the batch stays free


def test_no_groups_run_nothing(write):
    from graphdoc.tf.runner import GraphRunner

    with GraphRunner(load(write(graphs.build(graphs.tf2_dropout))).graph_def) as runner:
        assert list(runner.run_in_groups([], [{}])) == []


def _count_fetches(monkeypatch, fed: list[int] | None = None) -> list[int]:
    """How many tensors each run fetches (and, into `fed`, how many it is fed)."""
    from graphdoc.tf.runner import GraphRunner

    counts: list[int] = []
    run = GraphRunner.run

    def counting(self, fetches, feeds):
        counts.append(len(fetches))
        if fed is not None:
            fed.append(len(feeds))
        return run(self, fetches, feeds)

    monkeypatch.setattr(GraphRunner, "run", counting)
    return counts


def test_a_probe_in_small_groups_finds_what_one_run_finds(monkeypatch):
    import graphdoc.verify.probe as probe_module

    whole = _probe(SAMPLE)
    fed: list[int] = []
    counts = _count_fetches(monkeypatch, fed)
    monkeypatch.setattr(probe_module, "FETCH_BUDGET", 256 << 10)
    grouped = _probe(SAMPLE)
    assert len(counts) > 4 * 10 and max(counts) < whole.probed
    assert fed[:4] == [1] * 4 and min(fed[4:]) > 1  # later groups start from the tensors earlier ones computed
    assert [(r.node, r.kind) for r in grouped.roots] == [(r.node, r.kind) for r in whole.roots]
    assert (grouped.diverging, grouped.probed) == (whole.diverging, whole.probed)


def test_verification_in_small_groups_compares_the_same_nodes(build, write, tmp_path, capsys, monkeypatch):
    import graphdoc.verify.verification as verification_module

    model = str(write(build("keras3_cnn").training))
    assert main(["fix", model, "-o", str(tmp_path / "whole.pb")]) == 0
    whole = capsys.readouterr().out
    counts = _count_fetches(monkeypatch)
    monkeypatch.setattr(verification_module, "FETCH_BUDGET", 1)
    assert main(["fix", model, "-o", str(tmp_path / "grouped.pb")]) == 0
    grouped = capsys.readouterr().out
    assert max(counts) > 1 and counts.count(1) > 2  # the probe in one group, the comparison one node at a time
    compared = [line for line in whole.splitlines() if "node(s) compared" in line]
    assert compared and compared == [line for line in grouped.splitlines() if "node(s) compared" in line]


def test_graphs_with_tf1_control_flow_are_recomputed_for_every_group(build, write, tmp_path, capsys, monkeypatch):
    import graphdoc.verify.probe as probe_module

    fed: list[int] = []
    counts = _count_fetches(monkeypatch, fed)
    monkeypatch.setattr(probe_module, "FETCH_BUDGET", 1)
    training = str(write(build("slim_switch_control_flow_v1").training))  # Switch and Merge
    assert main(["probe", training]) == 1  # still finds the training-mode node, group by group
    assert len(counts) > 8 and set(fed) == {1}
    assert main(["fix", training, "-o", str(tmp_path / "fixed.pb")]) == 0
    assert capsys.readouterr().out.count("passed") == 3


def test_verification_says_how_far_it_has_come(monkeypatch):
    import graphdoc.verify.probe as probe_module
    import graphdoc.verify.verification as verification_module
    from graphdoc import api

    monkeypatch.setattr(probe_module, "FETCH_BUDGET", 64 << 10)
    monkeypatch.setattr(verification_module, "FETCH_BUDGET", 64 << 10)
    model = load(SAMPLE)
    report = api.fix(model)
    messages: list[str] = []
    assert verification_module.verify(load(SAMPLE), report, status=messages.append).passed
    probing = [m for m in messages if m.startswith("probing:")]
    assert len(probing) > 2 and probing[-1].split()[1] == probing[-1].split()[3]  # "probing: n of n groups ..."
    assert any(m.startswith("comparing untouched nodes: 1 of") for m in messages)


def test_the_cli_shows_those_messages_on_its_spinner():
    from graphdoc.cli import _shown_on

    class Spinner:
        def __init__(self):
            self.shown: list[str] = []

        def update(self, message):
            self.shown.append(message)

    spinner = Spinner()
    _shown_on(spinner, "verifying: ")("probing: 1 of 2")
    _shown_on(None)("off a terminal there is no spinner")
    assert spinner.shown == ["verifying: probing: 1 of 2"]


def test_a_graph_without_inputs_is_verified_too(write, tmp_path, capsys):
    graph = tf.Graph()
    with graph.as_default():
        constant = tf.constant([[1.0, 2.0]], name="c")
        tf.identity(tf.nn.dropout(constant, rate=0.5, seed=1), name="output")
    model = write(graph.as_graph_def().SerializeToString())
    assert main(["fix", str(model), "-o", str(tmp_path / "fixed.pb")]) == 0
    assert capsys.readouterr().out.count("passed") == 3
