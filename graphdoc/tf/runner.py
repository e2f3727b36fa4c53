"""Running a GraphDef with TensorFlow."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import tensorflow as tf

from graphdoc.errors import GraphdocError, first_line
from graphdoc.ops import MERGE_OPS, SWITCH_OPS
from graphdoc.proto import GraphDef

# Tensors that cannot be carried from one run to the next as numpy arrays.
_UNCARRIED_DTYPES = frozenset({tf.resource, tf.variant})


class GraphRunner:
    """One imported graph in one session, run as often as needed."""

    def __init__(self, graph_def: GraphDef, feeds: Mapping[str, np.ndarray] | None = None):
        """`feeds`, if given, are inputs like those the graph will be run on.

        Their shapes fill the placeholders' unknown dimensions other than the
        batch, so that TensorFlow's static shapes, and the sizes estimated
        from them, are those of the runs.
        """
        tf_graph_def = tf.compat.v1.GraphDef.FromString(graph_def.SerializeToString())
        if feeds:
            _fill_unknown_dimensions(tf_graph_def, {name: np.shape(array) for name, array in feeds.items()})
        self._graph = tf.Graph()
        with self._graph.as_default():
            try:
                tf.compat.v1.import_graph_def(tf_graph_def, name="")
            except ValueError as error:
                raise GraphdocError(f"TensorFlow could not import the graph: {first_line(error)}") from None
        # Grappler off: these graphs are run to compare values op by op, and
        # Grappler would fuse ops away and re-optimize for every new set of
        # fetches (9 s a time on EfficientNetB7).
        config = tf.compat.v1.ConfigProto()
        config.graph_options.rewrite_options.disable_meta_optimizer = True
        self._session = tf.compat.v1.Session(graph=self._graph, config=config)

    def floating_outputs(self) -> list[str]:
        """The first output of every op whose first output is floating-point.

        One tensor per node is enough to place a divergence or a difference
        at that node.
        """
        return [op.outputs[0].name for op in self._graph.get_operations() if op.outputs and op.outputs[0].dtype.is_floating]

    def estimated_bytes(self, fetch: str, batch_sizes: Sequence[int]) -> int:
        """What fetching `fetch` once per batch size holds in memory, from its static shape.

        A leading unknown dimension is the batch; other unknown dimensions count as 1.
        """
        tensor = self._graph.get_tensor_by_name(fetch)
        if tensor.shape.rank is None:
            return tensor.dtype.size * len(batch_sizes)
        dims = tensor.shape.as_list()
        rest = int(np.prod([d or 1 for d in dims[1:]]))
        if dims and dims[0] is None:
            return tensor.dtype.size * rest * sum(batch_sizes)
        return tensor.dtype.size * rest * (dims[0] if dims else 1) * len(batch_sizes)

    def fetch_groups(self, fetches: list[str], batch_sizes: Sequence[int], budget: int) -> list[list[str]]:
        """`fetches` in consecutive groups that hold at most `budget` bytes over runs of `batch_sizes`."""
        return list(chunks(fetches, [self.estimated_bytes(fetch, batch_sizes) for fetch in fetches], budget))

    def run(self, fetches: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            return self._session.run(fetches, {_tensor_name(k): v for k, v in feeds.items()})
        except tf.errors.OpError as error:
            raise GraphdocError(f"TensorFlow could not run the graph: {self._explained(error)}",
                                detail=error.message) from None

    def _explained(self, error: tf.errors.OpError) -> str:
        """TensorFlow's reason, with the node it names and that node's op."""
        cause = _cause(error)
        named = _NODE_IN_MESSAGE.search(error.message)
        if named is None:
            return cause
        try:
            op = self._graph.get_operation_by_name(named.group(1)).type
        except (KeyError, ValueError):
            return cause
        return f"at {named.group(1)} ({op}): {_NODE_IN_MESSAGE.sub(lambda m: m.group(1), cause)}"

    def run_in_groups(self, groups: list[list[str]], feeds: Sequence[dict[str, np.ndarray]]) -> Iterator[list[list]]:
        """For each group of fetches (in graph order), its values under each feed.

        Each run after the first is fed the tensors that cross into the rest
        of the graph, as the same feed's previous run computed them, so the
        graph is computed about once in all rather than once per group. TF1
        control flow (Switch, Merge) is recomputed instead: a tensor of a
        branch not taken has no value to carry.
        """
        cuts = self._crossing_tensors([group[0].rsplit(":", 1)[0] for group in groups[1:]])
        carried: list[dict[str, np.ndarray]] = [{} for _ in feeds]
        for group, crossing in zip(groups, [*cuts, []]):  # the last group carries nothing on
            values = []
            for index, feed in enumerate(feeds):
                result = self.run(group + crossing, {**feed, **carried[index]})
                carried[index] = dict(zip(crossing, result[len(group):], strict=True))
                values.append(result[: len(group)])
            yield values

    def _crossing_tensors(self, first_ops: list[str]) -> list[list[str]]:
        """For each cut before one of `first_ops`: the tensors made before it and read after it."""
        operations = self._graph.get_operations()
        if any(op.type in SWITCH_OPS or op.type in MERGE_OPS for op in operations):
            return [[] for _ in first_ops]
        position = {op.name: index for index, op in enumerate(operations)}
        last_reader: dict[tf.Tensor, int] = {}
        for index, op in enumerate(operations):
            for tensor in op.inputs:
                last_reader[tensor] = index
        carriable = [
            tensor for tensor in last_reader
            if tensor.op.type != "Const" and tensor.dtype not in _UNCARRIED_DTYPES
            and tensor.dtype == tensor.dtype.base_dtype and self._graph.is_feedable(tensor)  # not a ref
        ]
        names = np.array([tensor.name for tensor in carriable], dtype=object)
        made = np.array([position[tensor.op.name] for tensor in carriable], dtype=np.int64)
        last = np.array([last_reader[tensor] for tensor in carriable], dtype=np.int64)
        cuts = [position[name] for name in first_ops]
        return [names[(made < cut) & (cut <= last)].tolist() for cut in cuts]

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> GraphRunner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def batches(inputs: dict[str, np.ndarray], batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    """Slices of every input along the first axis."""
    count = len(next(iter(inputs.values())))
    for start in range(0, count, batch_size):
        yield {name: array[start : start + batch_size] for name, array in inputs.items()}


def chunks(fetches: list, sizes: list[int], budget: int, most: int = 10_000) -> Iterator[list]:
    """Consecutive groups of at most `most` fetches (or anything sized) whose sizes add up to at most
    `budget` (or one fetch).

    Fetching every tensor of a large model at once holds all its activations
    (130 GiB for EfficientNetB7's probe); a group at a time holds one group's.
    The count is capped too: the session's first run of a set of fetches
    costs more than linear time in their number (50,000 nodes: 10,000
    fetches 1.7 s, 40,000 fetches 7.8 s).
    """
    group: list[str] = []
    held = 0
    for fetch, size in zip(fetches, sizes, strict=True):
        if group and (held + size > budget or len(group) == most):
            yield group
            group, held = [], 0
        group.append(fetch)
        held += size
    if group:
        yield group


def _fill_unknown_dimensions(graph_def, shapes: Mapping[str, tuple[int, ...]]) -> None:
    for node in graph_def.node:
        given = shapes.get(node.name)
        if node.op != "Placeholder" or given is None:
            continue
        shape = node.attr["shape"].shape
        if shape.unknown_rank:
            shape.unknown_rank = False
            shape.dim.add().size = -1  # the batch
            for size in given[1:]:
                shape.dim.add().size = size
        elif len(shape.dim) == len(given):
            for dim, size in zip(shape.dim[1:], given[1:], strict=True):
                if dim.size == -1:
                    dim.size = size


_NODE_IN_MESSAGE = re.compile(r"\{\{node ([^}]+)\}\}")


def _cause(error: tf.errors.OpError) -> str:
    """The line of a TensorFlow run error that says what went wrong: a session's message starts
    with "Graph execution error:" and where it was detected, and ends with stack traces."""
    for line in error.message.splitlines():
        line = line.strip()
        if line and line != "Graph execution error:" and not line.startswith(("Detected at node", "Node:")):
            return line if len(line) <= 400 else line[:400] + "..."
    return first_line(error)


def _tensor_name(name: str) -> str:
    return name if ":" in name else f"{name}:0"
