"""graphdoc as a library: load, scan, fix, probe. The command line is a thin layer over these.

    import graphdoc
    model = graphdoc.load("model.pb")
    for finding in graphdoc.scan(model):
        print(finding.code, finding.node, finding.message)
    report = graphdoc.fix(model, checkpoint="train/model.ckpt")
    graphdoc.save(report.fixed, "fixed.pb")

Everything returns plain objects: findings are frozen dataclasses
(graphdoc.rules.Finding), fix results a FixReport, probe results a ProbeReport.
Only probe, verification, checkpoints and SavedModels import TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

from graphdoc.errors import GraphdocError
from graphdoc.graph.model import Model
from graphdoc.loading import load
from graphdoc.rewrite import FixReport
from graphdoc.rewrite import fix as _fix
from graphdoc.rewrite.statistics import complete_statistics
from graphdoc.rules import Finding, select_rules
from graphdoc.scanning import scan as _scan
from graphdoc.writing import write_graph_def

__all__ = ["load", "scan", "fix", "probe", "save"]


def scan(
    model: Model,
    *,
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    checkpoint: str | Path | None = None,
) -> list[Finding]:
    """Every finding in `model`, sorted; `select`/`ignore` take rule codes or families (GD1).

    Statistics the graph lacks are looked up in `checkpoint` (or the checkpoint
    the model was loaded from), as `fix` would: a finding is fixable here
    exactly when `fix` with the same inputs fixes it.
    """
    try:
        rules = select_rules(select, ignore)
    except ValueError as error:
        raise GraphdocError(str(error)) from None
    codes = {rule.code for rule in rules}
    findings = complete_statistics(model, _scan(model, rules), checkpoint=checkpoint)
    return [finding for finding in findings if finding.code in codes]


def fix(
    model: Model,
    *,
    outputs: list[str] | None = None,
    checkpoint: str | Path | None = None,
    calibrate: str | Path | None = None,
    batch_size: int = 32,
    unsafe_fixes: bool = False,
    in_place: bool = False,
    progress=None,
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    bind: dict[str, bool | int | float] | None = None,
) -> FixReport:
    """Fix `model` in memory: statistics the graph lacks come from `checkpoint`, then from
    calibrating on `calibrate`'s inputs. `in_place` edits `model` itself instead of a copy.
    `select`/`ignore` choose the rules whose findings are fixed, as in `scan`; `bind` sets
    placeholders to constants first ({"is_training": False}).
    Raises GraphdocError when a fix cannot be completed."""
    try:
        rules = select_rules(select, ignore)
    except ValueError as error:
        raise GraphdocError(str(error)) from None

    def add_statistics(graph: Model, findings: list[Finding]) -> list[Finding]:
        return complete_statistics(graph, findings, checkpoint=checkpoint, calibrate=calibrate,
                                   batch_size=batch_size, progress=progress)

    return _fix(model, outputs=outputs, complete=add_statistics, unsafe_fixes=unsafe_fixes, in_place=in_place,
                rules=rules, bind=bind)


def probe(model: Model, *, inputs: str | Path | None = None, shapes=None, outputs=None, allow_unsafe: bool = False,
          status=lambda message: None):
    """Run `model` and return the roots of batch dependence and randomness (a ProbeReport).

    `status(message)` hears how far a large model's probe has come.
    """
    from graphdoc.verify.probe import probe as _probe

    return _probe(model, _scan(model), data=Path(inputs) if inputs else None, shapes=shapes, outputs=outputs,
                  allow_unsafe=allow_unsafe, status=status)


def save(model: Model, path: str | Path) -> None:
    """Write `model`'s GraphDef atomically (text for .pbtxt, binary otherwise)."""
    write_graph_def(model.graph_def, Path(path))
