"""Moving statistics for an ONNX model that lost them, measured on representative inputs.

As for TensorFlow graphs (graphdoc/sources/calibration.py): the model runs
over the data in batches with every fix it already has applied (dropout
bypassed, layers whose statistics were found) and the layers being
calibrated still on batch statistics, as they ran while the moving averages
were accumulated; the input of each is summed per channel in float64, so the
result does not depend on the batch order. The statistics only estimate the
learned ones: the fix they make is unsafe.
"""

from __future__ import annotations

from pathlib import Path

from graphdoc.errors import GraphdocError
from graphdoc.onnx.compare import data_for
from graphdoc.onnx.model import OnnxModel
from graphdoc.onnx.rewrite import applied_copy
from graphdoc.onnx.rules import BatchMoments
from graphdoc.onnx.runtime import OnnxRunner, batched_inputs, feeds_for, rows
from graphdoc.rules.base import Finding
from graphdoc.sources import Statistics
from graphdoc.sources.calibration import MIN_CALIBRATION_SAMPLES, RunningMoments


def calibrate(model: OnnxModel, findings: list[Finding], data: Path, *, batch_size: int = 32,
              progress=None) -> dict[str, Statistics]:
    """Statistics for each GD102 of the main graph that has none, by the finding's location."""
    sites = [f.site for f in findings if f.fix is None and isinstance(f.site, BatchMoments) and f.site.variance
             and not f.site.scope]
    if not sites:
        return {}
    given = data_for(model, data)
    samples = min(len(array) for array in given.values())
    if samples < MIN_CALIBRATION_SAMPLES:
        raise GraphdocError(f"{data} holds {samples} samples; calibration needs at least {MIN_CALIBRATION_SAMPLES} "
                            "for stable per-channel statistics")
    runner = OnnxRunner(OnnxModel(proto=applied_copy(model, [f for f in findings if f.fix is not None]),
                                  path=model.path))
    arrays = feeds_for(model, samples, data=given)  # a switch fed at run time gets its training value
    batched = batched_inputs(model)
    moments = {site.node: RunningMoments() for site in sites}
    for start in range(0, samples, batch_size):
        batch = rows(arrays, batched, slice(start, start + batch_size))
        for site, value in zip(sites, runner.run(batch, [site.x for site in sites]), strict=True):
            moments[site.node].add(value, site.axes)
        if progress is not None:
            progress(min(batch_size, samples - start))
    evidence = f"calibration on {samples} samples of {data}"
    return {site.node: Statistics(*moments[site.node].statistics(), evidence) for site in sites}
