"""Every layer call a Keras config records, with the arguments it was made with.

Keras 3 writes a call as `{"args": [...], "kwargs": {"training": true}}`;
Keras 2 (tf_keras) as a list of the call's input tensors,
`[["dropout", 0, 0, {"training": true}]]`, the call's keyword arguments in
each. A functional model inside another has its own `layers`; a Sequential
model records no call arguments at all.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Iterator
from dataclasses import dataclass

# Model classes whose config holds layers of their own.
_MODEL_CLASSES = frozenset({"Functional", "Model", "Sequential"})
# What a Lambda's function names when it reads the learning phase (tf_keras backend).
_LEARNING_PHASE_NAMES = (b"learning_phase", b"in_train_phase", b"in_test_phase")
# marshal's string types: short ASCII (interned or not) with a one-byte length, and str with a
# four-byte one; each also with the flag bit (0x80) marshal sets on objects it may refer back to.
_SHORT_STRINGS = (b"Z", b"z", b"\xda", b"\xfa")
_STRINGS = (b"u", b"\xf5", b"a", b"\xe1", b"A", b"\xc1")


@dataclass(frozen=True)
class LayerCall:
    scope: str  # "" for the top model, else the nested models' names ("encoder")
    layer: str
    class_name: str
    call: int  # which call of the layer (its inbound node)
    path: tuple  # where the call's keyword arguments are, in the config (keys and list indices)
    training: object  # the training argument the call was made with (True, False, None if none)


def layer_calls(config: dict) -> Iterator[LayerCall]:
    yield from _calls(config, (), "")


def _calls(model: dict, path: tuple, scope: str) -> Iterator[LayerCall]:
    layers = model.get("config", {}).get("layers", [])
    for index, layer in enumerate(layers):
        name = layer.get("name") or layer.get("config", {}).get("name", "")
        here = (*path, "config", "layers", index)
        for call, (where, kwargs) in enumerate(_inbound_kwargs(layer.get("inbound_nodes") or [])):
            yield LayerCall(scope, name, layer.get("class_name", ""), call, (*here, "inbound_nodes", *where),
                            kwargs.get("training"))
        if layer.get("class_name") in _MODEL_CLASSES:
            yield from _calls(layer, here, f"{scope}/{name}" if scope else name)


def _inbound_kwargs(nodes: list) -> Iterator[tuple[tuple, dict]]:
    """(path within inbound_nodes, the call's kwargs) for each call."""
    for index, node in enumerate(nodes):
        if isinstance(node, dict):  # Keras 3
            kwargs = node.get("kwargs")
            yield (index, "kwargs"), kwargs if isinstance(kwargs, dict) else {}
        elif isinstance(node, list):  # Keras 2: the kwargs of the first input tensor that has them
            for position, tensor in enumerate(node):
                if isinstance(tensor, list) and len(tensor) > 3 and isinstance(tensor[3], dict):
                    yield (index, position, 3), tensor[3]
                    break
            else:
                yield (index,), {}


def reads_learning_phase(layer_config: dict) -> bool:
    """Whether a Lambda's serialized function names the learning phase.

    Its marshalled code holds the names it uses as whole strings, each behind
    its type and length; a name that only appears inside another string (the
    function defining the lambda may be called `..._learning_phase`) is not one.
    Nothing is unmarshalled or run.
    """
    function = layer_config.get("function")
    if isinstance(function, dict):  # Keras 3: {"class_name": "__lambda__", "config": {"code": ...}}
        function = function.get("config", {}).get("code")
    if isinstance(function, list):  # Keras 2: [code, defaults, closure]
        function = function[0] if function else None
    if not isinstance(function, str):
        return False
    try:
        code = base64.b64decode(function.encode("ascii"), validate=False)
    except (binascii.Error, UnicodeEncodeError):
        code = function.encode()
    return any(_holds_string(code, name) for name in _LEARNING_PHASE_NAMES)


def _holds_string(code: bytes, name: bytes) -> bool:
    short = bytes([len(name)]) + name
    sized = struct.pack("<i", len(name)) + name
    return any(kind + short in code for kind in _SHORT_STRINGS) or any(kind + sized in code for kind in _STRINGS)


def lambdas(config: dict, scope: str = "") -> Iterator[tuple[str, str, dict]]:
    """(scope, name, config) of every Lambda layer, nested models included."""
    for layer in config.get("config", {}).get("layers", []):
        name = layer.get("name") or layer.get("config", {}).get("name", "")
        if layer.get("class_name") == "Lambda":
            yield scope, name, layer.get("config", {})
        if layer.get("class_name") in _MODEL_CLASSES:
            yield from lambdas(layer, f"{scope}/{name}" if scope else name)
