"""The loader: formats decided by content, the networkx view, and load errors."""

import numpy as np
import pytest
from google.protobuf import text_format

import graphs
from graphdoc.errors import LoadError
from graphdoc.loading import load
from graphdoc.scanning import scan


@pytest.fixture(scope="module")
def fused(build):
    return build("slim_fused_inline_updates").training


def test_binary_and_text_load_to_the_same_graph_whatever_the_extension(fused, write):
    binary = load(write(fused, "model.pbtxt"))  # binary content, text extension
    text = text_format.MessageToString(graphs.parse(fused)).encode()
    as_text = load(write(text, "model.pb"))  # text content, binary extension
    assert binary.format == "binary GraphDef"
    assert as_text.format == "text GraphDef"
    assert binary.graph_def == as_text.graph_def


def test_networkx_view_has_a_node_per_nodedef_and_an_edge_per_input(fused, write):
    model = load(write(fused))
    graph = model.main.networkx
    assert graph.number_of_nodes() == len(model.graph_def.node)
    assert graph.number_of_edges() == sum(len(node.input) for node in model.graph_def.node)
    bn = "conv1/BatchNorm/FusedBatchNormV3"
    assert graph.nodes[bn]["op"] == "FusedBatchNormV3"
    assert graph.nodes[bn]["node_def"].attr["is_training"].b is True
    # The moving-average update reads the batch mean, output 1, into its slot 1.
    [edge] = graph.get_edge_data(bn, "conv1/BatchNorm/AssignMovingAvg/sub").values()
    assert (edge["src_output"], edge["dst_input"], edge["control"]) == (1, 1, False)
    # The layer's output waits for the updates through control inputs.
    controls = [
        data for _, _, data in graph.in_edges("conv1/BatchNorm/Identity", data=True) if data["control"]
    ]
    assert len(controls) == 2


FUNCTION_GRAPH = """
node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } } }
node { name: "call" op: "PartitionedCall" input: "x" attr { key: "f" value { func { name: "body" } } } }
library {
  function {
    signature {
      name: "body"
      input_arg { name: "inp" type: DT_FLOAT }
      output_arg { name: "out" type: DT_FLOAT }
    }
    node_def { name: "scale" op: "Const" attr { key: "dtype" value { type: DT_FLOAT } }
      attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape { dim { size: 2 } } float_val: 1 } } } }
    node_def { name: "empty" op: "Const" attr { key: "dtype" value { type: DT_FLOAT } }
      attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape { dim { size: 0 } } } } } }
    node_def { name: "bn" op: "FusedBatchNormV3"
      input: "inp" input: "scale:output:0" input: "scale:output:0" input: "empty:output:0" input: "empty:output:0"
      attr { key: "T" value { type: DT_FLOAT } } attr { key: "U" value { type: DT_FLOAT } } }
    node_def { name: "relu" op: "Relu" input: "bn:y:0" attr { key: "T" value { type: DT_FLOAT } } }
    ret { key: "out" value: "relu:activations:0" }
  }
}
"""


def test_library_functions_are_indexed_and_scanned(write):
    model = load(write(FUNCTION_GRAPH.encode(), "model.pbtxt"))
    [body] = model.functions
    assert body.scope == "body"
    assert body.op("inp") == "_Arg"
    assert [str(t) for t in body.inputs("bn")][:2] == ["inp", "scale"]
    # `bn:y:0` names output 0 of the FusedBatchNormV3 by its argument name.
    assert body.uses(body.inputs("relu")[0])[0].consumer == "relu"
    [finding] = scan(model)
    assert (finding.code, finding.scope, finding.node) == ("GD101", "body", "bn")
    assert "absent" in finding.message  # is_training was stripped: the default, true, applies


def _random_bytes():
    return np.random.default_rng(7).integers(0, 256, 4000, dtype=np.uint8).tobytes()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.pb", b"", "is empty"),
        ("random.pb", _random_bytes(), "could not be parsed as a TensorFlow GraphDef"),
        ("model.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 64, "Keras .h5"),
        ("model.keras", b"PK\x03\x04" + b"\0" * 64, "zip archive"),
        ("broken.pbtxt", b'node { name: "a" op: "Const" \n  attr { key: }', "2:"),
        ("notes.txt", b"these are my notes about the model\n", "not a valid text GraphDef"),
        ("saved_model.pb", b"\x08\x01\x12\x00", "SavedModel"),
    ],
)
def test_bad_files_get_one_sentence_saying_what_they_are(write, name, content, expected):
    with pytest.raises(LoadError) as error:
        load(write(content, name))
    assert expected in str(error.value)
    assert "\n" not in str(error.value)


def test_directories_and_missing_paths_are_explained(tmp_path):
    with pytest.raises(LoadError, match="no such file"):
        load(tmp_path / "missing.pb")
    with pytest.raises(LoadError, match="no saved_model.pb"):
        load(tmp_path)
    (tmp_path / "saved_model.pb").write_bytes(b"\x08\x01")
    with pytest.raises(LoadError, match="could not load the SavedModel"):
        load(tmp_path)
