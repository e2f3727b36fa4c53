"""The rules: one module per rule, named `<code>_<slug>`, listed once here."""

from graphdoc.rules.base import Finding, Fix, Rule, Severity
from graphdoc.rules.gd101_training_fused_batchnorm import TrainingModeFusedBatchNorm
from graphdoc.rules.gd102_batch_moments_batchnorm import BatchMomentsBatchNorm
from graphdoc.rules.gd201_live_dropout import LiveDropout

ALL_RULES: tuple[type[Rule], ...] = (
    TrainingModeFusedBatchNorm,
    BatchMomentsBatchNorm,
    LiveDropout,
)

RULES_BY_CODE: dict[str, type[Rule]] = {rule.code: rule for rule in ALL_RULES}

__all__ = ["ALL_RULES", "RULES_BY_CODE", "Finding", "Fix", "Rule", "Severity"]
