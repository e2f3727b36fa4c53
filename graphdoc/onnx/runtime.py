"""Running an ONNX model with onnxruntime, graph optimizations disabled, intermediate tensors fetched.

At its default level onnxruntime removes a Dropout whose training_mode is
true; with ORT_DISABLE_ALL it runs what the file says, which is what graphdoc
must see. Intermediate tensors are fetched by making them extra graph outputs,
a bounded group per session so that a large model does not keep every
activation alive at once.
"""

from __future__ import annotations

import numpy as np
from graphdoc.onnx.proto import onnx_package
from graphdoc.errors import GraphdocError, first_line
from graphdoc.onnx.model import OnnxModel
from graphdoc.onnx.shapes import Shapes

onnx = onnx_package()  # running builds models with extra outputs

ONNXRUNTIME_MISSING = "onnxruntime is not installed (pip install onnxruntime)"
FETCHED_PER_SESSION = 256


def onnxruntime_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


class OnnxRunner:
    """Runs `model` with the feeds given, fetching any tensor of its main graph by name."""

    def __init__(self, model: OnnxModel):
        if not onnxruntime_installed():
            raise GraphdocError(ONNXRUNTIME_MISSING)
        self.model = model
        self.shapes = Shapes(model.proto)
        self._sessions: dict[tuple[str, ...], object] = {}

    def run(self, feeds: dict[str, np.ndarray], fetch: list[str]) -> list[np.ndarray]:
        values: dict[str, np.ndarray] = {}
        for start in range(0, len(fetch), FETCHED_PER_SESSION):
            group = tuple(fetch[start:start + FETCHED_PER_SESSION])
            session = self._session(group)
            try:
                values.update(zip(group, session.run(list(group), feeds), strict=True))
            except Exception as error:  # onnxruntime raises its own exception types for bad feeds and kernels
                raise GraphdocError(f"onnxruntime could not run {self.model.path} ({first_line(error)})") from None
        return [values[name] for name in fetch]

    def _session(self, fetch: tuple[str, ...]):
        if fetch not in self._sessions:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
            options.log_severity_level = 3
            try:
                self._sessions[fetch] = onnxruntime.InferenceSession(
                    self._with_outputs(fetch).SerializeToString(), options, providers=["CPUExecutionProvider"])
            except Exception as error:
                raise GraphdocError(f"onnxruntime could not load {self.model.path} ({first_line(error)})") from None
        return self._sessions[fetch]

    def _with_outputs(self, fetch: tuple[str, ...]) -> onnx.ModelProto:
        outputs = {output.name for output in self.model.proto.graph.output}
        extra = [name for name in fetch if name not in outputs]
        if not extra:
            return self.model.proto
        proto = onnx.ModelProto()
        proto.CopyFrom(self.model.proto)
        proto.graph.output.extend(onnx.helper.make_empty_tensor_value_info(name) for name in extra)
        return proto


def feeds_for(model: OnnxModel, rows: int, *, seed: int = 0, data: dict[str, np.ndarray] | None = None
              ) -> dict[str, np.ndarray]:
    """`rows` samples for every batched input (`data` where given, else seeded normal values);
    other inputs once. A bool scalar (a training switch fed at run time) is fed True, as training fed it."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for port in model.ports()[0]:
        if data and port.name in data:
            feeds[port.name] = data[port.name]
            continue
        if port.shape is None:
            raise GraphdocError(f"input {port.name!r} has no recorded shape; give data for it with --inputs")
        shape = [rows if index == 0 else dim for index, dim in enumerate(port.shape)]
        if -1 in shape:
            raise GraphdocError(f"input {port.name!r} has open dimensions {port.shape} besides the batch; give data "
                                "for it with --inputs")
        dtype = np.dtype(port.dtype)
        if dtype == np.bool_:
            feeds[port.name] = np.ones(port.shape, np.bool_)
        elif np.issubdtype(dtype, np.floating):
            feeds[port.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[port.name] = np.zeros(shape, dtype)
    return feeds


def rows(feeds: dict[str, np.ndarray], batched: set[str], index) -> dict[str, np.ndarray]:
    """The samples `index` (a slice or a list) of the batched inputs, the other inputs as they are."""
    return {name: value[index] if name in batched else value for name, value in feeds.items()}


def batched_inputs(model: OnnxModel) -> set[str]:
    return {port.name for port in model.ports()[0] if port.shape and port.dtype != "bool"}


def fixed_batch(model: OnnxModel) -> int | None:
    """The batch size the data inputs are fixed at, if they are."""
    sizes = {port.shape[0] for port in model.ports()[0] if port.shape and port.dtype != "bool" and port.shape[0] > 0}
    return sizes.pop() if len(sizes) == 1 else None
