"""TensorFlow Lite models, command by command (graphdoc/formats.py): scanned, never fixed."""

from __future__ import annotations

from graphdoc.formats import ModelFormat


class TfliteFormat(ModelFormat):
    not_run = "a .tflite is converted already: probe the graph it was converted from"

    def scan(self, model, codes, *, checkpoint, keep):
        from graphdoc.tflite.rules import scan_tflite

        return scan_tflite(model, codes, keep)

    def fix(self, model, codes, **options):
        from graphdoc.tflite.rules import refuse_fixing

        refuse_fixing(model)


FORMAT = TfliteFormat()
