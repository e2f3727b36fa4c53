"""Running the ONNX rules over every graph body of a model, with moving statistics where they are."""

from __future__ import annotations

from pathlib import Path

from graphdoc.onnx import rules
from graphdoc.onnx.model import OnnxModel
from graphdoc.onnx.shapes import Shapes
from graphdoc.onnx.view import OnnxView
from graphdoc.rules.base import Finding, marked_kept
from graphdoc.rules.statistics import scope_tails
from graphdoc.sources import Statistics

CODES = ("GD101", "GD102", "GD201", "GD303")


def scan_onnx(model: OnnxModel, codes: set[str] | None = None, *, checkpoint: str | Path | None = None,
              keep: tuple[str, ...] = ()) -> list[Finding]:
    """The findings of the rules whose codes are in `codes` (all if None), sorted by code, in graph order."""
    shapes = Shapes(model.proto)
    lookup = _StatisticsLookup(model.main, checkpoint)
    inputs = set(model.main.feeds)
    wanted = set(CODES) if codes is None else set(codes)
    findings = []
    for view in model.views:
        checks = {
            "GD101": lambda: rules.training_batchnorms(view),
            "GD102": lambda: rules.batch_moments(view, shapes, lookup),
            "GD201": lambda: rules.live_dropout(view, inputs),
            "GD303": lambda: rules.training_leftovers(view),
        }
        for code in CODES:
            if code in wanted:
                findings += list(checks[code]())
    findings.sort(key=lambda finding: finding.code)
    return [marked_kept(finding, keep) for finding in findings] if keep else findings




class _StatisticsLookup:
    """A layer's moving statistics (sources.Statistics): initializers the exporter kept (unused,
    under the layer's name), else the TensorFlow checkpoint the model was converted from."""

    def __init__(self, main: OnnxView, checkpoint: str | Path | None):
        self.main = main
        self.checkpoint_path = checkpoint
        self._checkpoint = None

    def __call__(self, moments: rules.BatchMoments):
        for names in scope_tails(moments.layer):
            for layer in names:
                for mean_name, variance_name in rules.STATISTICS_NAMES:
                    mean = self.main.value(f"{layer}/{mean_name}")
                    variance = self.main.value(f"{layer}/{variance_name}")
                    if mean is not None and variance is not None and not moments.check_shapes(mean.shape, variance.shape):
                        return Statistics(mean, variance, f"initializers {layer}/{mean_name}, {layer}/{variance_name}")
        if self.checkpoint_path is None:
            return (f"the model holds no moving statistics for {moments.layer} (the exporter dropped them); give "
                    "the checkpoint it was converted from with --checkpoint")
        return self._source().lookup(moments)

    def _source(self):
        if self._checkpoint is None:
            from graphdoc.sources.checkpoint import CheckpointStatistics  # imports TensorFlow

            self._checkpoint = CheckpointStatistics(Path(self.checkpoint_path))
        return self._checkpoint
