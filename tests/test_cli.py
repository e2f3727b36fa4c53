"""The command line: reports, exit codes, files written, errors."""

import subprocess
import sys
from pathlib import Path

import pytest

import graphs
import tfrun
from graphdoc.cli import main
from helpers import findings_of

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
MOBILENET = SAMPLES / "mobilenet_v1_0.25_128_training.pb"



def test_scan_reports_findings_and_exits_1(capsys):
    assert main(["scan", str(MOBILENET)]) == 1
    out = capsys.readouterr().out
    assert "GD102" in out and "GD201" in out
    assert "Found 28 problem(s): 27 GD102 (batch-moments-batchnorm), 1 GD201 (live-dropout)" in out


def test_fix_writes_a_clean_graph_and_exits_0(tmp_path, capsys):
    output = tmp_path / "fixed.pb"
    assert main(["fix", str(MOBILENET), "-o", str(output)]) == 0
    out = capsys.readouterr().out
    assert "StatelessRandomUniformV2" in out and "No findings remain" in out
    assert findings_of(output) == []
    assert main(["scan", str(output)]) == 0


def test_fixed_sample_runs_batch_independently(tmp_path):
    output = tmp_path / "fixed.pb"
    main(["fix", str(MOBILENET), "-o", str(output)])
    batch = graphs.random_batch((128, 128, 3), n=3)
    together = tfrun.run(output.read_bytes(), {"input:0": batch}, ["output:0"])[0]
    alone = tfrun.run(output.read_bytes(), {"input:0": batch[:1]}, ["output:0"])[0]
    assert tfrun.relative_error(alone[0], together[0]) <= 1e-5


def test_fix_without_statistics_names_the_layers_and_writes_nothing(build, write, tmp_path, capsys):
    output = tmp_path / "fixed.pb"
    assert main(["fix", str(write(build("slim_resnet_v1").training)), "-o", str(output)]) == 2
    error = capsys.readouterr().err
    assert "8 BatchNorm layer(s) lack moving statistics" in error
    assert "resnet/conv1/BatchNorm" in error
    assert "--checkpoint" in error and "--calibrate" in error
    assert error.count("\n") == 1
    assert not output.exists()


def test_fix_refuses_to_overwrite_its_input(tmp_path, capsys):
    model = tmp_path / "model.pb"
    model.write_bytes(MOBILENET.read_bytes())
    assert main(["fix", str(model), "-o", str(model)]) == 2
    assert model.read_bytes() == MOBILENET.read_bytes()
    assert "-o would write over the input" in capsys.readouterr().err


def test_unknown_output_name_offers_close_names(capsys):
    assert main(["scan", str(MOBILENET), "--outputs", "outptu"]) == 2
    assert "did you mean output" in capsys.readouterr().err


def test_rule_explains_every_code(capsys):
    from graphdoc.rules import ALL_RULES

    assert main(["rule", "--all"]) == 0
    out = capsys.readouterr().out
    for rule in ALL_RULES:
        assert rule.code in out
    for section in ("What it finds:", "Why it is wrong:", "Fix:", "Fix safety:"):
        assert out.count(section) == len(ALL_RULES)


@pytest.mark.parametrize("content", [b"", b"\x00\x01garbage" * 10])
def test_bad_input_is_one_line_on_stderr_with_exit_2_and_no_traceback(tmp_path, content):
    model = tmp_path / "model.pb"
    model.write_bytes(content)
    result = subprocess.run(
        [sys.executable, "-m", "graphdoc", "fix", str(model), "-o", str(tmp_path / "out.pb")],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("graphdoc: error:")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.pb").exists()
    assert model.read_bytes() == content


def test_scan_and_fix_do_not_import_tensorflow(tmp_path):
    # TensorFlow costs seconds to import; reading and rewriting a GraphDef needs none of it.
    code = (
        "import sys; from graphdoc.cli import main; "
        f"main(['scan', {str(MOBILENET)!r}]); main(['fix', {str(MOBILENET)!r}, '-o', {str(tmp_path / 'f.pb')!r}, '--no-verify']); "
        "print('tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (tmp_path / "f.pb").exists()
    assert result.stdout.strip().endswith("False")


def test_without_tensorflow_scan_and_fix_work_and_the_rest_says_what_to_install(tmp_path):
    code = (
        "import sys; sys.modules['tensorflow'] = None\n"  # as if it were not installed
        "from graphdoc.cli import main\n"
        f"print(main(['scan', {str(MOBILENET)!r}]), main(['fix', {str(MOBILENET)!r}, '-o', {str(tmp_path / 'f.pb')!r}]),"
        f" main(['probe', {str(MOBILENET)!r}]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "1 0 2"
    assert "verification skipped: TensorFlow is not installed" in result.stdout
    assert "pip install tensorflow" in result.stderr
    assert (tmp_path / "f.pb").exists()


@pytest.mark.parametrize("command", [["scan"], ["fix", "--no-verify", "-o", "{tmp}/fixed.pb"]])
def test_the_command_leaves_the_model_to_the_process_exit_and_main_frees_it(command, tmp_path, monkeypatch):
    # run() ends with os._exit, which takes the memory back at once: freeing the
    # model object by object before it is wasted time (a third of a second at a
    # million nodes). main(), called as a function, must not keep it.
    import gc
    import weakref

    from graphdoc import api, cli

    models = []
    real_load = api.load

    def load(*args, **kwargs):
        model = real_load(*args, **kwargs)
        models.append(weakref.ref(model))
        return model

    argv = [command[0], str(MOBILENET), *(part.format(tmp=tmp_path) for part in command[1:])]
    monkeypatch.setattr(api, "load", load)
    monkeypatch.setattr(cli, "_kept_until_exit", None)
    main(argv)
    gc.collect()
    assert models[-1]() is None

    alive_at_exit = []

    def exit_now(code):
        alive_at_exit.append(models[-1]() is not None)
        raise SystemExit(code)

    monkeypatch.setattr(cli.os, "_exit", exit_now)
    monkeypatch.setattr(sys, "argv", ["graphdoc", *argv])
    with pytest.raises(SystemExit):
        cli.run()
    assert alive_at_exit == [True]


# --- fix with several models, and -o naming a directory

SLIM = SAMPLES / "slim_convnet_training.pb"


def test_fix_writes_several_models_into_a_directory_each_as_fixing_it_alone_would(tmp_path, capsys):
    out = tmp_path / "fixed"
    out.mkdir()
    assert main(["fix", str(MOBILENET), str(SLIM), "-o", str(out), "--no-verify"]) == 0
    report = " ".join(capsys.readouterr().out.split())  # however the terminal wrapped it
    assert report.count("No findings remain.") == 2
    for model in (MOBILENET, SLIM):
        alone = tmp_path / f"alone_{model.name}"
        assert main(["fix", str(model), "-o", str(alone), "--no-verify"]) == 0
        assert (out / model.name).read_bytes() == alone.read_bytes()


def test_fix_of_one_model_into_an_existing_directory_keeps_its_name(tmp_path):
    assert main(["fix", str(SLIM), "-o", str(tmp_path), "--no-verify"]) == 0
    assert findings_of(tmp_path / SLIM.name) == []


def test_fix_of_several_models_refuses_one_file_or_two_models_of_one_name(tmp_path, capsys):
    assert main(["fix", str(MOBILENET), str(SLIM), "-o", str(tmp_path / "fixed.pb")]) == 2
    assert "names one file for 2 models; name an existing directory" in capsys.readouterr().err
    twin = tmp_path / "twin"
    twin.mkdir()
    (twin / SLIM.name).write_bytes(SLIM.read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    assert main(["fix", str(SLIM), str(twin / SLIM.name), "-o", str(out)]) == 2
    assert "would both be written to" in capsys.readouterr().err
    assert list(out.iterdir()) == []  # refused before anything was written


def test_a_model_that_cannot_load_stops_only_itself(tmp_path, capsys):
    broken = tmp_path / "broken.pb"
    broken.write_bytes(b"\x00not a graph")
    out = tmp_path / "out"
    out.mkdir()
    assert main(["fix", str(broken), str(SLIM), "-o", str(out), "--no-verify"]) == 2
    assert "broken.pb" in capsys.readouterr().err
    assert [path.name for path in out.iterdir()] == [SLIM.name]


# --- help pages: a description and examples that really parse


@pytest.mark.parametrize("command", ["scan", "fix", "probe", "compare", "show", "rule"])
def test_each_command_explains_itself_with_examples_that_parse(command, tmp_path, monkeypatch, capsys):
    import shlex

    from graphdoc.cli import _parser

    monkeypatch.chdir(tmp_path)
    (tmp_path / "fixed").mkdir()  # `-o fixed/` names a directory that exists
    with pytest.raises(SystemExit):
        main([command, "--help"])
    page = capsys.readouterr().out
    description = page.split("\n\n")[1]
    assert len(description.split()) >= 8, page  # a sentence or more, not only the usage line
    examples = [line.strip() for line in page.split("examples:\n")[1].splitlines() if line.startswith("  graphdoc ")]
    assert examples, page
    for example in examples:
        words = shlex.split(example.split("  ")[0])  # the command, without the comment beside it
        assert words[:2] == ["graphdoc", command]
        _parser().parse_args(words[1:])  # exits (a failed test) if the example is not a valid command line


@pytest.mark.parametrize("form", ["concise", "github"])
def test_a_one_line_report_of_models_that_could_not_be_read_says_nothing_false(tmp_path, capsys, form):
    broken = tmp_path / "broken.pb"
    broken.write_bytes(b"\x00not a graph")
    assert main(["scan", str(broken), "--format", form]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("graphdoc: error:")
