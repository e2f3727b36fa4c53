"""SavedModels: one signature, frozen into a flat GraphDef."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf
from tensorflow.python.framework import convert_to_constants

from graphdoc.errors import LoadError, first_line
from graphdoc.graph.ports import Port
from graphdoc.proto import GraphDef


def freeze_signature(directory: Path, signature: str) -> tuple[GraphDef, dict[str, str], dict[str, str], dict]:
    """The signature's function with its variables as constants and its calls inlined, its
    output keys with the tensors that compute them, the names its variables have in the
    SavedModel's object graph (the frozen graph calls them `unknown_3`), and every signature's
    inputs and outputs by key (signature_ports).

    TensorFlow's public freezer (convert_variables_to_constants_v2) imports the
    result to check it, and a graph traced in training mode fails that import:
    its variable updates now write to constants. Those updates are exactly what
    graphdoc reports and removes, so the conversion is used without the check.
    """
    try:
        loaded = tf.saved_model.load(str(directory))
    except Exception as error:  # a damaged SavedModel fails in many ways, all of them the file's
        raise LoadError(f"{directory}: TensorFlow could not load the SavedModel ({first_line(error)})") from None
    signatures = dict(loaded.signatures)
    if signature not in signatures:
        available = ", ".join(signatures) or "none"
        raise LoadError(f"{directory} has no signature {signature!r} (it has: {available}); choose one with --signature")
    data = convert_to_constants._FunctionConverterDataInEager(
        func=signatures[signature], lower_control_flow=True, aggressive_inlining=True
    )
    graph_def, _ = convert_to_constants._replace_variables_by_constants(converter_data=data)
    function = signatures[signature]
    return (GraphDef.FromString(graph_def.SerializeToString()), _output_keys(function),
            _variable_names(function), signature_ports(signatures))


def signature_ports(signatures: dict) -> dict[str, dict[str, list[Port]]]:
    """Each signature's inputs and outputs as a caller names them: by key, with dtype and shape
    (what saved_model_cli shows)."""
    return {name: {"inputs": _ports(function.structured_input_signature[1]),
                   "outputs": _ports(function.structured_outputs)}
            for name, function in sorted(signatures.items())}


def _ports(structure) -> list[Port]:
    if not isinstance(structure, dict):
        return []
    return [Port(key, spec.dtype.name, None if spec.shape.rank is None else [-1 if d is None else d for d in spec.shape])
            for key, spec in sorted(structure.items())]


def _variable_names(function) -> dict[str, str]:
    """Each captured variable's placeholder in the function, and the variable's own name."""
    # The function's own variables: a SavedModel of a tf.Module has no `.variables` of its own.
    names = {id(variable.handle): variable.name.split(":")[0] for variable in function.variables}
    return {inner.name.split(":")[0]: names[id(outer)] for outer, inner in function.graph.captures
            if id(outer) in names}


def _output_keys(function) -> dict[str, str]:
    """The signature's output keys and the tensors that compute them ("probs" -> "Identity:0")."""
    outputs = function.structured_outputs
    if not isinstance(outputs, dict) or len(outputs) != len(function.outputs):
        return {}
    # The function's outputs are the structure flattened, dict keys in sorted order.
    return {key: tensor.name for key, tensor in zip(sorted(outputs), function.outputs, strict=True)}
