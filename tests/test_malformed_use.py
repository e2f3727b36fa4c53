"""Every mistake in how graphdoc is called ends in exit code 2 (130 for Ctrl-C), one sentence, no traceback.

test_malformed_inputs.py feeds graphdoc bad models; this file calls it badly:
option values the parser refuses, outputs that cannot be written, input data
that does not fit the graph, interrupts. Each case leaves no file behind and
the input as it was.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import zoo
from graphdoc.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "slim_convnet_training.pb"  # input 'input', shape (None, 16, 16, 3)


def _digest(directory: Path) -> dict[str, str]:
    return {str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(directory.rglob("*")) if path.is_file()}


def _call(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as exit:  # the parser's own refusals
        return exit.code


@pytest.fixture
def model(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.pb").write_bytes(SAMPLE.read_bytes())
    (tmp_path / "existing_dir").mkdir()
    np.save(tmp_path / "wrong_shape.npy", np.zeros((8, 3, 3), np.float32))
    return tmp_path / "model.pb"


MISTAKES = {
    "json report into a missing directory": ["scan", "model.pb", "--format", "json", "-o", "missing_dir/r.json"],
    "text report into a missing directory": ["scan", "model.pb", "-o", "missing_dir/r.txt"],
    "scan report into an existing directory": ["scan", "model.pb", "-o", "existing_dir"],
    "fix into a name ending in /": ["fix", "model.pb", "-o", "out/"],
    "scan report into a name ending in /": ["scan", "model.pb", "-o", "out/"],
    "report over the model it reads": ["scan", "model.pb", "-o", "./model.pb"],
    "--dot into a missing directory": ["show", "model.pb", "input", "--dot", "missing_dir/n.dot"],
    "--svg into a missing directory": ["show", "model.pb", "input", "--svg", "missing_dir/n.svg"],
    "--dot over the model it reads": ["show", "model.pb", "input", "--dot", "model.pb"],
    "-j -1": ["scan", "model.pb", "-j", "-1"],
    "-j two": ["scan", "model.pb", "-j", "two"],
    "--depth -1": ["show", "model.pb", "input", "--depth", "-1"],
    "--tolerance -1": ["compare", "model.pb", "model.pb", "--tolerance", "-1"],
    "--tolerance nan": ["compare", "model.pb", "model.pb", "--tolerance", "nan"],
    "--batch-size 0": ["fix", "model.pb", "-o", "out.pb", "--batch-size", "0"],
    "--input-shape for an input that does not exist": ["probe", "model.pb", "--input-shape", "imgs=-1,16,16,3"],
    "--input-shape that does not fit the input": ["probe", "model.pb", "--input-shape", "input=-1,8,8,3"],
    "--input-shape with a negative size": ["probe", "model.pb", "--input-shape", "input=-1,-16,16,3"],
    "--inputs of the wrong shape": ["probe", "model.pb", "--inputs", "wrong_shape.npy"],
}


@pytest.mark.parametrize("case", list(MISTAKES), ids=list(MISTAKES))
def test_a_mistake_exits_2_with_one_sentence_and_writes_nothing(model, capsys, case):
    before = _digest(model.parent)
    code = _call(MISTAKES[case])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1, err
    assert errors[0].startswith(("graphdoc: error:", "graphdoc scan: error:", "graphdoc fix: error:",
                                 "graphdoc show: error:", "graphdoc compare: error:")), err
    assert _digest(model.parent) == before  # nothing written, nothing changed
    assert not (model.parent / "out").exists() and not (model.parent / "missing_dir").exists()
    assert list((model.parent / "existing_dir").iterdir()) == []


def test_the_unknown_input_is_named_with_the_graphs_inputs(model, capsys):
    assert _call(MISTAKES["--input-shape for an input that does not exist"]) == 2
    assert capsys.readouterr().err.strip() == (
        "graphdoc: error: an input shape is given for 'imgs', but the graph has no such input; its inputs are input")


def test_inputs_of_the_wrong_shape_say_which_shape_the_input_takes(model, capsys):
    assert _call(MISTAKES["--inputs of the wrong shape"]) == 2
    assert capsys.readouterr().err.strip() == (
        "graphdoc: error: wrong_shape.npy: the array for 'input' has shape (8, 3, 3), but the input takes "
        "(None, 16, 16, 3)")


def test_an_input_shape_may_name_the_tensor(model):
    assert main(["probe", "model.pb", "--input-shape", "input:0=-1,16,16,3"]) == 1  # findings, as without it


def test_a_trailing_slash_is_refused_by_the_parser_before_a_file_named_out_appears(model, capsys):
    assert _call(["scan", "model.pb", "-o", "out/"]) == 2
    assert "argument -o/--output: out/ names a directory" in capsys.readouterr().err
    assert not (model.parent / "out").exists()


def test_a_directory_that_exists_is_refused_by_name(model, capsys):
    assert _call(["scan", "model.pb", "-o", "existing_dir"]) == 2
    assert "cannot write existing_dir: it is a directory" in capsys.readouterr().err


# Ctrl-C. Python turns SIGINT into KeyboardInterrupt wherever the command is;
# each test raises it from something the command calls.


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def _assert_interrupted(code: int, capsys) -> None:
    err = capsys.readouterr().err
    assert code == 130
    assert err.strip() == "graphdoc: interrupted"
    assert "Traceback" not in err


def _leftovers(directory: Path, before: dict[str, str]) -> list[str]:
    return sorted(set(_digest(directory)) - set(before))


def test_ctrl_c_during_probe_exits_130(model, capsys, monkeypatch):
    monkeypatch.setattr("graphdoc.api.probe", _interrupt)
    before = _digest(model.parent)
    _assert_interrupted(main(["probe", "model.pb"]), capsys)
    assert _digest(model.parent) == before


def test_ctrl_c_during_the_fix_exits_130_and_writes_nothing(model, capsys, monkeypatch):
    monkeypatch.setattr("graphdoc.fixing.fix_model", _interrupt)
    before = _digest(model.parent)
    _assert_interrupted(main(["fix", "model.pb", "-o", "fixed.pb", "--no-verify"]), capsys)
    assert _digest(model.parent) == before


def test_ctrl_c_while_the_fix_is_written_leaves_no_partial_file(model, capsys, monkeypatch):
    monkeypatch.setattr("graphdoc.writing._write_all", _interrupt)
    before = _digest(model.parent)
    _assert_interrupted(main(["fix", "model.pb", "-o", "fixed.pb", "--no-verify"]), capsys)
    assert _leftovers(model.parent, before) == []  # neither fixed.pb nor its .tmp


def test_ctrl_c_while_fixing_in_place_leaves_the_model_and_no_backup(model, capsys, monkeypatch):
    monkeypatch.setattr("graphdoc.writing.write_graph_def", _interrupt)
    before = _digest(model.parent)
    _assert_interrupted(main(["fix", "model.pb", "--in-place", "--no-verify"]), capsys)
    assert _digest(model.parent) == before  # model.pb as it was, no model.pb.bak


def test_ctrl_c_in_a_scan_worker_exits_130_and_writes_no_report(model, capsys, monkeypatch):
    (model.parent / "second.pb").write_bytes(SAMPLE.read_bytes())
    # The workers are forked: they run the patched function (it is pickled by name).
    monkeypatch.setattr("graphdoc.cli.scan._to_record", _interrupt)
    before = _digest(model.parent)
    _assert_interrupted(main(["scan", "model.pb", "second.pb", "-j", "2", "-o", "report.txt"]), capsys)
    assert _leftovers(model.parent, before) == []
    _assert_no_workers_left()


def _signal_the_parent(path, *args):
    """A worker that takes Ctrl-C to the parent alone, then would keep scanning for a minute."""
    if Path(path).name == "model.pb":
        os.kill(os.getppid(), signal.SIGINT)
    time.sleep(60)


def test_ctrl_c_during_scan_j_2_ends_the_busy_workers_at_once(model, capsys, monkeypatch):
    (model.parent / "second.pb").write_bytes(SAMPLE.read_bytes())
    monkeypatch.setattr("graphdoc.cli.scan._to_record", _signal_the_parent)
    before = _digest(model.parent)
    start = time.monotonic()
    _assert_interrupted(main(["scan", "model.pb", "second.pb", "-j", "2", "--format", "json", "-o", "r.json"]),
                        capsys)
    assert time.monotonic() - start < 30  # not the workers' minute
    assert _leftovers(model.parent, before) == []
    _assert_no_workers_left()


def _assert_no_workers_left() -> None:
    deadline = time.monotonic() + 10
    while multiprocessing.active_children() and time.monotonic() < deadline:  # active_children() reaps too
        time.sleep(0.05)
    assert multiprocessing.active_children() == []


# Directories of models.


@pytest.fixture(scope="module")
def folder_with_a_saved_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    zoo.keras2_saved_model(folder)  # folder/keras2_saved_model, with fingerprint.pb, variables/, assets/
    (folder / "frozen").mkdir()
    (folder / "frozen" / "model.pb").write_bytes(SAMPLE.read_bytes())
    return folder


def _scanned(args: list[str], capsys) -> tuple[int, list[str], str]:
    code = main(["scan", *args, "--format", "json"])
    captured = capsys.readouterr()
    return code, [record["path"] for record in json.loads(captured.out)["models"]], captured.err


def test_a_saved_model_in_a_folder_is_scanned_as_a_model_and_its_own_files_are_not(folder_with_a_saved_model, capsys):
    code, paths, err = _scanned([str(folder_with_a_saved_model)], capsys)
    assert code == 1, err  # findings, and no file that could not be read
    assert err == ""
    assert [Path(path).relative_to(folder_with_a_saved_model).as_posix() for path in paths] == [
        "frozen/model.pb", "keras2_saved_model"]


def test_a_model_named_twice_or_through_its_folder_is_scanned_once(folder_with_a_saved_model, capsys):
    model = folder_with_a_saved_model / "frozen" / "model.pb"
    _, paths, _ = _scanned([str(model), str(folder_with_a_saved_model / "frozen"), str(model),
                            str(folder_with_a_saved_model / "frozen" / ".." / "frozen" / "model.pb")], capsys)
    assert paths == [str(model)]


# Install hints.


def test_without_tensorflow_the_hint_names_something_that_can_be_installed(tmp_path):
    code = (
        "import sys; sys.modules['tensorflow'] = None\n"  # as if it were not installed
        "from graphdoc.cli import main\n"
        f"print(main(['probe', {str(SAMPLE)!r}]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.strip() == "2"
    assert result.stderr.strip() == ("graphdoc: error: this needs TensorFlow, which is not installed: "
                                     "pip install tensorflow, or from the source checkout: pip install '.[tf]'")


def test_the_hint_outside_the_checkout_names_the_checkout(tmp_path, monkeypatch):
    from graphdoc.errors import install_tensorflow_hint

    monkeypatch.chdir(tmp_path)
    assert install_tensorflow_hint() == f"pip install tensorflow, or from the source checkout: pip install '{ROOT}[tf]'"


def test_no_install_hint_names_a_package_that_is_not_published():
    sources = [path for path in (ROOT / "graphdoc").rglob("*.py")
               if "pip install 'graphdoc-tf" in path.read_text() and path.name != "errors.py"]
    assert sources == []
