"""The graph's data inputs: tf.data iterators replaced by placeholders.

A TF1 training script often reads its batches from a tf.data iterator
(`IteratorGetNext` on a OneShotIterator or IteratorV2), so the graph frozen
from its checkpoint has no placeholder: nothing can be fed, and TensorFlow
cannot run it without the dataset's files. Each IteratorGetNext output
becomes a placeholder of the iterator's type and shape: the node itself for
output 0 (references to `IteratorGetNext:0` stay valid), `<name>_1`, ... for
the others.
"""

from __future__ import annotations

from graphdoc.graph.ports import placeholder_port
from graphdoc.graph.view import GraphView, Tensor
from graphdoc.proto import AttrValue, NodeDef

ITERATOR_OPS = frozenset({"IteratorGetNext", "IteratorGetNextSync"})


def replace_iterators(view: GraphView) -> list[str]:
    """Replace every iterator's outputs by placeholders; one sentence per iterator saying which."""
    notes = []
    for name in view.ops_of(ITERATOR_OPS):
        feeding = [t.node for t in view.inputs(name)] + list(view.control_inputs(name))
        types = list(view.nodes[name].attr["output_types"].list.type)
        shapes = list(view.nodes[name].attr["output_shapes"].list.shape)
        placeholders = []
        for port in reversed(range(len(types))):  # output 0 last: the node itself becomes it
            placeholder = name if port == 0 else view.unique_name(f"{name}_{port}")
            node = NodeDef(name=placeholder, op="Placeholder")
            node.attr["dtype"].type = types[port]
            if port < len(shapes):
                node.attr["shape"].CopyFrom(AttrValue(shape=shapes[port]))
            if port == 0:
                view.replace_node(name, node)
            else:
                view.add_node(node)
                view.redirect_uses(Tensor(name, port), Tensor(placeholder))
            placeholders.append(str(placeholder_port(view, placeholder)))
        _drop_unused(view, feeding)
        notes.append(f"{name} (a tf.data iterator) became placeholder(s) {', '.join(reversed(placeholders))}")
    return notes


def _drop_unused(view: GraphView, names: list[str]) -> None:
    """Remove `names` and what only they read, where nothing reads them any more (the iterator
    and its dataset: left behind, they would look like outputs)."""
    stack = list(names)
    while stack:
        name = stack.pop()
        if name not in view or view.consumers(name) or view.control_users(name):
            continue
        stack.extend([t.node for t in view.inputs(name)] + list(view.control_inputs(name)))
        view.remove_nodes([name])

