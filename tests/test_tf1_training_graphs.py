"""Training graphs written the way people write TF1 code, trained for real steps (samples/zoo_tf1.py).

For each: scan says what is wrong, `fix` writes a graph equal to the same model
built in inference mode with the same weights, alone and in a batch, and fix
fixes exactly as many findings as scan calls fixable.
"""

import dataclasses

import numpy as np
import pytest

import graphs
import tfrun
import zoo
import zoo_tf1
from graphdoc import api
from graphdoc.cli import main
from helpers import write_training

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """trained(name) -> zoo.Trained, each trained once per module."""
    builders = {
        "layers_bn_keep_prob": lambda d: zoo.train_tf1(zoo_tf1.layers_bn_with_keep_prob(), (16, 16, 3), d),
        "three_conds_plain_switch": zoo_tf1.train_three_conds_plain_switch,
        "slim_mobilenet_v1": lambda d: zoo.train_tf1(zoo_tf1.slim_mobilenet_v1(), (32, 32, 3), d),
        "custom_names_v1": lambda d: zoo.train_tf1(zoo_tf1.custom_named_statistics(False), (16, 16, 3), d),
        "custom_names_v2": lambda d: zoo.train_tf1(zoo_tf1.custom_named_statistics(True), (16, 16, 3), d),
        "custom_names_ref_variables": lambda d: zoo.train_tf1(
            zoo_tf1.custom_named_statistics(False, ref_variables=True), (16, 16, 3), d
        ),
        "two_towers": zoo_tf1.train_two_towers,
        "updates_outside_cond": zoo_tf1.train_updates_outside_cond,
        # No switch: the doubled op scope alone, statistics frozen beside the output.
        "mobilenet_doubled_scope": lambda d: zoo_tf1.train_tf1(
            lambda x, training: zoo_tf1._mobilenet_v1(x, training, 0.25, 0.9), (32, 32, 3), d, keep_statistics=True
        ),
    }
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = builders[name](tmp_path_factory.mktemp(name))
        return cache[name]

    return get


def _fix_with_cli(tmp_path, path, *options) -> bytes:
    output = tmp_path / "fixed.pb"
    assert main(["fix", str(path), "-o", str(output), *options]) == 0
    return output.read_bytes()


def _codes(findings):
    return sorted({finding.code for finding in findings})


SHAPES = {
    # name: the codes scan must report
    "layers_bn_keep_prob": ["GD101", "GD201", "GD301", "GD302"],
    "three_conds_plain_switch": ["GD101", "GD102", "GD201", "GD301"],
    "slim_mobilenet_v1": ["GD101", "GD301"],
    "custom_names_v1": ["GD102", "GD301", "GD303"],
    "custom_names_v2": ["GD102", "GD301", "GD303"],
    "custom_names_ref_variables": ["GD102", "GD301", "GD303"],
    "updates_outside_cond": ["GD102", "GD301", "GD303"],
    "two_towers": ["GD101", "GD201"],
    "mobilenet_doubled_scope": ["GD101"],
}


@pytest.mark.parametrize("name", SHAPES)
def test_scan_reports_it_and_fix_equals_the_inference_build(tmp_path, trained, name):
    pair = trained(name).pair
    path = write_training(tmp_path, pair)
    options = ["--outputs", "output"] if name == "two_towers" else []
    model = api.load(path, outputs=options[1:] or None)
    findings = api.scan(model)
    assert _codes(findings) == SHAPES[name]
    assert all(f.fix is not None for f in findings), [f.unfixable for f in findings if f.fix is None]
    assert tfrun.error_against_inference(pair, _fix_with_cli(tmp_path, path, *options)) <= TOLERANCE


@pytest.mark.parametrize("name", SHAPES)
def test_fix_fixes_as_many_findings_as_scan_calls_fixable(tmp_path, trained, name):
    path = write_training(tmp_path, trained(name).pair)
    outputs = ["output"] if name == "two_towers" else None
    fixable = sum(f.fix is not None for f in api.scan(api.load(path, outputs=outputs)))
    report = api.fix(api.load(path, outputs=outputs), outputs=outputs)
    assert len(report.applied) == fixable and not report.remaining


def test_a_dropout_downstream_of_the_conds_is_no_branch_of_them(tmp_path, trained):
    # is_training drives the BatchNorm conds; keep_prob's dropout is outside all of them.
    findings = api.scan(api.load(write_training(tmp_path, trained("layers_bn_keep_prob").pair)))
    [switch] = [f for f in findings if f.code == "GD301"]
    assert "defaults to True" in switch.message and switch.fix is not None
    # The training-mode BatchNorms inside the then-branches go with the binding.
    for finding in (f for f in findings if f.code == "GD101"):
        assert "binding is_training=False" in finding.fix.summary


def test_a_plain_switch_over_three_conds_names_the_value_to_feed(tmp_path, trained):
    findings = api.scan(api.load(write_training(tmp_path, trained("three_conds_plain_switch").pair)))
    [switch] = [f for f in findings if f.code == "GD301"]
    assert "must be fed False" in switch.message and "3 tf.cond" in switch.message
    # Moments computed before the cond and only selected by it belong to its training side.
    [moments] = [f for f in findings if f.code == "GD102"]
    assert moments.location in switch.nodes
    assert all(f.site is None or f.site.layer for f in findings), "a layer without a name"


def test_statistics_under_the_variable_scope_are_found_for_the_doubled_op_scope(tmp_path, trained):
    findings = api.scan(api.load(write_training(tmp_path, trained("mobilenet_doubled_scope").pair)))
    first = next(f for f in findings if "Conv2d_0/" in f.node)
    assert first.node.startswith("MobilenetV1/MobilenetV1/Conv2d_0/")
    assert "MobilenetV1/Conv2d_0/BatchNorm/moving_mean, by scope" in first.fix.summary


def test_an_evaluation_tower_lends_its_statistics(tmp_path, trained):
    pair = trained("two_towers").pair
    # Statistics under names no convention knows: only the evaluation tower's reads lead to them.
    renamed = _renamed(pair.training, {"moving_mean": "ema_a", "moving_variance": "ema_b"})
    path = write_training(tmp_path, dataclasses.replace(pair, training=renamed))
    findings = api.scan(api.load(path, outputs=["output"]))
    batch_norms = [f for f in findings if f.code == "GD101"]
    assert batch_norms and all("an inference-mode BatchNorm with the same scale" in f.fix.summary
                               for f in batch_norms)
    assert tfrun.error_against_inference(pair, _fix_with_cli(tmp_path, path, "--outputs", "output")) <= TOLERANCE


def _renamed(graph_bytes: bytes, parts: dict[str, str]) -> bytes:
    graph_def = graphs.parse(graph_bytes)

    def rename(name: str) -> str:
        for old, new in parts.items():
            name = name.replace(old, new)
        return name

    for node in graph_def.node:
        node.name = rename(node.name)
        node.input[:] = [rename(ref) for ref in node.input]
    return graph_def.SerializeToString()


def test_scan_of_a_checkpoint_counts_what_fix_fixes_from_its_variables(tmp_path):
    slim = zoo.train_tf1(zoo.slim_conv_stack(fused=True), (16, 16, 3), tmp_path)
    findings = api.scan(api.load(slim.prefix, outputs=["output"]))
    batch_norms = [f for f in findings if f.code == "GD101"]
    assert len(batch_norms) == 2 and all(f.fix is not None and "checkpoint" in f.fix.summary for f in batch_norms)
    report = api.fix(api.load(slim.prefix, outputs=["output"]), outputs=["output"])
    assert len(report.applied) == sum(f.fix is not None for f in findings)


def test_scan_with_checkpoint_says_what_fix_with_checkpoint_fixes(tmp_path, capsys):
    slim = zoo.train_tf1(zoo.slim_conv_stack(fused=True), (16, 16, 3), tmp_path / "slim")
    path = write_training(tmp_path, slim.pair)
    assert all(f.fix is None for f in api.scan(api.load(path)) if f.code == "GD101")
    findings = api.scan(api.load(path), checkpoint=slim.prefix)
    assert all(f.fix is not None for f in findings if f.code == "GD101")
    report = api.fix(api.load(path), checkpoint=slim.prefix)
    assert len(report.applied) == sum(f.fix is not None for f in findings)
    assert main(["scan", str(path), "--checkpoint", slim.prefix]) == 1
    assert f"{len(report.applied)} fixable" in capsys.readouterr().out


def test_updates_that_run_at_inference_are_reported_and_removed(tmp_path, trained):
    pair = trained("updates_outside_cond").pair
    findings = api.scan(api.load(write_training(tmp_path, pair)))
    updates = [f for f in findings if f.code == "GD303"]
    assert len(updates) == 4
    assert all("every inference call" in f.message for f in updates)
    fixed = _fix_with_cli(tmp_path, write_training(tmp_path, pair))
    assert b"Assign" not in fixed


def test_bind_decides_a_switch_graphdoc_is_told_to_leave_alone(tmp_path, trained):
    pair = trained("slim_mobilenet_v1").pair
    path = write_training(tmp_path, pair)
    fixed = _fix_with_cli(tmp_path, path, "--ignore", "GD301", "--bind", "is_training=false")
    assert tfrun.error_against_inference(pair, fixed) <= TOLERANCE
    assert b"Switch" not in fixed


def test_fix_select_leaves_the_other_rules_findings(tmp_path, trained):
    path = write_training(tmp_path, trained("layers_bn_keep_prob").pair)
    report = api.fix(api.load(path), select=["GD302"])
    assert {f.code for f in report.applied} == {"GD302"}
    assert main(["fix", str(path), "-o", str(tmp_path / "out.pb"), "--select", "GD999"]) == 2


def test_bind_of_a_missing_placeholder_is_one_sentence(tmp_path, capsys, trained):
    path = write_training(tmp_path, trained("layers_bn_keep_prob").pair)
    assert main(["fix", str(path), "-o", str(tmp_path / "out.pb"), "--bind", "is_trainin=false"]) == 2
    assert "no placeholder" in capsys.readouterr().err
    assert not (tmp_path / "out.pb").exists()


def test_the_moving_statistics_really_moved(trained):
    from pathlib import Path

    from graphdoc.tf.checkpoints import CheckpointVariables

    variables = CheckpointVariables(Path(trained("custom_names_v1").prefix))
    assert np.abs(variables.read("bn1/pop_mean")).max() > 0.1
    assert np.abs(variables.read("bn1/pop_var") - 1).max() > 0.1
