"""Small helpers shared by the rule and fix tests."""

from __future__ import annotations

from graphdoc.loading import load
from graphdoc.scanning import scan


def findings_of(path, code=None):
    found = scan(load(path))
    return [f for f in found if code is None or f.code == code]


def count_ops(graph_bytes: bytes, ops: set[str]) -> int:
    import graphs

    return sum(node.op in ops for node in graphs.parse(graph_bytes).node)


def write_training(tmp_path, pair):
    """Write `pair`'s training graph to tmp_path/model.pb and return the path."""
    path = tmp_path / "model.pb"
    path.write_bytes(pair.training)
    return path
