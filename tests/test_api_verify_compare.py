"""The library does what the command does: graphdoc.fix verifies, graphdoc.fix_file writes only a
fix that checks out, graphdoc.compare and graphdoc.verify run graphs."""

import subprocess
import sys
from pathlib import Path

import pytest

import graphdoc
from graphdoc import api
from graphdoc.cli import main
from graphdoc.errors import FixError, GraphdocError

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "slim_convnet_training.pb"


@pytest.fixture
def forgets_inference_mode(monkeypatch):
    """Every FusedBatchNorm fix leaves the layer in training mode: batch-dependent, so verification fails."""
    from graphdoc.graph.edits import SetAttrs
    from graphdoc.rules.gd101_training_fused_batchnorm import FusedBatchNormSite

    honest_fix = FusedBatchNormSite.fix

    def broken(self, stats, *, safe=True):
        fix = honest_fix(self, stats, safe=safe)
        return type(fix)(fix.summary, tuple(e for e in fix.edits if not isinstance(e, SetAttrs)), fix.safe)

    monkeypatch.setattr(FusedBatchNormSite, "fix", broken)


def test_fix_returns_a_verified_report_whose_fixed_graph_checks_out():
    report = graphdoc.fix(graphdoc.load(SAMPLE))
    assert report.changed and report.verification is not None and report.verification_skipped is None
    assert report.verification.passed
    assert [check.passed for check in report.verification.checks] == [True] * len(report.verification.checks)
    assert len(report.verification.checks) == 4  # runs, batch-independent, untouched nodes, layer formulas
    again = api.verify(graphdoc.load(SAMPLE), report)  # graphdoc.verify is the package of checks
    assert again.passed and [c.name for c in again.checks] == [c.name for c in report.verification.checks]
    assert graphdoc.probe(report.fixed).roots == []


def test_a_fix_made_in_place_is_verified_against_the_file_read_again():
    model = graphdoc.load(SAMPLE)
    report = graphdoc.fix(model, in_place=True)
    assert report.fixed is model and report.verification.passed


def test_a_fix_that_fails_verification_raises_from_the_api(forgets_inference_mode):
    with pytest.raises(FixError, match=r"^the fixed graph failed verification \(batch-independent and deterministic: "
                       r"[^;]*\)$") as raised:
        graphdoc.fix(graphdoc.load(SAMPLE))
    assert raised.value.verification.failures()[0].name == "batch-independent and deterministic"


@pytest.mark.parametrize("in_place", [False, True])
def test_a_fix_that_fails_verification_writes_nothing(forgets_inference_mode, tmp_path, in_place):
    model = tmp_path / "model.pb"
    model.write_bytes(SAMPLE.read_bytes())
    output = None if in_place else tmp_path / "fixed.pb"
    with pytest.raises(FixError, match=r"failed verification \(batch-independent.*; nothing was written$"):
        graphdoc.fix_file(model, output, in_place=in_place)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pb"]  # no output, no backup, no temporary file
    assert model.read_bytes() == SAMPLE.read_bytes()


def test_fix_file_writes_what_the_command_writes(tmp_path, capsys):
    assert main(["fix", str(SAMPLE), "-o", str(tmp_path / "by_command.pb")]) == 0
    report = graphdoc.fix_file(SAMPLE, tmp_path / "by_api.pb")
    assert report.verification.passed
    assert (tmp_path / "by_api.pb").read_bytes() == (tmp_path / "by_command.pb").read_bytes()
    assert "passed" in capsys.readouterr().out


def test_fix_file_in_place_keeps_a_backup_and_a_dry_run_writes_nothing(tmp_path):
    model = tmp_path / "model.pb"
    model.write_bytes(SAMPLE.read_bytes())
    dry = graphdoc.fix_file(model, dry_run=True)
    assert dry.changed and dry.verification is None and sorted(p.name for p in tmp_path.iterdir()) == ["model.pb"]
    graphdoc.fix_file(model, in_place=True, verify=False)
    assert (tmp_path / "model.pb.bak").read_bytes() == SAMPLE.read_bytes()
    assert graphdoc.scan(graphdoc.load(model)) == []
    with pytest.raises(GraphdocError, match="is the input file"):
        graphdoc.fix_file(model, model)


def test_compare_returns_the_difference_of_each_output():
    training = graphdoc.load(SAMPLE)
    report = graphdoc.fix(graphdoc.load(SAMPLE), verify=False)
    comparison = graphdoc.compare(training, report.fixed)
    assert [d.name for d in comparison.outputs] == report.outputs
    assert all(d.max_rel > 1e-3 for d in comparison.outputs)  # batch statistics against moving ones
    same = graphdoc.compare(report.fixed, report.fixed)
    assert [(d.max_abs, d.max_rel) for d in same.outputs] == [(0.0, 0.0)] * len(report.outputs)
    assert comparison.ops_before != comparison.ops_after


def test_a_fix_left_partial_by_select_is_verified_and_what_it_left_explains_the_rest(tmp_path, capsys):
    report = graphdoc.fix(graphdoc.load(SAMPLE), select=["GD1"])  # the live dropout (GD201) stays
    assert report.changed and report.verification is not None and report.verification.passed
    independence = report.verification.checks[1]
    assert "findings left in the graph say (GD201)" in independence.detail
    output = tmp_path / "fixed.pb"
    assert main(["fix", str(SAMPLE), "--select", "GD1", "-o", str(output)]) in (0, 1) and output.exists()
    assert "FAILED" not in capsys.readouterr().out


def _run(code: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_verify_false_skips_tensorflow(tmp_path):
    output = tmp_path / "fixed.pb"
    code = (
        "import sys, graphdoc\n"
        f"report = graphdoc.fix(graphdoc.load({str(SAMPLE)!r}), verify=False)\n"
        f"written = graphdoc.fix_file({str(SAMPLE)!r}, {str(output)!r}, verify=False)\n"
        "print(report.changed, report.verification, written.verification, 'tensorflow' in sys.modules)\n"
    )
    assert _run(code) == ["True", "None", "None", "False"]
    assert output.exists()


def test_without_tensorflow_the_fix_says_verification_was_skipped():
    code = (
        "import sys; sys.modules['tensorflow'] = None\n"  # as if it were not installed
        "import graphdoc\n"
        f"report = graphdoc.fix(graphdoc.load({str(SAMPLE)!r}))\n"
        "print(report.verification, report.verification_skipped)\n"
    )
    # `pip install tensorflow`, then, from a source checkout, the [tf] extra.
    assert _run(code)[:8] == ["None", "TensorFlow", "is", "not", "installed", "(pip", "install", "tensorflow,"]
