"""Every report says what to do next: compare's verdict, fix's account of what changed, the probe's
relative differences, the exit codes the README gives, and a report for programs from every command."""

import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import referencing
import tensorflow as tf
from rich.console import Console

import graphs
import zoo
from graphdoc.cli import main
from graphdoc.report.text import render_probe
from graphdoc.rules import RULES_BY_CODE, Finding
from graphdoc.verify.probe import Divergence, ProbeReport

ROOT = Path(__file__).resolve().parent.parent
MOBILENET = ROOT / "samples" / "mobilenet_v1_0.25_128_training.pb"
SLIM = ROOT / "samples" / "slim_convnet_training.pb"


def _schemas() -> tuple[referencing.Registry, dict]:
    """Every shipped schema by name, in a registry that resolves their references to each other."""
    folder = resources.files("graphdoc").joinpath("schemas")
    schemas = {entry.name.split(".")[0]: json.loads(entry.read_text()) for entry in folder.iterdir()
               if entry.name.endswith(".schema.json")}
    registry = referencing.Registry().with_resources(
        (schema["$id"], referencing.Resource.from_contents(schema)) for schema in schemas.values())
    return registry, schemas


def _validate(document: dict, name: str) -> None:
    registry, schemas = _schemas()
    jsonschema.Draft202012Validator(schemas[name], registry=registry).validate(document)


def _run(capsys, *args) -> tuple[int, str]:
    code = main(list(map(str, args)))
    return code, capsys.readouterr().out


# --- compare: a verdict, the reason, the real number of samples


def test_compare_ends_with_a_verdict_and_says_which_graph_runs_in_training_mode(build, write, tmp_path, capsys):
    pair = build("keras3_cnn")
    training, inference = write(pair.training), write(pair.inference, "inference.pb")
    code, out = _run(capsys, "compare", training, inference)
    assert code == 1
    last = " ".join(out.split("\n\n")[-1].split())  # the last paragraph, however the terminal wrapped it
    assert re.fullmatch(r"Outputs differ beyond tolerance 1e-05 \(largest: Identity, [0-9.e-]+\): the first graph "
                        r"runs in training mode: 2 BatchNorm layers \(GD102\), live dropout \(GD201\)\.", last), last
    fixed = tmp_path / "fixed.pb"
    assert main(["fix", str(training), "-o", str(fixed), "--no-verify"]) == 0
    capsys.readouterr()
    code, out = _run(capsys, "compare", fixed, inference)
    assert code == 0 and out.rstrip().endswith("Outputs agree within 1e-05.")


def test_compare_says_how_many_samples_it_ran(build, write, tmp_path, capsys):
    pair = build("keras3_cnn")
    inference = write(pair.inference, "inference.pb")
    data = tmp_path / "eight.npy"
    np.save(data, zoo.training_data((16, 16, 3), 8))
    _, out = _run(capsys, "compare", inference, inference, "--inputs", data)
    assert "(the same 8 samples)" in out and "(8, 5)" in out
    _, out = _run(capsys, "compare", inference, inference, "--inputs", data, "--batch", "6")
    assert "(the same 6 samples)" in out and "first 6 of the 8 samples" in out
    _, out = _run(capsys, "compare", inference, inference)
    assert "(the same 4 samples)" in out


# --- fix: what changed, not the scan again


def test_fix_reports_one_line_per_rule_not_every_node(tmp_path, capsys):
    output = tmp_path / "fixed.pb"
    code, out = _run(capsys, "fix", MOBILENET, "-o", output, "--no-verify")
    assert code == 0
    assert re.search(r"^ GD102 +27 +batch-moments-batchnorm", out, re.M)
    assert re.search(r"^ GD201 +1 +live-dropout", out, re.M)
    assert "conv_dw_1_bn_1/moments/mean" not in out  # the nodes are --diff's and JSON's to list
    assert "StatelessRandomUniformV2" in out  # the op-count table stays
    summary = " ".join(out.split("\n\n")[-1].split())
    assert summary == (f"Fixed 28 findings (27 GD102, 1 GD201): 811 -> 576 nodes; wrote {output} unverified "
                       "(--no-verify). No findings remain.")
    assert len(out.splitlines()) < 40


def test_a_dry_run_says_would_and_the_diff_counts_add_up(tmp_path, capsys):
    output = tmp_path / "fixed.pb"
    code, out = _run(capsys, "fix", SLIM, "-o", output, "--dry-run", "--diff")
    assert code == 0 and not output.exists()
    assert "Would fix" in out and "Fixed" not in out and "wrote" not in out and "dry run, nothing written" in out
    summary = " ".join(out.split("\n\n")[-1].split())
    before, after, removed, added, changed = map(int, re.search(
        r"(\d+) -> (\d+) nodes \((\d+) removed, (\d+) added, (\d+) changed, as the diff shows\)", summary).groups())
    marks = [line[0] for line in out.splitlines() if re.match(r"^[-+~] \S", line)]
    assert (marks.count("-"), marks.count("+"), marks.count("~")) == (removed, added, changed)
    assert before - removed + added == after
    assert f"would write {output}, once verified" in summary and summary.endswith("No findings would remain.")


def test_scan_names_what_would_fix_the_findings_fix_cannot(build, write, capsys):
    code, out = _run(capsys, "scan", write(build("slim_resnet_v1").training))
    summary = " ".join(out.split("\n\n")[-1].split())
    assert code == 1 and "0 fixable with `graphdoc fix`" in summary
    assert "8 BatchNorm layers lack moving statistics" in summary
    assert "--checkpoint CKPT" in summary and "--calibrate DATA" in summary


def _untrained_training_batchnorm(x):
    y, _, _ = tf.compat.v1.nn.fused_batch_norm(x, tf.ones([3]), tf.zeros([3]), mean=tf.zeros([3]),
                                               variance=tf.ones([3]), is_training=True)
    return y


# --- the README's exit codes are the tool's


def test_an_unsafe_fix_held_back_exits_2_as_the_readme_says(write, tmp_path, capsys):
    model, output = write(graphs.build(_untrained_training_batchnorm, (None, 4, 4, 3))), tmp_path / "fixed.pb"
    assert main(["fix", str(model), "-o", str(output)]) == 2
    assert "--unsafe-fixes" in capsys.readouterr().err and not output.exists()
    rows = dict(re.findall(r"^\| ([012]) \| (.*) \|$", (ROOT / "README.md").read_text(), re.M))
    assert "held back" not in rows["1"] and "unsafe" in rows["2"] and "--unsafe-fixes" in rows["2"]
    _, out = _run(capsys, "scan", model)
    assert "`graphdoc fix --calibrate DATA --unsafe-fixes` recomputes them" in " ".join(out.split())


# --- probe: the relative difference explained, names broken at '/'


def _long_root_report() -> ProbeReport:
    node = "dropout_1/stateless_dropout/stateless_random_uniform/StatelessRandomUniformV2"
    finding = Finding(code="GD201", scope="", node="dropout_1/stateless_dropout/SelectV2", message="live dropout",
                      nodes=(node,), unfixable="no scale")
    roots = [Divergence("conv1_bn_1/moments/mean", "Mean", 3.24, 0.0, None),
             Divergence(node, "StatelessRandomUniformV2", 0.906, 0.5, finding)]
    return ProbeReport(roots=roots, diverging=420, probed=731, batch=4)


@pytest.mark.parametrize("width", [80, 120, 60])
def test_probe_explains_its_numbers_and_breaks_names_at_a_slash(width):
    console = Console(width=width, record=True, file=open("/dev/null", "w"), color_system=None)
    report = _long_root_report()
    render_probe(console, type("Model", (), {"path": "model.pb", "notes": []})(), report)
    text = console.export_text()
    lines = [line.rstrip() for line in text.splitlines()]
    assert max(map(len, lines)) <= width and "Size" not in text
    assert "depends on the batch (relative difference 3.24)" in " ".join(text.split())
    assert "changes between runs (relative difference 0.5)" in " ".join(text.split())
    assert "relative difference: the largest change" in text
    for index, root in enumerate(report.roots, 1):  # a name is broken only after a '/'
        start = next(i for i, line in enumerate(lines) if line.lstrip().startswith(f"{index}. "))
        end = next(i for i in range(start, len(lines)) if lines[i].strip().startswith(f"{root.op}: "))
        pieces = [lines[start].split(". ", 1)[1].strip(), *(line.strip() for line in lines[start + 1:end])]
        assert "".join(pieces) == root.node and all(piece.endswith("/") for piece in pieces[:-1]), pieces
    assert "no rule explains it" in text and "GD201 live-dropout" in text
    assert "graphdoc show model.pb NODE" in " ".join(text.split())


# --- --format json on fix, probe and compare; concise and github on scan


def test_every_command_writes_json_its_schema_describes(build, write, tmp_path, capsys):
    code, out = _run(capsys, "fix", SLIM, "-o", tmp_path / "fixed.pb", "--no-verify", "--diff", "--format", "json")
    fixed = json.loads(out)
    _validate(fixed, "fix-v1")
    assert code == 0 and fixed["outcome"]["written"] == str(tmp_path / "fixed.pb")
    assert fixed["outcome"]["unverified"] == "--no-verify" and len(fixed["applied"]) == fixed["outcome"]["fixed"] == 7
    diff, nodes = fixed["outcome"]["diff"], fixed["outcome"]["nodes"]
    assert nodes["before"] - diff["removed"] + diff["added"] == nodes["after"]
    assert sum(change["change"] == "removed" for change in fixed["changes"]) == diff["removed"]

    code, out = _run(capsys, "probe", SLIM, "--format", "json")
    probe = json.loads(out)
    _validate(probe, "probe-v1")
    assert code == 1 and [root["finding"]["code"] for root in probe["roots"]] == ["GD101", "GD201"]

    pair = build("keras3_cnn")
    code, out = _run(capsys, "compare", write(pair.training), write(pair.inference, "inference.pb"), "--format", "json")
    comparison = json.loads(out)
    _validate(comparison, "compare-v1")
    assert code == 1 and not comparison["verdict"]["agree"] and comparison["samples"] == 4
    assert comparison["verdict"]["training_mode"] == {"first": [{"code": "GD102", "count": 2},
                                                                {"code": "GD201", "count": 1}], "second": []}

    code, out = _run(capsys, "scan", SLIM, "--format", "json")
    _validate(json.loads(out), "scan-v1")


def test_scan_concise_and_github_formats(capsys):
    code, out = _run(capsys, "scan", SLIM, "--format", "concise")
    *lines, summary = out.splitlines()
    assert code == 1 and len(lines) == 7
    for line in lines:
        assert re.fullmatch(rf"{re.escape(str(SLIM))}:[^: ]+: GD\d{{3}} .+ \[(fix|unsafe fix|no fix): .+\]", line), line
    assert summary == "Found 7 problem(s) (2 GD101, 1 GD201, 4 GD303) in 1 model(s); 7 fixable with `graphdoc fix`."

    code, out = _run(capsys, "scan", SLIM, "--format", "github")
    lines = out.splitlines()
    assert code == 1 and len(lines) == 7
    for line in lines:
        match = re.fullmatch(r"::(error|warning) file=([^,]+),title=(GD\d{3}) ([a-z-]+)::(.+)", line)
        assert match and match[2] == str(SLIM) and RULES_BY_CODE[match[3]].name == match[4], line
        assert "\n" not in match[5]


def test_a_scan_of_many_models_shows_each_models_findings_by_rule(capsys):
    samples = Path(__file__).resolve().parent.parent / "samples"
    assert main(["scan", str(samples)]) == 1
    out = capsys.readouterr().out
    assert "GD102 batch-moments-batchnorm: conv1_bn_1/moments/mean and 26 more" in out
    assert "GD101 training-fused-batchnorm: conv1/BatchNorm/FusedBatchNormV3 and 1 more" in out
