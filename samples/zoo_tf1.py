"""TF1-era training graphs, built with TensorFlow's own TF1 model code.

Each builder reproduces one habit of TensorFlow 1.x training scripts that ends
in a graph exported in training mode; the numbers in the docstrings are the
shapes of the issue. Model functions have zoo's signature `model(x, training)`:
`training=True` builds the graph as it was exported by mistake (switch
placeholders, conds, update ops), `training=False` builds the same model in
plain inference mode (Python False, no placeholders) with the same variable
names, so one checkpoint restores into both.

Model functions that only need the input fed train with `zoo.train_tf1`;
`train_tf1` here adds what the other shapes need: extra feeds (a plain bool
placeholder has no default), several outputs, moving statistics kept as
Consts, and training without the UPDATE_OPS dependency.

Imports `zoo` (it lives beside this file); needs tensorflow, tf-slim and tf_keras.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import tensorflow as tf

import zoo
from zoo import INPUT, OUTPUT, Pair, Trained

EVAL_OUTPUT = "eval_output"
SWITCH = "is_training"
STATISTICS_SUFFIXES = ("moving_mean", "moving_variance", "pop_mean", "pop_var")

# (depth, stride) of the first depthwise-separable blocks of MobileNet v1 (models repo, _CONV_DEFS).
MOBILENET_V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2))


# -- Helpers ---------------------------------------------------------------------------------


def _layers():
    """tf.compat.v1.layers: the module it resolves to under TF_USE_LEGACY_KERAS (not set here)."""
    import tf_keras.api._v1.keras as k1

    return k1.__internal__.legacy.layers


@contextlib.contextmanager
def control_flow(v2: bool):
    """Build tf.cond as control flow v2 (If + library functions) or v1 (Switch/Merge), like TF 2.x or 1.x."""
    from tensorflow.python.ops import control_flow_util

    previous = control_flow_util.ENABLE_CONTROL_FLOW_V2
    control_flow_util.ENABLE_CONTROL_FLOW_V2 = v2
    try:
        yield
    finally:
        control_flow_util.ENABLE_CONTROL_FLOW_V2 = previous


def _switch(training):
    """The TF1 training switch: placeholder_with_default(True) for the training build, else Python False."""
    return tf.compat.v1.placeholder_with_default(True, [], name=SWITCH) if training else False


def _slim_bn_params(is_training, *, fused=True, decay=0.9):
    """slim.batch_norm parameters; a list for updates_collections keeps slim on its native path."""
    return {
        "is_training": is_training,
        "fused": fused,
        "scale": True,
        "decay": decay,
        "updates_collections": [tf.compat.v1.GraphKeys.UPDATE_OPS],
    }


def _slim_conv(x, depth, is_training, *, scope, fused=True, stride=1):
    """slim.conv2d 3x3 + slim.batch_norm + ReLU."""
    slim = zoo._slim()
    params = _slim_bn_params(is_training, fused=fused)
    return slim.conv2d(x, depth, 3, stride=stride, normalizer_fn=slim.batch_norm, normalizer_params=params, scope=scope)


def statistics_names(graph) -> list[str]:
    """Names of the variables in `graph` holding moving statistics (moving_*, pop_*)."""
    return sorted(v.op.name for v in graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)
                  if v.op.name.endswith(STATISTICS_SUFFIXES))


# -- Training --------------------------------------------------------------------------------


def train_tf1(model_fn, input_shape, directory, *, feeds=None, outputs=(OUTPUT,), keep_statistics=False,
              update_ops=True, steps=40, learning_rate=0.01, batch=16, serial=False) -> Trained:
    """zoo.train_tf1 with the knobs TF1 scripts varied; returns Trained (frozen pair, checkpoint prefix).

    `feeds` maps tensor names to values fed at every step ({"is_training:0": True}
    for a plain bool placeholder). The training graph is frozen for `outputs`,
    plus every moving-statistics variable (as a Const) with `keep_statistics`.
    `update_ops=False` trains without the UPDATE_OPS control dependency, the
    classic mistake that leaves the moving statistics at their initial values.
    The checkpoint is a TF1 Saver checkpoint with its .meta graph. `serial` runs
    the session with one inter-op thread: nothing in a TF1 graph orders update
    assigns against other reads of the same variables (renorm reads
    renorm_mean in its forward pass and its updates assign it), so only a
    fixed schedule makes the trained values reproducible.
    """
    Path(directory).mkdir(parents=True, exist_ok=True)
    prefix = str(Path(directory) / "model.ckpt")
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        x = tf.compat.v1.placeholder(tf.float32, (None, *input_shape), name=INPUT)
        step = _training_step(tf.identity(model_fn(x, True), name=OUTPUT), learning_rate, update_ops)
        saver = tf.compat.v1.train.Saver()
        keep = [*outputs, *(statistics_names(graph) if keep_statistics else [])]
        config = tf.compat.v1.ConfigProto(inter_op_parallelism_threads=1) if serial else None
        with tf.compat.v1.Session(config=config) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            data = zoo.training_data(input_shape, steps * batch)
            for i in range(steps):
                session.run(step, {x: data[i * batch : (i + 1) * batch], **(feeds or {})})
            saver.save(session, prefix)
            frozen = tf.compat.v1.graph_util.convert_variables_to_constants(session, graph.as_graph_def(), keep)
    inference = zoo._inference_from_checkpoint(model_fn, input_shape, prefix)
    return Trained(Pair(frozen.SerializeToString(), inference, tuple(input_shape)), prefix)


def _training_step(y, learning_rate, update_ops):
    """Plain SGD on a regression to 1, waiting for UPDATE_OPS unless `update_ops` is False."""
    loss = tf.reduce_mean(tf.square(y - 1.0))
    waits = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS) if update_ops else []
    with tf.control_dependencies(waits):
        return tf.compat.v1.train.GradientDescentOptimizer(learning_rate).minimize(loss)


# -- 1. tf.compat.v1.layers BatchNorm with a keep_prob placeholder ----------------------------


def layers_bn_with_keep_prob():
    """1. tf.compat.v1.layers conv + batch_normalization(training=is_training) (control flow v2),
    then tf.compat.v1.nn.dropout with a keep_prob placeholder_with_default(0.5) outside any cond."""

    def model(x, training):
        layers = _layers()
        # TF1's default kernel initializer, spelled out: tf_keras would seed its own from Python's
        # `random`, so weights would change from run to run; this one follows the graph seed.
        init = {"kernel_initializer": tf.compat.v1.glorot_uniform_initializer()}
        with control_flow(v2=True):
            is_training = _switch(training)
            y = layers.conv2d(x, 8, 3, name="conv1", **init)
            y = tf.nn.relu(layers.batch_normalization(y, momentum=0.9, training=is_training, name="bn1"))
            y = layers.conv2d(y, 8, 3, strides=2, name="conv2", **init)
            y = tf.nn.relu(layers.batch_normalization(y, momentum=0.9, training=is_training, name="bn2"))
            y = tf.reduce_mean(y, axis=[1, 2])
            if training:
                keep_prob = tf.compat.v1.placeholder_with_default(0.5, [], name="keep_prob")
                y = tf.compat.v1.nn.dropout(y, keep_prob=keep_prob)
            return layers.dense(y, 5, name="logits", **init)

    return model


# -- 2. One plain bool placeholder driving three conds ----------------------------------------


def three_conds_plain_switch():
    """2. One plain tf.compat.v1.placeholder(tf.bool) "is_training" (no default; feed it to train),
    control flow v2, driving slim fused BatchNorm, slim fused=False BatchNorm and slim.dropout."""
    slim = zoo._slim()

    def model(x, training):
        with control_flow(v2=True):
            is_training = tf.compat.v1.placeholder(tf.bool, [], name=SWITCH) if training else False
            y = _slim_conv(x, 8, is_training, fused=True, scope="conv1")
            # fused=False: slim computes the moments outside the cond and only selects them with it.
            y = _slim_conv(y, 8, is_training, fused=False, stride=2, scope="conv2")
            y = slim.dropout(tf.reduce_mean(y, axis=[1, 2]), 0.5, is_training=is_training, scope="dropout")
            return slim.fully_connected(y, 5, activation_fn=None, scope="logits")

    return model


def train_three_conds_plain_switch(directory, *, mend=True) -> Trained:
    """2. three_conds_plain_switch trained with is_training fed True; the frozen graph keeps the plain
    placeholder. As TF 2.21 freezes it (`mend=False`) the fused=False selection cond's else branch
    cannot run (see mend_frozen_returns); by default the returns are mended."""
    trained = train_tf1(three_conds_plain_switch(), (16, 16, 3), directory, feeds={f"{SWITCH}:0": True})
    if mend:
        trained.pair.training = mend_frozen_returns(trained.pair.training)
    return trained


def mend_frozen_returns(graph_bytes: bytes) -> bytes:
    """Undo a TF 2.21 freezing slip: in branch functions convert_variables_to_constants turns
    ReadVariableOp into Identity and renames its consumers' `:value:` inputs to `:output:`, but not
    the function's own return values, so a branch returning a variable read fails to run
    ("Return readvariableop -> ReadVariableOp:value:0 is not found")."""
    graph_def = tf.compat.v1.GraphDef.FromString(graph_bytes)
    for function in graph_def.library.function:
        identities = {n.name for n in function.node_def if n.op == "Identity"}
        for key, ref in function.ret.items():
            node, _, rest = ref.partition(":")
            if node in identities and rest.startswith("value:"):
                function.ret[key] = f"{node}:output:{rest[len('value:'):]}"
    return graph_def.SerializeToString()


# -- 3. tf-slim MobileNet v1 with the doubled op scope ----------------------------------------


def slim_mobilenet_v1(depth_multiplier=0.25, decay=0.9):
    """3. A small tf-slim MobileNet v1 (models-repo structure, control flow v1 Switch/Merge) on an
    is_training placeholder_with_default(True). Variables live at MobilenetV1/Conv2d_0/BatchNorm/...,
    ops under the doubled name scope MobilenetV1/MobilenetV1/Conv2d_0/... . Input 32x32x3.
    `decay` is 0.9 (the real arg scope uses 0.9997) so a few steps move the statistics."""

    def model(x, training):
        with control_flow(v2=False):
            return _mobilenet_v1(x, _switch(training), depth_multiplier, decay)

    return model


def _mobilenet_v1(inputs, is_training, depth_multiplier, decay, scope="MobilenetV1"):
    """mobilenet_v1(): opens the variable scope and passes the scope object on to the base."""
    slim = zoo._slim()
    with tf.compat.v1.variable_scope(scope, "MobilenetV1", [inputs]) as scope:
        with slim.arg_scope([slim.batch_norm], **_slim_bn_params(is_training, decay=decay)):
            net = _mobilenet_v1_base(inputs, depth_multiplier, scope=scope)
        with tf.compat.v1.variable_scope("Logits"):
            net = tf.reduce_mean(net, [1, 2], keepdims=True, name="global_pool")
            logits = slim.conv2d(net, 5, [1, 1], activation_fn=None, normalizer_fn=None, scope="Conv2d_1c_1x1")
            return tf.squeeze(logits, [1, 2], name="SpatialSqueeze")


def _mobilenet_v1_base(inputs, depth_multiplier, scope):
    """mobilenet_v1_base(): re-enters `scope`, which opens the second MobilenetV1 name scope."""
    slim = zoo._slim()

    def depth(d):
        return max(int(d * depth_multiplier), 8)

    with tf.compat.v1.variable_scope(scope, "MobilenetV1", [inputs]):
        with slim.arg_scope([slim.conv2d, slim.separable_conv2d], padding="SAME", activation_fn=tf.nn.relu6,
                            normalizer_fn=slim.batch_norm):
            net = slim.conv2d(inputs, depth(32), [3, 3], stride=2, scope="Conv2d_0")
            for i, (d, stride) in enumerate(MOBILENET_V1_BLOCKS, start=1):
                net = slim.separable_conv2d(net, None, [3, 3], depth_multiplier=1, stride=stride,
                                            scope=f"Conv2d_{i}_depthwise")
                net = slim.conv2d(net, depth(d), [1, 1], stride=1, scope=f"Conv2d_{i}_pointwise")
    return net


# -- 4. Shape 3 frozen with its moving statistics as Consts -----------------------------------


def mobilenet_with_statistics(directory) -> Pair:
    """4. slim_mobilenet_v1 trained, its training graph frozen for "output" and every
    .../moving_mean and .../moving_variance (kept as Consts); the inference reference beside it."""
    return train_tf1(slim_mobilenet_v1(), (32, 32, 3), directory, keep_statistics=True).pair


# -- 6a. Hand-written BatchNorm with custom-named statistics ----------------------------------


def custom_named_statistics(control_flow_v2: bool, *, ref_variables: bool = False):
    """6a. Hand-written TF1 BatchNorm: get_variable scale/offset/pop_mean/pop_var under "bn1", "bn2";
    tf.cond on is_training (placeholder_with_default(True)) whose training branch takes tf.nn.moments
    and assigns pop_mean/pop_var.

    Variables are resource variables unless `ref_variables` (control flow v1 only: If branches
    cannot capture ref variables), which gives TF 1.x's VariableV2/RefSwitch/Assign.
    The assigns are control inputs of the output, so freezing keeps them on Consts: frozen, the
    control-flow-v1 graph does not import (AssignVariableOp, or RefSwitch, fed a float) and the
    v2 graph imports but fails when run (AssignVariableOp inside the branch function)."""
    if ref_variables and control_flow_v2:
        raise ValueError("ref variables need control flow v1")
    use_resource = not ref_variables

    def model(x, training):
        with control_flow(control_flow_v2):
            is_training = _switch(training)
            y = _conv(x, 8, 1, scope="conv1", use_resource=use_resource)
            y = tf.nn.relu(_cond_batch_norm(y, is_training, scope="bn1", use_resource=use_resource))
            y = _conv(y, 8, 2, scope="conv2", use_resource=use_resource)
            y = tf.nn.relu(_cond_batch_norm(y, is_training, scope="bn2", use_resource=use_resource))
            return _dense(tf.reduce_mean(y, axis=[1, 2]), 5, scope="logits", use_resource=use_resource)

    return model


def _conv(x, depth, stride, *, scope, use_resource):
    """A hand-written 3x3 convolution (get_variable + tf.nn.conv2d), no bias: BatchNorm follows."""
    with tf.compat.v1.variable_scope(scope, use_resource=use_resource):
        weights = tf.compat.v1.get_variable("weights", [3, 3, x.shape[-1], depth])
        return tf.nn.conv2d(x, weights, [1, stride, stride, 1], "SAME")


def _dense(x, units, *, scope, use_resource):
    """A hand-written fully connected layer."""
    with tf.compat.v1.variable_scope(scope, use_resource=use_resource):
        weights = tf.compat.v1.get_variable("weights", [x.shape[-1], units])
        biases = tf.compat.v1.get_variable("biases", [units], initializer=tf.zeros_initializer())
        return tf.matmul(x, weights) + biases


def _bn_variables(channels):
    """scale, offset and the population statistics pop_mean, pop_var (not trainable)."""
    scale = tf.compat.v1.get_variable("scale", [channels], initializer=tf.ones_initializer())
    offset = tf.compat.v1.get_variable("offset", [channels], initializer=tf.zeros_initializer())
    pop_mean = tf.compat.v1.get_variable("pop_mean", [channels], initializer=tf.zeros_initializer(), trainable=False)
    pop_var = tf.compat.v1.get_variable("pop_var", [channels], initializer=tf.ones_initializer(), trainable=False)
    return scale, offset, pop_mean, pop_var


def _assign_averages(pop_mean, pop_var, batch_mean, batch_var, decay):
    """pop = pop * decay + batch * (1 - decay), with tf.compat.v1.assign."""
    return [
        tf.compat.v1.assign(pop_mean, pop_mean * decay + batch_mean * (1 - decay)),
        tf.compat.v1.assign(pop_var, pop_var * decay + batch_var * (1 - decay)),
    ]


def _cond_batch_norm(x, is_training, *, scope, use_resource, decay=0.9):
    """The classic tf.cond BatchNorm: moments and updates in the training branch, pop_* in the other."""
    with tf.compat.v1.variable_scope(scope, use_resource=use_resource):
        scale, offset, pop_mean, pop_var = _bn_variables(x.shape[-1])

        def batch_moments():
            batch_mean, batch_var = tf.nn.moments(x, [0, 1, 2])
            with tf.control_dependencies(_assign_averages(pop_mean, pop_var, batch_mean, batch_var, decay)):
                return tf.identity(batch_mean), tf.identity(batch_var)

        def population():
            return tf.identity(pop_mean), tf.identity(pop_var)

        mean, var = tf.cond(is_training, batch_moments, population) if _training_mode(is_training) else population()
        return tf.nn.batch_normalization(x, mean, var, offset, scale, 1e-3)


def _training_mode(is_training) -> bool:
    """True unless the model is built in plain inference mode (is_training is the Python False)."""
    return is_training is not False


# -- 6b. Training and evaluation towers on the same variables ---------------------------------


def two_towers():
    """6b. The TF1 train/eval pattern: the same tf-slim conv+BatchNorm stack called twice on shared
    variables, is_training=True (node "output", trained) then reuse=True and is_training=False
    (node "eval_output", reading the moving statistics). Both towers read the same "input"."""
    stack = zoo.slim_conv_stack(fused=True)

    def model(x, training):
        with tf.compat.v1.variable_scope("net", reuse=tf.compat.v1.AUTO_REUSE):
            y = stack(x, bool(training))
        if training:
            with tf.compat.v1.variable_scope("net", reuse=True):
                evaluation = stack(x, False)
            tf.identity(evaluation, name=EVAL_OUTPUT)
        return y

    return model


def train_two_towers(directory) -> Trained:
    """6b. two_towers trained through its training tower; pair.training is frozen for both
    "output" and "eval_output", so the eval tower's moving-statistics reads are in the file."""
    return train_tf1(two_towers(), (16, 16, 3), directory, outputs=(OUTPUT, EVAL_OUTPUT))


# -- 7. Update ops outside the cond, run by the inference branch too --------------------------


def updates_outside_cond():
    """7. Hand-written BatchNorm (ref variables, control flow v1) whose pop_mean/pop_var assigns are
    built OUTSIDE the tf.cond from moments taken outside too, and are control inputs of BOTH branches:
    they run even with is_training False. Freezing keeps the assigns; that graph does not import."""

    def model(x, training):
        with control_flow(v2=False):
            is_training = _switch(training)
            y = _conv(x, 8, 1, scope="conv1", use_resource=False)
            y = tf.nn.relu(_leaky_batch_norm(y, is_training, scope="bn1"))
            y = _conv(y, 8, 2, scope="conv2", use_resource=False)
            y = tf.nn.relu(_leaky_batch_norm(y, is_training, scope="bn2"))
            return _dense(tf.reduce_mean(y, axis=[1, 2]), 5, scope="logits", use_resource=False)

    return model


def _leaky_batch_norm(x, is_training, *, scope, decay=0.9):
    """BatchNorm whose updates wait outside the cond and are pulled in by both branches."""
    with tf.compat.v1.variable_scope(scope, use_resource=False):
        scale, offset, pop_mean, pop_var = _bn_variables(x.shape[-1])
        if not _training_mode(is_training):
            return tf.nn.batch_normalization(x, pop_mean, pop_var, offset, scale, 1e-3)
        batch_mean, batch_var = tf.nn.moments(x, [0, 1, 2])
        updates = _assign_averages(pop_mean, pop_var, batch_mean, batch_var, decay)

        def batch_moments():
            with tf.control_dependencies(updates):
                return tf.identity(batch_mean), tf.identity(batch_var)

        def population():
            with tf.control_dependencies(updates):  # the bug: inference updates the statistics too
                return tf.identity(pop_mean), tf.identity(pop_var)

        mean, var = tf.cond(is_training, batch_moments, population)
        return tf.nn.batch_normalization(x, mean, var, offset, scale, 1e-3)


def train_updates_outside_cond(directory) -> Trained:
    """7. updates_outside_cond trained; pair.training still holds the Assign ops (it will not import)."""
    return train_tf1(updates_outside_cond(), (16, 16, 3), directory)


# -- 8. Trained without the UPDATE_OPS dependency ---------------------------------------------


def untrained_statistics(directory) -> tuple[Trained, Trained]:
    """8. zoo.slim_conv_stack(fused=True) trained twice for real steps: first WITHOUT the UPDATE_OPS
    control dependency (the classic mistake: moving_mean stays 0, moving_variance 1), then correctly
    with zoo.train_tf1. Returns (wrong, right), in directory/no_update_ops and directory/update_ops."""
    model, directory = zoo.slim_conv_stack(fused=True), Path(directory)
    wrong = train_tf1(model, (16, 16, 3), directory / "no_update_ops", update_ops=False)
    (directory / "update_ops").mkdir(parents=True, exist_ok=True)
    return wrong, zoo.train_tf1(model, (16, 16, 3), directory / "update_ops")


# -- 9. Issue 17: BatchNorm in NCHW and inside a tf.while_loop --------------------------------


LOOP_STEPS = 3


def train_with_and_without_statistics(model_fn, input_shape, directory) -> tuple[Trained, Trained]:
    """Train `model_fn` once with train_tf1; return (statistics kept as Consts, statistics pruned).

    The second is the first frozen for the output alone, as convert_variables_to_constants gives it
    without `keep`: its moving statistics only exist in the checkpoint (fix it with --checkpoint).
    Both share the checkpoint prefix and the inference reference."""
    kept = train_tf1(model_fn, input_shape, directory, keep_statistics=True)
    pruned = zoo._without_orphans(kept.pair.training)
    return kept, Trained(Pair(pruned, kept.pair.inference, kept.pair.input_shape), kept.prefix)


def slim_unfused_nchw():
    """17a. tf-slim conv + batch_norm(fused=False, data_format="NCHW") twice on the NHWC "input"
    (None, 16, 16, 3): the convolutions are NHWC, each BatchNorm gets its input transposed to
    NCHW (conv1/to_nchw) and transposes its result back (conv1/to_nhwc). slim takes the moments over [0, 2, 3] with keep_dims,
    reshapes them to [C] and back to [1, C, 1, 1] (with beta and gamma) for the normalization.
    Variables conv1/BatchNorm/..., conv2/BatchNorm/... ."""
    return _slim_nchw(fused=False, dtype=tf.float32)


def slim_fused_nchw_float16():
    """17c. slim_unfused_nchw with the input cast to float16 and slim.batch_norm fused=True:
    FusedBatchNormV3 (T=half, U=float, data_format NCHW) with float32 gamma, beta and statistics;
    the convolution weights are float16. The output is cast back to float32."""
    return _slim_nchw(fused=True, dtype=tf.float16)


def _slim_nchw(*, fused, dtype):
    slim = zoo._slim()

    def nchw_batch_norm(y, **params):
        # TF's CPU kernels train NCHW convolutions in float32 (oneDNN) only: the convolutions stay
        # NHWC and the BatchNorm layer alone works in NCHW, transposed to and back.
        y = slim.batch_norm(tf.transpose(y, [0, 3, 1, 2], name="to_nchw"), data_format="NCHW", **params)
        return tf.transpose(y, [0, 2, 3, 1], name="to_nhwc")

    def model(x, training):
        params = _slim_bn_params(training, fused=fused)
        with slim.arg_scope([slim.conv2d], normalizer_fn=nchw_batch_norm, normalizer_params=params):
            y = slim.conv2d(tf.cast(x, dtype), 8, 3, scope="conv1")
            y = slim.conv2d(y, 8, 3, stride=2, scope="conv2")
        y = tf.reduce_mean(tf.cast(y, tf.float32), axis=[1, 2])
        return slim.fully_connected(y, 5, activation_fn=None, scope="logits")

    return model


def batch_norm_in_while_loop(*, fused: bool = False, dtype=tf.float32, scope: str | None = "rnn"):
    """17b. An RNN-like cell run LOOP_STEPS times by a control-flow-v1 tf.compat.v1.while_loop
    (Enter/Merge/Switch/NextIteration/Exit frame "rnn/while/while_context"), the way dynamic_rnn
    runs its cell: variable scope "rnn", the cell's variables created by get_variable inside the
    body (lifted out of the frame), its ops named rnn/while/cell/... . The cell is a 3x3 conv and a
    hand-written BatchNorm ("rnn/cell/bn": gamma, beta, moving_mean, moving_variance, ref variables):
    tf.nn.moments over [0, 1, 2] + tf.nn.batch_normalization, or with `fused`
    tf.compat.v1.nn.fused_batch_norm (empty mean/variance in training). The batch moments are
    carried out of the loop as loop variables and, averaged over the steps, update the moving
    statistics after it (UPDATE_OPS): an op inside the frame cannot be a control input outside it.

    `dtype=tf.float16` (fused only) runs the loop in float16: the conv weights are float16, the
    BatchNorm parameters and statistics float32. Input (None, 8, 8, 3) NHWC; a 3x3 conv "conv_in"
    outside the loop makes the 8-channel initial state.

    `scope=None` builds the loop at the top level instead: ops while/cell/bn/..., frame
    "while/while_context", variables cell/bn/... (a suffix of the ops' scope)."""
    if dtype != tf.float32 and not fused:
        raise ValueError("tf.nn.batch_normalization needs the statistics in the input's dtype: float16 is fused only")

    def model(x, training):
        outer = scope or tf.compat.v1.get_variable_scope()
        with control_flow(v2=False), tf.compat.v1.variable_scope(outer, use_resource=False):
            h = tf.cast(_conv(x, 8, 1, scope="conv_in", use_resource=False), dtype)

            def cell(h):
                with tf.compat.v1.variable_scope("cell", reuse=tf.compat.v1.AUTO_REUSE):
                    weights = tf.compat.v1.get_variable("weights", [3, 3, 8, 8], dtype)
                    y = tf.nn.conv2d(h, weights, [1, 1, 1, 1], "SAME")
                    y, mean, variance = _loop_batch_norm(y, training, fused=fused)
                    return tf.nn.relu(y), mean, variance

            if not training:
                def body(i, h):
                    return i + 1, cell(h)[0]

                _, h = tf.compat.v1.while_loop(lambda i, h: i < LOOP_STEPS, body, [0, h])
            else:
                def body(i, h, mean_sum, variance_sum):
                    h, mean, variance = cell(h)
                    return i + 1, h, mean_sum + mean, variance_sum + variance

                zeros = tf.zeros([8])
                _, h, mean_sum, variance_sum = tf.compat.v1.while_loop(
                    lambda i, *_: i < LOOP_STEPS, body, [0, h, zeros, zeros])
                _update_moving_statistics(mean_sum / LOOP_STEPS, variance_sum / LOOP_STEPS)
            y = tf.reduce_mean(tf.cast(h, tf.float32), axis=[1, 2])
            return _dense(y, 5, scope="logits", use_resource=False)

    return model


def slim_named_bn_variables(channels):
    """gamma, beta and the moving_mean, moving_variance (not trainable), as tf-slim names them,
    in the current variable scope."""
    gamma = tf.compat.v1.get_variable("gamma", [channels], initializer=tf.ones_initializer())
    beta = tf.compat.v1.get_variable("beta", [channels], initializer=tf.zeros_initializer())
    moving_mean = tf.compat.v1.get_variable("moving_mean", [channels], initializer=tf.zeros_initializer(),
                                            trainable=False)
    moving_variance = tf.compat.v1.get_variable("moving_variance", [channels], initializer=tf.ones_initializer(),
                                                trainable=False)
    return gamma, beta, moving_mean, moving_variance


def _loop_batch_norm(x, training, *, fused):
    """BatchNorm "bn" with slim's variable names; returns (y, the mean and variance it used)."""
    with tf.compat.v1.variable_scope("bn"):
        gamma, beta, moving_mean, moving_variance = slim_named_bn_variables(x.shape[-1])
        if fused and training:
            return tf.compat.v1.nn.fused_batch_norm(x, gamma, beta, epsilon=1e-3)
        if fused:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(x, gamma, beta, mean=moving_mean, variance=moving_variance,
                                                       epsilon=1e-3, is_training=False)
            return y, moving_mean, moving_variance
        mean, variance = tf.nn.moments(x, [0, 1, 2]) if training else (moving_mean, moving_variance)
        return tf.nn.batch_normalization(x, mean, variance, beta, gamma, 1e-3), mean, variance


def _update_moving_statistics(mean, variance, decay=0.9):
    """assign_moving_average of rnn/cell/bn/moving_{mean,variance}, put in UPDATE_OPS."""
    from tensorflow.python.training import moving_averages

    with tf.compat.v1.variable_scope("cell/bn", reuse=True):
        for name, value in (("moving_mean", mean), ("moving_variance", variance)):
            update = moving_averages.assign_moving_average(tf.compat.v1.get_variable(name), value, decay,
                                                           zero_debias=False)
            tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.UPDATE_OPS, update)


# -- 10. Issue 18: graphs as they come from training ------------------------------------------
#
# Graphs that probe, compare and fix's verification must run as they are: a placeholder with a
# fixed batch, data read from a tf.data iterator (no placeholder at all), an output that flattens
# the batch into its first dimension, and a plain bool "training" placeholder with no default.
# Each is trained for real steps; the inference reference is the same model built with
# training=False on the same input placeholder (name and shape) with the same weights.
#
# Which need `fix --checkpoint PREFIX`: only iterator_input (its training graph is frozen for the
# output alone, as a TF1 script freezes it: the moving statistics are in the checkpoint only). The
# others keep their moving statistics as Consts beside the output (keep_statistics).

import numpy as np  # noqa: E402

ITERATOR_BATCH = 8
TRAINING_SWITCH = "training"


def _train_fixed_shape(model_fn, shape, directory, *, keep_statistics=True, steps=30, learning_rate=0.01) -> Trained:
    """train_tf1 on an "input" placeholder of the full `shape` (its batch fixed), keeping the moving
    statistics as Consts; the inference reference is built on the same fixed-shape placeholder."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    prefix = str(Path(directory) / "model.ckpt")
    batch, *sample = shape
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        x = tf.compat.v1.placeholder(tf.float32, shape, name=INPUT)
        step = _training_step(tf.identity(model_fn(x, True), name=OUTPUT), learning_rate, True)
        saver = tf.compat.v1.train.Saver()
        keep = [OUTPUT, *(statistics_names(graph) if keep_statistics else [])]
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            data = zoo.training_data(tuple(sample), steps * batch)
            for i in range(steps):
                session.run(step, {x: data[i * batch : (i + 1) * batch]})
            saver.save(session, prefix)
            frozen = tf.compat.v1.graph_util.convert_variables_to_constants(session, graph.as_graph_def(), keep)
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, shape, name=INPUT)
        tf.identity(model_fn(x, False), name=OUTPUT)
        with tf.compat.v1.Session() as session:
            tf.compat.v1.train.Saver().restore(session, prefix)
            inference = tf.compat.v1.graph_util.convert_variables_to_constants(session, graph.as_graph_def(), [OUTPUT])
    return Trained(Pair(frozen.SerializeToString(), inference.SerializeToString(), tuple(sample)), prefix)


def fixed_batch(batch: int, directory) -> Trained:
    """18a. zoo.slim_conv_stack(fused=True) (tf-slim conv + fused BatchNorm "conv1/BatchNorm",
    "conv2/BatchNorm", slim.dropout) on an "input" placeholder of FIXED shape [batch, 16, 16, 3],
    trained with batches of `batch`; the reference has the same fixed placeholder. Statistics kept
    (no checkpoint needed). pair.input_shape is the sample shape (16, 16, 3)."""
    return _train_fixed_shape(zoo.slim_conv_stack(fused=True), (batch, 16, 16, 3), directory)


def iterator_model(x, training):
    """18b's model: tf-slim conv + fused BatchNorm ("conv1/BatchNorm"), conv + BatchNorm
    ("conv2/BatchNorm"), global average pool, slim.dropout, 5 logits."""
    return zoo.slim_conv_stack(fused=True)(x, training)


def iterator_input(directory, *, steps=30, count=68, learning_rate=0.01) -> Trained:
    """18b. A TF1 training script reading its data from tf.data: (image, label) pairs from numpy
    arrays (images (count, 16, 16, 3) float32, labels (count, 5) float32), repeated, batched by
    ITERATOR_BATCH with drop_remainder=False (so the batch dimension is None), read through
    tf.compat.v1.data.make_one_shot_iterator(...).get_next() ("IteratorGetNext"). iterator_model
    trained `steps` steps on a regression to the labels, saved as a TF1 checkpoint, and frozen with
    convert_variables_to_constants for "output" alone: the frozen graph holds OneShotIterator and
    IteratorGetNext (output_types [float, float], output_shapes [[?, 16, 16, 3], [?, 5]]) and no
    placeholder; its moving statistics are pruned (fix it with --checkpoint trained.prefix).
    The reference is iterator_model in inference mode on a placeholder "input" (None, 16, 16, 3),
    restored from the checkpoint."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    prefix = str(Path(directory) / "model.ckpt")
    images = zoo.training_data((16, 16, 3), count)
    labels = np.linspace(-1.0, 1.0, count * 5, dtype=np.float32).reshape(count, 5)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        dataset = tf.data.Dataset.from_tensor_slices((images, labels)).repeat().batch(ITERATOR_BATCH,
                                                                                      drop_remainder=False)
        x, target = tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()
        y = tf.identity(iterator_model(x, True), name=OUTPUT)
        loss = tf.reduce_mean(tf.square(y - target))
        with tf.control_dependencies(tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)):
            step = tf.compat.v1.train.GradientDescentOptimizer(learning_rate).minimize(loss)
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for _ in range(steps):
                session.run(step)
            saver.save(session, prefix)
            frozen = tf.compat.v1.graph_util.convert_variables_to_constants(session, graph.as_graph_def(), [OUTPUT])
    inference = zoo._inference_from_checkpoint(iterator_model, (16, 16, 3), prefix)
    return Trained(Pair(frozen.SerializeToString(), inference, (16, 16, 3)), prefix)


def flattened_batch_model():
    """18c's model: a sequence (None, 12, 4) -> tf.compat.v1.layers conv1d (8 filters, width 3,
    "same") -> batch_normalization "bn1" (training) -> ReLU -> dense "proj" (4) -> reshaped to
    (-1, 4): the output (B*12, 4) flattens the batch into its first dimension."""

    def model(x, training):
        layers = _layers()
        init = {"kernel_initializer": tf.compat.v1.glorot_uniform_initializer()}
        y = layers.conv1d(x, 8, 3, padding="same", name="conv1", **init)
        y = tf.nn.relu(layers.batch_normalization(y, momentum=0.9, training=training, name="bn1"))
        y = layers.dense(y, 4, name="proj", **init)
        return tf.reshape(y, [-1, 4])

    return model


def flattened_batch_output(directory) -> Trained:
    """18c. flattened_batch_model trained on "input" (None, 12, 4); statistics kept (no checkpoint)."""
    return train_tf1(flattened_batch_model(), (12, 4), directory, keep_statistics=True)


def scalar_bool_switch_model(*, control_flow_v2: bool = False):
    """18d's model: `training = tf.compat.v1.placeholder(tf.bool, [], name="training")` (plain, no
    default) feeding tf.compat.v1.layers conv "conv1", batch_normalization(training=training) "bn1",
    conv "conv2", batch_normalization "bn2", dropout(0.5, training=training) and dense "logits".
    The layers put their training side under tf.cond (control flow v1 Switch/Merge unless
    `control_flow_v2`). The inference build passes the Python False."""

    def model(x, training):
        layers = _layers()
        init = {"kernel_initializer": tf.compat.v1.glorot_uniform_initializer()}
        with control_flow(control_flow_v2):
            switch = tf.compat.v1.placeholder(tf.bool, [], name=TRAINING_SWITCH) if training else False
            y = layers.conv2d(x, 8, 3, name="conv1", **init)
            y = tf.nn.relu(layers.batch_normalization(y, momentum=0.9, training=switch, name="bn1"))
            y = layers.conv2d(y, 8, 3, strides=2, name="conv2", **init)
            y = tf.nn.relu(layers.batch_normalization(y, momentum=0.9, training=switch, name="bn2"))
            y = layers.dropout(tf.reduce_mean(y, axis=[1, 2]), 0.5, training=switch, name="dropout")
            return layers.dense(y, 5, name="logits", **init)

    return model


def scalar_bool_switch(directory, *, control_flow_v2: bool = False) -> Trained:
    """18d. scalar_bool_switch_model trained on "input" (None, 16, 16, 3) with {"training:0": True}
    fed at every step; the frozen training graph keeps the plain "training" placeholder (bool, []),
    and the moving statistics as Consts (no checkpoint needed)."""
    trained = train_tf1(scalar_bool_switch_model(control_flow_v2=control_flow_v2), (16, 16, 3), directory,
                        feeds={f"{TRAINING_SWITCH}:0": True}, keep_statistics=True)
    if control_flow_v2:
        trained.pair.training = mend_frozen_returns(trained.pair.training)
    return trained
