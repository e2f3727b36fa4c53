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
from graphdoc.verify.inputs import batch_size, data_inputs, described, samples, settings_of
from graphdoc.verify.runnable import runnable
from graphdoc.verify.safety import refuse_unsafe


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
    batch: int
    notes: list[str] = field(default_factory=list)  # what the runs changed (runnable copies, settings fed)


def compare(first: Model, second: Model, *, outputs=None, data: Path | None = None, shapes=None,
            batch: int = 4, allow_unsafe: bool = False) -> Comparison:
    """Run both graphs on the same inputs and measure how far apart their outputs are."""
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
    shared = samples(first, batch_size(first) or batch, data=data, shapes=shapes).data  # both see the same
    runs, notes = [], []
    for model, fetched in ((first, names), (second, other_names)):
        prepared = runnable(model, relax_batch=False)
        # A setting one graph has and the other not (a switch the fix bound) is fed where it is.
        settings = settings_of(prepared.model)
        notes += [note for note in prepared.neutralized + described(settings) if note not in notes]
        with GraphRunner(prepared.model.graph_def) as runner:
            own = {name: array for name, array in shared.items() if name in prepared.model.main}
            runs.append(runner.run([f"{n}:0" for n in fetched], {**own, **settings}))
    values, other_values = runs
    differences = []
    for name, other, a, b in zip(names, other_names, values, other_values, strict=True):
        if np.shape(a) != np.shape(b):
            raise GraphdocError(f"output {name} has shape {np.shape(a)} in one graph and {np.shape(b)} in the other")
        gap = float(np.max(np.abs(a.astype(np.float64) - b))) if np.size(a) else 0.0
        scale = max(float(np.max(np.abs(a))), 1e-12) if np.size(a) else 1.0
        differences.append(OutputDifference(name, other, tuple(np.shape(a)), gap, gap / scale))
    return Comparison(differences, op_counts(first), op_counts(second), batch, notes)


def _needed_inputs(model: Model, outputs: list[str]) -> set[str]:
    return set(data_inputs(model)) & model.main.needed_by(outputs)
