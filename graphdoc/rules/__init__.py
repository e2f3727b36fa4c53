"""The rules: one module per rule, named `<code>_<slug>`, listed once here."""

from graphdoc.rules.base import Applicability, Finding, Fix, LayerFormula, PendingFix, Rule, Severity
from graphdoc.rules.gd101_training_fused_batchnorm import TrainingModeFusedBatchNorm
from graphdoc.rules.gd102_batch_moments_batchnorm import BatchMomentsBatchNorm
from graphdoc.rules.gd103_untrained_statistics import UntrainedStatistics
from graphdoc.rules.gd201_live_dropout import LiveDropout
from graphdoc.rules.gd202_live_noise import LiveNoise
from graphdoc.rules.gd301_training_switch import TrainingSwitch
from graphdoc.rules.gd302_dropout_rate_placeholder import DropoutRatePlaceholder
from graphdoc.rules.gd303_state_update import StateUpdate
from graphdoc.rules.gd304_check_numerics import CheckNumerics

ALL_RULES: tuple[type[Rule], ...] = (
    TrainingModeFusedBatchNorm,
    BatchMomentsBatchNorm,
    UntrainedStatistics,
    LiveDropout,
    LiveNoise,
    TrainingSwitch,
    DropoutRatePlaceholder,
    StateUpdate,
    CheckNumerics,
)

# Fixes that change which parts of the graph run at all: applied first, then
# the graph is scanned again, since a training branch they remove needs no fix.
STRUCTURAL_RULES = frozenset({TrainingSwitch.code})

RULES_BY_CODE: dict[str, type[Rule]] = {rule.code: rule for rule in ALL_RULES}



def select_rules(select: list[str] | None = None, ignore: list[str] | None = None) -> tuple[type[Rule], ...]:
    """The rules whose code starts with a prefix in `select` (all if none) and with none in `ignore`.

    Prefixes name a code (GD101) or a family (GD1, GD10), as ruff's --select does.
    """
    for prefix in [*(select or []), *(ignore or [])]:
        if not any(rule.code.startswith(prefix.upper()) for rule in ALL_RULES):
            known = ", ".join(rule.code for rule in ALL_RULES)
            raise ValueError(f"{prefix!r} selects no rule (known codes: {known})")
    chosen = [
        rule for rule in ALL_RULES
        if (not select or any(rule.code.startswith(p.upper()) for p in select))
        and not any(rule.code.startswith(p.upper()) for p in ignore or [])
    ]
    return tuple(chosen)


__all__ = ["UntrainedStatistics", "select_rules", "ALL_RULES", "RULES_BY_CODE", "STRUCTURAL_RULES", "Applicability", "Finding", "Fix", "LayerFormula",
           "PendingFix", "Rule", "Severity"]
