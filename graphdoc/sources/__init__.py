"""Where moving statistics come from when the graph does not hold them.

A source answers, for one BatchNorm site, with the layer's mean and variance
and how it found them, or with the reason it cannot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from graphdoc.rules.statistics import BatchNormSite


@dataclass(frozen=True)
class Statistics:
    mean: np.ndarray
    variance: np.ndarray
    evidence: str


class StatisticsSource(Protocol):
    name: str  # how the report names the source: "checkpoint model.ckpt"
    safe: bool  # whether the statistics are the ones the model was trained with

    def lookup(self, site: BatchNormSite) -> Statistics | str: ...
