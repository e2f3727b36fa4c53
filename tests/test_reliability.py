"""Nothing is lost: atomic output, untouched inputs, in-place backups, idempotent and deterministic fixes."""

import json
import os
from pathlib import Path

import pytest

import graphs
from graphdoc.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "slim_convnet_training.pb"



def _fix(source: Path, target: Path, *extra: str) -> int:
    return main(["fix", str(source), "-o", str(target), "--no-verify", *extra])


def test_a_write_killed_midway_leaves_the_previous_output_and_no_temporary_file(tmp_path, monkeypatch):
    output = tmp_path / "fixed.pb"
    output.write_bytes(b"the previous fixed graph")

    def killed(_fd):
        raise KeyboardInterrupt  # what SIGINT looks like to Python, between write and rename

    monkeypatch.setattr("graphdoc.writing.os.fsync", killed)
    assert _fix(SAMPLE, output) == 130  # the command's exit code for Ctrl-C
    assert output.read_bytes() == b"the previous fixed graph"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fixed.pb"]


def test_outputs_get_the_permissions_a_new_file_would_and_overwrites_keep_theirs(tmp_path):
    from graphdoc.writing import write_atomically

    previous = os.umask(0o027)
    try:
        write_atomically(b"new", tmp_path / "new.pb")
    finally:
        os.umask(previous)
    assert (tmp_path / "new.pb").stat().st_mode & 0o777 == 0o640
    existing = tmp_path / "existing.pb"
    existing.write_bytes(b"old")
    existing.chmod(0o604)
    write_atomically(b"replaced", existing)
    assert existing.read_bytes() == b"replaced" and existing.stat().st_mode & 0o777 == 0o604


@pytest.mark.parametrize("extra", [0, 1, 4095, 8 << 20])
def test_large_files_are_written_exactly_around_the_page_cache(tmp_path, monkeypatch, extra):
    # Sizes that end mid-block and on a chunk boundary: the padding of the last
    # block must go, and every byte arrive in order.
    from graphdoc import writing

    used = []
    direct = writing._write_direct
    monkeypatch.setattr(writing, "_write_direct", lambda *args: used.append(direct(*args)) or used[-1])
    data = os.urandom(writing.DIRECT_FROM_BYTES + extra)
    target = tmp_path / "large.pb"
    writing.write_atomically(data, target)
    assert target.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["large.pb"]
    assert used == [_takes_direct_io(tmp_path)]  # the direct path ran wherever the filesystem takes it


def _takes_direct_io(directory: Path) -> bool:
    if not hasattr(os, "O_DIRECT"):
        return False
    try:
        os.close(os.open(directory / "probe", os.O_WRONLY | os.O_CREAT | os.O_DIRECT))
    except OSError:
        return False
    finally:
        (directory / "probe").unlink(missing_ok=True)
    return True


def test_a_device_that_refuses_direct_writes_gets_a_buffered_copy(tmp_path, monkeypatch):
    import errno
    import fcntl

    from graphdoc import writing

    real_write = os.write
    direct_writes = []

    def picky_write(handle, data):
        # Takes the first direct write, then refuses: what was written must not stay.
        if fcntl.fcntl(handle, fcntl.F_GETFL) & getattr(os, "O_DIRECT", 0):
            direct_writes.append(len(data))
            if len(direct_writes) > 1:
                raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(handle, data)

    monkeypatch.setattr(writing.os, "write", picky_write)
    data = os.urandom(writing.DIRECT_FROM_BYTES + 1234)
    writing.write_atomically(data, tmp_path / "large.pb")
    assert (tmp_path / "large.pb").read_bytes() == data


def test_in_place_keeps_a_backup(tmp_path, capsys):
    model = tmp_path / "model.pb"
    model.write_bytes(SAMPLE.read_bytes())
    assert main(["fix", str(model), "--in-place", "--no-verify", "--diff"]) == 0
    assert "~ conv1/BatchNorm/FusedBatchNormV3" in capsys.readouterr().out  # diffed against the original
    assert (tmp_path / "model.pb.bak").read_bytes() == SAMPLE.read_bytes()
    assert model.read_bytes() != SAMPLE.read_bytes()
    assert main(["scan", str(model)]) == 0


def test_fix_is_deterministic_and_idempotent(tmp_path):
    first, second, again = tmp_path / "a.pb", tmp_path / "b.pb", tmp_path / "c.pb"
    assert _fix(SAMPLE, first) == 0 and _fix(SAMPLE, second) == 0
    assert first.read_bytes() == second.read_bytes()
    assert _fix(first, again) == 0
    assert again.read_bytes() == first.read_bytes()


def test_clean_graphs_are_left_byte_identical(build, write, tmp_path):
    clean = write(build("keras3_cnn").inference)
    assert _fix(clean, tmp_path / "out.pb") == 0
    assert (tmp_path / "out.pb").read_bytes() == clean.read_bytes()


def test_created_names_never_collide(tmp_path, capsys):
    import zoo
    from graphdoc.proto import GraphDef

    trained = zoo.train_tf1(zoo.slim_conv_stack(fused=True), (16, 16, 3), tmp_path)
    graph_def = GraphDef.FromString(trained.pair.training)
    taken = graph_def.node.add(name="conv1/BatchNorm/moving_mean", op="Placeholder")  # not a Const: no statistics
    taken.attr["dtype"].type = 1
    model = tmp_path / "model.pb"
    model.write_bytes(graph_def.SerializeToString())
    assert _fix(model, tmp_path / "fixed.pb", "--checkpoint", trained.prefix) == 0
    names = [node.name for node in GraphDef.FromString((tmp_path / "fixed.pb").read_bytes()).node]
    assert "conv1/BatchNorm/moving_mean_1" in names and len(names) == len(set(names))


def test_custom_ops_are_scanned_as_opaque_and_named(tmp_path, capsys):
    graph_def = graphs.parse(graphs.build(graphs.tf2_dropout))
    for node in graph_def.node:
        if node.op == "Mul":
            node.op = "MyVendorScale"  # a custom kernel TensorFlow does not define
    model = tmp_path / "custom.pb"
    model.write_bytes(graph_def.SerializeToString())
    assert main(["scan", str(model)]) == 1
    out = capsys.readouterr().out
    assert "GD201" in out and "ops TensorFlow does not define: MyVendorScale" in out
    assert main(["scan", str(model), "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["models"][0]["unknown_ops"] == ["MyVendorScale"]


def test_a_model_that_would_not_fit_in_memory_is_refused_with_its_size(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("graphdoc.loading._available_memory", lambda: 100 * 2**10)  # 100 KiB to spare
    assert main(["scan", str(SAMPLE)]) == 2
    error = capsys.readouterr().err
    assert "would need about" in error and "0.0 GiB is available" in error
