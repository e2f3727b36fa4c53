"""Layer calls that bake training mode into a Keras model, as graphdoc findings.

The code says what the layer does in training mode, as for graphs: GD102 a
BatchNormalization (batch statistics), GD201 dropout, GD202 noise, GD301 any
other layer called with training=True (custom layers: what it changes is the
layer's own) and a Lambda that reads the learning phase.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphdoc.keras.calls import lambdas, layer_calls, reads_learning_phase
from graphdoc.keras.model import KerasModel
from graphdoc.rules.base import Finding, Fix, marked_kept

BATCHNORM = frozenset({"BatchNormalization", "SyncBatchNormalization", "BatchNormalizationV1", "BatchNormalizationV2"})
DROPOUT = frozenset({"Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "AlphaDropout"})
NOISE = frozenset({"GaussianNoise", "GaussianDropout"})
CODES = ("GD102", "GD201", "GD202", "GD301")


@dataclass(frozen=True)
class DropTrainingArgument:
    """Remove `training` from the call arguments at `path` in the config."""

    scope: str
    path: tuple

    def changes(self) -> frozenset[str]:
        return frozenset()

    def apply(self, config: dict) -> None:
        place = config
        for key in self.path:
            place = place[key]
        place.pop("training", None)


def code_of(class_name: str) -> str:
    if class_name in BATCHNORM:
        return "GD102"
    if class_name in DROPOUT:
        return "GD201"
    return "GD202" if class_name in NOISE else "GD301"


def scan_keras(model: KerasModel, codes: set[str] | None = None, keep: tuple[str, ...] = ()) -> list[Finding]:
    findings = [*_baked_calls(model), *_learning_phase_lambdas(model)]
    findings = [f for f in findings if codes is None or f.code in codes]
    findings.sort(key=lambda finding: finding.code)
    return [marked_kept(finding, keep) for finding in findings]


def _baked_calls(model: KerasModel):
    # Measured: Keras 3 lets predict() and an explicit training=False override a baked call;
    # tf_keras does not, so there even those run the layer in training mode.
    overridden = ("Keras' own predict() and an explicit training=False override it" if model.file.flavour == "keras3"
                  else "in tf_keras even predict() and an explicit training=False do")
    for call in layer_calls(model.config):
        if call.training is not True:
            continue
        yield Finding(
            code=code_of(call.class_name), scope=call.scope, node=call.layer,
            message=(f"{call.class_name} {call.layer!r} is called with training=True (call {call.call} in the model's "
                     "config): every model(x) and every export traced without training= runs it in training mode "
                     f"({overridden})"),
            fix=Fix("remove training=True from the call", (DropTrainingArgument(call.scope, call.path),)),
        )


def _learning_phase_lambdas(model: KerasModel):
    for scope, name, config in lambdas(model.config):
        if reads_learning_phase(config):
            yield Finding("GD301", scope, name,
                          f"Lambda {name!r} reads the learning phase: what it computes depends on how the model is called",
                          unfixable="its code decides; rewrite the Lambda without the learning phase")


