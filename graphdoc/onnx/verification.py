"""Checking an ONNX fix by running it: the checks graphdoc makes of a fixed TensorFlow graph."""

from __future__ import annotations

import numpy as np

from graphdoc.errors import GraphdocError
from graphdoc.onnx.model import OnnxModel
from graphdoc.onnx.probe import BATCH, probe_onnx
from graphdoc.rewrite.fixer import FixReport
from graphdoc.onnx.rules import RANDOM_OPS, BatchNormFormula
from graphdoc.onnx.runtime import OnnxRunner, feeds_for, fixed_batch
from graphdoc.onnx.scanning import scan_onnx
from graphdoc.onnx.view import attribute
from graphdoc.verify.verification import Check, Verification, independence

FORMULA_TOLERANCE = 1e-4  # float32, relative to the output's largest magnitude
UNTOUCHED_TOLERANCE = 1e-6


def verify_onnx(original: OnnxModel, report: FixReport, *, data: dict[str, np.ndarray] | None = None
                ) -> Verification:
    verification = Verification()
    fixed = report.fixed
    size = fixed_batch(fixed) or BATCH
    try:
        runner = OnnxRunner(fixed)
        batch = feeds_for(fixed, size, data=data)
        runner.run(batch, list(fixed.main.outputs))
    except GraphdocError as error:
        verification.checks.append(Check("imports and runs", False, str(error)))
        return verification
    verification.checks.append(Check("imports and runs", True,
                                     f"{len(fixed.main.outputs)} output(s) on a batch of {size} (onnxruntime, "
                                     "optimizations disabled)"))
    probed = probe_onnx(fixed, _left_in_the_model(report), data=data, runner=runner)
    verification.checks.append(independence(probed))
    verification.checks.append(_untouched_agree(original, fixed, runner, data, size))
    formulas = [f.fix.formula for f in report.applied if isinstance(getattr(f.fix, "formula", None), BatchNormFormula)]
    if formulas:
        verification.checks.append(_formulas(original, fixed, formulas, runner, batch))
    return verification


def _left_in_the_model(report: FixReport) -> list:
    """What the fix was not asked to fix (--select, --ignore, `keep`): it explains what still diverges."""
    kept = {finding.location for finding in report.kept}
    return [finding for finding in scan_onnx(report.fixed)
            if (report.codes and finding.code not in report.codes) or finding.location in kept]


def _untouched_agree(original: OnnxModel, fixed: OnnxModel, runner: OnnxRunner, data, size: int) -> Check:
    """Check 3: every node the fix left as it was, with all it is computed from, computes what it did."""
    name = "untouched nodes agree"
    untouched = _untouched(original, fixed)
    if not untouched:
        return Check(name, None, "the fix changed every node's inputs")
    tensors = [original.main.nodes[node].output[0] for node in untouched]
    batch = feeds_for(original, size, data=data)
    try:
        before = OnnxRunner(original).run(batch, tensors)
    except GraphdocError as error:  # ops onnxruntime lacks (a training domain's), which the fix removed
        return Check(name, None, f"the original model does not run: {error}")
    after = runner.run({key: value for key, value in batch.items() if key in fixed.main.feeds}, tensors)
    for node, tensor, a, b in zip(untouched, tensors, before, after, strict=True):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a.shape != b.shape or np.max(np.abs(a - b), initial=0) > UNTOUCHED_TOLERANCE * max(np.max(np.abs(a), initial=0), 1):
            return Check(name, False, f"{node} ({tensor}) computes something else after the fix")
    return Check(name, True, f"{len(untouched)} node(s) equal to the original's")


def _untouched(original: OnnxModel, fixed: OnnxModel) -> list[str]:
    """Main-graph nodes identical in both, computed only from identical nodes, not random."""
    same: set[str] = set()
    for name, node in fixed.main.nodes.items():
        before = original.main.nodes.get(name)
        if before is None or before != node or node.op_type in RANDOM_OPS or not node.output or not node.output[0]:
            continue
        producers = [fixed.main.producer.get(tensor, (None,))[0] for tensor in node.input if tensor]
        if all(producer is None or producer in same for producer in producers):
            same.add(name)
    return [name for name in fixed.main.nodes if name in same]


def _formulas(original: OnnxModel, fixed: OnnxModel, formulas: list[BatchNormFormula], runner, batch) -> Check:
    """Check 4: each fixed BatchNormalization computes scale * (x - mean) / sqrt(var + eps) + bias."""
    name = "layers compute their inference formula"
    checked = [formula for formula in formulas if not formula.scope and formula.node in fixed.main.nodes]
    if not checked:
        return Check(name, None, f"{len(formulas)} layer(s) inside subgraphs, not fetched")
    nodes = [fixed.main.nodes[formula.node] for formula in checked]
    values = runner.run(batch, [tensor for node in nodes for tensor in (node.input[0], node.output[0])])
    worst = (0.0, "")
    for index, (formula, node) in enumerate(zip(checked, nodes, strict=True)):
        x, y = (np.asarray(v, np.float64) for v in values[2 * index:2 * index + 2])
        before = original.main.nodes[formula.node]
        scale, bias = (np.asarray(original.main.value(before.input[i]), np.float64) for i in (1, 2))
        epsilon = float(attribute(before, "epsilon", 1e-5))
        channel = (1, -1) + (1,) * (x.ndim - 2)
        expected = (scale.reshape(channel) * (x - formula.mean.reshape(channel))
                    / np.sqrt(formula.variance.reshape(channel) + epsilon) + bias.reshape(channel))
        difference = float(np.max(np.abs(expected - y)) / max(np.max(np.abs(expected)), 1e-12))
        if not difference <= FORMULA_TOLERANCE:
            return Check(name, False, f"{formula.node}: {difference:.2g} from its inference formula")
        worst = max(worst, (difference, formula.node))
    return Check(name, True, f"{len(checked)} layer(s), within {worst[0]:.1g} of the formula")
