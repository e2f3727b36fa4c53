"""Issue 18: probe, compare and fix's verification run every graph a user has.

Graphs as they come from training (samples/zoo_tf1.py, section 10): an input with a fixed batch
(1 and 4), data read from a tf.data iterator (no placeholder), an output that flattens the batch
into its first dimension, a plain bool "training" placeholder with no default; and beside them the
shipped tf-slim sample, Keras 3 and tf_keras SavedModels exported with training=True, and
BatchNorm inside a tf.while_loop. For each:

- probe runs it and names the first training-mode BatchNorm first (only live dropout's random ops
  may come before it);
- fix, with its verification on, writes a graph equal to the same model built in inference mode
  (on a batch, and each sample alone where the batch can vary);
- compare runs the fixed graph against the inference build (equal) and against the original.

Exit codes: probe and compare exit 1 when they find a divergence / a difference, 0 when clean,
2 on an error (a graph they cannot run).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import tfrun
import zoo
import zoo_tf1
from graphdoc import api
from graphdoc.cli import main

TOLERANCE = 1e-5
ROOT = Path(__file__).resolve().parent.parent
SLIM_SAMPLE = ROOT / "samples" / "slim_convnet_training.pb"


@dataclass
class Case:
    """A graph as a user has it, and what its fix must equal."""

    path: Path  # the training graph: a GraphDef file or a SavedModel directory
    reference: bytes  # the inference build, fed at "input:0", fetched at "output:0"
    sample_shape: tuple[int, ...]
    first_batch_norm: str  # a regular expression matching the op scope of the first training-mode BatchNorm
    batch: int | None = None  # the input's fixed batch, or None where it can vary
    fixed_input: str = "input:0"  # where the fixed graph takes the data
    fixed_output: str = "output:0"
    options: list[str] = field(default_factory=list)  # for fix
    in_loop: bool = False  # the BatchNorm is inside a tf.while_loop: probe's root is the loop's Exit


def _write(directory: Path, trained: zoo.Trained) -> Path:
    path = directory / "training.pb"
    path.write_bytes(trained.pair.training)
    return path


def _graph_case(directory, trained, first, **kwargs) -> Case:
    return Case(_write(directory, trained), trained.pair.inference, trained.pair.input_shape, first, **kwargs)


def _fixed_batch(batch):
    def make(directory, build):
        return _graph_case(directory, zoo_tf1.fixed_batch(batch, directory), "conv1/BatchNorm/", batch=batch)

    return make


def _iterator(directory, build):
    trained = zoo_tf1.iterator_input(directory)
    return _graph_case(directory, trained, "conv1/BatchNorm/", fixed_input="IteratorGetNext:0",
                       options=["--checkpoint", trained.prefix])


def _flattened(directory, build):
    return _graph_case(directory, zoo_tf1.flattened_batch_output(directory), "bn1/")


def _switch(directory, build):
    return _graph_case(directory, zoo_tf1.scalar_bool_switch(directory), "bn1/")


def _slim_sample(directory, build):
    # The shipped sample is samples/make_samples.py's build of this conftest model (same weights).
    return Case(SLIM_SAMPLE, build("slim_fused_inline_updates").inference, (16, 16, 3), "conv1/BatchNorm/")


def _keras3_saved_model(directory, build):
    path, reference = zoo.keras_saved_model(zoo.keras_cnn(), (16, 16, 3), directory, training=True)
    # Its nodes come inlined from the signature's function: StatefulPartitionedCall/functional_1/bn1_1/...
    return Case(Path(path), reference, (16, 16, 3), r"(.*/)?bn1(_\d+)?/", fixed_output="Identity:0")


def _keras2_saved_model(directory, build):
    path, reference = zoo.keras2_saved_model(directory)
    # StatefulPartitionedCall/model/bn1/FusedBatchNormV3
    return Case(Path(path), reference, (8, 8, 3), r"(.*/)?bn1/", fixed_output="Identity:0")


def _while_loop(directory, build):
    trained = zoo_tf1.train_tf1(zoo_tf1.batch_norm_in_while_loop(), (8, 8, 3), directory, keep_statistics=True)
    return _graph_case(directory, trained, "rnn/while/cell/bn/", in_loop=True)


BUILDERS = {
    "fixed_batch_1": _fixed_batch(1),
    "fixed_batch_4": _fixed_batch(4),
    "iterator_input": _iterator,
    "flattened_batch_output": _flattened,
    "scalar_bool_switch": _switch,
    "slim_sample": _slim_sample,
    "keras3_saved_model": _keras3_saved_model,
    "keras2_saved_model": _keras2_saved_model,
    "while_loop": _while_loop,
}


@pytest.fixture(scope="module")
def case(tmp_path_factory, build):
    """case(name) -> Case, each model trained and written once per module."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = BUILDERS[name](tmp_path_factory.mktemp(name), build)
        return cache[name]

    return get


def _fix(model: Case, output: Path, *extra) -> Path:
    assert main(["fix", str(model.path), "-o", str(output), *model.options, *extra]) == 0
    return output


def _run_fixed(model: Case, fixed: bytes, data: np.ndarray) -> np.ndarray:
    feeds = {model.fixed_input: data}
    graph_def = tf.compat.v1.GraphDef.FromString(fixed)
    if any(node.name == zoo_tf1.TRAINING_SWITCH and node.op == "Placeholder" for node in graph_def.node):
        feeds[f"{zoo_tf1.TRAINING_SWITCH}:0"] = False  # the fix left the switch to be fed
    return tfrun.run(fixed, feeds, [model.fixed_output])[0]


def _error_against_inference(model: Case, fixed: bytes) -> float:
    """Largest relative error of `fixed` against the inference build: on a batch (the fixed batch
    where the input has one), and on its first and last samples alone where the batch can vary."""
    data = zoo.training_data(model.sample_shape, model.batch or 6, seed=3)
    expected = tfrun.run(model.reference, {"input:0": data}, ["output:0"])[0]
    errors = [tfrun.relative_error(_run_fixed(model, fixed, data), expected)]
    if model.batch is None:
        rows = len(expected) // len(data)  # the flattened output has several rows per sample
        for i in (0, len(data) - 1):
            alone = _run_fixed(model, fixed, data[i : i + 1])
            errors.append(tfrun.relative_error(alone, expected[i * rows : (i + 1) * rows]))
    return max(errors)


def _with_input_named(graph_bytes: bytes, name: str) -> bytes:
    """The reference with its "input" placeholder renamed, to take the same inputs as a fixed graph."""
    graph_def = tf.compat.v1.GraphDef.FromString(graph_bytes)
    for node in graph_def.node:
        if node.name == zoo.INPUT:
            node.name = name
        node.input[:] = [name + ref[len(zoo.INPUT):] if ref.split(":")[0] == zoo.INPUT else ref
                         for ref in node.input]
    return graph_def.SerializeToString()


@pytest.mark.parametrize("name", BUILDERS)
def test_probe_names_the_first_training_mode_batch_norm(capsys, case, name):
    model = case(name)
    assert main(["probe", str(model.path)]) == 1, capsys.readouterr().err  # 1: it found where it diverges
    report = api.probe(api.load(model.path))
    assert report.roots, "no divergence found"
    first = report.roots[0]  # a dropout's random op, drawn from a constant shape, comes where it is applied
    if model.in_loop:
        # A session cannot fetch a tensor inside a loop frame: the loop's Exit diverges first,
        # explained by the BatchNorm inside it.
        assert first.op == "Exit" and first.finding is not None, (first.node, first.finding)
        assert re.match(model.first_batch_norm, first.finding.node), first.finding.node
    else:
        assert re.match(model.first_batch_norm, first.node), [(r.node, r.op) for r in report.roots]


@pytest.mark.parametrize("name", BUILDERS)
def test_verified_fix_equals_the_inference_build(tmp_path, capsys, case, name):
    model = case(name)
    output = tmp_path / "fixed.pb"
    assert main(["fix", str(model.path), "-o", str(output), *model.options]) == 0, capsys.readouterr().err
    assert "FAILED" not in capsys.readouterr().out
    assert _error_against_inference(model, output.read_bytes()) <= TOLERANCE


@pytest.mark.parametrize("name", BUILDERS)
def test_compare_runs_the_fixed_graph_against_the_reference_and_the_original(tmp_path, capsys, case, name):
    model = case(name)
    fixed = _fix(model, tmp_path / "fixed.pb", "--no-verify")  # verification is the test above
    reference = tmp_path / "reference.pb"
    # The reference takes "input"; a fixed iterator graph takes the placeholder named after the iterator.
    reference.write_bytes(_with_input_named(model.reference, model.fixed_input.split(":")[0]))
    assert main(["compare", str(fixed), str(reference)]) == 0, capsys.readouterr()
    capsys.readouterr()
    code = main(["compare", str(model.path), str(fixed)])
    err = capsys.readouterr().err
    if name == "scalar_bool_switch":
        # What compare feeds the plain switch decides whether the original differs: it must run.
        assert code in (0, 1), err
    else:
        assert code == 1, err  # the training graph's outputs differ from the fixed graph's


def test_a_tf1_checkpoint_reading_an_iterator_is_probed_and_fixed_from_the_checkpoint_itself(tmp_path, capsys, case):
    trained = case("iterator_input")
    prefix = trained.options[-1]  # the training checkpoint the frozen case was made from
    assert main(["probe", prefix, "--outputs", "output"]) == 1
    out = capsys.readouterr().out
    assert "became placeholder(s) IteratorGetNext" in out and "conv1/BatchNorm/FusedBatchNormV3" in out
    output = tmp_path / "fixed.pb"
    assert main(["fix", prefix, "--outputs", "output", "-o", str(output)]) == 0
    assert _error_against_inference(trained, output.read_bytes()) <= TOLERANCE
