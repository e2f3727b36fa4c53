"""Moving statistics recomputed from representative inputs (AdaBN / update_bn).

The graph runs over the calibration data in batches with the layers being
calibrated still in training mode, as they ran while moving averages are
accumulated, and everything else (dropout, layers whose statistics were
found) as the fixed graph will run it. The input of each layer is summed per
channel in float64. The population mean
and variance come from exact running sums over all samples rather than from
an exponential average, so the result does not depend on the batch order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graphdoc.errors import GraphdocError
from graphdoc.graph.edits import RemoveNodes
from graphdoc.graph.model import Model
from graphdoc.proto import GraphDef
from graphdoc.rules import Finding
from graphdoc.rules.statistics import BatchNormSite
from graphdoc.sources import Statistics

# Below this many samples the per-channel estimates are too noisy to serve as
# a population's statistics; tools that recalibrate BatchNorm use hundreds.
MIN_CALIBRATION_SAMPLES = 32


class RunningMoments:
    def __init__(self):
        self.count = 0
        self.total: np.ndarray | float = 0.0
        self.total_squares: np.ndarray | float = 0.0

    def add(self, values: np.ndarray, axes: tuple[int, ...]) -> None:
        values = values.astype(np.float64)
        self.count += int(np.prod([values.shape[axis] for axis in axes]))
        self.total = self.total + values.sum(axis=axes)
        self.total_squares = self.total_squares + np.square(values).sum(axis=axes)

    def statistics(self) -> tuple[np.ndarray, np.ndarray]:
        mean = self.total / self.count
        variance = np.maximum(self.total_squares / self.count - np.square(mean), 0.0)
        return mean.astype(np.float32), variance.astype(np.float32)


class CalibratedStatistics:
    """Statistics measured by running the model over `data_path`'s inputs."""

    safe = False

    def __init__(self, model: Model, findings: list[Finding], data_path: Path, *, batch_size: int = 32, progress=None):
        from graphdoc.tf.runner import GraphRunner, batches

        self.name = f"calibration on {data_path}"
        sites = [f.site for f in findings if f.fix is None and isinstance(f.site, BatchNormSite) and not f.site.scope]
        self._results: dict[str, Statistics] = {}
        if not sites:
            return
        graph_def, placeholders = _calibration_graph(model, findings, sites)
        inputs = load_inputs(data_path, placeholders, _placeholder_shape(model, placeholders))
        self.samples = len(next(iter(inputs.values())))
        if self.samples < MIN_CALIBRATION_SAMPLES:
            raise GraphdocError(
                f"{data_path} holds {self.samples} samples; calibration needs at least "
                f"{MIN_CALIBRATION_SAMPLES} for stable per-channel statistics"
            )
        moments = {site.node: RunningMoments() for site in sites}
        fetches = [str(site.x) if ":" in str(site.x) else f"{site.x}:0" for site in sites]
        with GraphRunner(graph_def) as runner:
            for batch in batches(inputs, batch_size):
                for site, value in zip(sites, runner.run(fetches, batch), strict=True):
                    moments[site.node].add(value, site.reduce_axes)
                if progress is not None:
                    progress(len(next(iter(batch.values()))))
        for site in sites:
            mean, variance = moments[site.node].statistics()
            self._results[site.node] = Statistics(mean, variance, f"calibration on {self.samples} samples")

    def lookup(self, site: BatchNormSite) -> Statistics | str:
        if site.scope:
            return "calibration measures the main graph only; this layer is inside a library function"
        return self._results.get(site.node, "not calibrated")


def _placeholder_shape(model: Model, placeholders: list[str]) -> list[int | None] | None:
    if len(placeholders) != 1:
        return None
    shape = model.main.attr(placeholders[0], "shape")
    return None if shape is None else [None if size < 0 else size for size in shape]


def _calibration_graph(model: Model, findings: list[Finding], sites: list[BatchNormSite]) -> tuple[GraphDef, list[str]]:
    """The model with its available fixes applied and its update ops removed, cut to the layers' inputs."""
    from graphdoc.rewrite.fixer import apply_fixes, copy_model

    graph = copy_model(model)
    apply_fixes(graph, [f for f in findings if f.fix is not None])
    for site in sites:
        if site.update_nodes:
            RemoveNodes(site.scope, site.update_nodes).apply(graph.main)
    inputs = [site.x.node for site in sites]
    keep = graph.main.needed_by(inputs)
    graph.main.keep_only_needed_by(inputs)
    graph.main.compact()
    placeholders = [name for name in keep if graph.main.op(name) == "Placeholder"]
    return graph.graph_def, placeholders


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
IMAGE_PREPROCESSING = "resized to the input's height and width (bilinear), pixels scaled from [0, 255] to [-1, 1]"


def load_inputs(path: Path, placeholders: list[str], input_shape=None) -> dict[str, np.ndarray]:
    """Arrays for the graph's inputs: a .npy for a single input, a .npz with one array per input,
    or a directory of images for a single image input (see IMAGE_PREPROCESSING)."""
    if path.is_dir():
        if len(placeholders) != 1:
            raise GraphdocError(f"a folder of images feeds one input, but the graph has {len(placeholders)}")
        return {placeholders[0]: _load_images(path, input_shape)}
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise GraphdocError(f"{path} could not be read as a .npy or .npz file ({error})") from None
    if isinstance(loaded, np.ndarray):
        if len(placeholders) != 1:
            raise GraphdocError(
                f"the graph has {len(placeholders)} inputs ({', '.join(placeholders)}); give a .npz with one array each"
            )
        return {placeholders[0]: loaded}
    arrays = {name.split(":")[0]: loaded[name] for name in loaded.files}
    missing = [name for name in placeholders if name not in arrays]
    if missing:
        raise GraphdocError(f"{path} has no array for the input {missing[0]!r} (it has {', '.join(arrays)})")
    counts = {len(arrays[name]) for name in placeholders}
    if len(counts) != 1:
        raise GraphdocError(f"the arrays in {path} hold different numbers of samples: {sorted(counts)}")
    return {name: arrays[name] for name in placeholders}


def _load_images(directory: Path, input_shape) -> np.ndarray:
    """Decode every image in `directory` (sorted by name) and preprocess it as IMAGE_PREPROCESSING says."""
    import tensorflow as tf

    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise GraphdocError(f"{directory} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    if input_shape is None or len(input_shape) != 4 or None in input_shape[1:3] or input_shape[3] not in (1, 3):
        raise GraphdocError(f"the graph's input shape {input_shape} is not a known NHWC image shape; give a .npy")
    height, width, channels = input_shape[1:]
    images = []
    for file in files:
        try:
            image = tf.io.decode_image(file.read_bytes(), channels=channels, expand_animations=False)
        except tf.errors.OpError:
            raise GraphdocError(f"{file} could not be decoded as an image") from None
        resized = tf.image.resize(tf.cast(image, tf.float32), (height, width))
        images.append(resized.numpy() / 127.5 - 1.0)
    return np.stack(images).astype(np.float32)
