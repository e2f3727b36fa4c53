"""Training mode in a converted .tflite: batch means that normalize, random dropout masks.

GD102: a MEAN over axes that include the batch axis of a tensor of rank 2 or
more, read again beside that tensor (SQUARED_DIFFERENCE or SUB of the two: the
variance, or x - mean), as the converter writes a training-mode BatchNorm
(rules/batch_means.py).
GD201: a random op (RANDOM_UNIFORM, RANDOM_STANDARD_NORMAL) whose values are
compared into a mask that multiplies or selects an activation (rules/masks.py). A per-sample mean (global pooling over H and
W, squeeze-excitation, LayerNorm over the last axis) reduces no batch axis.
Nothing is fixable in the file: its moving statistics are gone.
"""

from __future__ import annotations


from dataclasses import dataclass

import numpy as np

from graphdoc.errors import GraphdocError
from graphdoc.rules import dataflow
from graphdoc.rules.base import Finding, marked_kept
from graphdoc.rules.batch_means import normalizing_batch_mean
from graphdoc.rules.masks import applied_mask
from graphdoc.tflite.model import Operator, TfliteModel

RANDOM_OPS = frozenset({"RANDOM_UNIFORM", "RANDOM_STANDARD_NORMAL"})
CODES = ("GD102", "GD201")
CONVERT_AGAIN = ("a .tflite holds no moving statistics: fix the graph it was converted from "
                 "(graphdoc fix MODEL.pb -o FIXED.pb) and convert FIXED.pb again")


def scan_tflite(model: TfliteModel, codes: set[str] | None = None, keep: tuple[str, ...] = ()) -> list[Finding]:
    findings = []
    for operator in model.operators:
        if operator.op == "MEAN" and (codes is None or "GD102" in codes):
            findings += _batch_mean(model, operator)
        elif operator.op in RANDOM_OPS and (codes is None or "GD201" in codes):
            findings += _random_mask(model, operator)
    findings.sort(key=lambda finding: finding.code)
    return [marked_kept(finding, keep) for finding in findings]


def _batch_mean(model: TfliteModel, operator: Operator) -> list[Finding]:
    found = normalizing_batch_mean(_TfliteFlow(model), operator)
    if found is None:
        return []
    name = model.name(operator.outputs[0])
    return [Finding("GD102", "", name, f"a training-mode BatchNorm ({_layer(name)}): MEAN over axes {list(found.axes)} "
                    f"of {model.name(found.x)}, the batch's own mean, normalizes it; the interpreter runs it so, and "
                    "results depend on the rest of the batch", unfixable=CONVERT_AGAIN)]


def _random_mask(model: TfliteModel, operator: Operator) -> list[Finding]:
    mask = applied_mask(_TfliteFlow(model), operator)
    if mask is None:
        return []
    return [Finding("GD201", "", model.name(operator.outputs[0]),
                    f"a random mask ({operator.op} compared, then {mask.applied_by.op}) drops activations at random: "
                    "dropout converted in training mode", nodes=mask.path, unfixable=CONVERT_AGAIN)]


# TFLite's builtins as the format-neutral rules (rules/dataflow.py) know them.
_KINDS = {
    **dict.fromkeys(("RANDOM_UNIFORM", "RANDOM_STANDARD_NORMAL"), dataflow.RANDOM),
    **dict.fromkeys(("GREATER_EQUAL", "GREATER", "LESS", "LESS_EQUAL"), dataflow.COMPARE),
    **dict.fromkeys(("FLOOR", "LOGICAL_NOT"), dataflow.UNARY),
    **dict.fromkeys(("CAST", "RESHAPE", "SQUEEZE", "EXPAND_DIMS"), dataflow.PASS),
    "ADD": dataflow.ADD, "SUB": dataflow.SUB, "MUL": dataflow.MUL, "DIV": dataflow.DIV,
    **dict.fromkeys(("SELECT", "SELECT_V2"), dataflow.SELECT),
    "MEAN": dataflow.MEAN, "SQUARED_DIFFERENCE": dataflow.SQUARED_DIFFERENCE,
}


@dataclass(frozen=True)
class _TfliteFlow:
    """A .tflite's main subgraph as the format-neutral rules read one (rules/dataflow.py)."""

    model: TfliteModel

    def kind(self, operator: Operator) -> str:
        return _KINDS.get(operator.op, "")

    def inputs(self, operator: Operator) -> list[int]:
        return list(operator.inputs)

    def output(self, operator: Operator) -> int:
        return operator.outputs[0]

    def readers(self, tensor: int) -> list[Operator]:
        return self.model.readers.get(tensor, [])

    def producing(self, tensor: int) -> Operator | None:
        return self.model.producers.get(tensor)

    def constant(self, tensor: int):
        return self.model.value(tensor)

    def name(self, operator: Operator) -> str:
        return self.model.name(operator.outputs[0])

    def reduced(self, operator: Operator) -> tuple[int, list[int], int] | None:
        axes = self.model.value(operator.inputs[1]) if len(operator.inputs) > 1 else None
        shape = self.model.shape(operator.inputs[0])
        return None if axes is None or shape is None else (operator.inputs[0], [int(a) for a in np.ravel(axes)], len(shape))


def _layer(name: str) -> str:
    """`conv1/BatchNorm/moments/mean` -> `conv1/BatchNorm`: what the source graph calls the layer."""
    return name.split("/moments")[0] if "/moments" in name else name.rsplit("/", 1)[0]




def refuse_fixing(model: TfliteModel) -> None:
    findings = scan_tflite(model)
    named = ", ".join(f"{_layer(f.node)} ({f.code})" for f in findings[:4]) + (" and more" if len(findings) > 4 else "")
    where = f"; in this file: {named}" if findings else ""
    raise GraphdocError(f"{model.path}: nothing to fix inside a .tflite, {CONVERT_AGAIN}{where}")
