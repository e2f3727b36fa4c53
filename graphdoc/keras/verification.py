"""Checking a Keras fix by loading both files with Keras and running them.

The fixed model must not depend on the batch or on the run, and its plain
call must compute what it computes called with training=False: the same
model, with the same weights (the file's own, copied as stored), in inference
mode. (The original cannot be the reference: tf_keras lets a call baked with
training=True win over training=False.)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from graphdoc.errors import first_line
from graphdoc.keras.files import write_with_config
from graphdoc.keras.model import KerasModel
from graphdoc.rewrite.fixer import FixReport
from graphdoc.verify.verification import Check, Verification

BATCH = 4
TOLERANCE = 1e-5  # relative to the output's largest magnitude


class KerasUnavailable(Exception):
    """Keras cannot load the model here (not installed, custom classes it does not know)."""


def verify_keras(original: KerasModel, report: FixReport) -> Verification:
    """Raises KerasUnavailable when the model cannot be loaded: verification is then skipped."""
    with tempfile.TemporaryDirectory() as directory:
        fixed_path = Path(directory) / f"fixed{original.path.suffix or '.keras'}"
        write_with_config(report.fixed.file, report.fixed.config, fixed_path)
        after = _load(original, fixed_path)
        data = _inputs(original)
        verification = Verification()
        outputs = _run(after, data)
        verification.checks.append(Check("loads and runs", True, f"Keras ({original.file.flavour}), a batch of {BATCH}"))
        if report.kept:  # training behaviour kept on purpose: the runs differ as it says
            kept = ", ".join(finding.node for finding in report.kept)
            verification.checks += [Check(name, None, f"layers kept in training mode ({kept})") for name in
                                    ("batch-independent and deterministic", "equals model(x, training=False)")]
        else:
            verification.checks += [_independent(after, data, outputs), _as_in_inference(after, data, outputs)]
    return verification


def _load(model: KerasModel, path: Path):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        if model.file.flavour == "tf_keras":
            import tf_keras as framework
        else:
            import keras as framework
    except ImportError as error:
        raise KerasUnavailable(f"{model.file.flavour} is not installed ({first_line(error)})") from None
    try:
        options = {} if model.file.flavour == "tf_keras" else {"safe_mode": False}
        return framework.models.load_model(str(path), compile=False, **options)
    except Exception as error:  # unknown custom classes, and whatever else a model file can hold
        raise KerasUnavailable(f"Keras could not load {model.path.name} ({first_line(error)})") from None


def _inputs(model: KerasModel) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = []
    for port in model.ports()[0]:
        if port.shape is None or -1 in port.shape[1:]:
            raise KerasUnavailable(f"the input {port.name!r} has open dimensions {port.shape}: no data to run it on")
        shape = (BATCH, *port.shape[1:])
        floating = port.dtype.startswith(("float", "bfloat"))
        arrays.append(rng.standard_normal(shape).astype(port.dtype) if floating else np.zeros(shape, port.dtype))
    return arrays


def _run(model, data: list[np.ndarray], **options) -> list[np.ndarray]:
    result = model(data if len(data) > 1 else data[0], **options)
    return [np.asarray(value) for value in (result if isinstance(result, (list, tuple)) else [result])]


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b), initial=0) / max(np.max(np.abs(b), initial=0), 1e-12))


def _independent(model, data, outputs) -> Check:
    name = "batch-independent and deterministic"
    again = _run(model, data)
    alone = _run(model, [array[:1] for array in data])
    run = max(_relative(a, b) for a, b in zip(outputs, again, strict=True))
    batch = max(_relative(a[:1], b) for a, b in zip(outputs, alone, strict=True))
    if max(run, batch) > TOLERANCE:
        return Check(name, False, f"sample 0 alone vs in the batch: {batch:.2g}; run to run: {run:.2g}")
    return Check(name, True, "sample 0 alone computes what it computes in the batch, and every run the same")


def _as_in_inference(model, data, outputs) -> Check:
    name = "equals model(x, training=False)"
    expected = _run(model, data, training=False)
    worst = max(_relative(a, b) for a, b in zip(outputs, expected, strict=True))
    if worst > TOLERANCE:
        return Check(name, False, f"{worst:.2g} from the model called with training=False")
    return Check(name, True, f"within {worst:.1g} of the model called with training=False")
