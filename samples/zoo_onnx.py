"""ONNX test models: training-mode exports and their inference-mode references.

Every builder returns an `OnnxPair`: the model as exported (or written) in
training mode, and the same model with the same weights in inference mode,
which is the numerical reference a fix must reproduce. `expected` names the
nodes of `training` where graphdoc must report a finding:

- GD101: a BatchNormalization node with training_mode=1.
- GD102: a ReduceMean taking the batch mean (its axes include 0) of a tensor
  that is then normalized with it (tf2onnx's inference BatchNormalization fed
  by a ReduceMean, and decomposed forms).
- GD201: a Dropout node whose training_mode is true, or the random node of a
  hand-built random mask (RandomUniformLike, RandomUniform, Bernoulli).

Three kinds of models:

- written with onnx.helper (helper_*, per_sample_norms): every node named,
  weights seeded, opset 15 unless said otherwise; image inputs are NCHW
  (3, 8, 8), others (16,); the data input is "input", the output "output".
- converted with tf2onnx from TF1 training graphs built with tf-slim and
  tf.compat.v1 (tf2onnx_*): trained for real steps, their moving statistics
  are in the checkpoint only; NHWC input "input:0" (8, 8, 3), output
  "output:0". Node names are tf2onnx's, read from the converted graph.
- exported by PyTorch's TorchScript-based exporter (torch_training_export).

`run` runs a model with onnxruntime on CPU, graph optimizations disabled
(onnxruntime removes a live Dropout when it optimizes), `session` runs one
session repeatedly (see `run` on random ops); `batch` makes inputs.

The helper models and `run` need onnx, onnxruntime and numpy only; the
tf2onnx builders import tensorflow, tf-slim, tf_keras and tf2onnx (and zoo,
zoo_tf1 beside this file) when called, torch_training_export imports torch.
"""

from __future__ import annotations

import copy
import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INPUT = "input"
OUTPUT = "output"
TRAINING_INPUT = "training"  # the bool graph input of the switch-driven models
IMAGE_SHAPE = (3, 8, 8)  # per-sample NCHW shape of the helper image models
VECTOR_SHAPE = (16,)  # per-sample shape of the helper dense models
TF_INPUT = "input:0"
TF_OUTPUT = "output:0"
TF_IMAGE_SHAPE = (8, 8, 3)  # NHWC, as the TF models take it


@dataclass
class OnnxPair:
    training: bytes  # serialized onnx.ModelProto exported/built in training mode
    inference: bytes  # the SAME model with the SAME weights in inference mode: the numerical reference
    input_name: str  # the graph input carrying the data
    input_shape: tuple  # per-sample shape, e.g. (8, 8, 3) (batch dim excluded)
    expected: dict[str, str]  # node name in `training` -> the finding code graphdoc must report there
    checkpoint: str | None = None  # TF checkpoint prefix, for tf2onnx conversions whose moving statistics are not in the ONNX file
    fixed_batch: int | None = None  # set when the input's batch dimension is fixed in the model
    extra_feeds: dict = field(default_factory=dict)  # other graph inputs to feed at run time (e.g. {"training": np.array(True)})


# -- Running ---------------------------------------------------------------------------------


def run(model_bytes: bytes, feeds: dict, *, optimized: bool = False) -> list[np.ndarray]:
    """Run `model_bytes` once with onnxruntime on CPU and return every graph output.

    Graph optimizations are disabled (ORT_DISABLE_ALL) unless `optimized`:
    onnxruntime's optimizer drops a Dropout even when its training_mode is
    true. Feeds that are not inputs of the model are ignored, so one feed dict
    (data plus a pair's extra_feeds) serves both members of a pair.

    Each call makes a new session. onnxruntime's random ops without a seed
    (RandomUniformLike, RandomUniform, Bernoulli) draw the SAME sequence in
    every new session of a process, so two `run` calls give the same mask, for
    sample 0 even at another batch size; use `session` to run twice in one
    session, where the mask changes. (Dropout draws a new mask per call either way.)
    """
    return session(model_bytes, optimized=optimized)(feeds)


def session(model_bytes: bytes, *, optimized: bool = False):
    """A function `feeds -> list of outputs` running one onnxruntime CPU session (see `run`)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimized else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    options.log_severity_level = 3
    inference_session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    names = {i.name for i in inference_session.get_inputs()}

    def run_once(feeds: dict) -> list[np.ndarray]:
        return inference_session.run(None, {name: value for name, value in feeds.items() if name in names})

    return run_once


def batch(pair: OnnxPair, count: int, seed: int = 0) -> np.ndarray:
    """A float32 batch for `pair`: shape (count, *input_shape), or (fixed_batch, ...) if the batch is fixed.

    Per-channel offsets and scales (channel = first axis of an NCHW sample,
    last axis otherwise), so batch statistics differ from 0 and 1.
    """
    count = pair.fixed_batch or count
    rng = np.random.default_rng(seed)
    shape = tuple(pair.input_shape)
    data = rng.normal(size=(count, *shape))
    nchw = len(shape) == 3 and shape[0] < shape[-1]
    channels = shape[0] if nchw else shape[-1]
    offsets = np.linspace(-1.0, 2.0, channels)
    scales = np.linspace(0.5, 1.5, channels)
    if nchw:
        offsets, scales = offsets[:, None, None], scales[:, None, None]
    return (data * scales + offsets).astype(np.float32)


# -- onnx.helper building blocks -------------------------------------------------------------


def _model(nodes, inputs, outputs, initializers, *, opset=15, name="graphdoc_zoo") -> bytes:
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="graphdoc-zoo")
    model.ir_version = helper.find_min_ir_version_for(model.opset_import)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _init(name, value, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def _input(name=INPUT, shape=IMAGE_SHAPE, batch_dim="batch"):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch_dim, *shape])


def _output(shape, name=OUTPUT):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _bool_input(name=TRAINING_INPUT):
    return helper.make_tensor_value_info(name, TensorProto.BOOL, [])


def _conv_bn_weights(rng, channels=4, in_channels=3):
    """Conv 3x3 weights and BatchNorm parameters with non-trivial running statistics."""
    return [
        _init("conv.weight", rng.normal(0.0, 0.4, (channels, in_channels, 3, 3))),
        _init("conv.bias", rng.normal(0.0, 0.2, channels)),
        _init("bn.scale", rng.normal(1.0, 0.3, channels)),
        _init("bn.bias", rng.normal(0.0, 0.3, channels)),
        _init("bn.running_mean", rng.normal(0.0, 0.5, channels)),
        _init("bn.running_var", rng.uniform(0.5, 2.0, channels)),
    ]


_BN_INPUTS = ["conv_out", "bn.scale", "bn.bias", "bn.running_mean", "bn.running_var"]
_BN_ATTRIBUTES = {"epsilon": 1e-5, "momentum": 0.9}


def _conv_node():
    return helper.make_node("Conv", [INPUT, "conv.weight", "conv.bias"], ["conv_out"], name="conv", pads=[1, 1, 1, 1])


def _bn_node(name, training: bool, outputs):
    return helper.make_node("BatchNormalization", _BN_INPUTS, outputs, name=name, training_mode=int(training),
                            **_BN_ATTRIBUTES)


# -- 1. BatchNormalization with training_mode=1 ----------------------------------------------


def helper_batchnorm_training_mode() -> OnnxPair:
    """Conv "conv" -> BatchNormalization "bn" (training_mode=1, outputs bn_out, bn_running_mean,
    bn_running_var; opset 15) -> Relu "relu". The reference: the same with training_mode=0 and one
    output. Initializers conv.weight, conv.bias, bn.scale, bn.bias, bn.running_mean, bn.running_var."""
    return _batchnorm_pair(consume_statistics=False)


def helper_batchnorm_extra_outputs_consumed() -> OnnxPair:
    """helper_batchnorm_training_mode whose BN output 1 (bn_running_mean, the updated running mean)
    is read by Identity "stats_identity" -> a second graph output "stats". In the reference,
    "stats_identity" reads the initializer bn.running_mean (what inference mode leaves unchanged)."""
    return _batchnorm_pair(consume_statistics=True)


def _batchnorm_pair(*, consume_statistics: bool) -> OnnxPair:
    initializers = _conv_bn_weights(np.random.default_rng(1))
    outputs = [_output(["batch", 4, 8, 8])]
    if consume_statistics:
        outputs.append(_output([4], "stats"))

    def build(training: bool) -> bytes:
        bn_outputs = ["bn_out", "bn_running_mean", "bn_running_var"] if training else ["bn_out"]
        nodes = [_conv_node(), _bn_node("bn", training, bn_outputs),
                 helper.make_node("Relu", ["bn_out"], [OUTPUT], name="relu")]
        if consume_statistics:
            source = "bn_running_mean" if training else "bn.running_mean"
            nodes.append(helper.make_node("Identity", [source], ["stats"], name="stats_identity"))
        return _model(nodes, [_input()], outputs, initializers)

    return OnnxPair(build(True), build(False), INPUT, IMAGE_SHAPE, {"bn": "GD101"})


# -- 2. Dropout with training_mode true ------------------------------------------------------


def _dense_weights(rng, hidden=8, classes=4):
    return [
        _init("fc1.weight", rng.normal(0.0, 0.4, (hidden, VECTOR_SHAPE[0]))),  # Gemm transB=1, as torch writes it
        _init("fc1.bias", rng.normal(0.2, 0.2, hidden)),
        _init("fc2.weight", rng.normal(0.0, 0.4, (hidden, classes))),
    ]


def _dense_head(middle):
    """Gemm "fc1" -> Relu "relu1" (-> relu1_out) -> `middle` nodes (-> head_in) -> MatMul "fc2"."""
    return [
        helper.make_node("Gemm", [INPUT, "fc1.weight", "fc1.bias"], ["fc1_out"], name="fc1", transB=1),
        helper.make_node("Relu", ["fc1_out"], ["relu1_out"], name="relu1"),
        *middle,
        helper.make_node("MatMul", ["head_in" if middle else "relu1_out", "fc2.weight"], [OUTPUT], name="fc2"),
    ]


def helper_dropout(kind: str = "constant") -> OnnxPair:
    """Gemm "fc1" -> Relu "relu1" -> Dropout "dropout" (ratio: initializer "dropout.ratio" = 0.5)
    -> MatMul "fc2", input (16,). Dropout's training_mode (input 2) is, by `kind`:
    "constant": the bool initializer "dropout.training_mode" = True;
    "graph_input": the bool scalar graph input "training", fed True (extra_feeds);
    "constant_node": the output of a Constant node "dropout/training_mode" (the form torch writes).
    The reference has NO Dropout node: Relu feeds fc2 directly."""
    if kind not in ("constant", "graph_input", "constant_node"):
        raise ValueError(f"kind must be 'constant', 'graph_input' or 'constant_node', not {kind!r}")
    weights = _dense_weights(np.random.default_rng(2))
    switch = {"constant": "dropout.training_mode", "graph_input": TRAINING_INPUT,
              "constant_node": "dropout/training_mode_out"}[kind]
    middle = [helper.make_node("Dropout", ["relu1_out", "dropout.ratio", switch], ["head_in"], name="dropout")]
    extra = [_init("dropout.ratio", 0.5)]
    inputs = [_input(shape=VECTOR_SHAPE)]
    extra_feeds = {}
    if kind == "constant":
        extra.append(_init("dropout.training_mode", True, np.bool_))
    elif kind == "constant_node":
        middle.insert(0, helper.make_node("Constant", [], [switch], name="dropout/training_mode",
                                          value=numpy_helper.from_array(np.array(True))))
    else:
        inputs.append(_bool_input())
        extra_feeds = {TRAINING_INPUT: np.array(True)}
    training = _model(_dense_head(middle), inputs, [_output(["batch", 4])], weights + extra)
    inference = _model(_dense_head([]), [_input(shape=VECTOR_SHAPE)], [_output(["batch", 4])], weights)
    return OnnxPair(training, inference, INPUT, VECTOR_SHAPE, {"dropout": "GD201"}, extra_feeds=extra_feeds)


# -- 3. Hand-built random-mask dropout -------------------------------------------------------

MASK_BATCH = 4  # the fixed batch of the "where" form (RandomUniform needs a static shape)


def helper_random_mask(form: str = "mul") -> OnnxPair:
    """Dropout written by hand on the hidden activation of Gemm "fc1" -> Relu "relu1" -> ... ->
    MatMul "fc2", rate 0.5 (initializer "dropout/rate"), scale 2 ("dropout/scale"):

    "mul": RandomUniformLike "dropout/random_uniform"(relu1_out) -> GreaterOrEqual
    "dropout/greater_equal"(u, rate) -> Cast "dropout/cast" -> Mul "dropout/mul_mask"(x, mask)
    -> Mul "dropout/mul_scale"; input (None, 16).
    "where": RandomUniform "dropout/random_uniform" (shape [4, 8]) -> GreaterOrEqual
    "dropout/greater_equal" -> Where "dropout/select"(mask, Mul "dropout/mul_scale"(x, scale),
    "dropout/zero"); the input's batch is FIXED at 4 (fixed_batch=4), as RandomUniform needs it.
    "bernoulli": Shape "dropout/shape"(x) -> Expand "dropout/expand"("dropout/keep_prob" = 0.5)
    -> Bernoulli "dropout/bernoulli" (float) -> Mul "dropout/mul_mask" -> Mul "dropout/mul_scale".

    The random node is the finding (GD201); no seed is set, so every run draws a new mask.
    The reference has no mask: Relu feeds fc2 directly."""
    weights = _dense_weights(np.random.default_rng(3))
    fixed = MASK_BATCH if form == "where" else None
    constants = [_init("dropout/rate", 0.5), _init("dropout/scale", 2.0)]
    node = helper.make_node
    if form == "mul":
        random_node = "dropout/random_uniform"
        middle = [
            node("RandomUniformLike", ["relu1_out"], ["dropout/uniform"], name=random_node, dtype=TensorProto.FLOAT),
            node("GreaterOrEqual", ["dropout/uniform", "dropout/rate"], ["dropout/keep"], name="dropout/greater_equal"),
            node("Cast", ["dropout/keep"], ["dropout/mask"], name="dropout/cast", to=TensorProto.FLOAT),
            node("Mul", ["relu1_out", "dropout/mask"], ["dropout/masked"], name="dropout/mul_mask"),
            node("Mul", ["dropout/masked", "dropout/scale"], ["head_in"], name="dropout/mul_scale"),
        ]
    elif form == "where":
        random_node = "dropout/random_uniform"
        hidden = weights[0].dims[0]
        middle = [
            node("RandomUniform", [], ["dropout/uniform"], name=random_node, dtype=TensorProto.FLOAT,
                 shape=[MASK_BATCH, hidden]),
            node("GreaterOrEqual", ["dropout/uniform", "dropout/rate"], ["dropout/keep"], name="dropout/greater_equal"),
            node("Mul", ["relu1_out", "dropout/scale"], ["dropout/scaled"], name="dropout/mul_scale"),
            node("Where", ["dropout/keep", "dropout/scaled", "dropout/zero"], ["head_in"], name="dropout/select"),
        ]
        constants.append(_init("dropout/zero", 0.0))
    elif form == "bernoulli":
        random_node = "dropout/bernoulli"
        middle = [
            node("Shape", ["relu1_out"], ["dropout/shape_out"], name="dropout/shape"),
            node("Expand", ["dropout/keep_prob", "dropout/shape_out"], ["dropout/probabilities"],
                 name="dropout/expand"),
            node("Bernoulli", ["dropout/probabilities"], ["dropout/mask"], name=random_node, dtype=TensorProto.FLOAT),
            node("Mul", ["relu1_out", "dropout/mask"], ["dropout/masked"], name="dropout/mul_mask"),
            node("Mul", ["dropout/masked", "dropout/scale"], ["head_in"], name="dropout/mul_scale"),
        ]
        constants.append(_init("dropout/keep_prob", 0.5))
    else:
        raise ValueError(f"form must be 'mul', 'where' or 'bernoulli', not {form!r}")
    inputs = [_input(shape=VECTOR_SHAPE, batch_dim=fixed or "batch")]
    outputs = [_output([fixed or "batch", 4])]
    training = _model(_dense_head(middle), inputs, outputs, weights + constants)
    inference = _model(_dense_head([]), inputs, outputs, weights)
    return OnnxPair(training, inference, INPUT, VECTOR_SHAPE, {random_node: "GD201"}, fixed_batch=fixed)


# -- 4. Batch moments written out --------------------------------------------------------------


def helper_decomposed_batch_moments(opset: int = 15) -> OnnxPair:
    """BatchNorm written out over batch moments, NHWC input (8, 8, 3):
    MatMul "proj" (channels 3 -> 4, a 1x1 convolution) -> x;
    ReduceMean "bn/moments/mean"(x, axes [0, 1, 2], keepdims=1) -> mean (the finding, GD102);
    Sub "bn/sub"(x, mean) -> d; Mul "bn/square"(d, d); ReduceMean "bn/moments/variance"(axes
    [0, 1, 2], keepdims=1) -> var; Add "bn/add_eps"(var, "bn/epsilon") -> Sqrt "bn/sqrt" -> Div
    "bn/div"(d, .) -> Mul "bn/mul_gamma"("bn/gamma") -> Add "bn/add_beta"("bn/beta") -> Relu "relu".

    The moving statistics are UNUSED initializers of the training model, as some exporters keep
    them: "bn/moving_mean" and "bn/moving_variance" (shape (4,), per channel, last axis). The
    reference is the same formula with them in place of the moments: "bn/sub"(x, bn/moving_mean),
    "bn/add_eps"(bn/moving_variance, bn/epsilon), no ReduceMean.

    `opset` 15 puts the ReduceMean axes in an attribute; 18 or later in an int64 initializer
    input ("bn/moments/axes")."""
    rng = np.random.default_rng(4)
    shape = TF_IMAGE_SHAPE
    weights = [
        _init("proj.weight", rng.normal(0.0, 0.6, (3, 4))),
        _init("bn/gamma", rng.normal(1.0, 0.3, 4)),
        _init("bn/beta", rng.normal(0.0, 0.3, 4)),
        _init("bn/epsilon", 1e-3),
        _init("bn/moving_mean", rng.normal(0.0, 0.5, 4)),
        _init("bn/moving_variance", rng.uniform(0.5, 2.0, 4)),
    ]
    axes = [0, 1, 2]

    def reduce_mean(name, source, output):
        if opset >= 18:
            return helper.make_node("ReduceMean", [source, "bn/moments/axes"], [output], name=name, keepdims=1)
        return helper.make_node("ReduceMean", [source], [output], name=name, axes=axes, keepdims=1)

    def build(training: bool) -> bytes:
        node = helper.make_node
        mean, var = ("bn/mean", "bn/variance") if training else ("bn/moving_mean", "bn/moving_variance")
        moments = [
            reduce_mean("bn/moments/mean", "x", "bn/mean"),
            node("Sub", ["x", mean], ["bn/centered"], name="bn/sub"),
            node("Mul", ["bn/centered", "bn/centered"], ["bn/squared"], name="bn/square"),
            reduce_mean("bn/moments/variance", "bn/squared", "bn/variance"),
        ]
        if not training:
            moments = [moments[1]]
        nodes = [
            node("MatMul", [INPUT, "proj.weight"], ["x"], name="proj"),
            *moments,
            node("Add", [var, "bn/epsilon"], ["bn/var_eps"], name="bn/add_eps"),
            node("Sqrt", ["bn/var_eps"], ["bn/std"], name="bn/sqrt"),
            node("Div", ["bn/centered", "bn/std"], ["bn/normalized"], name="bn/div"),
            node("Mul", ["bn/normalized", "bn/gamma"], ["bn/scaled"], name="bn/mul_gamma"),
            node("Add", ["bn/scaled", "bn/beta"], ["bn/out"], name="bn/add_beta"),
            node("Relu", ["bn/out"], [OUTPUT], name="relu"),
        ]
        extra = [_init("bn/moments/axes", axes, np.int64)] if training and opset >= 18 else []
        return _model(nodes, [_input(shape=shape)], [_output(["batch", 8, 8, 4])], weights + extra, opset=opset)

    return OnnxPair(build(True), build(False), INPUT, shape, {"bn/moments/mean": "GD102"})


# -- 5. Per-sample normalizations: no findings -----------------------------------------------


def per_sample_norms() -> OnnxPair:
    """Normalizations over non-batch axes only; graphdoc must report nothing. Opset 21, NCHW
    input (4, 8, 8):
    Conv "conv" (4 -> 8) -> InstanceNormalization "instance_norm" -> GroupNormalization
    "group_norm" (2 groups) -> LayerNormalization "layer_norm" (axis 1: C, H, W) ->
    squeeze-excitation: ReduceMean "se/squeeze" (axes [2, 3], keepdims) -> Conv "se/reduce" ->
    Relu "se/relu" -> Conv "se/expand" -> Sigmoid "se/gate" -> Mul "se/excite" ->
    GroupNorm written out: Reshape "gn2/reshape" [0, 2, -1] -> ReduceMean "gn2/mean" (axes [2])
    -> Sub "gn2/sub" -> Mul "gn2/square" -> ReduceMean "gn2/variance" (axes [2]) -> Add, Sqrt, Div
    -> Reshape "gn2/reshape_back" -> Mul "gn2/mul_gamma" -> Add "gn2/add_beta" ->
    LayerNorm over the last axis written out: ReduceMean "ln2/mean" (axes [-1]) ... ReduceMean
    "ln2/variance" (axes [-1]) -> GlobalAveragePool "pool" -> Flatten "flatten" -> Gemm "fc".
    `training` and `inference` are the same bytes; expected is empty."""
    rng = np.random.default_rng(5)
    c = 8
    node = helper.make_node
    weights = [
        _init("conv.weight", rng.normal(0.0, 0.3, (c, 4, 3, 3))),
        _init("conv.bias", rng.normal(0.0, 0.2, c)),
        _init("instance_norm.scale", rng.normal(1.0, 0.2, c)),
        _init("instance_norm.bias", rng.normal(0.0, 0.2, c)),
        _init("group_norm.scale", rng.normal(1.0, 0.2, c)),
        _init("group_norm.bias", rng.normal(0.0, 0.2, c)),
        _init("layer_norm.scale", rng.normal(1.0, 0.2, (c, 8, 8))),
        _init("layer_norm.bias", rng.normal(0.0, 0.2, (c, 8, 8))),
        _init("se/spatial_axes", [2, 3], np.int64),
        _init("se/reduce.weight", rng.normal(0.0, 0.4, (2, c, 1, 1))),
        _init("se/reduce.bias", rng.normal(0.0, 0.1, 2)),
        _init("se/expand.weight", rng.normal(0.0, 0.4, (c, 2, 1, 1))),
        _init("se/expand.bias", rng.normal(0.0, 0.1, c)),
        _init("gn2/group_shape", [0, 2, -1], np.int64),
        _init("gn2/axes", [2], np.int64),
        _init("gn2/gamma", rng.normal(1.0, 0.2, (c, 1, 1))),
        _init("gn2/beta", rng.normal(0.0, 0.2, (c, 1, 1))),
        _init("ln2/axes", [-1], np.int64),
        _init("epsilon", 1e-5),
        _init("fc.weight", rng.normal(0.0, 0.4, (3, c))),
        _init("fc.bias", rng.normal(0.0, 0.1, 3)),
    ]

    def moments(prefix, source, axes):
        return [
            node("ReduceMean", [source, axes], [f"{prefix}/mean_out"], name=f"{prefix}/mean", keepdims=1),
            node("Sub", [source, f"{prefix}/mean_out"], [f"{prefix}/centered"], name=f"{prefix}/sub"),
            node("Mul", [f"{prefix}/centered", f"{prefix}/centered"], [f"{prefix}/squared"], name=f"{prefix}/square"),
            node("ReduceMean", [f"{prefix}/squared", axes], [f"{prefix}/variance_out"], name=f"{prefix}/variance",
                 keepdims=1),
            node("Add", [f"{prefix}/variance_out", "epsilon"], [f"{prefix}/var_eps"], name=f"{prefix}/add_eps"),
            node("Sqrt", [f"{prefix}/var_eps"], [f"{prefix}/std"], name=f"{prefix}/sqrt"),
            node("Div", [f"{prefix}/centered", f"{prefix}/std"], [f"{prefix}/normalized"], name=f"{prefix}/div"),
        ]

    nodes = [
        node("Conv", [INPUT, "conv.weight", "conv.bias"], ["conv_out"], name="conv", pads=[1, 1, 1, 1]),
        node("InstanceNormalization", ["conv_out", "instance_norm.scale", "instance_norm.bias"], ["in_out"],
             name="instance_norm", epsilon=1e-5),
        node("GroupNormalization", ["in_out", "group_norm.scale", "group_norm.bias"], ["gn_out"], name="group_norm",
             num_groups=2, epsilon=1e-5),
        node("LayerNormalization", ["gn_out", "layer_norm.scale", "layer_norm.bias"], ["ln_out"], name="layer_norm",
             axis=1, epsilon=1e-5),
        node("ReduceMean", ["ln_out", "se/spatial_axes"], ["se/squeezed"], name="se/squeeze", keepdims=1),
        node("Conv", ["se/squeezed", "se/reduce.weight", "se/reduce.bias"], ["se/reduced"], name="se/reduce"),
        node("Relu", ["se/reduced"], ["se/relu_out"], name="se/relu"),
        node("Conv", ["se/relu_out", "se/expand.weight", "se/expand.bias"], ["se/expanded"], name="se/expand"),
        node("Sigmoid", ["se/expanded"], ["se/gate_out"], name="se/gate"),
        node("Mul", ["ln_out", "se/gate_out"], ["se_out"], name="se/excite"),
        node("Shape", ["se_out"], ["gn2/shape_out"], name="gn2/shape"),
        node("Reshape", ["se_out", "gn2/group_shape"], ["gn2/grouped"], name="gn2/reshape"),
        *moments("gn2", "gn2/grouped", "gn2/axes"),
        node("Reshape", ["gn2/normalized", "gn2/shape_out"], ["gn2/ungrouped"], name="gn2/reshape_back"),
        node("Mul", ["gn2/ungrouped", "gn2/gamma"], ["gn2/scaled"], name="gn2/mul_gamma"),
        node("Add", ["gn2/scaled", "gn2/beta"], ["gn2_out"], name="gn2/add_beta"),
        *moments("ln2", "gn2_out", "ln2/axes"),
        node("GlobalAveragePool", ["ln2/normalized"], ["pooled"], name="pool"),
        node("Flatten", ["pooled"], ["flat"], name="flatten"),
        node("Gemm", ["flat", "fc.weight", "fc.bias"], [OUTPUT], name="fc", transB=1),
    ]
    model = _model(nodes, [_input(shape=(4, 8, 8))], [_output(["batch", 3])], weights, opset=21)
    return OnnxPair(model, model, INPUT, (4, 8, 8), {})


# -- 6. Training BatchNorm inside an If branch -----------------------------------------------


def helper_if_subgraph(condition: str = "graph_input") -> OnnxPair:
    """Conv "conv" -> If "bn_switch" -> Relu "relu". then_branch (graph "then_branch"):
    BatchNormalization "bn_train" (training_mode=1, outputs bn_train_out, bn_train_mean,
    bn_train_var); else_branch ("else_branch"): BatchNormalization "bn_eval" (training_mode=0).
    Both read "conv_out" and the initializers bn.* of the main graph (outer scope). The
    condition is, by `condition`: "graph_input": the bool scalar graph input "training", fed True
    (extra_feeds); "constant": the bool initializer "is_training" = True. expected names the BN
    inside the then branch. The reference: Conv "conv" -> BatchNormalization "bn"
    (training_mode=0) -> Relu "relu", no If."""
    if condition not in ("graph_input", "constant"):
        raise ValueError(f"condition must be 'graph_input' or 'constant', not {condition!r}")
    initializers = _conv_bn_weights(np.random.default_rng(6))
    then_branch = helper.make_graph(
        [_bn_node("bn_train", True, ["bn_train_out", "bn_train_mean", "bn_train_var"])], "then_branch", [],
        [_output(["batch", 4, 8, 8], "bn_train_out")])
    else_branch = helper.make_graph([_bn_node("bn_eval", False, ["bn_eval_out"])], "else_branch", [],
                                    [_output(["batch", 4, 8, 8], "bn_eval_out")])
    inputs = [_input()]
    extra_feeds = {}
    if condition == "graph_input":
        switch = TRAINING_INPUT
        inputs.append(_bool_input())
        extra_feeds = {TRAINING_INPUT: np.array(True)}
    else:
        switch = "is_training"
        initializers = [*initializers, _init(switch, True, np.bool_)]
    nodes = [
        _conv_node(),
        helper.make_node("If", [switch], ["bn_out"], name="bn_switch", then_branch=then_branch,
                         else_branch=else_branch),
        helper.make_node("Relu", ["bn_out"], [OUTPUT], name="relu"),
    ]
    training = _model(nodes, inputs, [_output(["batch", 4, 8, 8])], initializers)
    reference_nodes = [_conv_node(), _bn_node("bn", False, ["bn_out"]),
                       helper.make_node("Relu", ["bn_out"], [OUTPUT], name="relu")]
    inference = _model(reference_nodes, [_input()], [_output(["batch", 4, 8, 8])], initializers[:6])
    return OnnxPair(training, inference, INPUT, IMAGE_SHAPE, {"bn_train": "GD101"}, extra_feeds=extra_feeds)


# -- 7. tf2onnx conversions of TF1 training graphs -------------------------------------------


def tf2onnx_slim_fused(directory) -> OnnxPair:
    """zoo.slim_conv_stack(fused=True) (tf-slim conv2d + fused slim.batch_norm "conv1/BatchNorm",
    "conv2/BatchNorm", is_training=True; slim.dropout 0.5 "dropout"; "logits") on (8, 8, 3),
    trained 40 SGD steps by zoo_tf1.train_tf1 (checkpoint `directory`/model.ckpt), both frozen
    graphs converted by tf2onnx at opset 15.

    tf2onnx writes each training FusedBatchNormV3 as an INFERENCE BatchNormalization (keeping the
    TF name, e.g. "conv1/BatchNorm/FusedBatchNormV3") whose mean input is Squeeze(ReduceMean
    "ReduceMean__N" over [0, 2, 3], keepdims=1, of the BN's own NCHW input) and whose variance input
    is Div(ReduceSumSquare(x - mean), count) (ReduceMean__14 and __37 for conv1 and conv2, as
    tf2onnx numbers them in a fresh process); scale and bias are the initializers
    "conv1/BatchNorm/ReadVariableOp:0" (gamma) and "conv1/BatchNorm/ReadVariableOp_1:0" (beta).
    The moving statistics are not in the file: they are in the checkpoint
    (conv1/BatchNorm/moving_mean, ...). The dropout becomes RandomUniformLike
    "dropout/dropout_1/random_uniform/RandomUniform" (seed 2) -> GreaterOrEqual -> Cast/Not/Mul/Add.
    expected: the two ReduceMean nodes (GD102, names read from the converted graph) and the
    RandomUniformLike (GD201). The reference conversion has the BN folded into the Conv weights."""
    return _tf2onnx_pair(_slim_fused_model(), directory)[0]


def _slim_fused_model():
    import zoo

    return zoo.slim_conv_stack(fused=True)


def tf2onnx_moments(directory) -> OnnxPair:
    """A TF1 model with non-fused BatchNorm in training mode, two ways, on (8, 8, 3):
    tf.compat.v1.layers conv2d "conv1" -> tf.compat.v1.layers.batch_normalization(fused=False,
    training=True) "bn1" -> ReLU -> conv2d "conv2" -> a hand-written BatchNorm "bn2"
    (tf.nn.moments over [0, 1, 2] + tf.nn.batch_normalization, moving averages assigned in
    UPDATE_OPS) -> ReLU -> mean over H, W -> tf.compat.v1.nn.dropout(keep_prob=0.5) -> dense
    "logits". Trained 40 SGD steps (checkpoint `directory`/model.ckpt: bn1/moving_mean, ...),
    converted by tf2onnx at opset 15.

    tf2onnx keeps the decomposition, no BatchNormalization node: ReduceMean "bnK/moments/mean"
    (axes [0, 2, 3] keepdims=1, on the NCHW conv output; the finding, GD102) -> Squeeze
    "bnK/moments/Squeeze" -> Mul "bnK/batchnorm/mul_2" -> Sub "bnK/batchnorm/sub"; the variance
    ReduceMean "bnK/moments/variance" over Sub/Mul (SquaredDifference) -> Squeeze_1 -> Add
    "bnK/batchnorm/add" -> Sqrt + Reciprocal (Rsqrt) -> Mul "bnK/batchnorm/mul" (gamma:
    "bnK/batchnorm/mul/ReadVariableOp:0"; beta: "bnK/batchnorm/ReadVariableOp:0"). The dropout is
    RandomUniformLike "dropout/random_uniform/RandomUniform" (seed 2; GD201) -> GreaterOrEqual ->
    Cast/Not/Mul/Add (SelectV2). The global pool is ReduceMean "Mean" over [1, 2] (not a finding).
    The reference conversion has each BN folded into its Conv."""
    return _tf2onnx_pair(_moments_model(), directory)[0]


def _moments_model():
    import tensorflow as tf
    from tensorflow.python.training import moving_averages

    import zoo_tf1

    def hand_written_batch_norm(y, training, scope):
        with tf.compat.v1.variable_scope(scope):
            gamma, beta, moving_mean, moving_variance = zoo_tf1.slim_named_bn_variables(y.shape[-1])
            if training:
                mean, variance = tf.nn.moments(y, [0, 1, 2])
                for variable, value in ((moving_mean, mean), (moving_variance, variance)):
                    update = moving_averages.assign_moving_average(variable, value, 0.9, zero_debias=False)
                    tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.UPDATE_OPS, update)
            else:
                mean, variance = moving_mean, moving_variance
            return tf.nn.batch_normalization(y, mean, variance, beta, gamma, 1e-3)

    def model(x, training):
        layers = zoo_tf1._layers()
        # TF1's default initializer spelled out, so it follows the graph seed.
        init = {"kernel_initializer": tf.compat.v1.glorot_uniform_initializer()}
        y = layers.conv2d(x, 8, 3, use_bias=False, name="conv1", **init)
        y = tf.nn.relu(layers.batch_normalization(y, momentum=0.9, fused=False, training=training, name="bn1"))
        y = layers.conv2d(y, 8, 3, strides=2, use_bias=False, name="conv2", **init)
        y = tf.nn.relu(hand_written_batch_norm(y, training, "bn2"))
        y = tf.reduce_mean(y, axis=[1, 2])
        if training:
            y = tf.compat.v1.nn.dropout(y, keep_prob=0.5)
        return layers.dense(y, 5, name="logits", **init)

    return model


def tf2onnx_convert(graph_bytes: bytes) -> bytes:
    """A frozen TF GraphDef converted by tf2onnx at opset 15, input "input:0", output "output:0".

    tf2onnx numbers the nodes it adds ("ReduceMean__14") from a process-wide
    counter, which its loop rewriter module bumps once when first imported; the
    counter is set back to its value right after that import, so every call
    gives the names of a first conversion in a fresh process. Not stable: tf2onnx
    merges identical constants and which name survives ("axes_const__24" or
    "axes_const__47") follows string hashing, so the names of a few shared
    constant initializers can differ from call to call; node names and all
    values do not."""
    import tensorflow as tf
    import tf2onnx
    import tf2onnx.rewriter.loop_rewriter_base  # noqa: F401  (its import draws a name)
    from tf2onnx import utils

    utils.INTERNAL_NAME = 2
    graph_def = tf.compat.v1.GraphDef.FromString(graph_bytes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = tf2onnx.convert.from_graph_def(graph_def, input_names=[TF_INPUT], output_names=[TF_OUTPUT],
                                                  opset=15)
    return model.SerializeToString()


def _tf2onnx_pair(model_fn, directory):
    """Train `model_fn`, convert both frozen graphs; returns (OnnxPair, zoo.Trained)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import zoo_tf1

    directory = Path(directory)
    trained = zoo_tf1.train_tf1(model_fn, TF_IMAGE_SHAPE, directory)
    training = tf2onnx_convert(trained.pair.training)
    inference = tf2onnx_convert(trained.pair.inference)
    pair = OnnxPair(training, inference, TF_INPUT, TF_IMAGE_SHAPE, _tf2onnx_findings(onnx.load_from_string(training)),
                    checkpoint=trained.prefix)
    return pair, trained


def _tf2onnx_findings(model) -> dict[str, str]:
    """The batch-mean ReduceMeans and the dropout random nodes of a tf2onnx conversion.

    A batch mean is a ReduceMean over axes including 0 that feeds, through
    Squeeze, the mean input of a BatchNormalization (the fused form) or that
    tf.nn.moments named ".../moments/mean" (the decomposed form)."""
    nodes = model.graph.node
    producer = {output: node for node in nodes for output in node.output}
    found = {}

    def batch_mean(node):
        if node is None or node.op_type != "ReduceMean":
            return False
        axes = next((list(a.ints) for a in node.attribute if a.name == "axes"), [])
        return 0 in axes

    for node in nodes:
        if node.op_type == "BatchNormalization":
            source = producer.get(node.input[3])
            while source is not None and source.op_type in ("Squeeze", "Identity", "Reshape"):
                source = producer.get(source.input[0])
            if batch_mean(source):
                found[source.name] = "GD102"
        elif node.name.endswith("moments/mean") and batch_mean(node):
            found[node.name] = "GD102"
        elif node.op_type in ("RandomUniformLike", "RandomUniform", "RandomNormalLike", "RandomNormal", "Bernoulli"):
            found[node.name] = "GD201"
    if "" in found:
        raise AssertionError("tf2onnx left a node of interest unnamed")
    return found


# -- 8. PyTorch export in training mode ------------------------------------------------------


def torch_training_export(steps: int = 10) -> OnnxPair:
    """A torch.nn.Module Conv2d(3, 4, 3, padding=1) "conv" -> BatchNorm2d(4) "bn" -> ReLU ->
    Dropout(0.5) "drop" -> Flatten -> Linear(256, 5) "fc", trained `steps` SGD steps in train mode
    (seeded; the running statistics move), then exported by torch.onnx.export(dynamo=False, the
    TorchScript exporter) at opset 15, batch dimension dynamic, input "input", output "output":
    the training file with training=TrainingMode.TRAINING from the module in train mode, the
    reference with TrainingMode.EVAL from the module in eval mode. Each export works on its own
    copy of the trained module; tracing in train mode runs a forward pass that moves the running
    statistics before they are written, so the reference's copy is given the statistics the
    training file holds: both files carry identical initializers.

    The training file holds BatchNormalization "/bn/BatchNormalization" (training_mode=1, three
    outputs; the running-statistics outputs unused) and Dropout "/drop/Dropout" whose ratio and
    training_mode (True) come from Constant nodes "/drop/Constant" and "/drop/Constant_1". The
    reference keeps BatchNormalization "/bn/BatchNormalization" with training_mode=0 (constant
    folding off) and has no Dropout. Initializers: conv.weight, conv.bias, bn.weight, bn.bias,
    bn.running_mean, bn.running_var, fc.weight, fc.bias.

    The dynamo exporter (torch.onnx.export's default in this torch) cannot write this: it ignores
    `training`, and for a module in train mode writes a BatchNormalization without training_mode
    (inference semantics with the running statistics), folded into the Conv by its default
    optimize=True, while keeping the Dropout live. So dynamo=False is used."""
    try:
        import torch
    except ImportError as error:  # pragma: no cover - torch is optional
        raise NotImplementedError("torch_training_export needs PyTorch") from error

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(4)
            self.relu = torch.nn.ReLU()
            self.drop = torch.nn.Dropout(0.5)
            self.flat = torch.nn.Flatten()
            self.fc = torch.nn.Linear(4 * 8 * 8, 5)

        def forward(self, x):
            return self.fc(self.flat(self.drop(self.relu(self.bn(self.conv(x))))))

    shape = IMAGE_SHAPE
    data = batch(OnnxPair(b"", b"", INPUT, shape, {}), steps * 8, seed=11)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = Net().train()
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
        for i in range(steps):
            optimizer.zero_grad()
            loss = torch.mean((net(torch.from_numpy(data[i * 8 : (i + 1) * 8])) - 1.0) ** 2)
            loss.backward()
            optimizer.step()
        example = torch.from_numpy(data[:2])

        def export(mode, state=None) -> bytes:
            module = copy.deepcopy(net)
            if state is not None:
                module.load_state_dict(state, strict=False)
            module.train(mode == torch.onnx.TrainingMode.TRAINING)
            buffer = io.BytesIO()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(module, (example,), buffer, dynamo=False, training=mode, opset_version=15,
                                  input_names=[INPUT], output_names=[OUTPUT], do_constant_folding=False,
                                  dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}})
            return buffer.getvalue()

        training = export(torch.onnx.TrainingMode.TRAINING)
        # Tracing in train mode runs the module forward, which moves its running statistics
        # before they are written: the reference gets the values the training file holds.
        model = onnx.load_from_string(training)
        written = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in model.graph.initializer}
        inference = export(torch.onnx.TrainingMode.EVAL, {k: v for k, v in written.items() if k in net.state_dict()})
    expected = {}
    for node in model.graph.node:
        if node.op_type == "BatchNormalization" and helper.get_attribute_value(
                next(a for a in node.attribute if a.name == "training_mode")):
            expected[node.name] = "GD101"
        elif node.op_type == "Dropout":
            expected[node.name] = "GD201"
    if set(expected.values()) != {"GD101", "GD201"}:
        raise NotImplementedError(
            f"torch {torch.__version__}'s exporter wrote no training BatchNormalization or no Dropout: {expected}")
    if "" in expected:
        raise AssertionError("the torch exporter left a node of interest unnamed")
    return OnnxPair(training, inference, INPUT, shape, expected)
