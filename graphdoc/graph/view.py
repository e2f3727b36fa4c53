"""An index over one graph body: the main graph or one library function.

The GraphDef (or FunctionDef) protobuf stays the single source of truth; the
view never copies attributes or tensor payloads. GraphView is composed of one
part per job, each in its own module:

- index.py: ids, op codes and edge arrays (columnar: a million nodes cannot
  afford a Python object per edge), and the overlay that edits write to;
- queries.py: what rules ask per node (op, inputs, uses, consumers);
- values.py: attributes with their OpDef defaults, and constants;
- editing.py: the checked edits fixes are applied through (EditError);
- algorithms.py: what the outputs need, prunes, order, cycles, sinks;
- networkx_export.py: a networkx graph over the same index, on request;
- storage.py: the NodeDefs themselves, and the conversion of values.

Each part builds on the ones before it; they share the index's fields
directly, because the per-node queries are the hot path of a scan.
"""

from __future__ import annotations

from functools import cached_property

from graphdoc.graph.algorithms import GraphAlgorithms
from graphdoc.graph.editing import EditError
from graphdoc.graph.index import FUNCTION_ARG_OP, Tensor, Use
from graphdoc.graph.networkx_export import to_networkx
from graphdoc.graph.values import TensorValues

__all__ = ["FUNCTION_ARG_OP", "EditError", "GraphView", "Tensor", "Use"]


class GraphView(GraphAlgorithms, TensorValues):
    """Names, edges and consumers of one graph body.

    `scope` is "" for the main graph and the function's name for a library
    function; in a function, the input arguments appear as nodes of op `_Arg`.
    """

    # Dropped by every edit that changes an op (ColumnarIndex._ops_changed).
    networkx = cached_property(to_networkx)
