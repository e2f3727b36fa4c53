"""graphdoc as a library: load, scan, fix, verify, probe, compare, save. The command line is a thin layer over these.

    import graphdoc
    model = graphdoc.load("model.pb")
    for finding in graphdoc.scan(model):
        print(finding.code, finding.node, finding.message)
    report = graphdoc.fix(model, checkpoint="train/model.ckpt")   # verified; raises FixError if it fails
    graphdoc.save(report.fixed, "fixed.pb")
    graphdoc.fix_file("model.pb", "fixed.pb")                      # what `graphdoc fix model.pb -o fixed.pb` does

Everything returns plain objects: findings are frozen dataclasses
(graphdoc.rules.Finding), fix results a FixResult (a FixReport with its
Verification), probe results a ProbeReport, compare results a Comparison.
Only probe, verification, compare, checkpoints and SavedModels import TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from graphdoc.errors import GraphdocError
from graphdoc.formats import format_of
from graphdoc.fixing import (
    FileFix,
    FixResult,
    VerificationFailed,
    chosen_rules,
    fix_model,
    verified,
)
from graphdoc.graph.model import Model
from graphdoc.loading import GRAPHDEF_FORMATS, load
from graphdoc.rewrite import FixReport
from graphdoc.sources.completion import complete_statistics
from graphdoc.rules import Finding
from graphdoc.scanning import scan as _scan
from graphdoc.writing import write_graph_def

if TYPE_CHECKING:
    from graphdoc.verify.compare import Comparison
    from graphdoc.verify.verification import Verification

__all__ = ["load", "scan", "fix", "verify", "probe", "compare", "save", "fix_file",
           "FixResult", "VerificationFailed"]


def _quiet(message: str) -> None:
    pass


def outputs(model: Model, requested: list[str] | None = None) -> list[str]:
    """The outputs `requested` (checked, with a suggestion for a misspelling), else the model's own:
    a TensorFlow graph's inferred output nodes, an ONNX model's graph outputs."""
    other = format_of(model)
    if other is not None:
        return other.outputs(model, requested)
    from graphdoc.rewrite.outputs import resolve_outputs

    return resolve_outputs(model.main, requested, model.aliases)


def scan(
    model: Model,
    *,
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    checkpoint: str | Path | None = None,
    keep: tuple[str, ...] = (),
) -> list[Finding]:
    """Every finding in `model`, sorted; `select`/`ignore` take rule codes or families (GD1);
    findings `keep` patterns match are marked kept (deliberate training behaviour).

    Statistics the graph lacks are looked up in `checkpoint` (or the checkpoint
    the model was loaded from), as `fix` would: a finding is fixable here
    exactly when `fix` with the same inputs fixes it.
    """
    rules = chosen_rules(select, ignore)
    codes = {rule.code for rule in rules}
    other = format_of(model)
    if other is not None:
        return other.scan(model, codes, checkpoint=checkpoint, keep=keep)
    findings = complete_statistics(model, _scan(model, rules, keep), checkpoint=checkpoint)
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
    keep: tuple[str, ...] = (),
    verify: bool = True,
    inputs: str | Path | None = None,
    shapes: dict[str, list[int]] | None = None,
    allow_unsafe: bool = False,
    status: Callable[[str], None] = _quiet,
) -> FixResult:
    """Fix `model` in memory and verify the fixed graph, as `graphdoc fix` does before it writes.

    Statistics the graph lacks come from `checkpoint`, then from calibrating on
    `calibrate`'s inputs (`progress(count)` hears the samples run). `select`/`ignore`
    choose the rules whose findings are fixed, as in `scan`; `bind` sets placeholders
    to constants first ({"is_training": False}). `in_place` edits `model` itself instead
    of a copy; verification then reads the original again from `model.path`.

    When the fix changed anything, the fixed graph is run against the original
    (graphdoc.verify.verification, with `inputs`, `shapes`, `allow_unsafe` and
    `status` as in `verify`); a failed check raises VerificationFailed, a FixError
    naming it. `verify=False`, or TensorFlow not installed, skips it:
    `result.verification` is then None (and `verification_skipped` says why
    unless it was turned off). Findings `select`/`ignore` left in the graph
    explain what still diverges; they do not fail the checks.
    Raises GraphdocError when a fix cannot be completed.
    """
    if in_place and verify and model.format not in GRAPHDEF_FORMATS:
        raise GraphdocError(f"{model.path} cannot be read again to verify a fix made in place; "
                            "pass in_place=False, or verify=False")
    original = (lambda: load(model.path)) if in_place else (lambda: model)  # called only to verify
    report = fix_model(model, outputs=outputs, checkpoint=checkpoint, calibrate=calibrate, batch_size=batch_size,
                       unsafe_fixes=unsafe_fixes, in_place=in_place, progress=progress, select=select,
                       ignore=ignore, bind=bind, keep=keep)
    return verified(report, original, verify=verify, inputs=inputs, shapes=shapes, allow_unsafe=allow_unsafe,
                    status=status)


def verify(original: Model, report: FixReport, *, inputs: str | Path | None = None,
           shapes: dict[str, list[int]] | None = None, allow_unsafe: bool = False,
           status: Callable[[str], None] = _quiet) -> Verification:
    """Run `report.fixed` against `original` (the model before the fix) and return every check.

    Never raises for a failed check (see `verification.passed` and `failures()`),
    only for bad input. `inputs` is a .npy or .npz of input data (random data
    otherwise), `shapes` the shapes of inputs the graph leaves open ({"x": [-1, 128]}),
    `allow_unsafe` runs graphs that touch files or call Python. Needs TensorFlow.
    """
    other = format_of(original)
    if other is not None:
        return other.verify(original, report, inputs=Path(inputs) if inputs else None)
    from graphdoc.verify.verification import verify as _verify

    return _verify(original, report, data=Path(inputs) if inputs else None, shapes=shapes,
                   allow_unsafe=allow_unsafe, status=status)


def probe(model: Model, *, inputs: str | Path | None = None, shapes=None, outputs=None, allow_unsafe: bool = False,
          status=lambda message: None):
    """Run `model` and return the roots of batch dependence and randomness (a ProbeReport).

    `status(message)` hears how far a large model's probe has come.
    """
    other = format_of(model)
    if other is not None:
        return other.probe(model, scan(model), inputs=Path(inputs) if inputs else None)
    from graphdoc.verify.probe import probe as _probe

    return _probe(model, _scan(model), data=Path(inputs) if inputs else None, shapes=shapes, outputs=outputs,
                  allow_unsafe=allow_unsafe, status=status)


def compare(first: Model, second: Model, *, outputs: list[str] | None = None, inputs: str | Path | None = None,
            shapes: dict[str, list[int]] | None = None, batch: int | None = None,
            allow_unsafe: bool = False) -> Comparison:
    """Run both models on the same inputs; `comparison.outputs` holds, per output, its
    largest absolute and relative difference (OutputDifference). `outputs` names the
    first model's outputs (inferred otherwise); the second's correspond by name or order.
    Both run on `batch` samples: by default every sample in `inputs`, else 4 random ones.
    Needs TensorFlow.
    """
    other = format_of(first) or format_of(second)
    if other is not None:
        if other.not_run:
            raise GraphdocError(f"compare runs TensorFlow graphs and ONNX models; {other.not_run}")
        if first.kind != second.kind:
            raise GraphdocError("compare runs two models of one format (two ONNX models, or two TensorFlow graphs)")
        return other.compare(first, second, outputs=outputs, inputs=Path(inputs) if inputs else None, batch=batch)
    from graphdoc.verify.compare import compare as _compare

    return _compare(first, second, outputs=outputs, data=Path(inputs) if inputs else None, shapes=shapes,
                    batch=batch, allow_unsafe=allow_unsafe)


def fix_file(
    path: str | Path,
    output: str | Path | None = None,
    *,
    in_place: bool = False,
    dry_run: bool = False,
    outputs: list[str] | None = None,
    signature: str = "serving_default",
    verify: bool = True,
    inputs: str | Path | None = None,
    shapes: dict[str, list[int]] | None = None,
    allow_unsafe: bool = False,
    status: Callable[[str], None] = _quiet,
    **options,
) -> FixResult:
    """What `graphdoc fix PATH -o OUTPUT` does: load, fix, verify, and write only if it checks out.

    The file is written atomically; `in_place` overwrites `path` itself and keeps
    the original as PATH.bak; `dry_run` verifies and writes nothing. A fix that
    changed nothing writes `path`'s bytes unchanged. Other keywords are `fix`'s
    (checkpoint, calibrate, batch_size, unsafe_fixes, select, ignore, bind, progress).
    Raises VerificationFailed (nothing written) when the fixed graph fails a check.
    """
    steps = FileFix(path, output, in_place=in_place, dry_run=dry_run)
    steps.fix(load(path, outputs=outputs, signature=signature), outputs=outputs, **options)
    result = steps.check(verify=verify, inputs=inputs, shapes=shapes, allow_unsafe=allow_unsafe, status=status)
    steps.write()
    return result


def save(model: Model, path: str | Path) -> None:
    """Write `model`'s GraphDef atomically (text for .pbtxt, binary otherwise)."""
    write_graph_def(model.graph_def, Path(path))
