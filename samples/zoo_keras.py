"""Keras model files and TFLite flatbuffers with training mode baked in.

Keras files (`KerasCase`): functional models in which some layer is CALLED
with `training=True`, written with Keras 3 (`keras`) or Keras 2 (`tf_keras`)
and saved as `.keras` (a zip holding `config.json`) or `.h5` (the
`model_config` attribute of the HDF5 root). The call is recorded in the
layer's `inbound_nodes`:

- Keras 3, .keras and .h5 alike:
  `{"args": [{"class_name": "__keras_tensor__", "config": {..., "keras_history": ["conv1", 0, 0]}}],
    "kwargs": {"training": true}}`
- tf_keras, .h5 and .keras alike: `[["conv1", 0, 0, {"training": true}]]`

Each case also has `clean`: the same layer objects (same weights) called
plainly in a second functional model, saved the same way; it is the reference
a fix must reproduce. In Keras 3 an explicit `model(x, training=False)`
overrides a baked `training=True` (so does `predict`); in tf_keras the baked
call wins even then, so only `clean` gives the inference output. Every call
of a baked model that runs a BatchNormalization in training mode also moves
its moving statistics (eagerly, in both frameworks): compare against `clean`
before calling the baked model, or load it afresh. Both frameworks write
"module": "keras.layers" in a .keras config; `metadata.json` (and the .h5
root's `keras_version` attribute) tells 3.x from 2.x. Models are
tiny (8x8x3 inputs), seeded, and fit for a few steps with BatchNormalization
momentum 0.9, so the moving statistics are away from 0 and 1.

TFLite (`TfliteCase`): TF1 graphs built with tf-slim and tf.compat.v1.layers,
trained with `zoo.train_tf1`, frozen, and converted with
`tf.compat.v1.lite.TFLiteConverter.from_frozen_graph` (builtin ops only). A
training BatchNorm becomes MEAN over the batch axes (twice: mean and
variance), SQUARED_DIFFERENCE, ADD, RSQRT, MUL, SUB, ADD; dropout becomes
MUL, SHAPE, RANDOM_UNIFORM, GREATER_EQUAL, SELECT_V2. The input is
[1, 8, 8, 3] with shape signature [-1, 8, 8, 3]: `run_tflite` resizes it to
the batch it is given. RANDOM_UNIFORM is seeded (the graph seed), so a fresh
interpreter draws the same mask; reruns on one interpreter draw new ones.

Imports `zoo` (beside this file) for its training helpers; needs tensorflow,
keras, tf_keras, tf-slim and h5py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
from tf_keras import backend as K  # a global: tf_keras serializes a lambda's closure cells, not its globals

import zoo
from zoo import INPUT, OUTPUT

INPUT_SHAPE = (8, 8, 3)
BN_MOMENTUM = 0.9  # so that a few steps move the moving statistics well away from 0 and 1


@dataclass
class KerasCase:
    path: Path  # the model file saved with layer calls that bake training=True (or a Lambda reading the learning phase)
    clean: Path  # the SAME model (same weights) saved with no training baked in: every layer called plainly
    expected: dict[str, str]  # layer name in the saved config -> finding code
    input_shape: tuple  # per-sample shape
    flavour: str  # "keras3" (keras.saving.load_model) or "tf_keras" (tf_keras.models.load_model)
    custom_objects: dict = field(default_factory=dict)  # what load_model needs for custom classes


@dataclass
class TfliteCase:
    training: Path  # .tflite converted from the training-mode graph
    inference: Path  # .tflite converted from the same model (same weights) built in inference mode
    expected: dict[str, int]  # finding code -> how many ("GD102" per training BatchNorm, "GD201" per dropout mask)
    batch_norm_means: list[str]  # output tensor names of the MEAN ops computing each BN's batch mean
    random_ops: list[str]  # output tensor names of the RANDOM_UNIFORM ops of the dropouts
    per_sample_means: list[str] = field(default_factory=list)  # MEAN ops over H and W only: never to be reported


# -- Keras helpers ---------------------------------------------------------------------------


def _fit(model, keras_module, input_shape, *, steps=16, batch=16):
    """A few real SGD steps on zoo.training_data (per-channel offsets), regressing to 1."""
    model.compile(optimizer=keras_module.optimizers.SGD(0.05), loss=keras_module.losses.MeanSquaredError())
    data = zoo.training_data(input_shape, steps * batch)
    target = np.ones((len(data), *model.output_shape[1:]), np.float32)
    model.fit(data, target, batch_size=batch, epochs=1, shuffle=False, verbose=0)


def _save_pair(baked, clean, directory, stem, suffix) -> tuple[Path, Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path, clean_path = directory / f"{stem}{suffix}", directory / f"{stem}_clean{suffix}"
    baked.save(path)
    clean.save(clean_path)
    return path, clean_path


def _conv_stack(layers, *, bn_training):
    """The layer objects of Conv2D -> BatchNormalization -> ReLU -> GlobalAveragePooling2D."""
    conv = layers.Conv2D(8, 3, name="conv1")
    bn = layers.BatchNormalization(momentum=BN_MOMENTUM, name="bn1")
    relu = layers.ReLU(name="relu1")
    pool = layers.GlobalAveragePooling2D(name="pool")

    def apply(x, baked):
        kwargs = {"training": True} if baked and bn_training else {}
        return pool(relu(bn(conv(x), **kwargs)))

    return apply


def _baked_classifier(keras_module):
    """Conv2D -> BN (training=True) -> ReLU -> GAP -> Dropout (training=True) -> GaussianNoise (training=True) -> Dense.

    Returns (baked, clean): two functional models over the same layer objects.
    """
    layers = keras_module.layers
    stack = _conv_stack(layers, bn_training=True)
    drop = layers.Dropout(0.5, name="drop1")
    noise = layers.GaussianNoise(0.3, name="noise1")
    logits = layers.Dense(5, name="logits")

    def graph(inputs, baked):
        kwargs = {"training": True} if baked else {}
        x = stack(inputs, baked)
        x = drop(x, **kwargs)
        x = noise(x, **kwargs)
        return logits(x)

    inputs = keras_module.Input(INPUT_SHAPE, name="input")
    baked = keras_module.Model(inputs, graph(inputs, True), name="classifier")
    clean = keras_module.Model(inputs, graph(inputs, False), name="classifier")
    return baked, clean


BAKED_CLASSIFIER_EXPECTED = {"bn1": "GD102", "drop1": "GD201", "noise1": "GD202"}


# -- 1. Keras 3 ------------------------------------------------------------------------------


def keras3_baked(directory: Path, suffix: str = ".keras") -> KerasCase:
    """1. Keras 3: BatchNormalization, Dropout and GaussianNoise called with training=True; .keras or .h5."""
    import keras

    keras.utils.set_random_seed(0)
    baked, clean = _baked_classifier(keras)
    _fit(baked, keras, INPUT_SHAPE)
    path, clean_path = _save_pair(baked, clean, directory, "keras3_baked", suffix)
    return KerasCase(path, clean_path, dict(BAKED_CLASSIFIER_EXPECTED), INPUT_SHAPE, "keras3")


# -- 2. tf_keras -----------------------------------------------------------------------------


def tf_keras_baked(directory: Path, suffix: str = ".h5") -> KerasCase:
    """2. The same model with tf_keras (Keras 2); .h5 or .keras (tf_keras writes and reads both)."""
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    baked, clean = _baked_classifier(tf_keras)
    _fit(baked, tf_keras, INPUT_SHAPE)
    path, clean_path = _save_pair(baked, clean, directory, "tf_keras_baked", suffix)
    return KerasCase(path, clean_path, dict(BAKED_CLASSIFIER_EXPECTED), INPUT_SHAPE, "tf_keras")


# -- 3. Keras 3 custom layer -----------------------------------------------------------------


def keras3_custom_layer(directory: Path, suffix: str = ".keras") -> KerasCase:
    """3. A registered custom layer (noise in training) and a Dropout, both called with training=True.

    The BatchNormalization is called plainly: it must not be reported.
    """
    import keras

    @keras.saving.register_keras_serializable(package="zoo")
    class NoisyScale(keras.layers.Layer):
        """A learned per-channel scale that adds Gaussian noise while training."""

        def __init__(self, stddev=0.2, seed=None, **kwargs):
            super().__init__(**kwargs)
            self.stddev = stddev
            self.seed = seed
            self.seed_generator = keras.random.SeedGenerator(seed)

        def build(self, input_shape):
            self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")

        def call(self, inputs, training=None):
            outputs = inputs * self.scale
            if training:
                noise = keras.random.normal(keras.ops.shape(outputs), stddev=self.stddev, seed=self.seed_generator)
                outputs = outputs + noise
            return outputs

        def get_config(self):
            return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}

    keras.utils.set_random_seed(0)
    stack = _conv_stack(keras.layers, bn_training=False)
    scale = NoisyScale(name="noisy_scale")
    drop = keras.layers.Dropout(0.3, name="drop1")
    logits = keras.layers.Dense(5, name="logits")

    def graph(inputs, baked):
        kwargs = {"training": True} if baked else {}
        return logits(drop(scale(stack(inputs, baked), **kwargs), **kwargs))

    inputs = keras.Input(INPUT_SHAPE, name="input")
    baked = keras.Model(inputs, graph(inputs, True), name="custom")
    clean = keras.Model(inputs, graph(inputs, False), name="custom")
    _fit(baked, keras, INPUT_SHAPE)
    path, clean_path = _save_pair(baked, clean, directory, "keras3_custom_layer", suffix)
    return KerasCase(
        path, clean_path, {"noisy_scale": "GD301", "drop1": "GD201"}, INPUT_SHAPE, "keras3",
        custom_objects={"zoo>NoisyScale": NoisyScale, "NoisyScale": NoisyScale},
    )


# -- 4. tf_keras Lambda reading the learning phase ------------------------------------------


def tf_keras_lambda_learning_phase(directory: Path, *, called_with_training: bool = False) -> KerasCase:
    """4. tf_keras: a Lambda `K.in_train_phase(tf.nn.dropout(t, 0.5), t)` between the pool and the head.

    The Lambda's function is Python bytecode (base64 of marshal) in the .h5
    config; its `co_names` are ('K', 'in_train_phase', 'tf', 'nn', 'dropout').
    Called plainly (the default), it follows the call's training flag or the
    global learning phase: identity under `model(x)` and `predict`, dropout
    under `model(x, training=True)`, `fit` or `K.learning_phase_scope(1)`.
    `called_with_training=True` also calls it with training=True, which
    in_train_phase reads, so it drops out at every call.

    `clean` has an identity `Lambda(lambda t: t)` of the same name in its
    place (it must not be reported). The BatchNormalization is called plainly.
    Loading needs custom_objects {"K": tf_keras.backend, "tf": tf} for the
    lambda's globals (and safe_mode=False for the .keras format only).
    """
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    layers = tf_keras.layers
    stack = _conv_stack(layers, bn_training=False)
    live = layers.Lambda(lambda t: K.in_train_phase(tf.nn.dropout(t, 0.5), t), name="mc_dropout")
    identity = layers.Lambda(lambda t: t, name="mc_dropout")
    logits = layers.Dense(5, name="logits")

    inputs = tf_keras.Input(INPUT_SHAPE, name="input")
    features = stack(inputs, False)
    dropped = live(features, training=True) if called_with_training else live(features)
    baked = tf_keras.Model(inputs, logits(dropped), name="lambda_model")
    clean = tf_keras.Model(inputs, logits(identity(features)), name="lambda_model")
    _fit(baked, tf_keras, INPUT_SHAPE)
    stem = "tf_keras_lambda_training" if called_with_training else "tf_keras_lambda"
    path, clean_path = _save_pair(baked, clean, directory, stem, ".h5")
    return KerasCase(path, clean_path, {"mc_dropout": "GD301"}, INPUT_SHAPE, "tf_keras",
                     custom_objects={"K": K, "tf": tf})


# -- 5. Keras 3 nested functional ------------------------------------------------------------


def nested_functional(directory: Path, suffix: str = ".keras") -> KerasCase:
    """5. Keras 3: a functional sub-model "head" (Dense -> Dropout training=True) used as a layer.

    The Dropout "head_drop" appears in the config under the "head" layer's own
    `config.layers`; the outer model's call of "head" is plain.
    """
    import keras

    keras.utils.set_random_seed(0)
    layers = keras.layers
    stack = _conv_stack(layers, bn_training=False)
    fc = layers.Dense(8, activation="tanh", name="head_fc")
    drop = layers.Dropout(0.5, name="head_drop")

    def head(baked):
        features = keras.Input((8,), name="head_input")
        dropped = drop(fc(features), training=True) if baked else drop(fc(features))
        return keras.Model(features, dropped, name="head")

    logits = layers.Dense(5, name="logits")

    def outer(baked):
        inputs = keras.Input(INPUT_SHAPE, name="input")
        return keras.Model(inputs, logits(head(baked)(stack(inputs, False))), name="nested")

    baked, clean = outer(True), outer(False)
    _fit(baked, keras, INPUT_SHAPE)
    path, clean_path = _save_pair(baked, clean, directory, "nested_functional", suffix)
    return KerasCase(path, clean_path, {"head_drop": "GD201"}, INPUT_SHAPE, "keras3")


# -- 6. Weights only -------------------------------------------------------------------------


def weights_only(directory: Path) -> Path:
    """6. Keras 3 `save_weights` of the trained baked classifier: a .weights.h5 with no model config."""
    import keras

    keras.utils.set_random_seed(0)
    baked, _ = _baked_classifier(keras)
    _fit(baked, keras, INPUT_SHAPE, steps=4)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "classifier.weights.h5"
    baked.save_weights(path)
    return path


# -- TFLite ----------------------------------------------------------------------------------


def run_tflite(path, x, *, interpreter=None) -> np.ndarray:
    """Run the .tflite at `path` on the batch `x` (resizing the input to x's batch); return output 0.

    A fresh interpreter is made per call unless `interpreter` is given (see
    tflite_interpreter): seeded RANDOM_UNIFORM ops draw the same mask in every
    fresh interpreter and a new one at each rerun of the same interpreter.
    """
    interpreter = interpreter or tflite_interpreter(path)
    x = np.asarray(x, np.float32)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()


def tflite_interpreter(path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation in favour of ai_edge_litert
        return tf.lite.Interpreter(model_path=str(path))


def tflite_ops(path) -> list[tuple[str, list[str], list[str]]]:
    """(op name, input tensor names, output tensor names) of every operator of subgraph 0."""
    interpreter = tflite_interpreter(path)
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    return [
        (op["op_name"], [names.get(i, "") for i in op["inputs"]], [names.get(i, "") for i in op["outputs"]])
        for op in interpreter._get_ops_details()
    ]


def convert_frozen(graph_bytes: bytes, path: Path, input_shape) -> Path:
    """Convert a frozen GraphDef (input "input", output "output") to `path` with builtin ops only."""
    pb = Path(path).with_suffix(".pb")
    pb.write_bytes(graph_bytes)
    converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
        str(pb), [INPUT], [OUTPUT], input_shapes={INPUT: [None, *input_shape]}
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    Path(path).write_bytes(converter.convert())
    return Path(path)


def _tflite_case(model_fn, directory, stem, *, batch_norms, dropouts, per_sample_means) -> TfliteCase:
    """Train `model_fn` with zoo.train_tf1, convert both modes, and locate the expected operators.

    The converter names tensors after MLIR locations, and which of a fused
    op's pieces gets the bare name varies (a BN's batch mean came out as
    "bn1/FusedBatchNormV3" in one model and "bn1/FusedBatchNormV31" in another,
    its axes constant taking the bare name). So each BN's mean is found by
    its scope: the first of the two MEAN ops named under `batch_norms[i]`
    (mean, then variance), checked to feed a SQUARED_DIFFERENCE of its own
    input; each dropout's RANDOM_UNIFORM likewise under `dropouts[i]`.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    trained = zoo.train_tf1(model_fn, INPUT_SHAPE, directory / f"{stem}_ckpt")
    training = convert_frozen(trained.pair.training, directory / f"{stem}_training.tflite", INPUT_SHAPE)
    inference = convert_frozen(trained.pair.inference, directory / f"{stem}_inference.tflite", INPUT_SHAPE)
    ops = tflite_ops(training)
    means = [_batch_mean(ops, scope, training) for scope in batch_norms]
    randoms = [_single(ops, "RANDOM_UNIFORM", scope, training) for scope in dropouts]
    for name in per_sample_means:
        if not any(op == "MEAN" and name in outs for op, _, outs in ops):
            raise AssertionError(f"{training}: no MEAN with output {name!r}")
    return TfliteCase(training, inference, {"GD102": len(means), "GD201": len(randoms)}, means, randoms,
                      list(per_sample_means))


def _under(name: str, scope: str) -> bool:
    # Fused tensors carry every fused op's name, separated by ";".
    return any(part.startswith(scope) for part in name.split(";"))


def _batch_mean(ops, scope, path) -> str:
    found = [(ins, outs[0]) for op, ins, outs in ops if op == "MEAN" and _under(outs[0], scope)]
    if len(found) != 2:
        raise AssertionError(f"{path}: expected a mean and a variance MEAN under {scope!r}, found {found}")
    (data, _), mean = found[0][0], found[0][1]
    if not any(op == "SQUARED_DIFFERENCE" and ins[:2] == [data, mean] for op, ins, _ in ops):
        raise AssertionError(f"{path}: {mean!r} does not feed SQUARED_DIFFERENCE({data!r}, {mean!r})")
    return mean


def _single(ops, op_name, scope, path) -> str:
    found = [outs[0] for op, _, outs in ops if op == op_name and _under(outs[0], scope)]
    if len(found) != 1:
        raise AssertionError(f"{path}: expected one {op_name} under {scope!r}, found {found}")
    return found[0]


def tflite_slim_training(directory: Path) -> TfliteCase:
    """7. zoo.slim_conv_stack: two tf-slim conv + fused BatchNorm (is_training=True) + ReLU, a global
    average pool (tf.reduce_mean over [1, 2], tensor "Mean": per sample, not reported), slim.dropout
    (keep 0.5), slim.fully_connected. Trained 40 steps with zoo.train_tf1."""
    return _tflite_case(
        zoo.slim_conv_stack(fused=True), directory, "slim_training",
        batch_norms=["conv1/BatchNorm/", "conv2/BatchNorm/"],
        dropouts=["dropout/"],
        per_sample_means=["Mean"],
    )


def v1_layers_se_dense_bn():
    """tf.compat.v1.layers: conv + BN (fused, rank 4), a squeeze-excitation gate (its pool "se_pool"
    is a mean over H and W), a global pool "global_pool", dense + BN (rank 2: moments over axis 0),
    tf.compat.v1.nn.dropout(keep_prob=0.5) in training only, dense logits."""

    def model(x, training):
        import tf_keras.api._v1.keras as k1

        layers = k1.__internal__.legacy.layers
        # TF1's default initializer spelled out, so the weights follow the graph seed.
        init = {"kernel_initializer": tf.compat.v1.glorot_uniform_initializer()}
        y = layers.conv2d(x, 8, 3, name="conv1", **init)
        y = tf.nn.relu(layers.batch_normalization(y, momentum=BN_MOMENTUM, training=training, name="bn1"))
        gate = tf.reduce_mean(y, axis=[1, 2], keepdims=True, name="se_pool")
        gate = layers.conv2d(gate, 8, 1, activation=tf.nn.sigmoid, name="se_gate", **init)
        y = tf.reduce_mean(y * gate, axis=[1, 2], name="global_pool")
        y = layers.dense(y, 16, name="fc1", **init)
        y = tf.nn.relu(layers.batch_normalization(y, momentum=BN_MOMENTUM, training=training, name="fc1_bn"))
        if training:
            y = tf.compat.v1.nn.dropout(y, keep_prob=0.5, name="drop")
        return layers.dense(y, 5, name="logits", **init)

    return model


def tflite_v1_dropout(directory: Path) -> TfliteCase:
    """8. v1_layers_se_dense_bn: tf.compat.v1.layers BN training=True (rank 4 and, after a dense
    layer, rank 2) and tf.compat.v1.nn.dropout; "se_pool" and "global_pool" are per-sample means."""
    return _tflite_case(
        v1_layers_se_dense_bn(), directory, "v1_dropout",
        batch_norms=["bn1/", "fc1_bn/"],
        dropouts=["drop/"],
        per_sample_means=["se_pool", "global_pool"],
    )
