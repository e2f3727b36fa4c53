"""GD304: CheckNumerics left in an inference graph."""

from __future__ import annotations

from collections.abc import Iterator

from graphdoc.graph.edits import MakeIdentity
from graphdoc.graph.model import Model
from graphdoc.graph.view import GraphView
from graphdoc.rules.base import Finding, Fix, Rule, Severity


class CheckNumerics(Rule):
    """What it finds:
    CheckNumerics ops, which training code adds to stop on NaN or Inf.

    Why it is wrong:
    They cost a pass over the tensor on every call and most converters do not
    support them (TFLite, TensorRT); TensorFlow's own optimize_for_inference
    strips them for the same reason.

    Fix:
    The op becomes an Identity of its input, keeping its name.

    Fix safety:
    Safe for finite values: CheckNumerics passes its input through unchanged
    unless it raises.
    """

    code = "GD304"
    name = "check-numerics"
    finds = "CheckNumerics left in the graph"
    fixes = "becomes an Identity"
    severity = Severity.WARNING
    summary = "CheckNumerics (a training-time NaN/Inf guard) is left in the inference graph"

    def check(self, view: GraphView, model: Model) -> Iterator[Finding]:
        for name in view.ops_of({"CheckNumerics", "CheckNumericsV2"}):
            fix = Fix("pass the input through", (MakeIdentity(view.scope, name, view.inputs(name)[0]),))
            yield self.finding(view, name, "CheckNumerics guards a tensor at inference", fix=fix)
