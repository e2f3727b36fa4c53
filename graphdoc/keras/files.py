"""Reading a Keras model file's config, and writing the same file with another config."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from graphdoc.errors import GraphdocError, LoadError, first_line
from graphdoc.writing import write_atomically

ZIP_CONFIG = "config.json"
H5_CONFIG = "model_config"


@dataclass(frozen=True)
class KerasFile:
    path: Path
    container: str  # "zip" (.keras) or "hdf5" (.h5)
    config: dict
    keras_version: str  # as the file records it ("3.15.1", "2.21.0"), or ""

    @property
    def flavour(self) -> str:
        """Which Keras reads it: "keras3" (keras) or "tf_keras" (Keras 2)."""
        return "tf_keras" if self.keras_version.startswith("2.") else "keras3"


def read_zip(path: Path) -> KerasFile:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if ZIP_CONFIG not in names:
                raise LoadError(f"{path} is a zip archive without {ZIP_CONFIG}: not a Keras .keras model")
            config = json.loads(archive.read(ZIP_CONFIG))
            metadata = json.loads(archive.read("metadata.json")) if "metadata.json" in names else {}
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise LoadError(f"{path}: a zip archive but not a readable Keras .keras file ({first_line(error)})") from None
    return KerasFile(path, "zip", config, str(metadata.get("keras_version", "")))


def read_h5(path: Path) -> KerasFile:
    try:
        import h5py
    except ImportError:
        raise LoadError(f"{path} is an HDF5 file (a Keras .h5 model); reading it needs h5py (pip install h5py)") from None
    try:
        with h5py.File(path, "r") as file:
            config = file.attrs.get(H5_CONFIG)
            version = file.attrs.get("keras_version", "")
    except OSError as error:
        raise LoadError(f"{path}: not a readable Keras .h5 file ({first_line(error)})") from None
    if config is None:
        raise LoadError(f"{path} holds weights only (no model config): which layers run in training mode is "
                        "decided by the code that builds the model; scan the model saved whole, or its export")
    try:
        parsed = json.loads(config.decode() if isinstance(config, bytes) else config)
    except json.JSONDecodeError as error:
        raise LoadError(f"{path}: its model_config is not JSON ({first_line(error)})") from None
    return KerasFile(path, "hdf5", parsed, version.decode() if isinstance(version, bytes) else str(version))


def write_with_config(source: KerasFile, config: dict, output: Path) -> None:
    """`source`'s file with `config` in place of its own, everything else (the weights) as it was,
    written atomically to `output`."""
    text = json.dumps(config)
    if source.container == "zip":
        write_atomically(_zip_with_config(source.path, text), output)
    else:
        _write_h5_atomically(source.path, text, output)


def _zip_with_config(path: Path, text: str) -> bytes:
    """The archive with config.json replaced; every other member copied as stored."""
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(path) as archive, zipfile.ZipFile(buffer, "w") as written:
        for member in archive.infolist():
            data = text.encode() if member.filename == ZIP_CONFIG else archive.read(member)
            written.writestr(member, data, compress_type=member.compress_type)
    return buffer.getvalue()


def _write_h5_atomically(path: Path, text: str, output: Path) -> None:
    import h5py

    directory = output.parent if str(output.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=directory)
    os.close(handle)
    try:
        shutil.copyfile(path, temporary)  # the weights, byte for byte
        with h5py.File(temporary, "r+") as file:
            file.attrs[H5_CONFIG] = text
        os.replace(temporary, output)
    except OSError as error:
        raise GraphdocError(f"cannot write {output}: {error.strerror or error}") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
