"""What probe, compare and verification run: a copy of the graph that TensorFlow can run frozen.

A graph frozen straight from training still holds what only a live session
with variables could run: moving-average updates, optimizer steps and
seed-state writes whose variable handles freezing turned into constants
(TensorFlow then refuses to import the graph: "passed float ... expected
resource"). The copy drops those writes and the control dependencies on
them, which changes no value the outputs compute; a data input whose batch
the export fixed ([1, H, W, C]) is relaxed to any batch, so that one sample
can be run alone and beside others. The file itself is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from graphdoc.graph.model import Model
from graphdoc.rewrite.fixer import apply_fixes, copy_model
from graphdoc.rules import RULES_BY_CODE
from graphdoc.scanning import scan
from graphdoc.verify.inputs import batch_size, data_inputs, samples

_STATE_UPDATE = RULES_BY_CODE["GD303"]


@dataclass
class Runnable:
    model: Model
    neutralized: list[str] = field(default_factory=list)  # what was changed, a sentence each
    relaxed: bool = False  # whether a fixed batch was relaxed


def runnable(model: Model, *, relax_batch: bool = True, outputs: list[str] | None = None) -> Runnable:
    """`model`, or a copy of it with its variable writes removed and, with `relax_batch`, its fixed
    batch dimensions made free. Given `outputs`, the relaxed copy is run at the fixed batch and at
    twice it, and kept only if the outputs follow the batch (a Reshape to [1, -1] would not)."""
    relaxed = _runnable(model, relax_batch=relax_batch)
    if not relaxed.relaxed or outputs is None or _follows_the_batch(relaxed.model, outputs, batch_size(model)):
        return relaxed
    kept = _runnable(model, relax_batch=False)
    kept.neutralized.append(f"the batch stays fixed at {batch_size(model)}: the outputs do not follow a relaxed one")
    return kept


def _follows_the_batch(model: Model, outputs: list[str], size: int) -> bool:
    from graphdoc.errors import GraphdocError
    from graphdoc.tf.runner import GraphRunner

    fetches = [f"{name}:0" for name in outputs]
    try:
        inputs = samples(model, 2 * size)
        with GraphRunner(model.graph_def, inputs.feed()) as runner:
            once, twice = (runner.run(fetches, inputs.rows(slice(0, n))) for n in (size, 2 * size))
    except GraphdocError:
        return False
    return all(np.shape(a) == np.shape(b) or np.shape(b) == (2 * np.shape(a)[0], *np.shape(a)[1:])
               for a, b in zip(once, twice, strict=True) if np.ndim(a))


def _runnable(model: Model, *, relax_batch: bool) -> Runnable:
    updates = [f for f in scan(model, (_STATE_UPDATE,)) if f.fix is not None]
    fixed = [name for name in data_inputs(model) if _fixed_batch(model, name)] if relax_batch else []
    if not updates and not fixed:
        return Runnable(model)
    copy = copy_model(model)
    notes = []
    if updates:
        apply_fixes(copy, updates)
        for view in copy.views:
            view.compact()
        notes.append(f"{len(updates)} variable update(s) removed for the run (frozen, they cannot run)")
    for name in fixed:
        shape = copy.main.nodes[name].attr["shape"].shape
        notes.append(f"{name}'s batch, fixed at {shape.dim[0].size}, relaxed for the run")
        shape.dim[0].size = -1
    return Runnable(copy, notes, relaxed=bool(fixed))


def _fixed_batch(model: Model, name: str) -> bool:
    shape = model.main.attr(name, "shape")
    return bool(shape) and shape[0] is not None and shape[0] > 0
