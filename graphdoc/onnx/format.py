"""ONNX models, command by command (graphdoc/formats.py)."""

from __future__ import annotations

from pathlib import Path

from graphdoc.errors import GraphdocError
from graphdoc.formats import ModelFormat, VerificationUnavailable
from graphdoc.writing import write_atomically


class OnnxFormat(ModelFormat):
    def outputs(self, model, requested):
        from graphdoc.onnx.model import onnx_outputs

        return onnx_outputs(model, requested)

    def scan(self, model, codes, *, checkpoint, keep):
        from graphdoc.onnx.scanning import scan_onnx

        return scan_onnx(model, codes, checkpoint=checkpoint, keep=keep)

    def fix(self, model, codes, *, checkpoint, calibrate, batch_size, unsafe_fixes, progress, bind, keep):
        from graphdoc.onnx.rewrite import fix_onnx

        if bind:
            raise GraphdocError("--bind is not available for ONNX models")
        return fix_onnx(model, codes=codes, checkpoint=checkpoint, calibrate=calibrate, batch_size=batch_size,
                        unsafe_fixes=unsafe_fixes, progress=progress, keep=keep)

    def can_verify(self) -> bool:
        from graphdoc.onnx.runtime import onnxruntime_installed

        return onnxruntime_installed()

    def verify(self, original, report, *, inputs):
        from graphdoc.onnx.runtime import ONNXRUNTIME_MISSING

        if not self.can_verify():
            raise VerificationUnavailable(ONNXRUNTIME_MISSING)
        from graphdoc.onnx.compare import data_for
        from graphdoc.onnx.verification import verify_onnx

        return verify_onnx(original, report, data=data_for(original, inputs))

    def changes(self, original, report):
        from graphdoc.onnx.rewrite import onnx_node_changes

        return onnx_node_changes(original, report.fixed)

    def write(self, fixed, output: Path) -> None:
        write_atomically(fixed.serialize(), output)

    def probe(self, model, findings, *, inputs):
        from graphdoc.onnx.compare import data_for
        from graphdoc.onnx.probe import probe_onnx

        return probe_onnx(model, findings, data=data_for(model, inputs))

    def compare(self, first, second, *, outputs, inputs, batch):
        from graphdoc.onnx.compare import compare_onnx

        return compare_onnx(first, second, outputs=outputs, data=inputs, batch=batch)


FORMAT = OnnxFormat()
