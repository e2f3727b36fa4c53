"""[tool.graphdoc] and graphdoc.toml: found as ruff finds its own, and `keep` honoured."""

import pytest

from graphdoc import api
from graphdoc.config import Config, find_config
from graphdoc.errors import GraphdocError


def test_the_nearest_file_with_a_graphdoc_table_applies(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.graphdoc]\nselect = ["GD1"]\nkeep = ["mc/*"]\n')
    inner = tmp_path / "project" / "models"
    inner.mkdir(parents=True)
    (tmp_path / "project" / "pyproject.toml").write_text('[tool.black]\nline-length = 100\n')  # no table: passed over
    config = find_config(inner)
    assert config == Config(select=("GD1",), keep=("mc/*",), path=tmp_path / "pyproject.toml")
    (inner / "graphdoc.toml").write_text('ignore = ["GD304"]\n')
    assert find_config(inner).ignore == ("GD304",) and find_config(inner).select == ()


def test_no_file_is_no_configuration(tmp_path):
    assert find_config(tmp_path) == Config()


@pytest.mark.parametrize(("text", "error"), [
    ('[tool.graphdoc]\nselct = ["GD1"]\n', "unknown key 'selct'"),
    ('[tool.graphdoc]\nselect = "GD1"\n', "select must be a list of strings"),
    ('[tool.graphdoc\n', "could not be read as TOML"),
])
def test_a_bad_file_is_one_sentence(tmp_path, text, error):
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(GraphdocError, match=error):
        find_config(tmp_path)


def test_kept_training_behaviour_is_reported_kept_and_left_as_it_is(build, write):
    # Monte-Carlo dropout meant to stay: the BatchNorm layers are fixed, the dropout is not.
    path = write(build("slim_fused_inline_updates").training)
    findings = api.scan(api.load(path), keep=("dropout/*",))
    kept = [f for f in findings if f.kept]
    assert kept and {f.code for f in kept} == {"GD201"} and all(f.kept == "dropout/*" for f in kept)
    report = api.fix(api.load(path), keep=("dropout/*",))
    assert [f.code for f in report.kept] == ["GD201"] and not report.remaining
    assert report.verification.passed  # the dropout left in place explains what still varies
    assert "GD201" in report.verification.checks[1].detail
    assert [f.code for f in api.scan(report.fixed)] == ["GD201"]  # still there, as asked


def test_the_command_line_reads_the_configuration_and_kept_findings_do_not_fail(build, write, tmp_path, capsys,
                                                                                 monkeypatch):
    from graphdoc.cli import main

    path = write(build("v1_dropout_keep_prob_tensor").training)  # live dropout and its keep_prob placeholder
    monkeypatch.chdir(tmp_path)
    assert main(["scan", str(path)]) == 1
    capsys.readouterr()
    (tmp_path / "pyproject.toml").write_text('[tool.graphdoc]\nkeep = ["dropout/*", "keep_prob"]\n')
    assert main(["scan", str(path)]) == 0  # every finding is deliberate
    assert "kept: deliberate" in capsys.readouterr().out
    assert main(["scan", str(path), "--format", "json"]) == 0
    assert '"kept": "dropout/*"' in capsys.readouterr().out
    (tmp_path / "pyproject.toml").write_text('[tool.graphdoc]\nselect = ["GD1"]\n')
    assert main(["scan", str(path)]) == 0  # GD201 is not selected
    assert main(["scan", str(path), "--select", "GD2"]) == 1  # the command line wins
