"""`graphdoc compare`: two graphs, the same inputs, the difference per output."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from graphdoc.errors import GraphdocError
from graphdoc.graph.model import Model
from graphdoc.rewrite.fixer import op_counts
from graphdoc.rewrite.outputs import resolve_outputs
from graphdoc.sources.calibration import load_inputs
from graphdoc.verify.inputs import batch_size, data_inputs, described, samples, settings_of
from graphdoc.verify.runnable import runnable
from graphdoc.verify.safety import refuse_unsafe

DEFAULT_BATCH = 4  # random samples, when no data is given


@dataclass(frozen=True)
class OutputDifference:
    name: str
    other_name: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float  # relative to the first graph's largest magnitude


@dataclass
class Comparison:
    outputs: list[OutputDifference]
    ops_before: Counter
    ops_after: Counter
    batch: int  # the samples both graphs ran on
    notes: list[str] = field(default_factory=list)  # what the runs changed (runnable copies, settings fed)


def compare(first: Model, second: Model, *, outputs=None, data: Path | None = None, shapes=None,
            batch: int | None = None, allow_unsafe: bool = False) -> Comparison:
    """Run both graphs on the same inputs and measure how far apart their outputs are.

    `batch` samples (default: every sample in `data`, else 4 random ones), or
    as many as the graph's fixed batch holds.
    """
    from graphdoc.tf.runner import GraphRunner

    for model in (first, second):
        refuse_unsafe(model, allow=allow_unsafe, purpose="comparing")
    names = resolve_outputs(first.main, outputs, first.aliases)
    other_names = [name if name in second.main.nodes else None for name in names]
    if None in other_names:
        inferred = resolve_outputs(second.main, None)
        if len(inferred) != len(names):
            raise GraphdocError(
                f"the graphs' outputs do not correspond ({', '.join(names)} vs {', '.join(inferred)}); "
                "name them with --outputs"
            )
        other_names = inferred
    # Only the inputs the outputs read: a fix prunes one that fed nothing (an iterator's labels).
    missing = _needed_inputs(first, names) ^ _needed_inputs(second, other_names)
    if missing:
        raise GraphdocError(f"the graphs take different inputs: {', '.join(sorted(missing))} is in only one")
    count, notes = _sample_count(first, data, batch)
    shared = samples(first, count, data=data, shapes=shapes).data  # both see the same
    runs = []
    for model, fetched in ((first, names), (second, other_names)):
        prepared = runnable(model, relax_batch=False)
        # A setting one graph has and the other not (a switch the fix bound) is fed where it is.
        settings = settings_of(prepared.model)
        notes += [note for note in prepared.neutralized + described(settings) if note not in notes]
        with GraphRunner(prepared.model.graph_def) as runner:
            own = {name: array for name, array in shared.items() if name in prepared.model.main}
            runs.append(runner.run([f"{n}:0" for n in fetched], {**own, **settings}))
    values, other_values = runs
    differences = [output_difference(name, other, a, b)
                   for name, other, a, b in zip(names, other_names, values, other_values, strict=True)]
    return Comparison(differences, op_counts(first), op_counts(second), count, notes)


def output_difference(name: str, other: str, a: np.ndarray, b: np.ndarray) -> OutputDifference:
    """How far output `name` of the first model (`a`) is from `other` of the second (`b`)."""
    if np.shape(a) != np.shape(b):
        raise GraphdocError(f"output {name} has shape {np.shape(a)} in one model and {np.shape(b)} in the other")
    gap = float(np.max(np.abs(np.asarray(a, np.float64) - b))) if np.size(a) else 0.0
    scale = max(float(np.max(np.abs(a))), 1e-12) if np.size(a) else 1.0
    return OutputDifference(name, other, tuple(np.shape(a)), gap, gap / scale)


def _sample_count(model: Model, data: Path | None, batch: int | None) -> tuple[int, list[str]]:
    """How many samples to run, and a note when `data` holds more than that."""
    arrays = load_inputs(data, data_inputs(model)) if data is not None else {}
    # A scalar or empty array is refused by samples() with its reason.
    given = min((len(array) for array in arrays.values() if np.ndim(array)), default=None)
    fixed = batch_size(model)
    count = fixed or batch or given or DEFAULT_BATCH
    notes = []
    if given is not None and given > count:
        why = f"the graph's batch is fixed at {fixed}" if fixed else f"a batch of {count} was asked for"
        notes.append(f"compared on the first {count} of the {given} samples in {data}: {why}")
    return count, notes


def _needed_inputs(model: Model, outputs: list[str]) -> set[str]:
    return set(data_inputs(model)) & model.main.needed_by(outputs)
