"""What a fix changed, node by node."""

from __future__ import annotations

from graphdoc.graph.model import Model


def node_changes(before: Model, after: Model) -> list[tuple[str, str, str]]:
    """('-', node, op) removed, ('+', node, op) added, ('~', node, what changed), in file order."""
    old, new = before.main.nodes, after.main.nodes
    changes = [("-", name, node.op) for name, node in old.items() if name not in new]
    for name, node in new.items():
        if name not in old:
            changes.append(("+", name, node.op))
        elif old[name] != node:
            changes.append(("~", name, _describe(old[name], node)))
    return changes


def _describe(old, new) -> str:
    parts = []
    if old.op != new.op:
        parts.append(f"op {old.op} -> {new.op}")
    if list(old.input) != list(new.input):
        parts.append(f"inputs {list(old.input)} -> {list(new.input)}")
    for key in sorted(set(old.attr) | set(new.attr)):
        if key == "value" or old.attr.get(key) == new.attr.get(key):
            continue
        parts.append(f"{key} {_attr(old.attr, key)} -> {_attr(new.attr, key)}")
    return "; ".join(parts) or "value changed"


def _attr(attrs, key) -> str:
    if key not in attrs:
        return "(absent)"
    value = attrs[key]
    kind = value.WhichOneof("value")
    return repr(getattr(value, kind)) if kind in ("b", "f", "i", "s", "type") else kind or "(empty)"
