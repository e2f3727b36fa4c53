"""Fixing an ONNX model: the findings' edits applied to a copy, what they leave dead removed, checked."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from graphdoc.errors import FixError, GraphdocError, first_line
from graphdoc.onnx.model import OnnxModel
from graphdoc.onnx.proto import onnx_package
from graphdoc.onnx.scanning import scan_onnx
from graphdoc.onnx.view import captured, node_name
from graphdoc.rewrite.fixer import FixReport
from graphdoc.rules.base import Finding

onnx = onnx_package()  # fixing checks its result with onnx.checker


def fix_onnx(model: OnnxModel, *, codes: set[str] | None = None, checkpoint: str | Path | None = None,
             calibrate: str | Path | None = None, batch_size: int = 32, unsafe_fixes: bool = False,
             progress=None, keep: tuple[str, ...] = ()) -> FixReport:
    """Fix `model`'s findings (of the rules in `codes`, all if None) on a copy; what they leave
    dead is removed, and the result must pass onnx.checker. Opset and IR version stay.

    Batch moments without statistics get them from `calibrate`'s inputs (onnx/calibration.py):
    an unsafe fix, applied only with `unsafe_fixes`."""
    findings = scan_onnx(model, codes, checkpoint=checkpoint, keep=keep)
    if calibrate is not None:
        findings = _calibrated(model, findings, Path(calibrate), batch_size=batch_size, progress=progress)
    held_back = [f for f in findings if f.fix is not None and not f.fix.safe and not unsafe_fixes and not f.kept]
    _refuse_missing_statistics(findings, held_back)
    kept = [finding for finding in findings if finding.kept]
    fixable = [f for f in findings if not f.kept and f.fix is not None and f not in held_back]
    proto = onnx.ModelProto()
    proto.CopyFrom(model.proto)
    applied = _apply(proto, fixable) if fixable else []
    removed_inputs, pruned = _prune_model(proto) if applied else ([], 0)
    notes = [f"removed the input {name!r}: only the training behaviour read it" for name in removed_inputs]
    fixed = OnnxModel(proto=proto, path=model.path, notes=notes) if applied else model
    if applied:
        _check(proto)
    remaining = [f for f in scan_onnx(fixed, codes, checkpoint=checkpoint, keep=keep) if not f.kept] if applied else \
        [f for f in findings if not f.kept]
    return FixReport(
        fixed=fixed, outputs=list(model.main.outputs), applied=applied, held_back=held_back,
        not_fixable=[f for f in findings if not f.kept and f.fix is None], remaining=remaining,
        ops_before=model.op_counts(), ops_after=fixed.op_counts(), pruned=pruned, size_before=model.size(),
        passes=[("prune", pruned)], codes=frozenset(codes or ()), kept=kept,
    )


def _calibrated(model: OnnxModel, findings: list[Finding], data: Path, **options) -> list[Finding]:
    from graphdoc.onnx.calibration import calibrate

    measured = calibrate(model, findings, data, **options)
    return [dataclasses.replace(f, fix=f.site.fix(measured[f.node], safe=False), unfixable=None)
            if f.node in measured and f.fix is None and not f.scope else f for f in findings]


def applied_copy(model: OnnxModel, findings: list[Finding]):
    """A copy of `model`'s ModelProto with `findings`' fixes applied (nothing pruned)."""
    proto = onnx.ModelProto()
    proto.CopyFrom(model.proto)
    _apply(proto, findings)
    return proto


def _refuse_missing_statistics(findings: list[Finding], held_back: list[Finding]) -> None:
    """A BatchNorm left on batch statistics would leave the bug in place: stop rather than write a
    model that looks repaired (as for TensorFlow graphs)."""
    if any(f.code == "GD102" for f in held_back):
        layers = ", ".join(f.site.layer for f in held_back[:3]) + (" and more" if len(held_back) > 3 else "")
        raise FixError(f"{len(held_back)} BatchNorm layer(s) ({layers}) would get calibrated statistics, an unsafe "
                       "fix: pass --unsafe-fixes to apply it; nothing was written")
    missing = [f for f in findings if f.code == "GD102" and f.fix is None and not f.kept]
    if missing:
        shown = "; ".join(f"{f.node} ({f.unfixable})" for f in missing[:2])
        more = f"; and {len(missing) - 2} more" if len(missing) > 2 else ""
        raise FixError(f"{len(missing)} BatchNorm layer(s) lack moving statistics, nothing was written: {shown}{more}. "
                       "Supply them with --checkpoint PATH (the TensorFlow checkpoint the model was converted from) "
                       "or --calibrate DATA.npy (representative inputs)")


def _apply(proto: onnx.ModelProto, findings: list[Finding]) -> list[Finding]:
    """Each finding's edits in its graph body; a finding whose nodes another fix already changed waits
    (the second scan reports it if it is still there)."""
    graphs = dict(_bodies(proto.graph))
    changed: set[tuple[str, str]] = set()
    applied = []
    for finding in findings:
        touched = {(edit.scope, node) for edit in finding.fix.edits for node in edit.changes()}
        if touched & changed:
            continue
        for edit in finding.fix.edits:
            edit.apply(graphs[edit.scope])
        changed |= touched
        applied.append(finding)
    return applied


def _bodies(graph: onnx.GraphProto, scope: str = ""):
    """(scope, graph) for a graph and every subgraph in it, scoped as OnnxView scopes them."""
    yield scope, graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _bodies(attr.g, f"{scope + '/' if scope else ''}{node_name(node)}/{attr.name}")


def _prune_model(proto: onnx.ModelProto) -> tuple[list[str], int]:
    """Remove what no output needs any more; the main graph's inputs the fix made unread go too."""
    graph = proto.graph
    read_before = _read_inputs(graph)
    pruned = _prune(graph)
    read_after = _read_inputs(graph)
    unread = [value.name for value in graph.input if value.name in read_before and value.name not in read_after]
    kept = [value for value in graph.input if value.name not in unread]
    del graph.input[:]
    graph.input.extend(kept)
    return unread, pruned


def _read_inputs(graph: onnx.GraphProto) -> set[str]:
    read = {output.name for output in graph.output}
    for node in graph.node:
        read |= set(node.input) | captured(node)
    return read


def _prune(graph: onnx.GraphProto) -> int:
    """Nodes whose outputs nothing needs, then initializers and value_info nothing reads; subgraphs first."""
    removed = 0
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                removed += _prune(attr.g)
    needed = {output.name for output in graph.output}
    kept = []
    for node in reversed(graph.node):  # ONNX keeps nodes in topological order: readers after producers
        if any(output in needed for output in node.output if output):
            kept.append(node)
            needed |= set(node.input) | captured(node)
    removed += len(graph.node) - len(kept)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    initializers = [tensor for tensor in graph.initializer if tensor.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    produced = {output for node in graph.node for output in node.output}
    infos = [value for value in graph.value_info if value.name in produced]
    del graph.value_info[:]
    graph.value_info.extend(infos)
    return removed


def _check(proto: onnx.ModelProto) -> None:
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as error:
        raise GraphdocError(f"the fixed model fails onnx.checker ({first_line(error)}); nothing was written") from None


def onnx_node_changes(before: OnnxModel, after: OnnxModel) -> list[tuple[str, str, str]]:
    """('-', node, op) removed, ('+', node, op) added, ('~', node, what changed), as rewrite.diff has them."""
    old, new = before.main.nodes, after.main.nodes
    changes = [("-", name, node.op_type) for name, node in old.items() if name not in new]
    for name, node in new.items():
        if name not in old:
            changes.append(("+", name, node.op_type))
        elif old[name] != node:
            changes.append(("~", name, _described(old[name], node)))
    return changes


def _described(old: onnx.NodeProto, new: onnx.NodeProto) -> str:
    parts = [f"input {slot}: {a or '(none)'} -> {b or '(none)'}"
             for slot, (a, b) in enumerate(zip(old.input, new.input, strict=False)) if a != b]
    if len(new.output) < len(old.output):
        parts.append(f"outputs {', '.join(old.output[len(new.output):])} dropped")
    before = {attr.name: onnx.helper.get_attribute_value(attr) for attr in old.attribute}
    after = {attr.name: onnx.helper.get_attribute_value(attr) for attr in new.attribute}
    parts += [f"{key} {before.get(key, '(absent)')} -> {after.get(key, '(absent)')}"
              for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]
    return "; ".join(parts) or "changed"
