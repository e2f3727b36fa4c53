"""Inputs to run a graph with: the user's arrays, or samples synthesized from the placeholders."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graphdoc.errors import GraphdocError
from graphdoc.graph.model import Model
from graphdoc.sources.calibration import load_inputs

# DataType enum values (types.proto) that synthesized inputs support.
_FLOAT_TYPES = {1: np.float32, 2: np.float64, 19: np.float16}
_INT_TYPES = {3: np.int32, 9: np.int64}
_DT_BOOL = 10


def graph_inputs(model: Model) -> list[str]:
    """The Placeholders of the main graph: what must be fed (placeholders with defaults need not)."""
    return model.main.ops_of({"Placeholder"})


def parse_shapes(texts: list[str] | None) -> dict[str, list[int]]:
    """`--input-shape name=-1,128,128,3` (-1 for the batch) into a dict."""
    shapes = {}
    for text in texts or []:
        name, sep, dims = text.partition("=")
        try:
            shapes[name] = [int(d) for d in dims.split(",")] if sep else None
        except ValueError:
            shapes[name] = None
        if shapes[name] is None:
            raise GraphdocError(f"--input-shape {text!r}: write NAME=D1,D2,... with -1 for the batch dimension")
    return shapes


def samples(model: Model, count: int, *, data: Path | None = None, shapes=None, seed: int = 0) -> dict[str, np.ndarray]:
    """`count` samples for every graph input, stacked along a batch dimension."""
    names = graph_inputs(model)
    if data is not None:
        arrays = load_inputs(data, names)
        available = len(next(iter(arrays.values())))
        if available < count:
            raise GraphdocError(f"{data} holds {available} samples; the probe needs at least {count}")
        return {name: array[:count] for name, array in arrays.items()}
    rng = np.random.default_rng(seed)
    return {name: _synthesize(model, name, count, (shapes or {}).get(name), rng) for name in names}


def _synthesize(model: Model, name: str, count: int, given, rng) -> np.ndarray:
    dtype = model.main.attr(name, "dtype")
    shape = given if given is not None else model.main.attr(name, "shape")
    if shape is None:
        raise GraphdocError(f"input {name!r} has an unknown shape; give it with --input-shape {name}=-1,...")
    dims = list(shape)
    if not dims or dims[0] not in (-1, None):
        raise GraphdocError(f"input {name!r} has shape {dims} with no batch dimension to vary")
    if any(d is None or d < 0 for d in dims[1:]):
        raise GraphdocError(f"input {name!r} has unknown dimensions {dims}; give them with --input-shape {name}=-1,...")
    full = (count, *dims[1:])
    if dtype in _FLOAT_TYPES:
        return rng.normal(size=full).astype(_FLOAT_TYPES[dtype])
    if dtype in _INT_TYPES:
        return rng.integers(0, 8, size=full).astype(_INT_TYPES[dtype])
    if dtype == _DT_BOOL:
        return np.zeros(full, dtype=bool)
    raise GraphdocError(f"input {name!r} has a dtype graphdoc cannot synthesize; give data with --inputs")
