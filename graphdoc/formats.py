"""The formats besides TensorFlow graphs, each as one object that says what it does for every command.

api, fixing and writing ask `format_of(model)` once and hand the work to the
format's object (graphdoc/onnx/format.py, keras/format.py, tflite/format.py);
a TensorFlow graph, the original format, takes the path they have always had.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from graphdoc.errors import GraphdocError

# Models by `kind`, and the module whose FORMAT serves them.
_MODULES = {"onnx": "graphdoc.onnx.format", "keras": "graphdoc.keras.format", "tflite": "graphdoc.tflite.format"}


class VerificationUnavailable(GraphdocError):
    """The fixed model cannot be run here (onnxruntime missing, Keras cannot load it): the reason."""


class ModelFormat:
    """What a format does, command by command. The defaults are those of a format graphdoc reads
    but does not run (Keras files run in Keras; a .tflite is converted already)."""

    # Why probe and compare do not run models of this format; "" where they do.
    not_run = ""

    def outputs(self, model, requested: list[str] | None) -> list[str]:
        return list(requested or model.outputs())

    def scan(self, model, codes: set[str], *, checkpoint: str | Path | None, keep: tuple[str, ...]) -> list:
        raise NotImplementedError

    def fix(self, model, codes: set[str], *, checkpoint, calibrate, batch_size: int, unsafe_fixes: bool, progress,
            bind, keep: tuple[str, ...]):
        raise NotImplementedError

    def can_verify(self) -> bool:
        return True

    def verify(self, original, report, *, inputs: Path | None):
        """The checks on `report.fixed`; raises VerificationUnavailable when it cannot run here."""
        raise VerificationUnavailable(f"a fixed {original.format} is not run to check it")

    def changes(self, original, report) -> list[tuple[str, str, str]]:
        """What `report`'s fix changed, as rewrite.diff has it: ('-'|'+'|'~', where, what)."""
        raise NotImplementedError

    def write(self, fixed, output: Path) -> None:
        raise NotImplementedError

    def probe(self, model, findings, *, inputs: Path | None):
        raise GraphdocError(f"probe runs TensorFlow graphs and ONNX models; {self.not_run}")

    def compare(self, first, second, *, outputs, inputs: Path | None, batch: int | None):
        raise GraphdocError(f"compare runs TensorFlow graphs and ONNX models; {self.not_run}")


def format_of(model) -> ModelFormat | None:
    """The format object serving `model`, or None for a TensorFlow graph."""
    module = _MODULES.get(model.kind)
    return None if module is None else importlib.import_module(module).FORMAT
