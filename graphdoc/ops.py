"""Facts about TensorFlow ops that the rules and the rewriter rely on.

TensorFlow strips attributes that equal their OpDef default when it saves a
SavedModel or calls `strip_default_attrs`, so reading an attribute always has
to fall back to the OpDef default. Without importing TensorFlow there is no
op registry, so the defaults and output names graphdoc needs are listed here,
taken from TensorFlow's op registrations (tensorflow/core/ops/*.cc).
"""

from functools import cache
from importlib import resources

FUSED_BATCH_NORM_OPS = frozenset({"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"})
# Their inputs: x, scale, offset, mean, variance.
FUSED_SCALE_SLOT, FUSED_MEAN_SLOT, FUSED_VARIANCE_SLOT = 1, 3, 4

_FUSED_BN_DEFAULTS = {
    # The default is *true*: a fused BatchNorm without the attribute is in training mode.
    "is_training": True,
    "epsilon": 0.0001,
    "exponential_avg_factor": 1.0,
    "data_format": b"NHWC",
}

ATTR_DEFAULTS: dict[str, dict[str, object]] = {
    **{op: _FUSED_BN_DEFAULTS for op in FUSED_BATCH_NORM_OPS},
    "Mean": {"keep_dims": False},
    "Squeeze": {"squeeze_dims": []},
}

# Output argument names of multi-output ops, in order. Function bodies name an
# output as `node:arg:index`; the flat output index is the position of the
# argument plus the index (all of these arguments hold one tensor each).
OUTPUT_ARGS: dict[str, tuple[str, ...]] = {
    "FusedBatchNorm": ("y", "batch_mean", "batch_variance", "reserve_space_1", "reserve_space_2"),
    "FusedBatchNormV2": ("y", "batch_mean", "batch_variance", "reserve_space_1", "reserve_space_2"),
    "FusedBatchNormV3": (
        "y", "batch_mean", "batch_variance", "reserve_space_1", "reserve_space_2", "reserve_space_3",
    ),
    "StatelessRandomGetKeyCounter": ("key", "counter"),
    "StatelessRandomGetKeyCounterAlg": ("key", "counter", "alg"),
    "Switch": ("output_false", "output_true"),
    "RefSwitch": ("output_false", "output_true"),
    "Merge": ("output", "value_index"),
    "TopKV2": ("values", "indices"),
    "Unique": ("y", "idx"),
}

# The output argument name of common single-output ops, for writing a
# reference into a function body when none exists to copy.
SINGLE_OUTPUT_ARG: dict[str, str] = {
    "Const": "output",
    "Identity": "output",
    "ReadVariableOp": "value",
    "Placeholder": "output",
    "PlaceholderWithDefault": "output",
}

# Ops that draw random numbers: dropout masks derive from one of these.
RANDOM_OPS = frozenset({
    "RandomUniform", "RandomUniformInt", "RandomStandardNormal", "TruncatedNormal",
    "StatelessRandomUniform", "StatelessRandomUniformV2", "StatelessRandomUniformInt",
    "StatelessRandomUniformIntV2", "StatelessRandomUniformFullInt", "StatelessRandomUniformFullIntV2",
    "StatelessRandomNormal", "StatelessRandomNormalV2", "StatelessTruncatedNormal",
    "StatelessTruncatedNormalV2", "StatelessRandomBinomial", "RandomUniformLike",
})

# Ops that write a variable. In a frozen graph their target is a Const, so the
# graph no longer imports; in an inference graph they must not run at all.
STATE_UPDATE_OPS = frozenset({
    "Assign", "AssignAdd", "AssignSub",
    "AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp",
    # Optimizer steps, left behind when a graph is frozen with its train op.
    "ApplyGradientDescent", "ResourceApplyGradientDescent", "ApplyMomentum", "ResourceApplyMomentum",
    "ResourceApplyKerasMomentum", "ApplyAdam", "ResourceApplyAdam", "ApplyRMSProp", "ResourceApplyRMSProp",
    "ApplyAdagrad", "ResourceApplyAdagrad", "ApplyAdagradV2", "ResourceApplyAdagradV2",
})

# Control flow v1 (Switch/Merge) and v2 (If with branch functions).
SWITCH_OPS = frozenset({"Switch", "RefSwitch"})
MERGE_OPS = frozenset({"Merge", "RefMerge"})
IF_OPS = frozenset({"If", "StatelessIf"})
# NextIteration closes the loop of a TF1 while_loop: the one legal cycle.
LOOP_BACK_EDGE_OPS = frozenset({"NextIteration", "RefNextIteration"})
PLACEHOLDER_OPS = frozenset({"Placeholder", "PlaceholderWithDefault"})

# Ops that pass a tensor through unchanged (for following data flow).
PASS_THROUGH_OPS = frozenset({"Identity", "StopGradient", "ReadVariableOp", "Snapshot"})
ADD_OPS = frozenset({"Add", "AddV2"})

# Ops that are never a model output even when nothing consumes them.
NEVER_OUTPUTS = STATE_UPDATE_OPS | frozenset({"NoOp", "Const", "Assert", "SaveV2", "RestoreV2"})


@cache
def tensorflow_ops() -> frozenset[str]:
    """The op names TensorFlow registers (graphdoc/data/tensorflow_ops.txt)."""
    text = resources.files("graphdoc").joinpath("data/tensorflow_ops.txt").read_text()
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


# (fewest, most) data inputs of the ops graphdoc reads closely; None: no upper
# bound. TensorFlow refuses to import a node outside these bounds, and the
# rules index inputs by position, so such a graph is refused at load.
INPUT_COUNTS: dict[str, tuple[int, int | None]] = {
    **{op: (5, 5) for op in FUSED_BATCH_NORM_OPS},
    "Switch": (2, 2), "RefSwitch": (2, 2), "Merge": (1, None), "RefMerge": (1, None),
    "If": (1, None), "StatelessIf": (1, None), "PlaceholderWithDefault": (1, 1), "Placeholder": (0, 0),
    "Const": (0, 0), "Mean": (2, 2), "SquaredDifference": (2, 2), "Squeeze": (1, 1), "Rsqrt": (1, 1),
    "Mul": (2, 2), "RealDiv": (2, 2), "Add": (2, 2), "AddV2": (2, 2), "Sub": (2, 2), "SelectV2": (3, 3),
    "Select": (3, 3), "GreaterEqual": (2, 2), "Greater": (2, 2), "Less": (2, 2), "LessEqual": (2, 2),
    "Floor": (1, 1), "Cast": (1, 1), "Identity": (1, 1), "StopGradient": (1, 1), "Snapshot": (1, 1),
    "ReadVariableOp": (1, 1), "CheckNumerics": (1, 1), "CheckNumericsV2": (1, 1), "Shape": (1, 1),
    "RandomUniform": (1, 1), "StatelessRandomUniformV2": (4, 4), "Relu": (1, 1),
    "Assign": (2, 2), "AssignAdd": (2, 2), "AssignSub": (2, 2), "AssignVariableOp": (2, 2),
    "AssignAddVariableOp": (2, 2), "AssignSubVariableOp": (2, 2),
}
