"""Writing a GraphDef so that a failure never leaves a partial file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from google.protobuf import text_format

from graphdoc.proto import GraphDef

TEXT_SUFFIXES = (".pbtxt", ".txt", ".prototxt")


def write_graph_def(graph_def: GraphDef, path: Path) -> None:
    """Write `graph_def` atomically; text for a .pbtxt path, binary otherwise."""
    if path.suffix in TEXT_SUFFIXES:
        data = text_format.MessageToString(graph_def).encode("utf-8")
    else:
        data = graph_def.SerializeToString(deterministic=True)
    write_atomically(data, path)


def write_atomically(data: bytes, path: Path) -> None:
    """Write to a temporary file beside `path`, then rename it into place.

    A failure at any point leaves the previous file at `path` as it was and no
    temporary file behind.
    """
    directory = path.parent if str(path.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
