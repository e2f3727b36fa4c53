"""Writing a GraphDef so that a failure never leaves a partial file, and where a fix may go."""

from __future__ import annotations

import errno
import mmap
import os
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from google.protobuf import text_format

from graphdoc.errors import GraphdocError
from graphdoc.proto import GraphDef

if TYPE_CHECKING:
    from graphdoc.rewrite import FixReport

TEXT_SUFFIXES = (".pbtxt", ".txt", ".prototxt")

# Files this large go to the disk around the page cache (O_DIRECT), where the
# platform and the filesystem allow it. Copying a model of hundreds of
# megabytes into freshly allocated cache pages costs more than writing it out,
# and on a VM whose memory the host backs lazily it varies tenfold (268 MB:
# 0.08 to 0.95 s buffered, 0.18 to 0.25 s direct, fsync included).
DIRECT_FROM_BYTES = 16 << 20
_BLOCK = 4096  # O_DIRECT alignment of addresses, offsets and lengths: covers 512-byte and 4 KiB sectors
_CHUNK = 8 << 20  # the aligned staging buffer


def write_graph_def(graph_def: GraphDef, path: Path) -> None:
    """Write `graph_def` atomically; text for a .pbtxt path, binary otherwise."""
    if path.suffix in TEXT_SUFFIXES:
        data = text_format.MessageToString(graph_def).encode("utf-8")
    else:
        data = graph_def.SerializeToString(deterministic=True)
    write_atomically(data, path)


def write_atomically(data: bytes, path: Path) -> None:
    """Write to a temporary file beside `path`, then rename it into place.

    A failure at any point (an interrupt too) leaves the previous file at `path`
    as it was and no temporary file behind; one the user can act on (no such
    directory, no permission, a full disk) is a GraphdocError.
    """
    refuse_unwritable(path)
    try:
        _replace_atomically(data, path)
    except OSError as error:
        raise GraphdocError(f"cannot write {path}: {error.strerror or error}") from None


def refuse_unwritable(path: Path) -> None:
    """Refuse, in one sentence, a path no file can be written to: a directory, or one in a missing directory."""
    directory = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise GraphdocError(f"cannot write {path}: it is a directory; name the file to write")
    if not directory.is_dir():
        raise GraphdocError(f"cannot write {path}: the directory {directory} does not exist")


def _replace_atomically(data: bytes, path: Path) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    mode = _mode_for(path)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(handle, mode)  # mkstemp makes the file private (0600)
            if len(data) < DIRECT_FROM_BYTES or not _write_direct(handle, data):
                _write_all(handle, memoryview(data))
            os.fsync(handle)
        finally:
            os.close(handle)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _mode_for(path: Path) -> int:
    """The permissions `path` has, or those a plain open() would give a new file."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)  # the only way to read it is to set it: put it straight back
        os.umask(umask)
        return 0o666 & ~umask


def _write_direct(handle: int, data: bytes) -> bool:
    """Write `data` into the empty file `handle` with O_DIRECT; False, with the file
    position back at 0, where the platform or the filesystem does not take it."""
    if not hasattr(os, "O_DIRECT"):
        return False
    import fcntl  # POSIX only, like O_DIRECT

    flags = fcntl.fcntl(handle, fcntl.F_GETFL)
    try:
        fcntl.fcntl(handle, fcntl.F_SETFL, flags | os.O_DIRECT)
    except OSError:
        return False
    # Both bytes objects and their slices start anywhere: each chunk is copied
    # into a page-aligned buffer, and the last one padded to whole blocks.
    aligned = memoryview(mmap.mmap(-1, _CHUNK))
    source = memoryview(data)
    try:
        for offset in range(0, len(data), _CHUNK):
            piece = source[offset : offset + _CHUNK]
            padded = -(-len(piece) // _BLOCK) * _BLOCK
            aligned[: len(piece)] = piece
            aligned[len(piece) : padded] = bytes(padded - len(piece))
            _write_all(handle, aligned[:padded])
    except OSError as error:
        if error.errno != errno.EINVAL:
            raise
        # Opened, but a write was refused (a device that wants other alignment): start
        # again buffered from the top, over the whole chunks already written.
        fcntl.fcntl(handle, fcntl.F_SETFL, flags)
        os.lseek(handle, 0, os.SEEK_SET)
        return False
    os.ftruncate(handle, len(data))  # the padding of the last block goes
    return True


def _write_all(handle: int, data: memoryview) -> None:
    while data:
        data = data[os.write(handle, data) :]


def fix_destination(source: Path, output: Path | None, *, in_place: bool = False,
                    dry_run: bool = False) -> tuple[Path | None, bool]:
    """Where a fix of `source` is written (None for a dry run without one), and whether
    that overwrites `source`. Refuses, before anything is loaded, what could not be written."""
    if in_place:
        output = output or source
    if output is None and not dry_run:
        raise GraphdocError("a fix needs an output path (or a dry run, to see what would change)")
    overwrites = output is not None and output.resolve() == source.resolve()
    if overwrites and not in_place:
        raise GraphdocError(f"{output} is the input file; write to a new path, or fix in place to keep a backup")
    if overwrites and source.is_dir():
        raise GraphdocError("a fix in place rewrites a GraphDef file; a SavedModel directory is fixed into a new .pb")
    if output is not None:
        refuse_unwritable(output)
    return output, overwrites


def write_fix(report: FixReport, source: Path, output: Path, *, backup: bool = False) -> None:
    """Write `report`'s fixed graph to `output`; `backup` first keeps `source` as SOURCE.bak.

    A fix that changed nothing writes `source` itself, byte for byte.
    """
    if not report.changed:
        write_atomically(source.read_bytes(), output)
        return
    kept = source.with_name(source.name + ".bak")
    new_backup = backup and not kept.exists()
    if backup:
        write_atomically(source.read_bytes(), kept)
    try:
        from graphdoc.formats import format_of  # here: the formats' writers write through this module

        other = format_of(report.fixed)
        if other is not None:
            other.write(report.fixed, output)
        else:
            write_graph_def(report.fixed.graph_def, output)
    except BaseException:
        if new_backup:  # the source is as it was: a backup of it made for nothing would be left over
            kept.unlink(missing_ok=True)
        raise
