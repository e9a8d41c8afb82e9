"""Infer the type of every tensor and fold nodes whose inputs are all constants.

Before::

    graph g(x: float32[2, 3]):
      s = Shape(x) : ?
      y = Reshape(x, s) : ?

After::

    graph g(x: float32[2, 3]):
      s = constant int64[2] [2, 3]
      y = Reshape(x, s) : float32[2, 3]

Nodes whose output types need values known only at run time (a shape computed from
data, a data-dependent output size) are left untyped; ``graph.types`` then lacks their
outputs and the compiler specializes the rest of the graph at run time.
"""

from __future__ import annotations

import numpy as np

from dlc import dtypes
from dlc.graph.ir import Graph
from dlc.ops import registry

#: Constants larger than this are not materialized by folding.
MAX_FOLDED_BYTES = 64 << 20


def infer_types(graph: Graph, fold: bool = True) -> Graph:
    """Type every tensor of ``graph`` (see the module docstring)."""
    out = graph.copy()
    out.nodes = []
    for node in graph.nodes:
        if any(name and name not in out.types for name in node.inputs):
            out.nodes.append(node)  # downstream of a dynamic node: typed at run time
            continue
        op = registry.get(node.op)
        in_types = [out.types[x] if x else None for x in node.inputs]
        in_values = [out.constants.get(x) if x else None for x in node.inputs]
        ctx = registry.make_context(op, node.name, node.attrs, in_types, in_values)
        try:
            types = registry.infer_node(op, ctx)
        except registry.NeedsValueError:
            out.nodes.append(node)
            continue
        if len(types) < len(node.outputs):
            raise ctx.error(f"has {len(node.outputs)} outputs but produces {len(types)}")
        for name, t in zip(node.outputs, types):
            if name:
                out.types[name] = t
        values = fold_node(op, ctx, node, out.constants) if fold else None
        if values is None:
            out.nodes.append(node)
            continue
        for name, value in zip(node.outputs, values):
            if name:
                out.constants[name] = value
    return out


def fold_node(op, ctx, node, constants: dict) -> list | None:
    """The values of ``node``'s outputs when it can be evaluated at compile time, else
    None: a deterministic op whose present inputs are all in ``constants`` (or that reads
    only input types), with outputs of at most MAX_FOLDED_BYTES. ``ctx`` is the node's
    context after ``registry.infer_node``. Shared with the fold_constants pass."""
    present = [x for x in node.inputs if x]
    if getattr(op, "random", False):
        return None
    if op.reads_input_values and not all(x in constants for x in present):
        return None
    if sum(t.nbytes for t in ctx.out_types) > MAX_FOLDED_BYTES:
        return None
    arrays = [constants.get(x) if x else None for x in node.inputs]
    values = registry.run_reference(op, ctx, arrays)
    return [np.array(value, dtype=dtypes.to_numpy(t.dtype), order="C").reshape(t.shape)
            for value, t in zip(values, ctx.out_types)]


def untyped_nodes(graph: Graph) -> list:
    """Nodes with an output whose type is not known at compile time."""
    return [node for node in graph.nodes
            if any(name and name not in graph.types for name in node.outputs)]
