"""The probe on an ONNX model: one sample alone, first in a batch, again, and last in another batch."""

from __future__ import annotations

import numpy as np

from graphdoc.errors import GraphdocError
from graphdoc.onnx.model import OnnxModel
from graphdoc.onnx.runtime import OnnxRunner, batched_inputs, feeds_for, fixed_batch, rows
from graphdoc.rules.base import Finding
from graphdoc.verify.probe import TOLERANCE, Divergence, ProbeReport

BATCH = 4


def probe_onnx(model: OnnxModel, findings: list[Finding], *, data: dict[str, np.ndarray] | None = None,
               runner: OnnxRunner | None = None) -> ProbeReport:
    """Roots of batch dependence and run-to-run randomness in the main graph, in graph order,
    each explained by the finding at its node (or in the subgraph of its If or Loop node)."""
    runner = runner or OnnxRunner(model)
    fixed = fixed_batch(model)
    size = fixed or _batch_for(data)
    batched = batched_inputs(model)
    pool = feeds_for(model, 2 * size - 1, data=data)
    short = [name for name in batched if name in pool and len(pool[name]) < 2 * size - 1]
    if short:
        raise GraphdocError(f"--inputs has {len(pool[short[0]])} samples for {short[0]!r}; the probe needs "
                            f"{2 * size - 1} (two batches of {size} sharing sample 0)")
    batch_a = rows(pool, batched, slice(0, size))
    batch_b = rows(pool, batched, [*range(size, 2 * size - 1), 0])
    alone = rows(pool, batched, slice(0, 1)) if fixed is None else batch_a
    tensors = [(name, node.op_type, node.output[0]) for name, node in model.main.nodes.items()
               if node.output and node.output[0]]
    fetch = [tensor for _, _, tensor in tensors]
    runs = [runner.run(feeds, fetch) for feeds in (alone, batch_a, batch_a, batch_b)]
    blamed = _blame(findings)
    profile, diverging, nondeterministic = [], {}, set()
    for index, (name, op, tensor) in enumerate(tensors):
        values = [run[index] for run in runs]
        if not all(np.issubdtype(np.asarray(v).dtype, np.floating) for v in values):
            continue
        batch_difference, run_difference = _differences(values, size, ran_alone=fixed is None)
        profile.append((name, op, batch_difference, run_difference))
        if run_difference > TOLERANCE:
            nondeterministic.add(name)
        if max(batch_difference, run_difference) > TOLERANCE:
            diverging[tensor] = Divergence(name, op, batch_difference, run_difference, blamed.get(name))
    roots = [divergence for tensor, divergence in diverging.items()
             if not any(t in diverging for t in _inputs_of(model, divergence.node))]
    notes = [] if fixed is None else [f"the batch is fixed at {fixed}: sample 0 was compared between two batches"]
    return ProbeReport(roots=roots, diverging=len(diverging), probed=len(profile), batch=size, notes=notes,
                       nondeterministic=frozenset(nondeterministic), profile=profile)


def _batch_for(data: dict[str, np.ndarray] | None) -> int:
    """The batch size: 4, or as many as the samples given make two batches of."""
    given = min((len(array) for array in (data or {}).values() if np.ndim(array)), default=None)
    return BATCH if given is None else max(2, min(BATCH, (given + 1) // 2))


def _differences(values: list[np.ndarray], size: int, *, ran_alone: bool) -> tuple[float, float]:
    """(sample 0 alone vs in batch A vs last in batch B, batch A vs itself again), relative."""
    alone, first, again, second = (np.asarray(v, np.float64) for v in values)
    run = _relative(first, again)
    if first.shape == second.shape and np.array_equal(first, second):
        return 0.0, run  # the same whatever else is in the batch
    # A batch dimension: its first axis holds one row per sample (a run alone has one row).
    batched = first.ndim and first.shape[0] == size and (not ran_alone or alone.shape[:1] == (1,))
    if batched and second.shape == first.shape:  # follow sample 0
        return max(_relative(alone[:1], first[:1]), _relative(first[:1], second[-1:])), run
    return max(_relative(alone, first), _relative(first, second)), run  # over the batch (a batch mean): all of it


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return 0.0
    scale = max(float(np.max(np.abs(a))) if a.size else 0.0, 1e-12)
    difference = np.abs(a - b)
    if np.isnan(difference).any():
        return float("inf") if not (np.isnan(a) == np.isnan(b)).all() else float(np.nanmax(difference, initial=0) / scale)
    return float(difference.max(initial=0) / scale)


def _inputs_of(model: OnnxModel, name: str) -> list[str]:
    from graphdoc.onnx.view import captured

    node = model.main.nodes[name]
    return [*node.input, *captured(node)]


def _blame(findings: list[Finding]) -> dict[str, Finding]:
    """Node -> the finding that explains a divergence there; a finding inside a subgraph explains
    its If or Loop node, the first node of the main graph it shows in."""
    blamed = {}
    for finding in findings:
        nodes = finding.blamed if not finding.scope else (finding.scope.split("/")[0],)
        for node in nodes:
            blamed.setdefault(node, finding)
    return blamed
