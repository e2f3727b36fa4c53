"""ONNX models: scan, fix, probe and compare, against the inference export of the same model.

Test models (samples/zoo_onnx.py): written with onnx.helper for each training
form, converted by tf2onnx from TF1 training graphs trained for real steps,
and exported by PyTorch in training mode (samples/torch_convnet_*.onnx). Each
comes with its inference-mode twin, the same weights: the numerical truth.
Runs use onnxruntime with graph optimizations disabled, where live dropout
stays live.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import zoo_onnx
from graphdoc import api
from graphdoc.cli import main

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
TORCH = zoo_onnx.OnnxPair((SAMPLES / "torch_convnet_training.onnx").read_bytes(),
                          (SAMPLES / "torch_convnet_eval.onnx").read_bytes(), "input", (3, 8, 8),
                          {"/bn/BatchNormalization": "GD101", "/drop/Dropout": "GD201"})

HELPER_PAIRS = {
    "batchnorm_training_mode": zoo_onnx.helper_batchnorm_training_mode,
    "batchnorm_extra_outputs_consumed": zoo_onnx.helper_batchnorm_extra_outputs_consumed,
    "dropout_constant": lambda: zoo_onnx.helper_dropout("constant"),
    "dropout_constant_node": lambda: zoo_onnx.helper_dropout("constant_node"),
    "dropout_graph_input": lambda: zoo_onnx.helper_dropout("graph_input"),
    "random_mask_mul": lambda: zoo_onnx.helper_random_mask("mul"),
    "random_mask_where": lambda: zoo_onnx.helper_random_mask("where"),
    "random_mask_bernoulli": lambda: zoo_onnx.helper_random_mask("bernoulli"),
    "decomposed_batch_moments": zoo_onnx.helper_decomposed_batch_moments,
    "decomposed_batch_moments_opset18": lambda: zoo_onnx.helper_decomposed_batch_moments(opset=18),
    "if_subgraph_graph_input": lambda: zoo_onnx.helper_if_subgraph("graph_input"),
    "if_subgraph_constant": lambda: zoo_onnx.helper_if_subgraph("constant"),
    "torch_training_export": lambda: TORCH,
}
TF2ONNX_PAIRS = {"tf2onnx_slim_fused": zoo_onnx.tf2onnx_slim_fused, "tf2onnx_moments": zoo_onnx.tf2onnx_moments}


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Every pair, built once: the tf2onnx ones train a TF1 graph for real steps."""
    built = {name: build() for name, build in HELPER_PAIRS.items()}
    for name, build in TF2ONNX_PAIRS.items():
        built[name] = build(tmp_path_factory.mktemp(name))
    return built


ALL = [*HELPER_PAIRS, *TF2ONNX_PAIRS]


def _write(tmp_path: Path, model: bytes, name: str = "model.onnx") -> Path:
    path = tmp_path / name
    path.write_bytes(model)
    return path


def _scan(path: Path, checkpoint=None) -> dict[str, str]:
    findings = api.scan(api.load(path), checkpoint=checkpoint)
    return {finding.node: finding.code for finding in findings}


def _relative(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


@pytest.mark.parametrize("name", ALL)
def test_scan_reports_each_training_layer_and_dropout_and_nothing_on_the_inference_export(name, pairs, tmp_path):
    pair = pairs[name]
    assert _scan(_write(tmp_path, pair.training), pair.checkpoint) == pair.expected
    assert _scan(_write(tmp_path, pair.inference, "inference.onnx"), pair.checkpoint) == {}


def test_per_sample_normalizations_are_not_reported(tmp_path):
    pair = zoo_onnx.per_sample_norms()
    assert _scan(_write(tmp_path, pair.training)) == {}


@pytest.mark.parametrize("name", ALL)
def test_fix_equals_the_inference_export_alone_and_in_a_batch(name, pairs, tmp_path):
    pair = pairs[name]
    source, fixed = _write(tmp_path, pair.training), tmp_path / "fixed.onnx"
    args = ["fix", str(source), "-o", str(fixed), *(["--checkpoint", pair.checkpoint] if pair.checkpoint else [])]
    assert main(args) == 0
    model, original = onnx.load(str(fixed)), onnx.load(str(source))
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == original.ir_version
    assert list(model.opset_import) == list(original.opset_import)
    data = zoo_onnx.batch(pair, 6, seed=3)
    feeds = {pair.input_name: data, **pair.extra_feeds}
    run_twice = zoo_onnx.session(fixed.read_bytes())
    [first], [again] = run_twice(feeds)[:1], run_twice(feeds)[:1]
    [expected] = zoo_onnx.run(pair.inference, feeds)[:1]
    assert _relative(first, expected) <= 1e-5
    assert np.array_equal(first, again)  # deterministic: no mask left
    if pair.fixed_batch is None:  # one sample alone computes what it computes in the batch
        for index in (0, 5):
            alone = {**feeds, pair.input_name: data[index:index + 1]}
            [single] = zoo_onnx.run(fixed.read_bytes(), alone)[:1]
            assert _relative(single, expected[index:index + 1]) <= 1e-5


def test_the_training_exports_really_are_batch_dependent_or_random(pairs):
    """The test models' premise: as exported, the same sample computes different things."""
    for name in ALL:
        pair = pairs[name]
        data = zoo_onnx.batch(pair, 6, seed=3)
        other = zoo_onnx.batch(pair, 6, seed=4)
        other[0] = data[0]
        run = zoo_onnx.session(pair.training)
        feeds = {pair.input_name: data, **pair.extra_feeds}
        first, again = run(feeds)[0], run(feeds)[0]
        beside_others = run({**feeds, pair.input_name: other})[0]
        assert _relative(first, again) > 1e-4 or _relative(first[:1], beside_others[:1]) > 1e-4, name


def test_tf2onnx_batch_moments_need_the_checkpoint_and_say_so(pairs, tmp_path, capsys):
    pair = pairs["tf2onnx_slim_fused"]
    findings = api.scan(api.load(_write(tmp_path, pair.training)))
    moments = [finding for finding in findings if finding.code == "GD102"]
    assert len(moments) == 2 and all(finding.fix is None for finding in moments)
    assert all("--checkpoint" in finding.unfixable for finding in moments)
    output = tmp_path / "fixed.onnx"
    assert main(["fix", str(tmp_path / "model.onnx"), "-o", str(output)]) == 2  # not a model that looks repaired
    assert "lack moving statistics" in capsys.readouterr().err and not output.exists()
    assert main(["fix", str(tmp_path / "model.onnx"), "-o", str(output), "--select", "GD2"]) == 0
    assert main(["scan", str(output), "--select", "GD2"]) == 0  # the dropout went
    assert main(["scan", str(output)]) == 1  # the batch moments were left, as asked


@pytest.mark.parametrize("name, first", [("batchnorm_training_mode", "bn"),
                                         ("torch_training_export", "/bn/BatchNormalization"),
                                         ("tf2onnx_slim_fused", "ReduceMean__14")])
def test_probe_names_the_first_training_batchnorm_first_and_finds_nothing_on_the_inference_export(
        name, first, pairs, tmp_path):
    pair = pairs[name]
    report = api.probe(api.load(_write(tmp_path, pair.training)))
    assert report.roots and report.roots[0].node == first
    assert report.roots[0].finding is not None and report.roots[0].finding.code in ("GD101", "GD102")
    assert api.probe(api.load(_write(tmp_path, pair.inference, "inference.onnx"))).roots == []


def test_probe_sees_a_live_dropout_as_randomness(pairs, tmp_path):
    report = api.probe(api.load(_write(tmp_path, pairs["dropout_constant"].training)))
    [root] = report.roots
    assert root.node == "dropout" and root.run_difference > 1e-4 and root.finding.code == "GD201"


def test_compare_says_why_the_training_export_differs(pairs, tmp_path, capsys):
    pair = pairs["torch_training_export"]
    training, inference = _write(tmp_path, pair.training), _write(tmp_path, pair.inference, "eval.onnx")
    assert main(["compare", str(training), str(inference)]) == 1
    verdict = " ".join(capsys.readouterr().out.split())
    assert "Outputs differ beyond tolerance 1e-05" in verdict and "(GD101)" in verdict and "(GD201)" in verdict
    fixed = tmp_path / "fixed.onnx"
    assert main(["fix", str(training), "-o", str(fixed)]) == 0
    capsys.readouterr()
    assert main(["compare", str(fixed), str(inference), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"]["agree"] is True


def test_reports_in_every_format(pairs, tmp_path, capsys):
    from test_reports_next_steps import _validate

    path = _write(tmp_path, pairs["torch_training_export"].training)
    assert main(["scan", str(path), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    _validate(report, "scan-v1")
    assert {f["code"] for f in report["models"][0]["findings"]} == {"GD101", "GD201"}
    assert report["models"][0]["inputs"] == [{"name": "input", "dtype": "float32", "shape": [-1, 3, 8, 8]}]
    assert main(["scan", str(path), "--format", "sarif"]) == 1
    sarif = json.loads(capsys.readouterr().out)
    assert {r["ruleId"] for r in sarif["runs"][0]["results"]} == {"GD101", "GD201"}
    assert main(["fix", str(path), "-o", str(tmp_path / "fixed.onnx"), "--format", "json"]) == 0
    _validate(json.loads(capsys.readouterr().out), "fix-v1")
    assert main(["probe", str(path), "--format", "json"]) == 1
    _validate(json.loads(capsys.readouterr().out), "probe-v1")


def test_a_fix_that_wires_the_wrong_statistics_fails_verification_and_writes_nothing(pairs, tmp_path, monkeypatch,
                                                                                    capsys):
    from graphdoc.onnx import rules

    original = rules._moments_fix

    def swapped(moments, mean, variance, source, **options):
        return original(moments, variance, mean, source, **options)  # mean and variance the wrong way round

    monkeypatch.setattr(rules, "_moments_fix", swapped)
    pair = pairs["tf2onnx_slim_fused"]
    output = tmp_path / "fixed.onnx"
    code = main(["fix", str(_write(tmp_path, pair.training)), "-o", str(output), "--checkpoint", pair.checkpoint])
    assert code == 2 and not output.exists()
    assert "layers compute their inference formula" in capsys.readouterr().err


def test_a_deliberate_dropout_is_kept(pairs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "graphdoc.toml").write_text('keep = ["/drop/*"]\n')
    path = _write(tmp_path, pairs["torch_training_export"].training)
    assert main(["fix", str(path), "-o", "fixed.onnx", "--no-verify"]) == 0
    ops = {node.op_type for node in onnx.load("fixed.onnx").graph.node}
    assert "Dropout" in ops  # kept, as configured
    assert main(["scan", "fixed.onnx"]) == 0  # kept findings do not fail


def test_scanning_an_onnx_file_imports_neither_tensorflow_nor_onnxruntime(pairs, tmp_path):
    path = _write(tmp_path, pairs["tf2onnx_slim_fused"].training)
    script = (f"import sys; from graphdoc.cli import main; code = main(['scan', {str(path)!r}]); "
              "print(code, sorted(m for m in ('tensorflow', 'onnxruntime', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "1 []"


def test_a_broken_onnx_file_is_one_sentence(tmp_path, capsys):
    broken = _write(tmp_path, b"\x08\x07\x12\xff\xff\xff", "broken.onnx")
    assert main(["scan", str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("graphdoc: error: ") and len(err.strip().splitlines()) == 1 and "ONNX" in err


def _with_optimizer_step(tmp_path: Path) -> Path:
    """The torch sample with an optimizer step of ONNX's training domain left in it, as a
    training-graph export has one: Momentum updating the fc weights, its result a graph output."""
    from onnx import TensorProto, helper

    model = onnx.load_from_string(TORCH.training)
    graph = model.graph
    graph.initializer.extend([onnx.numpy_helper.from_array(np.array(0.01, np.float32), "lr"),
                              onnx.numpy_helper.from_array(np.array(1, np.int64), "step"),
                              onnx.numpy_helper.from_array(np.zeros((5, 256), np.float32), "fc.weight.grad"),
                              onnx.numpy_helper.from_array(np.zeros((5, 256), np.float32), "fc.weight.velocity")])
    graph.node.append(helper.make_node("Momentum", ["lr", "step", "fc.weight", "fc.weight.grad", "fc.weight.velocity"],
                                       ["fc.weight.new", "fc.weight.velocity.new"], name="optimizer/momentum",
                                       domain="ai.onnx.preview.training", alpha=0.9, beta=1.0, mode="standard",
                                       norm_coefficient=0.0))
    graph.output.append(helper.make_tensor_value_info("fc.weight.new", TensorProto.FLOAT, [5, 256]))
    model.opset_import.append(helper.make_opsetid("ai.onnx.preview.training", 1))
    return _write(tmp_path, model.SerializeToString(), "with_optimizer.onnx")


def test_an_optimizer_step_left_in_the_export_is_reported_and_dropped(tmp_path):
    path = _with_optimizer_step(tmp_path)
    assert _scan(path) == {**TORCH.expected, "optimizer/momentum": "GD303"}
    fixed = tmp_path / "fixed.onnx"
    assert main(["fix", str(path), "-o", str(fixed)]) == 0
    model = onnx.load(str(fixed))
    assert [output.name for output in model.graph.output] == ["output"]
    assert not any(node.domain == "ai.onnx.preview.training" for node in model.graph.node)
    data = zoo_onnx.batch(TORCH, 4)
    [expected] = zoo_onnx.run(TORCH.inference, {"input": data})
    assert _relative(zoo_onnx.run(fixed.read_bytes(), {"input": data})[0], expected) <= 1e-5


def test_show_and_the_html_reports_reach_onnx_nodes(tmp_path, capsys):
    path = SAMPLES / "torch_convnet_training.onnx"
    assert main(["show", str(path), "/bn/BatchNormalization", "--depth", "1"]) == 0
    tree = capsys.readouterr().out
    assert "/conv/Conv (Conv)" in tree and "/relu/Relu (Relu)" in tree and "GD101" in tree
    probed, scanned = tmp_path / "probe.html", tmp_path / "scan.html"
    assert main(["probe", str(path), "--html", str(probed)]) == 1
    page = probed.read_text()
    assert "Divergence profile" in page and "/bn/BatchNormalization" in page and "<svg" in page
    assert main(["scan", str(path), "--html", str(scanned)]) == 1
    assert "/drop/Dropout" in scanned.read_text() and "/relu/Relu" in scanned.read_text()  # its neighbourhood


def test_a_node_inside_an_if_branch_is_reached_by_its_scope(pairs, tmp_path, capsys):
    path = _write(tmp_path, pairs["if_subgraph_graph_input"].training)
    [finding] = api.scan(api.load(path))
    assert finding.location == "bn_switch/then_branch::bn_train"
    assert main(["show", str(path), finding.location, "--depth", "1"]) == 0
    assert "bn_train (BatchNormalization)" in capsys.readouterr().out


def _loop_with_batchnorm(training: bool) -> bytes:
    """A Loop run once whose body normalizes the carried value with a BatchNormalization, its
    statistics read from the main graph: the subgraph form of the bug."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    channels = 4
    statistics = [numpy_helper.from_array(value.astype(np.float32), name) for name, value in (
        ("scale", rng.uniform(0.5, 2, channels)), ("bias", rng.normal(size=channels)),
        ("mean", rng.normal(size=channels)), ("var", rng.uniform(0.5, 2, channels)))]
    outputs = ["v_out", "rm", "rv"] if training else ["v_out"]
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"], name="keep_going"),
         helper.make_node("BatchNormalization", ["v_in", "scale", "bias", "mean", "var"], outputs, name="bn",
                          training_mode=int(training))],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", TensorProto.FLOAT, ["N", channels, 4, 4])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, ["N", channels, 4, 4])])
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "go", "input"], ["output"], name="loop", body=body)], "looped",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", channels, 4, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", channels, 4, 4])],
        [*statistics, numpy_helper.from_array(np.array(1, np.int64), "trips"),
         numpy_helper.from_array(np.array(True), "go")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]).SerializeToString()


def test_a_batchnorm_inside_a_loop_body_is_fixed_there(tmp_path):
    path = _write(tmp_path, _loop_with_batchnorm(training=True))
    [finding] = api.scan(api.load(path))
    assert (finding.code, finding.location) == ("GD101", "loop/body::bn")
    report = api.probe(api.load(path))
    assert [root.node for root in report.roots] == ["loop"] and report.roots[0].finding.location == finding.location
    fixed = tmp_path / "fixed.onnx"
    assert main(["fix", str(path), "-o", str(fixed)]) == 0
    data = np.random.default_rng(1).normal(size=(5, 4, 4, 4)).astype(np.float32)
    [expected] = zoo_onnx.run(_loop_with_batchnorm(training=False), {"input": data})
    assert _relative(zoo_onnx.run(fixed.read_bytes(), {"input": data})[0], expected) <= 1e-5
    assert _relative(zoo_onnx.run(fixed.read_bytes(), {"input": data[:1]})[0], expected[:1]) <= 1e-5


def test_probe_runs_on_the_samples_given_and_says_when_they_are_too_few(tmp_path, capsys):
    path = SAMPLES / "torch_convnet_training.onnx"
    data = zoo_onnx.batch(TORCH, 5, seed=9)
    np.save(tmp_path / "five.npy", data)
    report = api.probe(api.load(path), inputs=tmp_path / "five.npy")
    assert report.batch == 3 and report.roots[0].node == "/bn/BatchNormalization"
    np.save(tmp_path / "one.npy", data[:1])
    assert main(["probe", str(path), "--inputs", str(tmp_path / "one.npy")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("graphdoc: error: --inputs has 1 samples") and len(err.splitlines()) == 1


def test_calibration_measures_lost_statistics_as_an_unsafe_fix(pairs, tmp_path, capsys):
    """A tf2onnx model without its checkpoint: --calibrate measures each BatchNorm's input."""
    pair = pairs["tf2onnx_slim_fused"]
    source, fixed, data = _write(tmp_path, pair.training), tmp_path / "fixed.onnx", tmp_path / "calibration.npy"
    samples = zoo_onnx.batch(pair, 64, seed=7)
    np.save(data, samples)
    assert main(["fix", str(source), "-o", str(fixed), "--calibrate", str(data)]) == 2
    assert "--unsafe-fixes" in capsys.readouterr().err and not fixed.exists()
    assert main(["fix", str(source), "-o", str(fixed), "--calibrate", str(data), "--unsafe-fixes"]) == 0
    # The first BatchNorm's input is its convolution, which no other layer changes: its statistics
    # over the calibration data are the per-channel moments of that tensor, computed here directly.
    model = onnx.load_from_string(pair.training)
    model.graph.output.append(onnx.helper.make_empty_tensor_value_info("conv1/Conv2D:0"))
    convolved = np.asarray(zoo_onnx.run(model.SerializeToString(), {pair.input_name: samples})[-1], np.float64)
    written = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(fixed)).graph.initializer}
    assert _relative(np.ravel(written["conv1/BatchNorm/graphdoc_moving_mean"]), convolved.mean(axis=(0, 2, 3))) <= 1e-5
    assert _relative(np.ravel(written["conv1/BatchNorm/graphdoc_moving_variance"]), convolved.var(axis=(0, 2, 3))) <= 1e-4
    batch = zoo_onnx.batch(pair, 6, seed=3)
    [together] = zoo_onnx.run(fixed.read_bytes(), {pair.input_name: batch})
    [alone] = zoo_onnx.run(fixed.read_bytes(), {pair.input_name: batch[2:3]})
    assert _relative(alone, together[2:3]) <= 1e-5


def test_a_sampled_latent_is_not_dropout(tmp_path):
    """A VAE's reparameterization, mean + exp(log_var / 2) * eps with eps ~ N(0, 1): random by
    design, and no mask; nothing to report."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Split", ["input"], ["mean", "log_var"], name="split", axis=1, num_outputs=2),
             helper.make_node("Mul", ["log_var", "half"], ["half_log_var"], name="halve"),
             helper.make_node("Exp", ["half_log_var"], ["std"], name="std"),
             helper.make_node("RandomNormalLike", ["std"], ["eps"], name="eps"),
             helper.make_node("Mul", ["std", "eps"], ["noise"], name="scale_noise"),
             helper.make_node("Add", ["mean", "noise"], ["output"], name="sample")]
    graph = helper.make_graph(nodes, "vae_sample", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 8])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 4])],
                              [numpy_helper.from_array(np.array(0.5, np.float32), "half")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    assert _scan(_write(tmp_path, model.SerializeToString())) == {}


def test_nodes_that_share_a_name_are_each_found_and_fixed(tmp_path):
    """ONNX allows two nodes one name; both BatchNormalizations are reported and fixed."""
    model = onnx.load_from_string(zoo_onnx.helper_batchnorm_training_mode().training)
    bn = next(node for node in model.graph.node if node.op_type == "BatchNormalization")
    relu = next(node for node in model.graph.node if node.op_type == "Relu")
    twin = onnx.helper.make_node("BatchNormalization", [relu.output[0], *bn.input[1:]], ["twin_out", "m2", "v2"],
                                 name=bn.name, training_mode=1)
    model.graph.node.append(twin)
    model.graph.output[0].name = "twin_out"  # the same shape as the ReLU it normalizes
    path = _write(tmp_path, model.SerializeToString())
    findings = api.scan(api.load(path))
    assert sorted(f.node for f in findings) == ["bn", "bn__twin_out"]
    fixed = tmp_path / "fixed.onnx"
    assert main(["fix", str(path), "-o", str(fixed)]) == 0
    assert all(not onnx.helper.get_attribute_value(a) for n in onnx.load(str(fixed)).graph.node
               for a in n.attribute if a.name == "training_mode")


def test_without_the_onnx_package_the_error_says_what_to_install(monkeypatch):
    from graphdoc.errors import LoadError

    def missing():
        raise ImportError("the onnx package is not installed")

    monkeypatch.setattr("graphdoc.onnx.model.messages", missing)
    with pytest.raises(LoadError, match=r"is an ONNX model; reading it needs the onnx package \(pip install onnx\)"):
        api.load(SAMPLES / "torch_convnet_training.onnx")
