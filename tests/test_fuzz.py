"""The loader fuzz target, driven for a bounded number of mutations in CI."""

from collections import Counter
from pathlib import Path

from google.protobuf import text_format

from fuzz_loader import check_one, mutations, structured_mutations
from graphdoc.proto import GraphDef

ROOT = Path(__file__).resolve().parent.parent
ITERATIONS = 400


def _seeds() -> list[bytes]:
    binary = (ROOT / "samples" / "slim_convnet_training.pb").read_bytes()
    text = text_format.MessageToString(GraphDef.FromString(binary)).encode()
    return [binary, text[:6000]]


def test_mutated_graphs_never_crash_the_loader_scan_or_fix():
    outcomes = Counter(check_one(data) for data in mutations(_seeds(), ITERATIONS))
    # The mutations must reach past the parser, or the test proves little.
    assert outcomes["refused"] > 0 and outcomes["refused"] < ITERATIONS
    assert outcomes["loaded, fix refused"] + outcomes["loaded and fixed"] > 0


import pytest  # noqa: E402


@pytest.mark.parametrize("seed_model", ["sample", "slim_switch_control_flow_v1", "slim_switch_control_flow_v2",
                                        "v1_dropout_keep_prob_tensor"])
def test_edited_graphs_never_crash_the_rules_or_the_fixer(build, seed_model):
    if seed_model == "sample":
        seed = (ROOT / "samples" / "slim_convnet_training.pb").read_bytes()
    else:
        seed = build(seed_model).training
    outcomes = Counter(check_one(data) for data in structured_mutations(seed, ITERATIONS))
    assert outcomes["loaded, fix refused"] + outcomes["loaded and fixed"] > ITERATIONS // 4


def test_the_seeds_themselves_load():
    assert all(check_one(seed).startswith("loaded") for seed in _seeds()[:1])
