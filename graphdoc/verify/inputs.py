"""Inputs to run a graph with: the user's arrays, or samples synthesized from the placeholders.

Placeholders have roles. Data inputs have a batch dimension and are
stacked along it. A scalar placeholder is a switch or a hyperparameter (a
bool `training`, an int step, a float `keep_prob`): it is fed one value,
never asked for a shape. A placeholder with a default needs no feed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from graphdoc.errors import GraphdocError
from graphdoc.graph.model import Model
from graphdoc.sources.calibration import load_inputs

# DataType enum values (types.proto) that synthesized inputs support.
_FLOAT_TYPES = {1: np.float32, 2: np.float64, 19: np.float16}
_INT_TYPES = {3: np.int32, 9: np.int64}
_DT_BOOL = 10
# What a scalar setting without a default is fed: its value in training (a switch on,
# dropout's keep probability 1), the graph as its training script ran it.
_SETTING_VALUES = {_DT_BOOL: (np.bool_, True), 3: (np.int32, 1), 9: (np.int64, 1),
                   1: (np.float32, 1.0), 2: (np.float64, 1.0)}


@dataclass
class Inputs:
    """Samples for a graph's data inputs (stacked along axis 0) and the values of its settings."""

    data: dict[str, np.ndarray]
    settings: dict[str, np.ndarray] = field(default_factory=dict)

    def rows(self, index) -> dict[str, np.ndarray]:
        """A feed: the data inputs' rows at `index` (a slice or a list), and the settings."""
        return {**{name: array[index] for name, array in self.data.items()}, **self.settings}

    def feed(self) -> dict[str, np.ndarray]:
        return self.rows(slice(None))

    def described_settings(self) -> list[str]:
        return described(self.settings)


def described(settings: dict[str, np.ndarray]) -> list[str]:
    return [f"{name} (a scalar setting) fed {value.item()!r}" for name, value in settings.items()]


def graph_inputs(model: Model) -> list[str]:
    """The Placeholders of the main graph: what must be fed (placeholders with defaults need not)."""
    return model.main.ops_of({"Placeholder"})


def data_inputs(model: Model) -> list[str]:
    """The placeholders that carry data: every one but the scalar settings."""
    return [name for name in graph_inputs(model) if not _is_setting(model, name)]


def batch_size(model: Model) -> int | None:
    """The batch the data inputs are fixed at ([1, H, W, C]), or None where it can vary."""
    sizes = {(model.main.attr(name, "shape") or [-1])[0] for name in data_inputs(model)}
    fixed = {size for size in sizes if size is not None and size > 0}
    return min(fixed) if fixed and len(sizes) == len(fixed) else None


def _is_setting(model: Model, name: str) -> bool:
    return model.main.attr(name, "shape") == [] and model.main.attr(name, "dtype") in _SETTING_VALUES


def parse_shapes(texts: list[str] | None) -> dict[str, list[int]]:
    """`--input-shape name=-1,128,128,3` (-1 for the batch) into a dict."""
    shapes = {}
    for text in texts or []:
        name, sep, dims = text.partition("=")
        name = name.strip().removesuffix(":0")  # the tensor's name, as TensorFlow's messages write it
        try:
            shape = [int(d) for d in dims.split(",")] if sep and name else None
        except ValueError:
            shape = None
        if shape is None or any(d < -1 for d in shape):
            raise GraphdocError(f"--input-shape {text!r}: write NAME=D1,D2,... with -1 for the batch dimension")
        shapes[name] = shape
    return shapes


def _refuse_unknown_inputs(model: Model, shapes: dict[str, list[int]]) -> None:
    known = graph_inputs(model)
    for name in shapes:
        if name not in known:
            inputs = f"its inputs are {', '.join(known)}" if known else "it has no placeholders"
            raise GraphdocError(f"an input shape is given for {name!r}, but the graph has no such input; {inputs}")


def _misfit(model: Model, name: str, shape) -> str | None:
    """The shape input `name` takes, as TensorFlow writes it, where `shape` does not fit it:
    another rank, or another size of a dimension past the batch (TensorFlow would refuse the feed)."""
    expected = model.main.attr(name, "shape")
    if expected is None:  # unknown rank: anything goes
        return None
    if len(shape) == len(expected) and all(
            want is None or want < 0 or want == got for want, got in zip(expected[1:], shape[1:], strict=True)):
        return None
    return "(" + ", ".join("None" if d is None or d < 0 else str(d) for d in expected) + ")"


def samples(model: Model, count: int, *, data: Path | None = None, shapes=None, seed: int = 0) -> Inputs:
    """`count` samples for every data input, stacked along a batch dimension, and the settings."""
    names, settings = data_inputs(model), settings_of(model)
    _refuse_unknown_inputs(model, shapes or {})
    if data is not None:
        arrays = load_inputs(data, names)
        for name, array in arrays.items():
            if np.ndim(array) == 0:
                raise GraphdocError(f"{data}: the array for {name!r} is a scalar; data inputs need a batch of samples")
            if takes := _misfit(model, name, np.shape(array)):
                raise GraphdocError(f"{data}: the array for {name!r} has shape {np.shape(array)}, "
                                    f"but the input takes {takes}")
        available = len(next(iter(arrays.values())))
        if available < count:
            raise GraphdocError(f"{data} holds {available} samples; running the graph needs at least {count}")
        return Inputs({name: array[:count] for name, array in arrays.items()}, settings)
    rng = np.random.default_rng(seed)
    return Inputs({name: _synthesize(model, name, count, (shapes or {}).get(name), rng) for name in names}, settings)


def settings_of(model: Model) -> dict[str, np.ndarray]:
    """What each scalar setting without a default is fed."""
    settings = {}
    for name in graph_inputs(model):
        if _is_setting(model, name):
            dtype, value = _SETTING_VALUES[model.main.attr(name, "dtype")]
            settings[name] = np.asarray(value, dtype=dtype)
    return settings


def _synthesize(model: Model, name: str, count: int, given, rng) -> np.ndarray:
    """`count` rows for `name`, whatever its batch dimension: the caller batches them."""
    dtype = model.main.attr(name, "dtype")
    shape = given if given is not None else model.main.attr(name, "shape")
    if shape is None:
        raise GraphdocError(f"input {name!r} has an unknown shape; give it with --input-shape {name}=-1,...")
    dims = list(shape)
    if given is not None and (takes := _misfit(model, name, dims)):
        raise GraphdocError(f"the shape {tuple(dims)} given for {name!r} does not fit the input, which takes {takes}")
    if not dims:
        raise GraphdocError(f"input {name!r} is a scalar graphdoc cannot synthesize; give data with --inputs")
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
