"""The Keras forms of batch statistics and training noise (issue 17), trained for real steps.

Models from samples/zoo_forms.py: synchronized BatchNorm (Keras 3 and tf_keras),
renorm, ghost batches, float16 compute, and the noise layers. For each: scan
reports every layer exactly once, with the right rule; `fix` with the
checkpoint writes a graph equal to the same model built with training=False,
in a batch and alone; the probe names the first layer first.
"""

import re
from collections import Counter

import numpy as np
import pytest

import tfrun
import zoo
import zoo_forms
from graphdoc import api
from graphdoc.cli import main
from helpers import write_training

TOLERANCE = 1e-5
FLOAT16_TOLERANCE = 1e-3

BN_FORMS = [name for name, (_, layers, _) in zoo_forms.FORMS.items() if layers == zoo_forms.BN_LAYERS]
NOISE_FORMS = [name for name, (_, layers, _) in zoo_forms.FORMS.items() if layers == zoo_forms.NOISE_LAYERS]
# Forms whose training graph holds a FusedBatchNorm* in training mode: GD101; every other BN form
# (sync BN, renorm, ghost batches, Keras 3 BatchNormalization) is decomposed: GD102.
FUSED_FORMS = {"tf_keras_fused_bn_mixed"}
# Forms whose frozen training graph still holds the moving statistics, as Consts by name.
STATISTICS_IN_GRAPH = ["tf_keras_renorm", "tf_keras_renorm_mixed", "tf_keras_fused_bn_mixed"]
NOISE_CODES = {"gaussian_noise": "GD202", "gaussian_dropout": "GD202", "alpha_dropout": "GD201"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """trained(name) -> zoo.Trained, each form trained once per module."""
    cache = {}

    def get(name):
        if name not in cache:
            builder = zoo_forms.FORMS[name][0]
            cache[name] = builder(tmp_path_factory.mktemp(name))
        return cache[name]

    return get


def _tolerance(name):
    return FLOAT16_TOLERANCE if zoo_forms.FORMS[name][2] else TOLERANCE


def _layer_of(name: str, layers) -> str | None:
    """The layer under test a node or scope name lies in: `bn1/...`, `bn1_1/...` (Keras 3)."""
    for component in name.split("/"):
        for layer in layers:
            if re.fullmatch(rf"{re.escape(layer)}(_\d+)?", component):
                return layer
    return None


def _finding_layer(finding, layers):
    site_layer = getattr(finding.site, "layer", None) if finding.site is not None else None
    return _layer_of(site_layer, layers) if site_layer else _layer_of(finding.node, layers)


def _fix_with_cli(tmp_path, path, *options) -> bytes:
    output = tmp_path / "fixed.pb"
    assert main(["fix", str(path), "-o", str(output), *options]) == 0
    return output.read_bytes()


# -- The models are what they claim (no graphdoc involved) -----------------------------------


@pytest.mark.parametrize("name", list(zoo_forms.FORMS))
def test_the_training_graph_differs_from_the_inference_build(trained, name):
    pair = trained(name).pair
    data = zoo.training_data(pair.input_shape, 6, seed=3)
    training, inference = (tfrun.run(g, {"input:0": data}, ["output:0"])[0] for g in (pair.training, pair.inference))
    assert inference.dtype == np.float32
    # Far above what a fix may differ by: a fix that left the layers alone fails.
    assert tfrun.relative_error(training, inference) > max(10 * _tolerance(name), 0.01)


@pytest.mark.parametrize("name", BN_FORMS)
def test_the_moving_statistics_really_moved(trained, name):
    import tensorflow as tf

    reader = tf.train.load_checkpoint(trained(name).prefix)
    names = reader.get_variable_to_shape_map()
    means = [reader.get_tensor(n) for n in names if "moving_mean" in n]
    variances = [reader.get_tensor(n) for n in names if "moving_variance" in n]
    assert len(means) == len(variances) == 2
    assert all(np.abs(m).max() > 0.1 for m in means)
    assert all(np.abs(v - 1).max() > 0.1 for v in variances)


def test_a_ghost_batch_training_graph_needs_a_multiple_of_the_virtual_batch(trained):
    import tensorflow as tf

    pair = trained("tf_keras_ghost_bn").pair
    data = zoo.training_data(pair.input_shape, 6, seed=3)
    tfrun.run(pair.training, {"input:0": data}, ["output:0"])
    with pytest.raises(tf.errors.InvalidArgumentError, match="reshape"):
        tfrun.run(pair.training, {"input:0": data[:1]}, ["output:0"])
    tfrun.run(pair.inference, {"input:0": data[:1]}, ["output:0"])


# -- scan -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BN_FORMS)
def test_scan_reports_every_batch_norm_layer_exactly_once(tmp_path, trained, name):
    findings = api.scan(api.load(write_training(tmp_path, trained(name).pair)))
    code = "GD101" if name in FUSED_FORMS else "GD102"
    reported = sorted((_finding_layer(f, zoo_forms.BN_LAYERS), f.code) for f in findings)
    assert reported == [(layer, code) for layer in zoo_forms.BN_LAYERS], [(f.code, f.node) for f in findings]


@pytest.mark.parametrize("name", NOISE_FORMS)
def test_scan_reports_every_noise_layer_exactly_once(tmp_path, trained, name):
    findings = api.scan(api.load(write_training(tmp_path, trained(name).pair)))
    reported = Counter((_layer_of(f.node, zoo_forms.NOISE_LAYERS), f.code) for f in findings)
    assert reported == Counter(NOISE_CODES.items()), [(f.code, f.node) for f in findings]


# -- fix --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BN_FORMS)
def test_fix_with_the_checkpoint_equals_the_inference_build(tmp_path, trained, name):
    model = trained(name)
    path = write_training(tmp_path, model.pair)
    fixed = _fix_with_cli(tmp_path, path, "--checkpoint", model.prefix)
    assert tfrun.error_against_inference(model.pair, fixed) <= _tolerance(name)


@pytest.mark.parametrize("name", STATISTICS_IN_GRAPH)
def test_fix_uses_the_statistics_left_in_the_graph(tmp_path, trained, name):
    # Renorm's graph also holds renorm_mean and renorm_stddev, which differ from the moving statistics.
    pair = trained(name).pair
    fixed = _fix_with_cli(tmp_path, write_training(tmp_path, pair))
    assert tfrun.error_against_inference(pair, fixed) <= _tolerance(name)


@pytest.mark.parametrize("name", NOISE_FORMS)
def test_fix_of_the_noise_layers_equals_the_inference_build(tmp_path, trained, name):
    pair = trained(name).pair
    fixed = _fix_with_cli(tmp_path, write_training(tmp_path, pair))
    assert tfrun.error_against_inference(pair, fixed) <= _tolerance(name)


# -- probe ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BN_FORMS)
def test_the_probe_names_the_first_batch_norm_layer_first(tmp_path, trained, name):
    report = api.probe(api.load(write_training(tmp_path, trained(name).pair)))
    assert report.roots, "no divergence found"
    assert _layer_of(report.roots[0].node, zoo_forms.BN_LAYERS) == "bn1", [r.node for r in report.roots]


# -- verification's per-layer check ------------------------------------------------------------


def _patched_fix(monkeypatch, change):
    """Make every decomposed BatchNorm fix pass through `change(site, fix) -> fix`."""
    import dataclasses

    from graphdoc.rules.gd102_batch_moments_batchnorm import DecomposedBatchNormSite

    honest = DecomposedBatchNormSite.fix

    def patched(self, stats, *, safe=True):
        return dataclasses.replace(honest(self, stats, safe=safe), edits=change(self, honest(self, stats, safe=safe)))

    monkeypatch.setattr(DecomposedBatchNormSite, "fix", patched)


def _keeps_renorm_corrections(site, fix):
    composed = {tensor for tensor, _ in site.normalization.uncorrected}
    return tuple(edit for edit in fix.edits if getattr(edit, "old", None) not in composed)


def _swaps_mean_and_variance(site, fix):
    from graphdoc.graph.edits import RedirectUses

    swap = {site.mean_out: site.variance_out, site.variance_out: site.mean_out}
    return tuple(RedirectUses(e.scope, swap[e.old], e.new) if getattr(e, "old", None) in swap else e
                 for e in fix.edits)


@pytest.mark.parametrize(("name", "change"), [
    ("tf_keras_renorm", _keeps_renorm_corrections),
    ("tf_keras_sync_bn", _swaps_mean_and_variance),
])
def test_a_fix_wiring_the_wrong_tensors_fails_the_per_layer_check_and_writes_nothing(
        tmp_path, trained, capsys, monkeypatch, name, change):
    model = trained(name)
    path = write_training(tmp_path, model.pair)
    _patched_fix(monkeypatch, change)
    output = tmp_path / "fixed.pb"
    assert main(["fix", str(path), "-o", str(output), "--checkpoint", model.prefix]) == 2
    error = capsys.readouterr().err
    assert not output.exists()
    # The wrong fix is batch-independent: only the formula sees it.
    assert "layers compute their inference formula" in error and "bn1 differs" in error, error
    assert "batch-independent" not in error and "imports and runs" not in error
