"""A Keras model file as graphdoc reports on it: its config, its inputs and outputs, its layers."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from graphdoc.graph.model import ModelOfAnotherFormat
from graphdoc.graph.ports import Port
from graphdoc.keras.calls import layer_calls
from graphdoc.keras.files import KerasFile

INFERENCE_BY_DEFAULT = ("Keras runs this model in inference mode by default; if your serving code calls it with "
                        "training=True, scan that export.")


@dataclass(eq=False)
class KerasModel(ModelOfAnotherFormat):
    kind: ClassVar[str] = "keras"
    file: KerasFile

    @property
    def path(self) -> Path:
        return self.file.path

    @property
    def config(self) -> dict:
        return self.file.config

    @property
    def format(self) -> str:
        container = "Keras .keras file" if self.file.container == "zip" else "Keras HDF5 file"
        version = f", saved by Keras {self.file.keras_version}" if self.file.keras_version else ""
        return f"{container} ({self.config.get('class_name', 'model')}{version})"

    def layers(self) -> list[dict]:
        return list(_layers(self.config))

    def size(self) -> tuple[int, int]:
        layers = self.layers()
        return len(layers), sum(layer.get("class_name") in ("Functional", "Model", "Sequential") for layer in layers)

    def op_counts(self) -> Counter:
        return Counter(layer.get("class_name", "") for layer in self.layers())


    def outputs(self) -> list[str]:
        """The output layers' names."""
        entries = self.config.get("config", {}).get("output_layers") or []
        if entries and isinstance(entries[0], str):  # a single output: ["dense", 0, 0]
            entries = [entries]
        return [entry[0] for entry in entries if isinstance(entry, list) and entry]

    def ports(self, outputs: list[str] | None = None) -> tuple[list[Port], list[Port]]:
        """The input layers (name, dtype, shape; -1 for an open dimension) and the output layers."""
        feeds = []
        for layer in self.config.get("config", {}).get("layers", []):
            if layer.get("class_name") == "InputLayer":
                config = layer.get("config", {})
                shape = config.get("batch_shape") or config.get("batch_input_shape")
                dtype = config.get("dtype", "float32")
                feeds.append(Port(config.get("name", layer.get("name", "")), dtype if isinstance(dtype, str) else "?",
                                  None if shape is None else [-1 if d is None else d for d in shape]))
        return feeds, [Port(name, "?", None) for name in (outputs or self.outputs())]


def _layers(model: dict):
    for layer in model.get("config", {}).get("layers", []):
        yield layer
        if layer.get("class_name") in ("Functional", "Model", "Sequential"):
            yield from _layers(layer)


def keras_model(file: KerasFile) -> KerasModel:
    model = KerasModel(file)
    if not any(call.training is True for call in layer_calls(file.config)):
        model.notes.append(INFERENCE_BY_DEFAULT)
    return model
