"""Control flow v1 loop frames: which `tf.while_loop` body a node runs in.

A tensor enters a loop's frame through an Enter node (`frame_name`) and
leaves it through an Exit; every node computed from an Enter's output, up to
the matching Exit, runs once per iteration in that frame. TensorFlow refuses
a node whose inputs come from different frames, so a value made outside a
loop (a constant a fix adds) must enter the frame through an Enter with
`is_constant=true` before a node inside can read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphdoc.graph.view import GraphView, Tensor

# Nodes without inputs take their frame from their control inputs, if any; a
# search that finds neither an Enter nor an input-less source gives up here.
_MAX_WALK = 10_000


@dataclass(frozen=True)
class Frame:
    name: bytes
    parallel_iterations: int


def frame_of(view: GraphView, tensor: Tensor) -> Frame | None:
    """The innermost loop frame `tensor` is computed in, or None outside every loop.

    Walks back from the node: crossing an Exit enters that loop (going
    backwards), crossing an Enter leaves one; the first Enter reached with no
    loop left to close is the frame. A source reached outside every loop
    means the root frame.
    """
    if not view.ops_of(_ENTER_OPS):
        return None
    stack, seen = [(tensor.node, 0)], set()
    while stack and len(seen) < _MAX_WALK:
        name, depth = stack.pop()
        if (name, depth) in seen or name not in view:
            continue
        seen.add((name, depth))
        op = view.op(name)
        if op in _ENTER_OPS:
            if depth == 0:
                return Frame(view.attr(name, "frame_name"), view.attr(name, "parallel_iterations") or 10)
            depth -= 1
        elif op in _EXIT_OPS:
            depth += 1
        producers = [t.node for t in view.inputs(name)] + list(view.control_inputs(name))
        if not producers and depth == 0 and op != "Const":
            return None  # a placeholder or variable: the root frame
        stack.extend((producer, depth) for producer in producers)
    return None


def inside_loops(view: GraphView) -> set[str]:
    """Every node that runs inside a loop frame: what an Enter feeds, up to the loop's Exits.

    TensorFlow cannot fetch these from a session (each iteration would set
    the value again); the Exits carry the loop's results out.
    """
    return downstream_until(view, view.ops_of(_ENTER_OPS), _EXIT_OPS)


def downstream_until(view: GraphView, starts: list[str], stops: frozenset[str]) -> set[str]:
    """`starts` and every node they feed (data or control), up to but not including the ops in `stops`."""
    inside: set[str] = set()
    stack = list(starts)
    while stack:
        name = stack.pop()
        if name in inside or view.op(name) in stops:
            continue
        inside.add(name)
        stack.extend(view.consumers(name))
        stack.extend(view.control_users(name))
    return inside


_ENTER_OPS = frozenset({"Enter", "RefEnter"})
_EXIT_OPS = frozenset({"Exit", "RefExit"})
