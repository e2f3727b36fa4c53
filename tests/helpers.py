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
