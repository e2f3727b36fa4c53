"""What a report ends with: the verdict, and what to do next.

Plain sentences from findings and results, for the text report and the
JSON documents alike; no rich, no TensorFlow.
"""

from __future__ import annotations

from collections import Counter

from graphdoc.rules import RULES_BY_CODE, Applicability, Finding
from graphdoc.rules.gd103_untrained_statistics import UntrainedStatistics
from graphdoc.rules.gd301_training_switch import TrainingSwitch
from graphdoc.rules.gd303_state_update import StateUpdate

# How a compare verdict names each rule's training behaviour: (one, several, with {n} for how many).
_BEHAVIOUR = {
    "GD101": ("1 BatchNorm layer in training mode", "{n} BatchNorm layers in training mode"),
    "GD102": ("1 BatchNorm layer", "{n} BatchNorm layers"),
    "GD201": ("live dropout", "{n} live dropout layers"),
    "GD202": ("live noise", "{n} live noise layers"),
}
# Variable updates are training behaviour for judging a switch, but they do not change
# what one run computes (and the runnable copy drops them): they explain no difference.
_NOT_AN_EXPLANATION = frozenset({StateUpdate.code})


def plural(count: int, one: str, several: str | None = None) -> str:
    return f"{count} {one if count == 1 else several or one + 's'}"


def training_mode(findings: list[Finding]) -> list[tuple[str, int]]:
    """(code, count) of the findings that make a graph compute differently than in inference."""
    counts = Counter(f.code for f in findings
                     if RULES_BY_CODE[f.code].training_behaviour and f.code not in _NOT_AN_EXPLANATION)
    return sorted(counts.items())


def describe_training(counts: list[tuple[str, int]]) -> str:
    """'27 BatchNorm layers (GD102), live dropout (GD201)'."""
    parts = []
    for code, count in counts:
        one, several = _BEHAVIOUR.get(code, (f"1 {RULES_BY_CODE[code].name} finding",
                                             f"{{n}} {RULES_BY_CODE[code].name} findings"))
        parts.append(f"{one if count == 1 else several.format(n=count)} ({code})")
    return ", ".join(parts)


def remedies(findings: list[Finding]) -> list[str]:
    """What would fix the findings `graphdoc fix` cannot fix as things are, one sentence per kind."""
    missing = [f for f in findings if f.fix is None and f.site is not None]
    untrained = [f for f in findings if f.code == UntrainedStatistics.code]
    # Untrained statistics are GD103's to explain: --unsafe-fixes alone would wire them in.
    unsafe = [f for f in findings
              if f.fix is not None and f.fix.applicability is Applicability.UNSAFE and not f.fix.untrained]
    switches = [f for f in findings if f.fix is None and f.code == TrainingSwitch.code]
    known = {id(f) for f in (*missing, *untrained, *switches)}
    by_hand = [f for f in findings if f.fix is None and id(f) not in known]
    sentences = []
    if missing:
        sentences.append(f"{plural(len(missing), 'BatchNorm layer')} {_verb(missing, 'lacks', 'lack')} "
                         "moving statistics: "
                         "`graphdoc fix --checkpoint CKPT` (the training checkpoint) or "
                         "`--calibrate DATA --unsafe-fixes` (representative inputs) supplies them")
    if untrained:
        sentences.append(f"{plural(len(untrained), 'layer')} with untrained statistics ({UntrainedStatistics.code}): "
                         "`graphdoc fix --calibrate DATA --unsafe-fixes` recomputes them, "
                         "or `--checkpoint` a trained checkpoint")
    if unsafe:
        sentences.append(f"{plural(len(unsafe), 'unsafe fix', 'unsafe fixes')}: `graphdoc fix --unsafe-fixes` "
                         "applies them")
    if switches:
        sentences.append(f"{plural(len(switches), 'switch', 'switches')} graphdoc cannot judge "
                         f"({TrainingSwitch.code}): `graphdoc fix --bind NAME=false` sets one")
    if by_hand:
        codes = sorted({f.code for f in by_hand})
        sentences.append(f"{len(by_hand)} {_verb(by_hand, 'needs', 'need')} a change by hand ({', '.join(codes)}): "
                         f"`graphdoc rule {codes[0]}` says why")
    return sentences


def _verb(items: list, one: str, several: str) -> str:
    return one if len(items) == 1 else several


def fixed_by_code(applied: list[Finding]) -> list[tuple[str, int, int]]:
    """(code, findings fixed, of which fixed by removing the training branch they were in)."""
    total = Counter(f.code for f in applied)
    with_branch = Counter(f.code for f in applied if f.fix is not None
                          and f.fix.applicability is Applicability.DISPLAY_ONLY)
    return [(code, count, with_branch[code]) for code, count in sorted(total.items())]


def compare_verdict(comparison, tolerance: float, training: tuple[list, list]) -> dict:
    """Whether the outputs agree within `tolerance`, and, when not, the largest difference and
    which graph runs in training mode (`training`: training_mode() of the first and second)."""
    largest = max(comparison.outputs, key=lambda d: d.max_rel, default=None)
    agree = largest is None or largest.max_rel <= tolerance
    if agree:
        sentence = f"outputs agree within {tolerance:g}"
    else:
        sentence = f"outputs differ beyond tolerance {tolerance:g} (largest: {largest.name}, {largest.max_rel:.3g})"
        sides = [(which, counts) for which, counts in zip(("first", "second"), training, strict=True) if counts]
        if len(sides) == 2:
            sentence += (f": both graphs run in training mode (the first: {describe_training(training[0])}; "
                         f"the second: {describe_training(training[1])})")
        elif sides:
            sentence += f": the {sides[0][0]} graph runs in training mode: {describe_training(sides[0][1])}"
        else:
            sentence += "; neither graph has training-mode findings, so the difference lies elsewhere"
    return {
        "agree": agree,
        "tolerance": tolerance,
        "largest": None if largest is None else {"output": largest.name, "max_rel": largest.max_rel},
        "training_mode": {which: [{"code": code, "count": count} for code, count in counts]
                          for which, counts in zip(("first", "second"), training, strict=True)},
        "message": sentence,
    }


def probe_next_steps(roots, model: str = "MODEL") -> list[str]:
    """What to do about the roots of divergence a probe found in `model`."""
    fixable = [root for root in roots if root.finding is not None and root.finding.fix is not None]
    unfixed = [root for root in roots if root.finding is not None and root.finding.fix is None]
    unexplained = [root for root in roots if root.finding is None]
    steps = []
    if fixable:
        codes = ", ".join(sorted({root.finding.code for root in fixable}))
        fixed = "FIXED.onnx" if str(model).endswith(".onnx") else "FIXED.pb"
        steps.append(f"`graphdoc fix {model} -o {fixed}` fixes {_them(len(fixable), len(roots))} ({codes})")
    if unfixed:
        steps.extend(remedies([root.finding for root in unfixed]))
    if unexplained:
        steps.append(f"{plural(len(unexplained), 'root')} no rule explains: "
                     f"`graphdoc show {model} NODE` shows what surrounds it")
    return steps


def _them(count: int, total: int) -> str:
    if count == total:
        return "it" if count == 1 else "all of them" if count > 2 else "both"
    return f"{count} of them"


def fix_outcome(report, destination: str | None, *, dry_run: bool, verified: bool, unverified: str | None,
                changes: list | None = None) -> dict:
    """What `fix` did (or would do), counted so that the numbers add up, and its sentences.

    `verified`: the fixed graph passed verification; `unverified`: why it was
    not run (--no-verify, TensorFlow missing, a dry run), None when it was or
    when nothing changed.
    """
    nodes_after, functions_after = report.fixed.size()
    (nodes_before, functions_before) = report.size_before
    diff = None if changes is None else {mark: sum(change[0] == mark for change in changes) for mark in "-+~"}
    outcome = {
        "dry_run": dry_run,
        "fixed": len(report.applied),
        "by_code": [{"code": code, "count": count, "with_training_branch": branch}
                    for code, count, branch in fixed_by_code(report.applied)],
        "held_back": len(report.held_back),
        "not_fixable": len(report.not_fixable),
        "remaining": len(report.remaining),
        "nodes": {"before": nodes_before, "after": nodes_after},
        "functions": {"before": functions_before, "after": functions_after},
        "pruned": report.pruned,
        "diff": None if diff is None else {"removed": diff["-"], "added": diff["+"], "changed": diff["~"]},
        "destination": destination,
        "written": None if dry_run else destination,
        "verified": verified,
        "unverified": unverified,
    }
    outcome["message"] = [f"{_what_changed(outcome)}; {_what_was_written(outcome, changed=report.changed)}",
                          *_what_remains(report, dry_run=dry_run)]
    return outcome


def _what_changed(outcome: dict) -> str:
    if not outcome["fixed"]:
        return "Nothing to fix"
    verb = "Would fix" if outcome["dry_run"] else "Fixed"
    codes = ", ".join(f"{entry['count']} {entry['code']}" for entry in outcome["by_code"])
    nodes, functions = outcome["nodes"], outcome["functions"]
    sentence = f"{verb} {plural(outcome['fixed'], 'finding')} ({codes}): {nodes['before']} -> {nodes['after']} nodes"
    if functions["before"] != functions["after"]:
        sentence += f", {functions['before']} -> {functions['after']} library functions"
    if outcome["diff"] is not None:  # nodes are the main graph's, as the diff's are: the numbers add up
        diff = outcome["diff"]
        sentence += f" ({diff['removed']} removed, {diff['added']} added, {diff['changed']} changed, as the diff shows)"
    return sentence


def _what_was_written(outcome: dict, *, changed: bool) -> str:
    destination, reason = outcome["destination"], outcome["unverified"]
    if outcome["dry_run"]:
        if destination is None:
            return "dry run, nothing written."
        check = "a copy of the input" if not changed else f"unverified ({reason})" if reason else "once verified"
        return f"dry run, nothing written: would write {destination}, {check}."
    if not changed:
        return f"wrote {destination}, a copy of the input."
    if outcome["verified"]:
        return f"verified, and wrote {destination}."
    # A reason other than the option is a sentence of its own ("verification skipped: ...").
    return f"wrote {destination} unverified ({reason if reason == '--no-verify' else 'verification skipped'})."


def _what_remains(report, *, dry_run: bool) -> list[str]:
    sentences = []
    if report.held_back:
        sentences.append(f"{plural(len(report.held_back), 'unsafe fix', 'unsafe fixes')} "
                         f"{'would be ' if dry_run else ''}held back: "
                         "`--unsafe-fixes` applies them.")
    if not report.remaining:
        return [*sentences, "No findings would remain." if dry_run else "No findings remain."]
    counts = ", ".join(f"{count} {code}" for code, count in sorted(Counter(f.code for f in report.remaining).items()))
    again = sum(f.fix is not None and f.fix.safe for f in report.remaining)
    next_steps = remedies(report.remaining)
    if again:
        next_steps.insert(0, f"`graphdoc fix` on the fixed graph fixes {again} more")
    verb = "would remain" if dry_run else "remains" if len(report.remaining) == 1 else "remain"
    sentences.append(f"{plural(len(report.remaining), 'finding')} {verb} ({counts})"
                     + (": " + "; ".join(next_steps) if next_steps else "") + ".")
    return sentences
