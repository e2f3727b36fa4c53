"""Completing BatchNorm fixes with statistics from a checkpoint or a calibration run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from graphdoc.graph.edits import AddConst
from graphdoc.graph.model import Model
from graphdoc.graph.view import Tensor
from graphdoc.rules import Finding, UntrainedStatistics
from graphdoc.rules.statistics import BatchNormSite, MovingStatistics, untrained
from graphdoc.sources import StatisticsSource


def complete(model: Model, findings: list[Finding], source: StatisticsSource) -> list[Finding]:
    """`findings`, with the BatchNorm findings that lacked statistics given a fix from `source`."""
    taken: dict[str, set[str]] = {}
    completed = []
    for finding in findings:
        site = finding.site
        if finding.fix is not None or not isinstance(site, BatchNormSite):
            completed.append(finding)
            continue
        found = source.lookup(site)
        if isinstance(found, str):
            completed.append(dataclasses.replace(finding, unfixable=f"{source.name}: {found}"))
            continue
        view = model.view(site.scope)
        names = taken.setdefault(site.scope, set())
        added = []
        for stat, value in (("moving_mean", found.mean), ("moving_variance", found.variance)):
            name = view.unique_name(f"{site.layer}/{stat}", names)
            names.add(name)
            # Per channel, as the fix wires them: a layer may keep them broadcast ([1, 1, 1, 1, C]).
            added.append(AddConst(site.scope, name, np.asarray(value, dtype=np.float32).reshape(-1)))
        stats = MovingStatistics(Tensor(added[0].name), Tensor(added[1].name), found.evidence,
                                 untrained=untrained(found.mean, found.variance))
        fix = site.fix(stats, safe=source.safe)
        if not source.safe:
            fix = dataclasses.replace(fix, caveat=f"calibrated statistics ({source.name})")
        fix = dataclasses.replace(fix, edits=(*added, *fix.edits))
        completed.append(dataclasses.replace(finding, fix=fix, unfixable=None))
    return completed


def complete_statistics(
    model: Model,
    findings: list[Finding],
    *,
    checkpoint: str | Path | None = None,
    calibrate: str | Path | None = None,
    batch_size: int = 32,
    progress=None,
) -> list[Finding]:
    """`findings`, with the statistics the graph lacks taken from `checkpoint` (or the checkpoint
    the model was loaded from), then from calibrating on `calibrate`'s inputs.

    Fixes that would wire in untrained statistics are made unsafe and each
    gets a GD103 finding; calibration, when given, recomputes those too.
    """
    source = checkpoint or model.checkpoint
    if source is not None and lacks_statistics(findings):
        from graphdoc.sources.checkpoint import CheckpointStatistics

        findings = complete(model, findings, CheckpointStatistics(Path(source)))
    if calibrate is not None:  # calibration recomputes untrained statistics too
        findings = [_without_fix(f) if f.fix is not None and f.fix.untrained and f.site is not None else f
                    for f in findings]
    if calibrate is not None and lacks_statistics(findings):
        from graphdoc.sources.calibration import CalibratedStatistics

        calibrated = CalibratedStatistics(model, findings, Path(calibrate), batch_size=batch_size, progress=progress)
        findings = complete(model, findings, calibrated)
    return sorted([*findings, *UntrainedStatistics.of_fixes(findings)], key=lambda finding: finding.code)


def _without_fix(finding: Finding) -> Finding:
    return dataclasses.replace(finding, fix=None, unfixable=finding.fix.caveat)


def lacks_statistics(findings: list[Finding]) -> bool:
    return any(finding.fix is None and finding.site is not None for finding in findings)
