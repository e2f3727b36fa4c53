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

from graphdoc.graph.model import Model
from graphdoc.rewrite.fixer import apply_fixes, copy_model
from graphdoc.rules import RULES_BY_CODE
from graphdoc.scanning import scan
from graphdoc.verify.inputs import data_inputs

_STATE_UPDATE = RULES_BY_CODE["GD303"]


@dataclass
class Runnable:
    model: Model
    neutralized: list[str] = field(default_factory=list)  # what was changed, a sentence each
    relaxed: bool = False  # whether a fixed batch was relaxed


def runnable(model: Model, *, relax_batch: bool = True) -> Runnable:
    """`model`, or a copy of it with its variable writes removed and, with `relax_batch`, its fixed
    batch dimensions made free."""
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
