"""Issue 17, TF1 forms of batch statistics: BatchNorm in NCHW, and BatchNorm inside a
control-flow-v1 tf.while_loop (samples/zoo_tf1.py, section 9), in float32 and float16.

Each model is trained for real steps once and frozen twice: with its moving statistics kept as
Consts beside the output ("kept") and for the output alone ("pruned", fixed with --checkpoint).
For each: scan reports every BatchNorm layer exactly once, `fix` writes a graph equal to the same
model built in inference mode, and probe names the first BatchNorm layer first.
"""

import pytest
import tensorflow as tf

import tfrun
import zoo_tf1
from graphdoc import api
from graphdoc.cli import main
from helpers import write_training

LOOP_SCOPE = ("rnn/while/cell/bn/",)  # dynamic_rnn style: variables rnn/cell/bn/..., ops rnn/while/cell/bn/...
TOP_LEVEL_LOOP_SCOPE = ("while/cell/bn/",)  # variables cell/bn/..., ops while/cell/bn/...
NCHW_SCOPES = ("conv1/BatchNorm/", "conv2/BatchNorm/")

# name: (builder, input shape, the finding each BatchNorm layer gets, the layers' op scopes, tolerance)
MODELS = {
    "slim_unfused_nchw": (zoo_tf1.slim_unfused_nchw, (16, 16, 3), "GD102", NCHW_SCOPES, 1e-5),
    "slim_fused_nchw_float16": (zoo_tf1.slim_fused_nchw_float16, (16, 16, 3), "GD101", NCHW_SCOPES, 1e-3),
    "while_loop_moments": (zoo_tf1.batch_norm_in_while_loop, (8, 8, 3), "GD102", LOOP_SCOPE, 1e-5),
    "while_loop_fused": (lambda: zoo_tf1.batch_norm_in_while_loop(fused=True), (8, 8, 3), "GD101", LOOP_SCOPE,
                         1e-5),
    "while_loop_fused_float16": (lambda: zoo_tf1.batch_norm_in_while_loop(fused=True, dtype=tf.float16),
                                 (8, 8, 3), "GD101", LOOP_SCOPE, 1e-3),
    "top_level_while_loop_moments": (lambda: zoo_tf1.batch_norm_in_while_loop(scope=None), (8, 8, 3), "GD102",
                                     TOP_LEVEL_LOOP_SCOPE, 1e-5),
    "top_level_while_loop_fused": (lambda: zoo_tf1.batch_norm_in_while_loop(fused=True, scope=None), (8, 8, 3),
                                   "GD101", TOP_LEVEL_LOOP_SCOPE, 1e-5),
}
# kept: statistics frozen in the graph as Consts; pruned: only in the checkpoint.
VARIANTS = ("kept", "pruned")
CASES = [pytest.param(name, variant, id=f"{name}-{variant}") for name in MODELS for variant in VARIANTS]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """trained(name) -> {"kept": zoo.Trained, "pruned": zoo.Trained}, each model trained once per module."""
    cache = {}

    def get(name):
        if name not in cache:
            builder, shape, *_ = MODELS[name]
            kept, pruned = zoo_tf1.train_with_and_without_statistics(builder(), shape, tmp_path_factory.mktemp(name))
            cache[name] = {"kept": kept, "pruned": pruned}
        return cache[name]

    return get


@pytest.mark.parametrize("name, variant", CASES)
def test_scan_reports_every_batch_norm_layer_once(tmp_path, trained, name, variant):
    _, _, code, scopes, _ = MODELS[name]
    findings = api.scan(api.load(write_training(tmp_path, trained(name)[variant].pair)))
    batch_norms = [f for f in findings if f.code in ("GD101", "GD102")]
    for scope in scopes:
        in_layer = [(f.code, f.node) for f in batch_norms if f.node.startswith(scope)]
        assert [c for c, _ in in_layer] == [code], (scope, in_layer)
    assert len(batch_norms) == len(scopes), [(f.code, f.node) for f in batch_norms]
    # Nothing else is wrong with these graphs: no dropout, no switch, the statistics moved.
    assert sorted({f.code for f in findings}) == [code], [(f.code, f.node) for f in findings]


@pytest.mark.parametrize("name, variant", CASES)
def test_fix_equals_the_inference_build(tmp_path, trained, name, variant):
    model = trained(name)[variant]
    path = write_training(tmp_path, model.pair)
    output = tmp_path / "fixed.pb"
    options = ["--checkpoint", model.prefix] if variant == "pruned" else []
    assert main(["fix", str(path), "-o", str(output), *options]) == 0
    assert tfrun.error_against_inference(model.pair, output.read_bytes()) <= MODELS[name][4]


@pytest.mark.parametrize("name", MODELS)
def test_probe_names_the_first_batch_norm_layer_first(tmp_path, trained, name):
    first_scope = MODELS[name][3][0]
    report = api.probe(api.load(write_training(tmp_path, trained(name)["kept"].pair)))
    assert report.roots, "no divergence found"
    first = report.roots[0]
    if first_scope in LOOP_SCOPE + TOP_LEVEL_LOOP_SCOPE:
        # A session cannot fetch a tensor inside a loop frame: the loop's output diverges first,
        # explained by the BatchNorm inside it.
        assert first.op == "Exit" and first.finding.node.startswith(first_scope), (first.node, first.finding)
    else:
        assert first.node.startswith(first_scope), [(r.node, r.op) for r in report.roots]
