"""`graphdoc compare` of two ONNX models: the same inputs, the difference per output."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graphdoc.errors import GraphdocError
from graphdoc.onnx.model import OnnxModel, onnx_outputs
from graphdoc.onnx.runtime import OnnxRunner, feeds_for, fixed_batch
from graphdoc.verify.compare import DEFAULT_BATCH, Comparison, output_difference


def data_for(model: OnnxModel, path: Path | None) -> dict[str, np.ndarray] | None:
    """--inputs for an ONNX model: a .npy for its one data input, a .npz with an array per input."""
    if path is None:
        return None
    from graphdoc.sources.calibration import load_inputs

    return load_inputs(path, [port.name for port in model.ports()[0] if port.dtype != "bool"])


def compare_onnx(first: OnnxModel, second: OnnxModel, *, outputs=None, data: Path | None = None,
                 batch: int | None = None) -> Comparison:
    names = onnx_outputs(first, outputs)
    others = [name if name in second.main.outputs else None for name in names]
    if None in others:
        if len(second.main.outputs) != len(names):
            raise GraphdocError(f"the models' outputs do not correspond ({', '.join(names)} vs "
                                f"{', '.join(second.main.outputs)}); name them with --outputs")
        others = list(second.main.outputs)
    arrays = data_for(first, data)
    given = min((len(a) for a in (arrays or {}).values() if np.ndim(a)), default=None)
    count = fixed_batch(first) or batch or given or DEFAULT_BATCH
    feeds = feeds_for(first, count, data={k: v[:count] for k, v in arrays.items()} if arrays else None)
    runs = []
    for model, fetched in ((first, names), (second, others)):
        inputs = set(model.main.feeds)
        runs.append(OnnxRunner(model).run({k: v for k, v in feeds.items() if k in inputs}, fetched))
    differences = [output_difference(name, other, a, b) for name, other, a, b in zip(names, others, *runs, strict=True)]
    return Comparison(differences, first.op_counts(), second.op_counts(), count)
