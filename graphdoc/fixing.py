"""Fixing a model and checking the result before anything is written.

graphdoc.fix, graphdoc.fix_file and `graphdoc fix` share this policy: the fix
is made in memory; the fixed graph is then run against the original (unless
verification is turned off, or TensorFlow is not installed, which the result
says); a fix that fails a check raises VerificationFailed; and only then is a
file written, atomically, the original kept as .bak when it is overwritten.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from graphdoc.errors import FixError, GraphdocError, install_tensorflow_hint
from graphdoc.formats import VerificationUnavailable, format_of
from graphdoc.graph.model import Model
from graphdoc.loading import GRAPHDEF_FORMATS, load
from graphdoc.rewrite import FixReport
from graphdoc.rewrite import fix as _fix
from graphdoc.sources.completion import complete_statistics
from graphdoc.rules import Finding, Rule, select_rules
from graphdoc.writing import fix_destination, write_fix

if TYPE_CHECKING:
    from graphdoc.verify.verification import Verification

TENSORFLOW_MISSING = f"TensorFlow is not installed ({install_tensorflow_hint()})"


@dataclass
class FixResult(FixReport):
    """A FixReport and its verification.

    `verification` is None when nothing was checked: the fix changed nothing,
    verification was turned off, or it could not run, and then
    `verification_skipped` says why.
    """

    verification: Verification | None = None
    verification_skipped: str | None = None


class VerificationFailed(FixError):
    """The fixed graph failed a check; `verification` holds every check and its result."""

    def __init__(self, message: str, verification: Verification):
        super().__init__(message)
        self.verification = verification


def chosen_rules(select: list[str] | None, ignore: list[str] | None) -> tuple[type[Rule], ...]:
    try:
        return select_rules(select, ignore)
    except ValueError as error:
        raise GraphdocError(str(error)) from None


def fix_model(
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
) -> FixReport:
    """The fix, in memory and not yet verified (graphdoc.fix documents the options)."""
    rules = chosen_rules(select, ignore)
    other = format_of(model)
    if other is not None:
        return other.fix(model, {rule.code for rule in rules}, checkpoint=checkpoint, calibrate=calibrate,
                         batch_size=batch_size, unsafe_fixes=unsafe_fixes, progress=progress, bind=bind, keep=keep)

    def add_statistics(graph: Model, findings: list[Finding]) -> list[Finding]:
        return complete_statistics(graph, findings, checkpoint=checkpoint, calibrate=calibrate,
                                   batch_size=batch_size, progress=progress)

    return _fix(model, outputs=outputs, complete=add_statistics, unsafe_fixes=unsafe_fixes, in_place=in_place,
                rules=rules, bind=bind, keep=keep)


def tensorflow_installed() -> bool:
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except ValueError:  # a module entry set to None: deliberately unavailable
        return False


def verified(report: FixReport, original: Callable[[], Model], *, verify: bool = True,
             inputs: str | Path | None = None, shapes=None, allow_unsafe: bool = False,
             status: Callable[[str], None] = lambda message: None, after: str = "") -> FixResult:
    """`report` with its verification against `original()`; raises VerificationFailed, its
    message `after` the failed check, when a check fails.

    `original` is called only when there is something to verify: reading it
    again is what lets a GraphDef be fixed without a second copy in memory.
    """
    if not verify or not report.changed:
        return _result(report)
    other = format_of(report.fixed)
    if other is not None:
        try:
            verification = other.verify(original(), report, inputs=Path(inputs) if inputs else None)
        except VerificationUnavailable as reason:
            return _result(report, verification_skipped=str(reason))
        return _checked(verification, after, report)
    if not tensorflow_installed():
        return _result(report, verification_skipped=TENSORFLOW_MISSING)
    from graphdoc.verify.verification import verify as run_checks

    verification = run_checks(original(), report, data=Path(inputs) if inputs else None, shapes=shapes,
                              allow_unsafe=allow_unsafe, status=status)
    return _checked(verification, after, report)


def _checked(verification: Verification, after: str, report: FixReport) -> FixResult:
    if not verification.passed:
        failure = verification.failures()[0]
        raise VerificationFailed(
            f"the fixed graph failed verification ({failure.name}: {failure.detail}){after}", verification)
    return _result(report, verification=verification)


def _result(report: FixReport, **verification) -> FixResult:
    return FixResult(**{f.name: getattr(report, f.name) for f in dataclasses.fields(FixReport)}, **verification)


class FileFix:
    """`graphdoc fix` on one file, a method per step: fix, check, write.

    graphdoc.fix_file runs the steps in order; the command runs the same ones
    and shows each as it goes. write() refuses to come before check(): a file
    is written only once its fix has checked out.
    """

    def __init__(self, path: str | Path, output: str | Path | None = None, *, in_place: bool = False,
                 dry_run: bool = False):
        self.path = Path(path)
        self.dry_run = dry_run
        self.output, self._overwrites = fix_destination(
            self.path, None if output is None else Path(output), in_place=in_place, dry_run=dry_run)
        self.model: Model | None = None
        self.report: FixReport | None = None
        self.result: FixResult | None = None
        self._edits_model = False

    def fix(self, model: Model, **options) -> FixReport:
        """Fix `model`, loaded from `path` (fix_model's options). A GraphDef file is cheap to
        read again, so it is fixed in place (no copy of its weights in memory) and read
        again only if the original is needed."""
        self.model = model
        self._edits_model = model.format in GRAPHDEF_FORMATS
        self.report = fix_model(model, in_place=self._edits_model, **options)
        return self.report

    @functools.cached_property
    def original(self) -> Model:
        """The model before the fix (read again from the file when the fix edited the loaded one)."""
        return load(self.path) if self._edits_model else self.model

    def will_verify(self, *, verify: bool = True) -> bool:
        """Whether check(verify=verify) runs the fixed graph (in TensorFlow, or onnxruntime)."""
        other = format_of(self.model)
        runs = other.can_verify() if other is not None else tensorflow_installed()
        return verify and not self.dry_run and self.report.changed and runs

    def check(self, *, verify: bool = True, inputs: str | Path | None = None, shapes=None,
              allow_unsafe: bool = False, status: Callable[[str], None] = lambda message: None) -> FixResult:
        """Verify the fix (not on a dry run, which writes nothing); raises VerificationFailed."""
        self.result = verified(self.report, lambda: self.original, verify=verify and not self.dry_run,
                               inputs=inputs, shapes=shapes, allow_unsafe=allow_unsafe, status=status,
                               after="; nothing was written")
        return self.result

    def changes(self) -> list:
        """The change node by node (graphdoc.rewrite.diff); before write(), which may overwrite the original."""
        other = format_of(self.model)
        if other is not None:
            return other.changes(self.original, self.report)
        from graphdoc.rewrite.diff import node_changes

        return node_changes(self.original, self.report.fixed)

    def write(self) -> Path | None:
        """Write the checked fix; the path written, or None on a dry run."""
        if self.result is None:
            raise RuntimeError("FileFix.write() comes after check(): a fix is written only once it has checked out")
        if self.dry_run:
            return None
        write_fix(self.result, self.path, self.output, backup=self._overwrites)
        return self.output
