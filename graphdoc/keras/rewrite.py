"""Fixing a Keras model file: the baked training arguments removed from a copy of its config."""

from __future__ import annotations

import copy
import dataclasses

from graphdoc.keras.model import KerasModel, keras_model
from graphdoc.keras.rules import scan_keras
from graphdoc.rewrite.fixer import FixReport


def fix_keras(model: KerasModel, *, codes: set[str] | None = None, keep: tuple[str, ...] = ()) -> FixReport:
    """The config without `training=True` in the calls found (those `keep` marks stay); the
    weights are not touched: writing copies them from the file as they are."""
    findings = scan_keras(model, codes, keep)
    applied = [f for f in findings if not f.kept and f.fix is not None]
    config = copy.deepcopy(model.config)
    for finding in applied:
        for edit in finding.fix.edits:
            edit.apply(config)
    fixed = keras_model(dataclasses.replace(model.file, config=config)) if applied else model
    remaining = [f for f in scan_keras(fixed, codes, keep) if not f.kept]
    return FixReport(
        fixed=fixed, outputs=model.outputs(), applied=applied, held_back=[],
        not_fixable=[f for f in findings if not f.kept and f.fix is None], remaining=remaining,
        ops_before=model.op_counts(), ops_after=fixed.op_counts(), pruned=0, size_before=model.size(),
        codes=frozenset(codes or ()), kept=[f for f in findings if f.kept],
    )
