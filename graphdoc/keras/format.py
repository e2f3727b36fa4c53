"""Keras model files, command by command (graphdoc/formats.py)."""

from __future__ import annotations

from pathlib import Path

from graphdoc.errors import GraphdocError
from graphdoc.formats import ModelFormat, VerificationUnavailable


class KerasFormat(ModelFormat):
    not_run = ("for a Keras file, `graphdoc fix` checks its fix by running it in Keras; to probe it, export it "
               "(model.export(DIRECTORY)) and probe that SavedModel")

    def scan(self, model, codes, *, checkpoint, keep):
        from graphdoc.keras.rules import scan_keras

        return scan_keras(model, codes, keep)

    def fix(self, model, codes, *, checkpoint, calibrate, batch_size, unsafe_fixes, progress, bind, keep):
        from graphdoc.keras.rewrite import fix_keras

        for option, given in (("--checkpoint", checkpoint), ("--calibrate", calibrate), ("--bind", bind)):
            if given:
                raise GraphdocError(f"{option} is not needed for a Keras file: its fix only changes how layers are "
                                    "called, the weights and statistics are the file's own")
        return fix_keras(model, codes=codes, keep=keep)

    def verify(self, original, report, *, inputs):
        from graphdoc.keras.verification import KerasUnavailable, verify_keras

        try:
            return verify_keras(original, report)
        except KerasUnavailable as reason:
            raise VerificationUnavailable(str(reason)) from None

    def changes(self, original, report):
        # The weights are not touched: what changes is the layers' calls, one per finding fixed.
        return [("~", f.location, "training=True removed from its call") for f in report.applied]

    def write(self, fixed, output: Path) -> None:
        from graphdoc.keras.files import write_with_config

        write_with_config(fixed.file, fixed.config, output)


FORMAT = KerasFormat()
