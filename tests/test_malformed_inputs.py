"""Every bad input ends in exit code 2, one sentence on stderr, no output file, and an untouched input.

The inputs are generated here, from the samples and from protobuf messages
built on the spot, rather than stored as fixtures.
"""

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format

from graphdoc.cli import main
from graphdoc.proto import GraphDef

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "slim_convnet_training.pb"


def _graph(*nodes: tuple[str, str, list[str]]) -> bytes:
    graph = GraphDef()
    for name, op, inputs in nodes:
        node = graph.node.add(name=name, op=op)
        node.input.extend(inputs)
    return graph.SerializeToString()


def _file(name: str, content: bytes):
    def make(tmp: Path):
        (tmp / name).write_bytes(content)
        return ["fix", str(tmp / name)]

    return make


def _scan_file(name: str, content: bytes, *extra: str):
    def make(tmp: Path):
        (tmp / name).write_bytes(content)
        return ["scan", str(tmp / name), *extra]

    return make


def _missing(tmp: Path):
    return ["fix", str(tmp / "nowhere.pb")]


def _empty_directory(tmp: Path):
    (tmp / "models").mkdir()
    return ["fix", str(tmp / "models")]


def _directory_without_models(tmp: Path):
    (tmp / "notes").mkdir()
    (tmp / "notes" / "readme.txt").write_text("nothing to see")
    return ["scan", str(tmp / "notes")]


def _saved_model_dir_corrupt(tmp: Path):
    (tmp / "export").mkdir()
    (tmp / "export" / "saved_model.pb").write_bytes(b"\x08\x01\x12\x03abc")
    return ["fix", str(tmp / "export")]


def _checkpoint_without_meta(tmp: Path):
    (tmp / "model.ckpt.index").write_bytes(b"\x00" * 16)
    return ["fix", str(tmp / "model.ckpt")]


def _checkpoint_naming_missing_files(tmp: Path):
    (tmp / "train").mkdir()
    (tmp / "train" / "checkpoint").write_text('model_checkpoint_path: "/elsewhere/model.ckpt-100"\n')
    return ["fix", str(tmp / "train")]


def _over_two_gib(tmp: Path):
    with open(tmp / "huge.pb", "wb") as stream:
        stream.truncate(2**31 + 1)  # sparse: costs no disk
    return ["fix", str(tmp / "huge.pb")]


def _copy_of_sample(tmp: Path) -> Path:
    (tmp / "model.pb").write_bytes(SAMPLE.read_bytes())
    return tmp / "model.pb"


def _with(*extra: str, command: str = "fix"):
    def make(tmp: Path):
        return [command, str(_copy_of_sample(tmp)), *extra]

    return make


def _output_is_input(tmp: Path):
    model = _copy_of_sample(tmp)
    return ["fix", str(model), "-o", str(model)]


def _truncated(fraction: float):
    return _file("truncated.pb", SAMPLE.read_bytes()[: int(len(SAMPLE.read_bytes()) * fraction)])


PBTXT = text_format.MessageToString(GraphDef.FromString(_graph(("a", "Placeholder", []), ("b", "Relu", ["a"]))))

CASES = {
    "missing path": _missing,
    "directory without a model": _empty_directory,
    "directory of non-models": _directory_without_models,
    "empty file": _file("empty.pb", b""),
    "random bytes": _file("random.pb", np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes()),
    "zero bytes": _file("zeros.pb", b"\x00" * 1000),
    "truncated at 37%": _truncated(0.37),
    "truncated at 71%": _truncated(0.71),
    "prose": _file("notes.txt", b"The model was trained for 90 epochs.\n"),
    "pbtxt syntax error": _file("broken.pbtxt", PBTXT.replace("}", "", 1).encode()),
    "pbtxt unknown field": _file("odd.pbtxt", b'node { name: "a" op: "Relu" colour: "blue" }\n'),
    "json": _file("model.json", b'{"node": [{"name": "a"}]}'),
    "invalid utf-8 text": _file("latin1.pbtxt", b'node { name: "caf\xe9" op: "Relu" }\n'),
    "saved_model.pb as a file": _file("saved_model.pb", b"\x08\x01\x12\x00"),
    "corrupt SavedModel directory": _saved_model_dir_corrupt,
    "keras h5": _file("model.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 512),
    "keras zip": _file("model.keras", b"PK\x03\x04" + b"\x00" * 512),
    "gzip-compressed pb": _file("model.pb.gz", gzip.compress(SAMPLE.read_bytes())),
    "tflite flatbuffer": _file("model.tflite", b"\x1c\x00\x00\x00TFL3" + b"\x00" * 256),
    "onnx": _file("model.onnx", b"\x08\x07\x12\x07pytorch"),
    "checkpoint without .meta": _checkpoint_without_meta,
    "checkpoint file naming missing files": _checkpoint_naming_missing_files,
    "dangling input": _file("dangling.pb", _graph(("a", "Placeholder", []), ("b", "Relu", ["ghost"]))),
    "dangling control input": _file("control.pb", _graph(("a", "Placeholder", []), ("b", "Relu", ["a", "^ghost"]))),
    "bad output port": _file("port.pb", _graph(("a", "Placeholder", []), ("b", "Relu", ["a:x"]))),
    "duplicate node names": _file("dupes.pb", _graph(("a", "Placeholder", []), ("a", "Relu", ["a"]))),
    "cycle": _file("cycle.pb", _graph(("a", "Relu", ["b"]), ("b", "Relu", ["a"]))),
    "self loop": _file("loop.pb", _graph(("x", "Placeholder", []), ("a", "Add", ["x", "a"]))),
    "node without op": _file("noop.pb", _graph(("a", "", []))),
    "node without name": _file("noname.pb", _graph(("", "Relu", []))),
    "over 2 GiB": _over_two_gib,
    "output that does not exist": _with("--outputs", "logitz", "-o", "out.pb"),
    "output directory missing": _with("-o", "/nonexistent/dir/fixed.pb"),
    "output is the input": _output_is_input,
    "unknown rule code": _with("--select", "GD999", command="scan"),
    "malformed --input-shape": _with("--input-shape", "input=a,b", command="probe"),
    "missing calibration data": _with("--calibrate", "nowhere.npy", "--unsafe-fixes", "-o", "out.pb"),
    "missing checkpoint": _with("--checkpoint", "nowhere.ckpt", "-o", "out.pb"),
    "unknown subcommand option value": _with("--format", "xml", command="scan"),
}


def _digest(directory: Path) -> dict[str, str]:
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.stat().st_size < 2**30
    }


def test_the_battery_is_large_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_exits_2_with_one_sentence_and_leaves_everything_as_it_was(tmp_path, capsys, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    args = CASES[case](tmp_path)
    if args[0] == "fix" and "-o" not in args:
        args += ["-o", str(tmp_path / "out.pb")]
    before = _digest(tmp_path)
    try:
        code = main(args)
    except SystemExit as exit:  # argparse's own usage errors
        code = exit.code
    captured = capsys.readouterr()
    assert code == 2
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith(("graphdoc: error:", "usage:", "graphdoc")), captured.err
    assert len([line for line in lines if "error" in line]) == 1
    assert "Traceback" not in captured.err
    assert not (tmp_path / "out.pb").exists()
    assert _digest(tmp_path) == before
    assert not [p for p in tmp_path.rglob("*.tmp")]
