"""Reading model files into a Model.

The format is decided by the file's content, not its extension: a `.pb` that is
really text, or a `.pbtxt` that is binary, loads all the same. Every failure
becomes a LoadError whose message says what the file is and what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

from google.protobuf import text_format
from google.protobuf.message import DecodeError

from graphdoc import ops
from graphdoc.errors import LoadError
from graphdoc.graph.inputs import ITERATOR_OPS, replace_iterators
from graphdoc.graph.model import Model
from graphdoc.graph.lint import lint
from graphdoc.proto import GraphDef

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"
_GZIP_MAGIC = b"\x1f\x8b"
_TFLITE_IDENTIFIER = b"TFL3"  # the FlatBuffer file identifier, at offset 4
# protobuf's hard limit on one serialized message.
PROTOBUF_LIMIT = 2**31
# What loading and indexing a GraphDef takes in memory, per byte of file, as measured
# on the benchmark graphs (weights dominate large files; the index, node-heavy ones).
MEMORY_PER_BYTE = 20

_TEXT_CONTROL_CHARS = set(range(32)) - {9, 10, 13}
GRAPHDEF_FORMATS = ("binary GraphDef", "text GraphDef")
MODEL_SUFFIXES = (".pb", ".pbtxt", ".onnx", ".keras", ".h5", ".tflite")  # what a directory scan reads


def load(path: str | Path, *, outputs: list[str] | None = None, signature: str = "serving_default") -> Model:
    """Load a model: a frozen GraphDef (binary or text), a SavedModel directory
    (one signature, frozen), or a TF1 checkpoint with its .meta (frozen for `outputs`)."""
    path = Path(path)
    if is_saved_model(path):
        return _with_inputs(_load_saved_model(path, signature))
    if _is_checkpoint(path):
        return _with_inputs(_load_checkpoint(path, outputs))
    if not path.exists():
        raise LoadError(f"{path}: no such file or directory.")
    if path.is_dir():
        raise LoadError(_describe_directory(path))
    _refuse_sizes_that_cannot_load(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise LoadError(f"{path} could not be read ({error.strerror})") from None
    if data.startswith((_HDF5_MAGIC, _ZIP_MAGIC)):
        return _load_keras(path, data)
    if data[4:8] == _TFLITE_IDENTIFIER:
        from graphdoc.tflite.model import load_tflite

        return load_tflite(path, data)
    _reject_known_other_formats(path, data)
    if _looks_like_onnx(data):
        return _load_onnx(path, data)
    if _looks_like_text(data):
        graph_def = _parse_text(path, data)
        kind = "text GraphDef"
    else:
        graph_def = _parse_binary(path, data)
        kind = "binary GraphDef"
    if not graph_def.node and not graph_def.library.function:
        raise LoadError(f"{path}: parsed as a {kind} but it holds no nodes; is it the right file?")
    model = Model(graph_def=graph_def, path=path, format=kind)
    _check_structure(model)
    return _with_inputs(model)


def _with_inputs(model: Model) -> Model:
    """`model` with its tf.data iterators replaced by placeholders, noted."""
    if model.main.ops_of(ITERATOR_OPS):
        model.notes.extend(replace_iterators(model.main))
    return model


def _check_input_counts(model: Model) -> None:
    for view in model.views:
        for name, count in view.input_count_outliers(ops.INPUT_COUNTS)[:1]:
            op = view.op(name)
            fewest, most = ops.INPUT_COUNTS[op]
            where = f" in function {view.scope}" if view.scope else ""
            expected = fewest if fewest == most else f"at least {fewest}"
            raise LoadError(
                f"{model.path}: node {name}{where} ({op}) has {count} data input(s), but {op} "
                f"takes {expected}; TensorFlow would not import it"
            )


def _refuse_sizes_that_cannot_load(path: Path) -> None:
    size = path.stat().st_size
    if size >= PROTOBUF_LIMIT:
        raise LoadError(
            f"{path} is {size / 2**30:.1f} GiB, but one protobuf message cannot exceed 2 GiB, so this is not "
            "a single GraphDef; large models are stored as a SavedModel with variables beside the graph"
        )
    available = _available_memory()
    if available is not None and size * MEMORY_PER_BYTE > available:
        raise LoadError(
            f"{path} is {size / 2**20:.0f} MiB and would need about {size * MEMORY_PER_BYTE / 2**30:.1f} GiB "
            f"of memory to check, but {available / 2**30:.1f} GiB is available"
        )


def _available_memory() -> int | None:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not on every platform
        return None


def _check_structure(model: Model) -> None:
    """Refuse graphs that no TensorFlow could run: what follows would only mislead."""
    view = model.main
    if "" in view.nodes:
        raise LoadError(f"{model.path}: a node has no name (its op is {view.op('')!r})")
    if view.ops_of({""}):
        raise LoadError(f"{model.path}: node {view.ops_of({''})[0]!r} has no op")
    problems = lint(view, [])
    if problems and problems[0].kind == "duplicate":
        raise LoadError(f"{model.path}: {problems[0]}")
    _check_input_counts(model)
    if problems:
        hint = "; is the file complete?" if problems[0].kind == "dangling" else ""
        raise LoadError(f"{model.path}: {problems[0]}{hint}")


def is_saved_model(path: Path) -> bool:
    return path.is_dir() and (path / "saved_model.pb").is_file()


def is_model_directory(path: Path) -> bool:
    """A directory that is one model (a SavedModel, or a checkpoint directory), not a folder of models."""
    return is_saved_model(path) or (path.is_dir() and _is_checkpoint(path))


def find_models(paths: list[Path]) -> list[Path]:
    """The models `paths` name, each once: a file or a model directory is one; any other
    directory holds models (its files named as models are, MODEL_SUFFIXES, and its SavedModels, whose own
    files are not models: fingerprint.pb, variables/, assets/)."""
    found: dict[str, Path] = {}  # by real path: a file named twice, or in a directory and by name, is one model
    for path in paths:
        if not path.is_dir() or is_model_directory(path):
            found.setdefault(os.path.realpath(path), path)
            continue
        models = _models_under(path)
        if not models:
            raise LoadError(f"{path} holds no model files ({', '.join(MODEL_SUFFIXES)}) and no SavedModel")
        for model in models:
            found.setdefault(os.path.realpath(model), model)
    return list(found.values())


def _models_under(directory: Path) -> list[Path]:
    models = []
    for root, subdirectories, files in os.walk(directory):
        here = Path(root)
        if is_saved_model(here):
            models.append(here)
            subdirectories.clear()  # variables/ and assets/ belong to it
            continue
        subdirectories.sort()
        models += [here / name for name in sorted(files) if Path(name).suffix in MODEL_SUFFIXES]
    return sorted(models)


def _is_checkpoint(path: Path) -> bool:
    if path.is_dir():
        return (path / "checkpoint").is_file()
    return not path.exists() and (Path(f"{path}.index").is_file() or Path(f"{path}.meta").is_file())


def _load_checkpoint(path: Path, outputs: list[str] | None) -> Model:
    # Reading variables needs TensorFlow: import it only for checkpoints.
    from graphdoc.tf.checkpoints import load_meta_checkpoint, resolve_prefix

    prefix = resolve_prefix(path)
    graph_def = load_meta_checkpoint(prefix, outputs or [])
    return Model(graph_def=graph_def, path=prefix, format="TF1 checkpoint, frozen", checkpoint=prefix)


def _load_saved_model(path: Path, signature: str) -> Model:
    from graphdoc.tf.saved_model import freeze_signature

    graph_def, output_keys, variables, signatures = freeze_signature(path, signature)
    return Model(
        graph_def=graph_def,
        path=path,
        format=f"SavedModel, signature {signature!r} frozen",
        checkpoint=path / "variables" / "variables",
        aliases=output_keys,
        variables=variables,
        signatures=signatures,
    )


def _describe_directory(path: Path) -> str:
    if (path / "saved_model.pbtxt").exists():
        return f"{path} is a SavedModel in text form (saved_model.pbtxt); graphdoc reads saved_model.pb."
    return (
        f"{path} is a directory with no saved_model.pb or checkpoint in it; "
        "pass a .pb or .pbtxt file, a SavedModel directory or a checkpoint."
    )


def _reject_known_other_formats(path: Path, data: bytes) -> None:
    if not data:
        raise LoadError(f"{path} is empty (0 bytes); was the export or download interrupted?")
    if data.startswith(_GZIP_MAGIC):
        raise LoadError(f"{path} is gzip-compressed; decompress it first (gunzip -k {path.name})")
    if path.name in ("saved_model.pb", "saved_model.pbtxt"):
        raise LoadError(
            f"{path} is a SavedModel's graph file, not a frozen GraphDef; pass its directory "
            f"instead: graphdoc scan {path.parent}"
        )


def _load_keras(path: Path, data: bytes):
    """A Keras model file: a .keras zip with its config.json, or an HDF5 file with a model_config."""
    from graphdoc.keras.files import read_h5, read_zip
    from graphdoc.keras.model import keras_model

    return keras_model(read_h5(path) if data.startswith(_HDF5_MAGIC) else read_zip(path))


def _looks_like_onnx(data: bytes) -> bool:
    """An ONNX ModelProto starts with its ir_version (field 1, a varint: byte 0x08); a binary
    GraphDef cannot (its field 1, the nodes, is length-delimited: 0x0a), nor a text one."""
    return data[:1] == b"\x08"


def _load_onnx(path: Path, data: bytes):
    from graphdoc.onnx.model import load_onnx  # says what to install when the onnx package is missing

    return load_onnx(path, data)


def _looks_like_text(data: bytes) -> bool:
    # Binary GraphDefs contain field tags such as 0x12 that are control characters in text.
    head = data[:4096]
    if any(byte in _TEXT_CONTROL_CHARS for byte in head):
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte character cut at the 4096-byte boundary is still text.
        return error.start >= len(head) - 3
    return True


def _parse_text(path: Path, data: bytes) -> GraphDef:
    graph_def = GraphDef()
    try:
        text_format.Parse(data.decode("utf-8", errors="strict"), graph_def)
    except UnicodeDecodeError:
        raise LoadError(f"{path} looks like text but is not valid UTF-8; is it a text GraphDef?") from None
    except text_format.ParseError as error:
        raise LoadError(f"{path} is not a valid text GraphDef: {error}.") from None
    return graph_def


def _parse_binary(path: Path, data: bytes) -> GraphDef:
    graph_def = GraphDef()
    try:
        graph_def.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError):
        raise LoadError(
            f"{path} could not be parsed as a TensorFlow GraphDef ({len(data)} bytes of binary data): "
            "is it truncated, or a different kind of file?"
        ) from None
    return graph_def
