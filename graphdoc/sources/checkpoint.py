"""Moving statistics from a checkpoint (TF1 name-based, TF2 object-based, a SavedModel's variables/)."""

from __future__ import annotations

from pathlib import Path

from graphdoc.rules.statistics import BatchNormSite, scope_tails
from graphdoc.sources import Statistics


class CheckpointStatistics:
    """Looks up `<layer>/moving_mean` and `<layer>/moving_variance` by the layer's name scope.

    The graph's scope may carry prefixes (a model name, `StatefulPartitionedCall/`)
    and call suffixes that the variable names lack: the most specific tail of
    the scope that names statistics in the checkpoint wins, and two different
    matches at that level are reported as ambiguous rather than guessed.
    """

    safe = True

    def __init__(self, path: Path):
        from graphdoc.tf.checkpoints import CheckpointVariables, resolve_prefix

        self.variables = CheckpointVariables(resolve_prefix(path))
        self.name = f"checkpoint {self.variables.prefix}"

    def lookup(self, site: BatchNormSite) -> Statistics | str:
        layers = self._matching_layers(site.layer)
        if not layers:
            return f"no {site.layer}/moving_mean (or a shorter form of that name) in the checkpoint"
        if len(layers) > 1:
            return f"ambiguous: the checkpoint has statistics for both {layers[0]} and {layers[1]}"
        [layer] = layers
        mean_name, variance_name = f"{layer}/moving_mean", f"{layer}/moving_variance"
        problem = site.check_shapes(self.variables.shapes[mean_name], self.variables.shapes[variance_name])
        if problem:
            return f"{mean_name}: {problem}"
        return Statistics(
            self.variables.read(mean_name), self.variables.read(variance_name), f"{self.name}: {layer}/moving_*"
        )

    def _matching_layers(self, scope: str) -> list[str]:
        # A tail and its form without the call suffix are equally specific: both may match.
        for level in scope_tails(scope):
            found = [
                layer for layer in level
                if f"{layer}/moving_mean" in self.variables and f"{layer}/moving_variance" in self.variables
            ]
            if found:
                return found
        return []
