"""Checkpoints: finding the prefix, reading variables, freezing a .meta graph."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef
from tensorboard.compat.proto.trackable_object_graph_pb2 import TrackableObjectGraph

from graphdoc.errors import LoadError, first_line
from graphdoc.proto import GraphDef

_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


def resolve_prefix(path: Path) -> Path:
    """The checkpoint prefix that `path` names: directly, through a `checkpoint` file, or a SavedModel's variables."""
    if not path.is_dir():
        if not Path(f"{path}.index").is_file():
            raise LoadError(f"{path}: no checkpoint there ({path.name}.index does not exist beside it)")
        return path
    saved_model_variables = path / "variables" / "variables"
    if Path(f"{saved_model_variables}.index").is_file():
        return saved_model_variables
    state = tf.train.get_checkpoint_state(str(path))
    if state is None or not state.model_checkpoint_path:
        raise LoadError(f"{path}/checkpoint names no checkpoint; pass the prefix (for example {path}/model.ckpt)")
    named = Path(state.model_checkpoint_path)
    # Checkpoint files written on another machine name absolute paths that do
    # not exist here; the files themselves sit beside the `checkpoint` file.
    for candidate in (named if named.is_absolute() else path / named, path / named.name):
        if Path(f"{candidate}.index").is_file():
            return candidate
    raise LoadError(f"{path}/checkpoint names {named}, which is neither there nor beside the checkpoint file")


class CheckpointVariables:
    """The variables of a checkpoint, by name.

    TF1 name-based checkpoints are keyed by variable name; TF2 object-based
    ones (tf.train.Checkpoint, a SavedModel's variables/) by object path, with
    each variable's name recorded in the object graph.
    """

    def __init__(self, prefix: Path):
        self.prefix = prefix
        try:
            self._reader = tf.train.load_checkpoint(str(prefix))
        except (tf.errors.OpError, ValueError) as error:
            raise LoadError(f"{prefix}: could not read the checkpoint ({first_line(error)})") from None
        self.shapes: dict[str, tuple[int, ...]] = {}
        self._keys: dict[str, str] = {}
        shapes_by_key = self._reader.get_variable_to_shape_map()
        for key, shape in shapes_by_key.items():
            if key != _OBJECT_GRAPH_KEY and "/.ATTRIBUTES/" not in key and "/.OPTIMIZER_SLOT/" not in key:
                self._add(key, key, shape)
        if _OBJECT_GRAPH_KEY in shapes_by_key:
            graph = TrackableObjectGraph()
            graph.ParseFromString(self._reader.get_tensor(_OBJECT_GRAPH_KEY))
            for node in graph.nodes:
                for attribute in node.attributes:
                    if attribute.checkpoint_key in shapes_by_key and attribute.full_name:
                        name = attribute.full_name.split(":")[0]
                        self._add(name, attribute.checkpoint_key, shapes_by_key[attribute.checkpoint_key])

    def _add(self, name: str, key: str, shape) -> None:
        self._keys.setdefault(name, key)
        self.shapes.setdefault(name, tuple(shape))

    def __contains__(self, name: str) -> bool:
        return name in self._keys

    def read(self, name: str) -> np.ndarray:
        return np.asarray(self._reader.get_tensor(self._keys[name]))


def _candidates(graph_def) -> str:
    """The nodes that could be the model's outputs: what nothing reads, without the training
    script's own (the optimizer, saving and restoring, initializers, summaries)."""
    from graphdoc.graph.outputs import infer_outputs
    from graphdoc.graph.view import GraphView

    view = GraphView(graph_def.node)
    # The model's output usually feeds the loss, so it is no sink: its usual names come first.
    named = [name for name in view.nodes if _OUTPUT_NAMES.fullmatch(name.rpartition("/")[2])]
    sinks = [name for name in infer_outputs(view) if not name.startswith(_TRAINING_SCOPES)
             and not view.op(name).startswith(("Apply", "ResourceApply")) and view.op(name) not in _BOOKKEEPING]
    names = list(dict.fromkeys(named + sinks))
    return f" (candidates: {', '.join(names[:5])})" if names else ""


_OUTPUT_NAMES = re.compile(r"(output|outputs|logits|predictions?|probs|probabilities|softmax|Softmax)(_\d+)?")


_BOOKKEEPING = frozenset({"NoOp", "ReadVariableOp", "VarIsInitializedOp", "IsVariableInitialized", "IteratorToStringHandle",
                          "MergeSummary", "ScalarSummary", "HistogramSummary", "ImageSummary"})
# Scopes a TF1 training script's Saver, optimizer, initializers and summaries write to.
_TRAINING_SCOPES = ("save/", "save_", "gradients/", "init", "report_uninitialized", "summaries/", "global_step")


def load_meta_checkpoint(prefix: Path, outputs: list[str]) -> GraphDef:
    """Import `prefix.meta`, restore the variables, and freeze the graph for `outputs`."""
    meta_path = Path(f"{prefix}.meta")
    if not meta_path.is_file():
        raise LoadError(
            f"{prefix} is a checkpoint without a .meta graph; pass the frozen .pb as the model and the "
            "checkpoint with --checkpoint"
        )
    meta = MetaGraphDef()
    try:
        meta.ParseFromString(meta_path.read_bytes())
    except Exception:
        raise LoadError(f"{meta_path} could not be parsed as a MetaGraphDef; is it truncated?") from None
    if not outputs:
        raise LoadError(f"{prefix} is a training checkpoint: name the model's outputs with --outputs"
                        f"{_candidates(meta.graph_def)}")
    # Graphs written by TF 1.x carry _output_shapes that current releases may reject.
    for node in meta.graph_def.node:
        node.attr.pop("_output_shapes", None)
    tf_meta = tf.compat.v1.MetaGraphDef.FromString(meta.SerializeToString())
    graph = tf.Graph()
    with graph.as_default():
        try:
            saver = tf.compat.v1.train.import_meta_graph(tf_meta, clear_devices=True)
        except (ValueError, KeyError, tf.errors.OpError) as error:
            raise LoadError(f"{meta_path}: TensorFlow could not import the graph ({first_line(error)})") from None
        names = [name.split(":")[0] for name in outputs]
        missing = [name for name in names if name not in {op.name for op in graph.get_operations()}]
        if missing:
            close = difflib.get_close_matches(missing[0], [op.name for op in graph.get_operations()], n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else _candidates(meta.graph_def)
            raise LoadError(f"output {missing[0]!r} is not a node of {meta_path}{hint}")
        with tf.compat.v1.Session(graph=graph) as session:
            try:
                saver.restore(session, str(prefix))
            except (ValueError, tf.errors.OpError) as error:
                raise LoadError(f"{prefix}: could not restore the variables ({first_line(error)})") from None
            frozen = tf.compat.v1.graph_util.convert_variables_to_constants(session, graph.as_graph_def(), names)
    return GraphDef.FromString(frozen.SerializeToString())
