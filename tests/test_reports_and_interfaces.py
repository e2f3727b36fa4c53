"""Reports for people and for CI: text, JSON, SARIF, selection, exit codes, fix safety, API."""

import json
import os
import re
import shutil
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from rich.console import Console

import graphdoc
from graphdoc.cli import main
from graphdoc.report.text import render_scan
from graphdoc.rules import ALL_RULES

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
MOBILENET = SAMPLES / "mobilenet_v1_0.25_128_training.pb"
SLIM = SAMPLES / "slim_convnet_training.pb"



def _json(capsys, *args):
    code = main(["scan", *args, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_json_report_validates_against_the_shipped_schema(capsys):
    schema = json.loads(resources.files("graphdoc").joinpath("schemas/scan-v1.schema.json").read_text())
    code, report = _json(capsys, str(MOBILENET), str(SLIM))
    jsonschema.validate(report, schema)
    assert code == 1
    assert report["summary"]["by_code"] == {"GD101": 2, "GD102": 27, "GD201": 2, "GD303": 4}
    assert [m["path"] for m in report["models"]] == [str(MOBILENET), str(SLIM)]


# The properties SARIF 2.1.0 requires of each object graphdoc writes (sarif-schema-2.1.0.json).
SARIF_REQUIRED = {
    "sarifLog": ["version", "runs"],
    "run": ["tool"],
    "tool": ["driver"],
    "toolComponent": ["name"],
    "reportingDescriptor": ["id"],
    "result": ["message"],
    "message": ["text"],
    "artifact": ["location"],
    "artifactLocation": ["uri"],
}


def test_sarif_report_has_the_required_structure(capsys):
    assert main(["scan", str(SLIM), "--format", "sarif"]) == 1
    log = json.loads(capsys.readouterr().out)
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    for key in SARIF_REQUIRED["sarifLog"]:
        assert key in log
    [run] = log["runs"]
    assert all(key in run for key in SARIF_REQUIRED["run"])
    driver = run["tool"]["driver"]
    assert driver["name"] == "graphdoc"
    rule_ids = [rule["id"] for rule in driver["rules"]]
    assert rule_ids == ["GD101", "GD201", "GD303"]  # exactly the rules that appear
    assert run["artifacts"] == [{"location": {"uri": SLIM.as_posix()}}]
    for result in run["results"]:
        assert result["message"]["text"]
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        [location] = result["locations"]
        assert location["physicalLocation"]["artifactLocation"] == {"uri": SLIM.as_posix(), "index": 0}
        assert location["logicalLocations"][0]["name"]
        assert result["level"] in ("error", "warning")


def test_select_and_ignore_by_code_or_family(capsys):
    _, only_batchnorm = _json(capsys, str(SLIM), "--select", "GD1")
    assert set(only_batchnorm["summary"]["by_code"]) == {"GD101"}
    _, no_leftovers = _json(capsys, str(SLIM), "--ignore", "GD3,GD201")
    assert set(no_leftovers["summary"]["by_code"]) == {"GD101"}
    assert main(["scan", str(SLIM), "--select", "GD9"]) == 2
    assert "selects no rule" in capsys.readouterr().err


def test_exit_zero_and_output_file(tmp_path, capsys):
    report = tmp_path / "report.json"
    assert main(["scan", str(MOBILENET), "--format", "json", "-o", str(report), "--exit-zero"]) == 0
    assert capsys.readouterr().out == ""
    assert json.loads(report.read_text())["summary"]["findings"] == 28


def test_a_directory_of_models_gets_one_summary_and_parallel_workers_agree(tmp_path, capsys):
    for sample in (MOBILENET, SLIM):
        shutil.copy(sample, tmp_path / sample.name)
    (tmp_path / "broken.pb").write_bytes(b"\x00garbage")
    assert main(["scan", str(tmp_path)]) == 2  # a file that cannot be read is an error
    captured = capsys.readouterr()
    assert "3 model(s) scanned" not in captured.out and "2 model(s) scanned" in captured.out
    assert "broken.pb" in captured.err
    (tmp_path / "broken.pb").unlink()
    _, serial = _json(capsys, str(tmp_path))
    _, parallel = _json(capsys, str(tmp_path), "-j", "2")
    assert serial == parallel and serial["summary"]["models"] == 2


def test_every_rule_is_explained_tested_and_listed_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for rule in ALL_RULES:
        explanation = rule.explanation()
        for section in ("What it finds:", "Why it is wrong:", "Fix:", "Fix safety:"):
            assert section in explanation, f"{rule.code} lacks {section}"
        slug = rule.name.replace("-", "_")
        assert (ROOT / "tests" / f"test_{rule.code.lower()}_{slug}.py").is_file(), f"{rule.code} has no test file"
        assert (ROOT / "graphdoc" / "rules" / f"{rule.code.lower()}_{slug}.py").is_file()
        assert re.search(rf"\| {rule.code} \| {rule.name} \|", readme), f"{rule.code} is not in the README"


def test_dry_run_writes_nothing_and_diff_shows_each_node(tmp_path, capsys):
    output = tmp_path / "fixed.pb"
    assert main(["fix", str(SLIM), "--dry-run", "--diff"]) == 0
    assert main(["fix", str(SLIM), "-o", str(output), "--dry-run"]) == 0
    assert not output.exists()
    out = capsys.readouterr().out
    assert "dry run, nothing written" in out
    assert re.search(r"~ conv1/BatchNorm/FusedBatchNormV3 .*is_training True -> False", out)
    assert "- conv1/BatchNorm/AssignMovingAvg/AssignSubVariableOp" in out
    assert "~ dropout/dropout_1/SelectV2  op SelectV2 -> Identity" in out


@pytest.mark.parametrize("width", [80, 160])
def test_terminal_report_fits_its_width_and_ends_with_the_summary(width):
    model = graphdoc.load(MOBILENET)
    findings = graphdoc.scan(model)
    console = Console(width=width, record=True, file=open("/dev/null", "w"), color_system=None)
    render_scan(console, model, findings, ["Identity"], inferred=True)
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= width
    assert not any("\u2501" in line or "\u2503" in line for line in lines)  # no broken table borders
    # Grouped: one header per rule, in code order, and the summary last.
    headers = [line.split()[0] for line in lines if re.match(r"^GD\d{3} ", line)]
    assert headers == ["GD102", "GD201"]
    [summary] = [i for i, line in enumerate(lines) if line.startswith("Found 28 problem(s)")]
    assert all("28 fixable" in line or line.startswith("Found") for line in lines[summary:])


def test_show_renders_a_neighbourhood_and_exports_dot(tmp_path, capsys):
    dot = tmp_path / "node.dot"
    assert main(["show", str(SLIM), "conv1/BatchNorm/FusedBatchNormV3", "--depth", "1", "--dot", str(dot)]) == 0
    out = capsys.readouterr().out
    assert "GD101" in out and "conv1/Conv2D (Conv2D)" in out and "AssignMovingAvg/sub (Sub)" in out
    text = dot.read_text()
    assert text.startswith(("digraph", "strict digraph")) and '"conv1/Conv2D" -> "conv1/BatchNorm/FusedBatchNormV3"' in text
    assert main(["show", str(SLIM), "conv1/BatchNorm/FusedBatchNormV", "--depth", "1"]) == 2
    assert "did you mean conv1/BatchNorm/FusedBatchNormV3" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("dot") is None and not os.environ.get("CI"),
                    reason="needs Graphviz's dot program, not installed here (CI installs it and runs this test)")
def test_show_renders_svg_with_graphviz(tmp_path):
    svg = tmp_path / "node.svg"
    assert main(["show", str(SLIM), "conv1/Relu", "--svg", str(svg)]) == 0
    assert "<svg" in svg.read_text()


def test_python_api_returns_plain_objects(tmp_path):
    model = graphdoc.load(SLIM)
    findings = graphdoc.scan(model, select=["GD1"])
    assert [f.code for f in findings] == ["GD101", "GD101"] and findings[0].fix.safe
    report = graphdoc.fix(model)
    assert not report.remaining
    graphdoc.save(report.fixed, tmp_path / "fixed.pbtxt")
    assert graphdoc.scan(graphdoc.load(tmp_path / "fixed.pbtxt")) == []
