"""Project configuration: `[tool.graphdoc]` in pyproject.toml, or a graphdoc.toml.

Found as ruff finds its own: from the working directory up, the first
directory with a graphdoc.toml, or a pyproject.toml that has a
`[tool.graphdoc]` table (a pyproject.toml without one is passed over).

    [tool.graphdoc]
    select = ["GD1", "GD2"]      # rule codes or families, as --select
    ignore = ["GD304"]
    keep = ["mc_dropout/*"]      # node patterns whose training behaviour is deliberate

Options on the command line win over the file's.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from graphdoc.errors import GraphdocError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, as a package
    import tomli as tomllib

_KEYS = ("select", "ignore", "keep")


@dataclass(frozen=True)
class Config:
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()
    path: Path | None = None  # where it was read from, None when there is no file


def find_config(start: Path | None = None) -> Config:
    """The configuration that applies in `start` (the working directory by default)."""
    directory = (start or Path.cwd()).resolve()
    for folder in (directory, *directory.parents):
        dedicated = folder / "graphdoc.toml"
        if dedicated.is_file():
            return _read(dedicated, _parsed(dedicated))
        project = folder / "pyproject.toml"
        if project.is_file():
            table = _parsed(project).get("tool", {}).get("graphdoc")
            if table is not None:
                return _read(project, table)
    return Config()


def _parsed(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise GraphdocError(f"{path} could not be read as TOML ({error})") from None


def _read(path: Path, table: dict) -> Config:
    where = f"{path} [tool.graphdoc]" if path.name == "pyproject.toml" else str(path)
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise GraphdocError(f"{where}: unknown key {unknown[0]!r} (graphdoc reads {', '.join(_KEYS)})")
    values = {}
    for key in _KEYS:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise GraphdocError(f"{where}: {key} must be a list of strings, like {key} = [\"GD1\"]")
        values[key] = tuple(value)
    return Config(**values, path=path)
