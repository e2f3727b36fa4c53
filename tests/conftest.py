import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "samples"))
sys.path.insert(0, str(ROOT / "tests"))

import zoo  # noqa: E402

# Every model the tests build, by name: (builder, what the training graph must be reported for).
MODELS = {
    # tf-slim, fused BatchNorm, updates inline as control dependencies: statistics found by data flow.
    "slim_fused_inline_updates": lambda: zoo.tf1_pair(
        zoo.slim_conv_stack(fused=True, inline_updates=True), (16, 16, 3)
    ),
    # tf-slim, fused BatchNorm, statistics frozen beside the output: found by name.
    "slim_fused_named_statistics": lambda: zoo.tf1_pair(
        zoo.slim_conv_stack(fused=True), (16, 16, 3), keep=zoo.moving_statistics_names(zoo.SLIM_STACK_BN)
    ),
    "slim_unfused_named_statistics": lambda: zoo.tf1_pair(
        zoo.slim_conv_stack(fused=False), (16, 16, 3), keep=zoo.moving_statistics_names(zoo.SLIM_STACK_BN)
    ),
    "slim_unfused_inline_updates": lambda: zoo.tf1_pair(
        zoo.slim_conv_stack(fused=False, inline_updates=True), (16, 16, 3)
    ),
    # Frozen for the output only: the statistics are pruned away.
    "slim_resnet_v1": lambda: zoo.tf1_pair(zoo.slim_resnet_v1(), (32, 32, 3)),
    "v1_dropout_keep_prob_tensor": lambda: zoo.tf1_pair(zoo.v1_dropout_keep_prob_tensor(), (4, 4, 3)),
    "legacy_fused_batch_norm_v1": lambda: zoo.tf1_pair(zoo.legacy_fused_batch_norm("FusedBatchNorm"), (8, 8, 3)),
    "legacy_fused_batch_norm_v2": lambda: zoo.tf1_pair(zoo.legacy_fused_batch_norm("FusedBatchNormV2"), (8, 8, 3)),
    "keras2_fused": lambda: zoo.tf1_pair(zoo.keras2_fused_bn(), (8, 8, 3)),
    # tf-slim BatchNorm and dropout under tf.cond on is_training = placeholder_with_default(True).
    "slim_switch_control_flow_v1": lambda: zoo.tf1_pair(
        zoo.with_training_switch(zoo.slim_conv_stack(fused=True), control_flow_v2=False), (16, 16, 3)
    ),
    "slim_switch_control_flow_v2": lambda: zoo.tf1_pair(
        zoo.with_training_switch(zoo.slim_conv_stack(fused=True), control_flow_v2=True), (16, 16, 3)
    ),
    "keras3_cnn": lambda: zoo.keras_pair(zoo.keras_cnn(), (16, 16, 3)),
    "keras3_mobilenet_v1": lambda: zoo.keras_pair(zoo.keras_mobilenet_v1(), (128, 128, 3)),
}

_built: dict = {}


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    """Reports laid out for a wide terminal, so assertions see whole lines."""
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture(scope="session")
def build():
    """build(name) -> zoo.Pair, each model built once per session."""

    def get(name: str) -> zoo.Pair:
        if name not in _built:
            _built[name] = MODELS[name]()
        return _built[name]

    return get


@pytest.fixture
def write(tmp_path):
    """write(bytes, name) -> path of a file in a fresh temporary directory."""

    def put(data: bytes, name: str = "model.pb") -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return put
