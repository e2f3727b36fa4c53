"""The Keras forms of batch statistics and training noise (issue 17), trained for real steps.

Every builder trains a small conv net -- Conv2D(8, 3) -> layer under test "bn1"
-> ReLU -> Conv2D(8, 3, strides=2) -> layer under test "bn2" -> ReLU -> global
average pool -> Dense(5) "logits", input (16, 16, 3) -- for a few SGD steps on
zoo.training_data, so weights and moving statistics are non-trivial, and
returns a `zoo.Trained`: the training graph (the model called with
training=True, frozen for "output" alone, input placeholder "input" with the
batch None), the inference reference (the same weights, training=False) and a
checkpoint prefix holding the moving statistics.

Keras 3 models train with `fit` and write a TF2 object-based checkpoint
(tf.train.Checkpoint(model=model)); they are frozen through `stateless_call`
like zoo.keras_pair. tf_keras (Keras 2) models are built in TF1 graph mode as
`model(x, training)` functions and trained with zoo_tf1.train_tf1 (one inter-op
thread), which writes a TF1 Saver checkpoint (variables named `bn1/moving_mean`, ...). tf_keras
layers run their update assigns when called but put them in no collection, so
the model functions here add them to UPDATE_OPS themselves.

`mixed=True` builds the same model under the mixed_float16 policy (float16
activations, float32 variables and statistics); the global policy is restored
afterwards. The logits layer stays float32, so every output is float32.

Imports `zoo` and `zoo_tf1` (they live beside this file); needs tensorflow,
keras and tf_keras.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import tensorflow as tf

import zoo
import zoo_tf1
from zoo import Pair, Trained

INPUT_SHAPE = (16, 16, 3)
BN_LAYERS = ("bn1", "bn2")
NOISE_LAYERS = ("gaussian_noise", "gaussian_dropout", "alpha_dropout")
# The update ops a tf_keras layer creates when called in graph mode.
_ASSIGN_OPS = frozenset({"AssignSubVariableOp", "AssignAddVariableOp", "AssignVariableOp", "AssignSub", "Assign"})
MOMENTUM = 0.5  # a few steps move the moving statistics far from 0 and 1
# Clipping that bites on small batches, and renorm averages that move at another rate than the
# moving statistics: unclipped, renorm's training output equals the inference output exactly
# (r and d undo the batch moments), and with equal momenta renorm_mean equals moving_mean.
RENORM_CLIPPING = {"rmax": 1.5, "rmin": 1 / 1.5, "dmax": 0.5}
RENORM_MOMENTUM = 0.9


# -- Keras 3 ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _keras3_policy(mixed: bool):
    import keras

    previous = keras.mixed_precision.dtype_policy()
    if mixed:
        keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy(previous)


def _keras3_net(layer, input_shape=INPUT_SHAPE):
    """build() for the conv net with `layer(name)` as the layer under test, twice."""
    import keras

    def build():
        inputs = keras.Input(input_shape)
        x = keras.layers.Conv2D(8, 3, name="conv1")(inputs)
        x = keras.layers.ReLU()(layer("bn1")(x))
        x = keras.layers.Conv2D(8, 3, strides=2, name="conv2")(x)
        x = keras.layers.ReLU()(layer("bn2")(x))
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(5, dtype="float32", name="logits")(x))

    return build


def train_keras3(build, directory, *, input_shape=INPUT_SHAPE, mixed=False, steps=8, batch=16) -> Trained:
    """Fit a Keras 3 model for `steps` SGD steps; freeze it with training=True and False.

    The checkpoint is TF2 object-based: tf.train.Checkpoint(model=model) under
    directory/ckpt. The training graph is frozen for "output" alone (no
    statistics in it: Keras 3 training mode never reads them).
    """
    import keras

    with _keras3_policy(mixed):
        keras.utils.set_random_seed(0)
        model = build()
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse", jit_compile=False)
        data = zoo.training_data(input_shape, steps * batch)
        target = np.ones((len(data), *model.output_shape[1:]), np.float32)
        model.fit(data, target, batch_size=batch, epochs=1, verbose=0, shuffle=False)
        prefix = tf.train.Checkpoint(model=model).write(str(Path(directory) / "ckpt" / "model"))
        training = zoo._without_orphans(zoo._freeze_keras(model, input_shape, training=True))
        inference = zoo._freeze_keras(model, input_shape, training=False)
    return Trained(Pair(training, inference, tuple(input_shape)), prefix)


def train_keras3_sync_bn(directory, *, mixed=False) -> Trained:
    """a. Keras 3 BatchNormalization(synchronized=True): `bn1_1/Sum` (x), `bn1_1/Sum_1`
    (Square(x)) and `bn1_1/Sum_2` (count: OnesLike(x)), all over [0, 1, 2] with keep_dims, each
    through an IdentityN (the all-reduce of the default replica context); mean = DivNoNan(sum,
    count), variance = Maximum(DivNoNan(sumsq, count) - Square(mean), 0) -> Squeeze -> the usual
    `batchnorm/add` (eps) -> Rsqrt -> Mul ... tail; no `moments` scope. Under mixed_float16 the
    input is Cast to float32 first (`bn1_1/Cast`) and the result Cast back (`bn1_1/Cast_5`)."""
    import keras

    layer = lambda name: keras.layers.BatchNormalization(synchronized=True, momentum=MOMENTUM, name=name)  # noqa: E731
    return train_keras3(_keras3_net(layer), directory, mixed=mixed)


def train_keras3_bn(directory, *, mixed=False) -> Trained:
    """Keras 3 BatchNormalization (not synchronized), for the float16 form: Cast(x, float32) ->
    moments/mean Mean([0, 1, 2], keep_dims) -> StopGradient -> SquaredDifference -> Mean ->
    Squeeze -> batchnorm tail -> Cast back to float16."""
    import keras

    layer = lambda name: keras.layers.BatchNormalization(momentum=MOMENTUM, name=name)  # noqa: E731
    return train_keras3(_keras3_net(layer), directory, mixed=mixed)


def _keras3_noise_net():
    import keras

    def build():
        inputs = keras.Input(INPUT_SHAPE)
        x = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(inputs)
        x = keras.layers.GaussianNoise(0.3, seed=1, name="gaussian_noise")(x)
        x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv2")(x)
        x = keras.layers.GaussianDropout(0.3, seed=2, name="gaussian_dropout")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        x = keras.layers.Dense(8, activation="selu", name="dense")(x)
        x = keras.layers.AlphaDropout(0.3, seed=3, name="alpha_dropout")(x)
        return keras.Model(inputs, keras.layers.Dense(5, name="logits")(x))

    return build


def train_keras3_noise(directory) -> Trained:
    """e. Keras 3 GaussianNoise, GaussianDropout and AlphaDropout (seeded, stateless): GaussianNoise
    is x + StatelessRandomNormalV2(Shape(x)) * stddev (+ mean 0); GaussianDropout is x *
    (StatelessRandomNormalV2 * sqrt(rate / (1 - rate)) + 1); AlphaDropout draws
    StatelessRandomUniformV2, GreaterEqual(rate) -> Cast keep mask, then (x * mask + alpha_p * (1 -
    mask)) * a + b. The seed is a Const once frozen. Nothing to restore: the checkpoint holds the
    weights only."""
    return train_keras3(_keras3_noise_net(), directory)


# -- tf_keras (Keras 2) in TF1 graph mode ----------------------------------------------------


@contextlib.contextmanager
def _tf_keras_policy(mixed: bool):
    import tf_keras

    previous = tf_keras.mixed_precision.global_policy()
    if mixed:
        tf_keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        tf_keras.mixed_precision.set_global_policy(previous)


def _with_updates(layer, y, training):
    """Call a tf_keras layer and put the assigns it ran into UPDATE_OPS (train_tf1 waits for them)."""
    graph = tf.compat.v1.get_default_graph()
    before = len(graph.get_operations())
    out = layer(y, training=training)
    if training:
        # The layer builds its variables on the first call: their initializers are assigns too.
        initializers = {v.initializer.name for v in tf.compat.v1.global_variables()}
        for op in graph.get_operations()[before:]:
            if op.type in _ASSIGN_OPS and op.name not in initializers:
                tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.UPDATE_OPS, op)
    return out


def tf_keras_net(layer, *, mixed=False):
    """model(x, training) for zoo train_tf1: the conv net with `layer(name)` twice, in tf_keras.

    Kernel initializers are TF1's (they follow the graph seed; tf_keras would seed its own from
    Python's `random`), so the training and inference builds agree before the checkpoint loads.
    """

    def model(x, training):
        import tf_keras

        init = {"kernel_initializer": tf.compat.v1.glorot_uniform_initializer()}
        with _tf_keras_policy(mixed):
            y = tf_keras.layers.Conv2D(8, 3, name="conv1", **init)(x)
            y = tf.nn.relu(_with_updates(layer("bn1"), y, training))
            y = tf_keras.layers.Conv2D(8, 3, strides=2, name="conv2", **init)(y)
            y = tf.nn.relu(_with_updates(layer("bn2"), y, training))
            y = tf.reduce_mean(y, axis=[1, 2])
            return tf_keras.layers.Dense(5, name="logits", dtype="float32", **init)(y)

    return model


def train_tf_keras(layer, directory, *, mixed=False, steps=10, batch=16) -> Trained:
    """Train tf_keras_net(layer) with zoo_tf1.train_tf1: a TF1 Saver checkpoint (bn1/moving_mean, ...)."""
    return zoo_tf1.train_tf1(tf_keras_net(layer, mixed=mixed), INPUT_SHAPE, directory, steps=steps, batch=batch,
                             serial=True)


def train_tf_keras_sync_bn(directory, *, mixed=False) -> Trained:
    """b. tf_keras.layers.experimental.SyncBatchNormalization: like a. under `bn1/moments/`:
    Sum (x), Sum_1 (Square(x)), Sum_2 (count, OnesLike(x)) over [0, 1, 2] keep_dims ->
    IdentityN -> DivNoNan -> variance Maximum(sumsq/n - Square(mean), 0) -> Squeeze, then the
    `bn1/batchnorm/` tail; never fused. float16 inputs are Cast to float32 (`bn1/Cast`) first."""
    import tf_keras

    def layer(name):
        return tf_keras.layers.experimental.SyncBatchNormalization(momentum=MOMENTUM, name=name)

    return train_tf_keras(layer, directory, mixed=mixed)


def train_tf_keras_renorm(directory, *, mixed=False) -> Trained:
    """c. tf_keras BatchNormalization(renorm=True) (unfused): plain moments/mean, moments/variance;
    then r = StopGradient(clip(sqrt(var + eps) / renorm_stddev, rmin, rmax)) and d =
    StopGradient(clip((mean - renorm_mean) / renorm_stddev, -dmax, dmax)) from the renorm
    moving averages (Consts once frozen), and the normalization uses scale * r and offset +
    scale * d. Checkpoint: bn1/{moving_mean, moving_variance, renorm_mean, renorm_stddev, ...}."""
    import tf_keras

    def layer(name):
        return tf_keras.layers.BatchNormalization(
            renorm=True, renorm_clipping=RENORM_CLIPPING, renorm_momentum=RENORM_MOMENTUM, momentum=MOMENTUM, name=name
        )

    return train_tf_keras(layer, directory, mixed=mixed)


def train_tf_keras_ghost_bn(directory, *, virtual_batch_size=2, mixed=False) -> Trained:
    """d. tf_keras BatchNormalization(virtual_batch_size=V) (unfused): Reshape x to
    [V, -1, H, W, C], moments over [0, 2, 3] keep_dims (one mean per ghost batch: samples
    j, j + B/V, ...), the batchnorm arithmetic on 5-D tensors, Reshape back to [-1, H, W, C].
    The training graph only runs on batches that are multiples of V (a batch of 1 fails in
    the first Reshape); the inference build reshapes to [-1, 1, H, W, C] and takes any batch."""
    import tf_keras

    def layer(name):
        return tf_keras.layers.BatchNormalization(virtual_batch_size=virtual_batch_size, momentum=MOMENTUM,
                                                  name=name)

    return train_tf_keras(layer, directory, mixed=mixed)


def train_tf_keras_fused_bn(directory, *, mixed=False) -> Trained:
    """tf_keras BatchNormalization(fused=True), for the float16 form: FusedBatchNormV3 with
    T=half, U=float, is_training=true, the moving statistics as inputs 3 and 4 (Consts once
    frozen) and exponential_avg_factor = 1 - momentum."""
    import tf_keras

    def layer(name):
        return tf_keras.layers.BatchNormalization(fused=True, momentum=MOMENTUM, name=name)

    return train_tf_keras(layer, directory, mixed=mixed)


def tf_keras_noise_net():
    """model(x, training): GaussianNoise, GaussianDropout and AlphaDropout in tf_keras (stateful RNG)."""

    def model(x, training):
        import tf_keras

        layers = tf_keras.layers
        init = {"kernel_initializer": tf.compat.v1.glorot_uniform_initializer()}
        y = layers.Conv2D(8, 3, activation="relu", name="conv1", **init)(x)
        y = layers.GaussianNoise(0.3, seed=1, name="gaussian_noise")(y, training=training)
        y = layers.Conv2D(8, 3, strides=2, activation="relu", name="conv2", **init)(y)
        y = layers.GaussianDropout(0.3, seed=2, name="gaussian_dropout")(y, training=training)
        y = tf.reduce_mean(y, axis=[1, 2])
        y = layers.Dense(8, activation="selu", name="dense", **init)(y)
        y = layers.AlphaDropout(0.3, seed=3, name="alpha_dropout")(y, training=training)
        return layers.Dense(5, name="logits", **init)(y)

    return model


def train_tf_keras_noise(directory) -> Trained:
    """e. tf_keras GaussianNoise, GaussianDropout, AlphaDropout (stateful random ops):
    GaussianNoise is x + RandomStandardNormal(Shape(x)) * stddev; GaussianDropout is
    x * (RandomStandardNormal * stddev + 1); AlphaDropout is RandomUniform -> GreaterEqual ->
    Cast keep mask, (x * mask + alpha_p * (1 - mask)) * a + b."""
    return zoo_tf1.train_tf1(tf_keras_noise_net(), INPUT_SHAPE, directory, steps=10, serial=True)


# -- All forms, by name ----------------------------------------------------------------------

# name: (builder(directory) -> Trained, the layers under test, float16 compute)
FORMS = {
    "keras3_sync_bn": (train_keras3_sync_bn, BN_LAYERS, False),
    "tf_keras_sync_bn": (train_tf_keras_sync_bn, BN_LAYERS, False),
    "tf_keras_renorm": (train_tf_keras_renorm, BN_LAYERS, False),
    "tf_keras_ghost_bn": (train_tf_keras_ghost_bn, BN_LAYERS, False),
    "keras3_noise": (train_keras3_noise, NOISE_LAYERS, False),
    "tf_keras_noise": (train_tf_keras_noise, NOISE_LAYERS, False),
    "keras3_bn_mixed": (lambda d: train_keras3_bn(d, mixed=True), BN_LAYERS, True),
    "keras3_sync_bn_mixed": (lambda d: train_keras3_sync_bn(d, mixed=True), BN_LAYERS, True),
    "tf_keras_fused_bn_mixed": (lambda d: train_tf_keras_fused_bn(d, mixed=True), BN_LAYERS, True),
    "tf_keras_sync_bn_mixed": (lambda d: train_tf_keras_sync_bn(d, mixed=True), BN_LAYERS, True),
    "tf_keras_renorm_mixed": (lambda d: train_tf_keras_renorm(d, mixed=True), BN_LAYERS, True),
    "tf_keras_ghost_bn_mixed": (lambda d: train_tf_keras_ghost_bn(d, mixed=True), BN_LAYERS, True),
}
