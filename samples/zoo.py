"""Test and sample models, built with TensorFlow's own model code.

Every builder returns a `Pair`: the same model frozen in training mode and in
inference mode with the same weights, so that a fix can be checked against
what TensorFlow itself builds with training=False. Moving statistics are set
to non-trivial values, so a fix that ignored them would fail.

Used by samples/make_samples.py and by the tests; needs tensorflow, tf-slim
and tf_keras.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf

INPUT = "input"
OUTPUT = "output"


@dataclass
class Pair:
    """A model frozen twice: `training` as exported by mistake, `inference` as the reference."""

    training: bytes
    inference: bytes
    input_shape: tuple[int, ...]
    inputs: str = INPUT
    outputs: str = OUTPUT


# -- TF1-style graphs (tf-slim, tf.compat.v1) -----------------------------------------------


def _slim():
    # tf-slim 1.1 predates TF 2.16: it still looks for ops.Tensor and control_flow_ops.cond.
    from tensorflow.python.framework import ops, tensor
    from tensorflow.python.ops import cond, control_flow_ops

    ops.Tensor = getattr(ops, "Tensor", tensor.Tensor)
    control_flow_ops.cond = getattr(control_flow_ops, "cond", cond.cond)
    import tf_slim

    return tf_slim


def freeze_tf1(model_fn, *, training: bool, input_shape, values=None, keep=(), seed=0):
    """Build `model_fn(x, training)` in a fresh graph, load `values`, and freeze it.

    Variables not in `values` keep their initial values, except moving
    statistics, which get random non-trivial values. `keep` lists extra node
    names to freeze alongside the output (for instance the moving statistics).
    Returns the frozen GraphDef bytes and the variable values used.
    """
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)
        x = tf.compat.v1.placeholder(tf.float32, (None, *input_shape), name=INPUT)
        tf.identity(model_fn(x, training), name=OUTPUT)
        rng = np.random.default_rng(seed)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            variables = {v.op.name: v for v in tf.compat.v1.global_variables()}
            chosen = dict(values or {})
            for name, variable in variables.items():
                if name not in chosen:
                    chosen[name] = _initial_value(session, name, variable, rng)
                variable.load(chosen[name], session)
            keep_names = [name for name in keep if name in {op.name for op in graph.get_operations()}]
            frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
                session, graph.as_graph_def(), [OUTPUT, *keep_names]
            )
    return frozen.SerializeToString(), chosen


def _initial_value(session, name, variable, rng):
    value = session.run(variable)
    if name.endswith("moving_mean"):
        return rng.normal(0.0, 0.5, value.shape).astype(value.dtype)
    if name.endswith("moving_variance"):
        return rng.uniform(0.5, 2.0, value.shape).astype(value.dtype)
    if name.endswith(("gamma", "beta")):
        return rng.normal(1.0 if name.endswith("gamma") else 0.0, 0.3, value.shape).astype(value.dtype)
    return value


def tf1_pair(model_fn, input_shape, *, keep=()) -> Pair:
    training, values = freeze_tf1(model_fn, training=True, input_shape=input_shape, keep=keep)
    inference, _ = freeze_tf1(model_fn, training=False, input_shape=input_shape, values=values)
    return Pair(training, inference, input_shape)


def moving_statistics_names(prefixes) -> list[str]:
    return [f"{prefix}/{stat}" for prefix in prefixes for stat in ("moving_mean", "moving_variance")]


def slim_conv_stack(*, fused: bool, inline_updates: bool = False, dropout: bool = True):
    """A tf-slim conv + BatchNorm + ReLU stack with dropout before the classifier."""
    slim = _slim()

    def model(x, training):
        params = {"is_training": training, "fused": fused, "scale": True, "decay": 0.9}
        # A list keeps slim.batch_norm on its native path; None forces the
        # updates inline as control dependencies of the layer's output.
        params["updates_collections"] = None if inline_updates else [tf.compat.v1.GraphKeys.UPDATE_OPS]
        with slim.arg_scope([slim.conv2d], normalizer_fn=slim.batch_norm, normalizer_params=params):
            y = slim.conv2d(x, 8, 3, scope="conv1")
            y = slim.conv2d(y, 8, 3, stride=2, scope="conv2")
        y = tf.reduce_mean(y, axis=[1, 2])
        if dropout:
            y = slim.dropout(y, 0.5, is_training=training, scope="dropout")
        return slim.fully_connected(y, 5, activation_fn=None, scope="logits")

    return model


SLIM_STACK_BN = ("conv1/BatchNorm", "conv2/BatchNorm")


def slim_resnet_v1():
    """A small tf-slim resnet_v1 (one bottleneck block), BatchNorm fused."""
    slim = _slim()
    from tf_slim.nets import resnet_v1

    def model(x, training):
        blocks = [resnet_v1.resnet_v1_block("block1", base_depth=4, num_units=2, stride=2)]
        # resnet_arg_scope passes updates_collections as a string; a list keeps
        # slim.batch_norm on its native path.
        params = {"decay": 0.9, "scale": True, "updates_collections": [tf.compat.v1.GraphKeys.UPDATE_OPS]}
        with slim.arg_scope(resnet_v1.resnet_arg_scope()), slim.arg_scope([slim.conv2d], normalizer_params=params):
            logits, _ = resnet_v1.resnet_v1(
                x, blocks, num_classes=5, is_training=training, global_pool=True, scope="resnet"
            )
        return tf.squeeze(logits, [1, 2])

    return model


def v1_dropout_keep_prob_tensor():
    """`tf.compat.v1.nn.dropout` fed a keep_prob tensor (a placeholder with a default)."""

    def model(x, training):
        y = tf.reshape(x, [-1, int(np.prod(x.shape[1:]))])
        if training:
            keep_prob = tf.compat.v1.placeholder_with_default(0.5, shape=[], name="keep_prob")
            y = tf.compat.v1.nn.dropout(y, keep_prob=keep_prob)
        return y * 2.0

    return model


def legacy_fused_batch_norm(op_name: str):
    """FusedBatchNorm (V1) or V2 written the way tf.contrib.layers wrote it before V3."""
    from tensorflow.python.training import moving_averages

    raw = getattr(tf.raw_ops, op_name)

    def model(x, training):
        with tf.compat.v1.variable_scope("bn"):
            channels = x.shape[-1]
            gamma = tf.compat.v1.get_variable("gamma", [channels], initializer=tf.ones_initializer())
            beta = tf.compat.v1.get_variable("beta", [channels], initializer=tf.zeros_initializer())
            mean = tf.compat.v1.get_variable("moving_mean", [channels], initializer=tf.zeros_initializer(), trainable=False)
            var = tf.compat.v1.get_variable("moving_variance", [channels], initializer=tf.ones_initializer(), trainable=False)
            empty = tf.constant([], tf.float32)
            kwargs = {"x": x, "scale": gamma, "offset": beta, "epsilon": 0.001, "is_training": training}
            if training:
                y, batch_mean, batch_var = raw(mean=empty, variance=empty, **kwargs)[:3]
                updates = [
                    moving_averages.assign_moving_average(mean, batch_mean, 0.9, zero_debias=False),
                    moving_averages.assign_moving_average(var, batch_var, 0.9, zero_debias=False),
                ]
                with tf.control_dependencies(updates):
                    y = tf.identity(y)
            else:
                y = raw(mean=mean, variance=var, **kwargs)[0]
        return tf.nn.relu(y)

    return model


# -- Keras 3 ---------------------------------------------------------------------------------


def keras_pair(build, input_shape) -> Pair:
    """Freeze a Keras 3 model called with training=True and with training=False.

    Keras 3 layers update their state through variable assignments that a
    frozen graph cannot hold; `stateless_call` computes the same forward pass
    without them, which is what a graph exported for serving contains.
    """
    model = _with_nontrivial_statistics(build, seed=0)
    return Pair(
        _freeze_keras(model, input_shape, training=True),
        _freeze_keras(model, input_shape, training=False),
        input_shape,
    )


def _with_nontrivial_statistics(build, *, seed: int):
    """A Keras 3 model from `build`, its moving statistics set away from 0 and 1."""
    import keras

    keras.utils.set_random_seed(0)
    model = build()
    rng = np.random.default_rng(seed)
    for variable in model.non_trainable_variables:
        if variable.path.endswith("moving_mean"):
            variable.assign(rng.normal(0.0, 0.5, variable.shape).astype("float32"))
        elif variable.path.endswith("moving_variance"):
            variable.assign(rng.uniform(0.5, 2.0, variable.shape).astype("float32"))
    return model


def _freeze_keras(model, input_shape, *, training: bool) -> bytes:
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    def forward(x):
        y, _ = model.stateless_call(model.trainable_variables, model.non_trainable_variables, x, training=training)
        return tf.identity(y, name=OUTPUT)

    spec = tf.TensorSpec((None, *input_shape), tf.float32, name=INPUT)
    function = tf.function(forward).get_concrete_function(spec)
    graph_def = convert_variables_to_constants_v2(function).graph.as_graph_def()
    return _rename_input(graph_def).SerializeToString()


def _rename_input(graph_def):
    # Concrete functions name their input placeholder after the Python argument.
    for node in graph_def.node:
        if node.op == "Placeholder":
            old = node.name
            node.name = INPUT
            for other in graph_def.node:
                for index, ref in enumerate(other.input):
                    if ref == old or ref.startswith(old + ":"):
                        other.input[index] = INPUT + ref[len(old):]
    return graph_def


def keras_cnn():
    import keras

    def build():
        inputs = keras.Input((16, 16, 3))
        x = keras.layers.Conv2D(8, 3, name="conv1")(inputs)
        x = keras.layers.BatchNormalization(name="bn1")(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.Conv2D(8, 3, strides=2, name="conv2")(x)
        x = keras.layers.BatchNormalization(name="bn2")(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        x = keras.layers.Dropout(0.5)(x)
        return keras.Model(inputs, keras.layers.Dense(5)(x))

    return build


def keras_per_sample_norms():
    """LayerNorm, GroupNorm and InstanceNorm (GroupNorm with one channel per group): never flagged."""
    import keras

    def build():
        inputs = keras.Input((16, 16, 8))
        x = keras.layers.LayerNormalization()(inputs)
        x = keras.layers.GroupNormalization(groups=2)(x)
        x = keras.layers.GroupNormalization(groups=8)(x)  # instance norm
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(3)(x))

    return build


def keras_mobilenet_v1():
    """MobileNet v1, depth multiplier 0.25, 128x128: the model of the classic report."""
    import keras

    def build():
        return keras.applications.MobileNet(input_shape=(128, 128, 3), alpha=0.25, weights=None)

    return build


def keras2_fused_bn():
    """tf_keras (Keras 2) BatchNormalization, fused: mean and variance inputs are the moving statistics."""
    import tf_keras

    def model(x, training):
        y = tf_keras.layers.Conv2D(8, 3, name="conv1")(x)
        y = tf_keras.layers.BatchNormalization(fused=True, name="bn1")(y, training=training)
        return tf.nn.relu(y)

    return model


# -- Trained models with checkpoints ---------------------------------------------------------


def training_data(input_shape, count, seed=0) -> np.ndarray:
    """Inputs from one fixed distribution: per-channel offsets and scales, so statistics are non-trivial."""
    rng = np.random.default_rng(seed)
    channels = input_shape[-1]
    offsets = np.linspace(-1.0, 2.0, channels)
    scales = np.linspace(0.5, 1.5, channels)
    return (rng.normal(size=(count, *input_shape)) * scales + offsets).astype(np.float32)


@dataclass
class Trained:
    """A model trained for a few steps: its checkpoint, and the frozen graphs made from it."""

    pair: Pair  # training graph frozen for the output only (statistics pruned), inference reference
    prefix: str  # the checkpoint prefix


def train_tf1(model_fn, input_shape, directory, *, steps=40, learning_rate=0.01, batch=16) -> Trained:
    """Train `model_fn` with real steps (weights and moving statistics change), save a TF1 checkpoint."""
    prefix = str(directory / "model.ckpt")
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        x = tf.compat.v1.placeholder(tf.float32, (None, *input_shape), name=INPUT)
        y = tf.identity(model_fn(x, True), name=OUTPUT)
        loss = tf.reduce_mean(tf.square(y - 1.0))
        with tf.control_dependencies(tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)):
            step = tf.compat.v1.train.GradientDescentOptimizer(learning_rate).minimize(loss)
        saver = tf.compat.v1.train.Saver()
        data = training_data(input_shape, steps * batch)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for i in range(steps):
                session.run(step, {x: data[i * batch : (i + 1) * batch]})
            saver.save(session, prefix)
            training = tf.compat.v1.graph_util.convert_variables_to_constants(
                session, graph.as_graph_def(), [OUTPUT]
            ).SerializeToString()
    return Trained(Pair(training, _inference_from_checkpoint(model_fn, input_shape, prefix), input_shape), prefix)


def _inference_from_checkpoint(model_fn, input_shape, prefix) -> bytes:
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (None, *input_shape), name=INPUT)
        tf.identity(model_fn(x, False), name=OUTPUT)
        with tf.compat.v1.Session() as session:
            tf.compat.v1.train.Saver().restore(session, prefix)
            return tf.compat.v1.graph_util.convert_variables_to_constants(
                session, graph.as_graph_def(), [OUTPUT]
            ).SerializeToString()


def train_keras(build, input_shape, directory, *, steps=8, batch=16) -> tuple[Pair, str, str]:
    """Fit a Keras 3 model for a few steps; write a TF2 object-based checkpoint and a SavedModel.

    Returns the pair (training graph frozen without its statistics, inference
    reference), the checkpoint prefix, and the SavedModel's variables prefix.
    """
    import keras

    keras.utils.set_random_seed(0)
    model = build()
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    data = training_data(input_shape, steps * batch)
    target = np.ones((len(data), *model.output_shape[1:]), np.float32)
    model.fit(data, target, batch_size=batch, epochs=1, verbose=0)
    prefix = tf.train.Checkpoint(model=model).write(str(directory / "ckpt" / "model"))
    model.export(str(directory / "saved_model"), verbose=False)
    training = _without_orphans(_freeze_keras(model, input_shape, training=True))
    pair = Pair(training, _freeze_keras(model, input_shape, training=False), input_shape)
    return pair, prefix, str(directory / "saved_model" / "variables" / "variables")


def _without_orphans(graph_bytes: bytes) -> bytes:
    # What a graph frozen for its output alone holds: the variable reads that
    # only a NoOp waited for (the moving statistics among them) are gone.
    graph_def = tf.compat.v1.GraphDef.FromString(graph_bytes)
    return tf.compat.v1.graph_util.extract_sub_graph(graph_def, [OUTPUT]).SerializeToString()


# -- Training switches and SavedModels ------------------------------------------------------


def with_training_switch(model_fn, *, control_flow_v2: bool):
    """`model_fn` driven by an `is_training` placeholder_with_default(True) through tf.cond.

    Returns a builder for tf1_pair: the training build gets the placeholder, the
    inference build the Python value False. Control flow v1 (Switch/Merge) is
    TensorFlow 1.x's tf.cond; v2 (If with branch functions) is TensorFlow 2.x's.
    """
    from tensorflow.python.ops import control_flow_util

    def model(x, training):
        if not training:
            return model_fn(x, False)
        previous = control_flow_util.ENABLE_CONTROL_FLOW_V2
        control_flow_util.ENABLE_CONTROL_FLOW_V2 = control_flow_v2
        try:
            return model_fn(x, tf.compat.v1.placeholder_with_default(True, [], name="is_training"))
        finally:
            control_flow_util.ENABLE_CONTROL_FLOW_V2 = previous

    return model


def keras_saved_model(build, input_shape, directory, *, training: bool) -> tuple[str, bytes]:
    """Export a Keras 3 model whose serving signature calls it with `training`.

    Returns the SavedModel directory and, as the reference, the same model
    frozen with training=False.
    """
    import keras

    model = _with_nontrivial_statistics(build, seed=1)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default",
        lambda x: model(x, training=training),
        input_signature=[tf.TensorSpec((None, *input_shape), tf.float32, name=INPUT)],
    )
    path = str(directory / "saved_model")
    archive.write_out(path, verbose=False)
    return path, _freeze_keras(model, input_shape, training=False)


def keras2_saved_model(directory, input_shape=(8, 8, 3)) -> tuple[str, bytes]:
    """A tf_keras (Keras 2) model with fused BatchNorm, saved with a training=True signature.

    TensorFlow strips attributes equal to their default when it saves, so the
    FusedBatchNormV3 nodes in the SavedModel have no is_training attribute.
    Returns the directory and the inference reference frozen from the same model.
    """
    import tf_keras
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input(input_shape)
    x = tf_keras.layers.Conv2D(8, 3, name="conv1")(inputs)
    x = tf_keras.layers.BatchNormalization(fused=True, name="bn1")(x)
    model = tf_keras.Model(inputs, tf_keras.layers.ReLU()(x))
    model.layers[2].moving_mean.assign(np.linspace(-1, 1, 8).astype(np.float32))
    model.layers[2].moving_variance.assign(np.linspace(0.5, 2, 8).astype(np.float32))
    spec = tf.TensorSpec((None, *input_shape), tf.float32, name=INPUT)
    serve = tf.function(lambda x: {"output": model(x, training=True)}, input_signature=[spec])
    path = str(directory / "keras2_saved_model")
    tf.saved_model.save(model, path, signatures=serve.get_concrete_function())
    reference = tf.function(lambda x: tf.identity(model(x, training=False), name=OUTPUT), input_signature=[spec])
    frozen = convert_variables_to_constants_v2(reference.get_concrete_function()).graph.as_graph_def()
    return path, _rename_input(frozen).SerializeToString()


def keras_dropout_only():
    """Dense layers with Keras 3's seeded, stateless dropout between them; no BatchNorm."""
    import keras

    def build():
        inputs = keras.Input((8,))
        x = keras.layers.Dense(16, activation="relu")(inputs)
        x = keras.layers.Dropout(0.5, seed=3)(x)
        return keras.Model(inputs, keras.layers.Dense(3)(x))

    return build
