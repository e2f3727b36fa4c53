"""What a rule is and what it returns."""

from __future__ import annotations

import dataclasses
import enum
import fnmatch
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, Protocol

from graphdoc.graph.edits import Edit
from graphdoc.graph.model import Model
from graphdoc.graph.view import GraphView, Tensor


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class LayerFormula:
    """What a fixed normalization must compute, for verification to check in numpy:
    `scale * (x - mean) / sqrt(variance + epsilon) + offset` along `channel_axis`.

    The tensors are taken from the layer as found (its own gamma and beta, not
    whatever the fix wires), so a fix that wires the wrong statistics or keeps
    a training-only correction disagrees with it.
    """

    scope: str
    layer: str
    x: Tensor
    output: Tensor
    mean: Tensor
    variance: Tensor
    scale: Tensor | None
    offset: Tensor | None
    epsilon: float
    channel_axis: int


class Applicability(enum.Enum):
    """When a fix is applied, as ruff's fixes say it."""

    # The fixed graph computes what the same model exported in inference mode computes,
    # from values already in the graph: `fix` applies it.
    SAFE = "safe"
    # Right in kind but resting on an estimate (calibrated statistics) or on values that look
    # untrained: applied only with --unsafe-fixes.
    UNSAFE = "unsafe"
    # Nothing to apply here: another finding's fix takes care of it (a BatchNorm in a training
    # branch goes with the binding of the switch).
    DISPLAY_ONLY = "display-only"


@dataclass(frozen=True)
class Fix:
    """Edits that turn one finding into its inference-mode equivalent, and when to apply them."""

    summary: str
    edits: tuple[Edit, ...]
    applicability: Applicability = Applicability.SAFE  # a bool reads as SAFE (True) or UNSAFE
    caveat: str = ""  # why an unsafe fix is unsafe ("calibrated statistics")
    # BatchNorm fixes: why the statistics it wires in look untrained, if they do (GD103).
    untrained: str = ""
    # BatchNorm fixes: the inference formula of the layer, checked by verification.
    formula: LayerFormula | None = None

    def __post_init__(self):
        if isinstance(self.applicability, bool):
            applicability = Applicability.SAFE if self.applicability else Applicability.UNSAFE
            object.__setattr__(self, "applicability", applicability)

    @property
    def safe(self) -> bool:
        """Whether `fix` applies it without --unsafe-fixes (display-only fixes have nothing to apply)."""
        return self.applicability is not Applicability.UNSAFE


class PendingFix(Protocol):
    """A fix that waits for values the graph lacks: a BatchNorm layer (rules/statistics.py
    BatchNormSite) whose moving statistics a checkpoint or a calibration run supplies."""

    scope: str
    layer: str  # the layer's name scope, for matching variable names

    def fix(self, stats, *, safe: bool = True) -> Fix: ...


@dataclass(frozen=True)
class Finding:
    """One problem in one place. Exactly one of `fix` and `unfixable` is set."""

    code: str
    scope: str  # "" for the main graph, else the library function's name
    node: str  # the node the finding is about
    message: str
    # Other nodes involved, for the report; probe blames this finding for a divergence at any
    # of them or at `node` (a dropout's random op must be here: the probe finds it first).
    nodes: tuple[str, ...] = ()
    fix: Fix | None = None
    unfixable: str | None = None  # why no fix is offered
    # BatchNorm findings: the layer's site, so that statistics from a checkpoint or a
    # calibration run can complete the fix later.
    site: PendingFix | None = None
    severity: Severity | None = None  # when it differs from the rule's
    # The configured `keep` pattern that marks this training behaviour deliberate (Monte-Carlo
    # dropout): reported as kept, never fixed, never a failure.
    kept: str = ""

    def level(self) -> Severity:
        from graphdoc.rules import RULES_BY_CODE

        return self.severity or RULES_BY_CODE[self.code].severity

    @property
    def blamed(self) -> tuple[str, ...]:
        """The nodes whose divergence under the probe this finding explains."""
        return (self.node, *self.nodes)

    @property
    def location(self) -> str:
        return f"{self.scope}::{self.node}" if self.scope else self.node


def marked_kept(finding: Finding, patterns: tuple[str, ...]) -> Finding:
    """`finding` marked kept by the first `keep` pattern (fnmatch: `mc_dropout/*`) that matches its
    node, its location or its layer: training behaviour the model means to have."""
    names = [finding.node, finding.location, *([finding.site.layer] if finding.site is not None else [])]
    pattern = next((p for p in patterns if any(fnmatch.fnmatchcase(name, p) for name in names)), None)
    return finding if pattern is None else dataclasses.replace(finding, kept=pattern)


class Rule:
    """Base class: subclasses set the class attributes and implement `check`.

    The subclass docstring is the rule's documentation, in four parts:
    What it finds / Why it is wrong / Fix / Fix safety. A new rule is one
    module `rules/<code>_<slug>.py`, its test `tests/test_<code>_<slug>.py`
    and its line in ALL_RULES; the README's table is generated from the
    class attributes, and the switch rule judges a branch by the rules whose
    `training_behaviour` is set, so nothing else needs to know of it.
    """

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity] = Severity.ERROR
    summary: ClassVar[str]
    # The README's rule table, one line each (graphdoc/report/rule_table.py writes it).
    finds: ClassVar[str]
    fixes: ClassVar[str]
    # Whether a finding is behaviour that only training should have (batch
    # statistics, random masks): what a training switch is judged by.
    training_behaviour: ClassVar[bool] = False

    def check(self, view: GraphView, model: Model) -> Iterator[Finding]:
        """Findings in one graph body; `model` gives access to the others (library functions)."""
        raise NotImplementedError

    @classmethod
    def explanation(cls) -> str:
        return inspect.getdoc(cls) or ""

    def finding(self, view: GraphView, node: str, message: str, **fields) -> Finding:
        return Finding(code=self.code, scope=view.scope, node=node, message=message, **fields)
