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
    parts += _input_changes(list(old.input), list(new.input))
    for key in sorted(set(old.attr) | set(new.attr)):
        if key == "value" or old.attr.get(key) == new.attr.get(key):
            continue
        parts.append(f"{key} {_attr(old.attr, key)} -> {_attr(new.attr, key)}")
    return "; ".join(parts) or "value changed"


def _input_changes(old: list[str], new: list[str]) -> list[str]:
    old_data = [ref for ref in old if not ref.startswith("^")]
    new_data = [ref for ref in new if not ref.startswith("^")]
    changes = [
        f"input {slot}: {a or '(none)'} -> {b or '(none)'}"
        for slot, (a, b) in enumerate(zip(old_data + [""] * len(new_data), new_data + [""] * len(old_data), strict=True))
        if a != b and slot < max(len(old_data), len(new_data))
    ]
    old_controls, new_controls = set(old) - set(old_data), set(new) - set(new_data)
    changes += [f"waits no more for {ref[1:]}" for ref in sorted(old_controls - new_controls)]
    changes += [f"now waits for {ref[1:]}" for ref in sorted(new_controls - old_controls)]
    return changes


def _attr(attrs, key) -> str:
    if key not in attrs:
        return "(absent)"
    value = attrs[key]
    kind = value.WhichOneof("value")
    return repr(getattr(value, kind)) if kind in ("b", "f", "i", "s", "type") else kind or "(empty)"
