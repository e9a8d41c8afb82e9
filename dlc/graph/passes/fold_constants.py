"""Evaluate nodes whose inputs are all constants with their NumPy reference.

``infer_types`` already folds while it types an imported graph; this pass folds what
other passes leave behind, with the same rule (``infer_types.fold_node``): deterministic
ops whose present inputs are all constants, or that read only input types (Shape, Size),
with outputs of at most ``MAX_FOLDED_BYTES``. Constants that a graph input overrides are
not folded, nor are nodes whose bodies read outer tensors by name. The inputs left
unused are removed by ``eliminate_dead_nodes``.

Before::

    graph g(x: float32[2, 3]):
      a = constant float32[3] [1.0, 2.0, 3.0]
      b = constant float32[] 2.0
      s = Mul(a, b) : float32[3]
      y = Add(x, s) : float32[2, 3]
      return y

After::

    graph g(x: float32[2, 3]):
      a = constant float32[3] [1.0, 2.0, 3.0]
      b = constant float32[] 2.0
      s = constant float32[3] [2.0, 4.0, 6.0]
      y = Add(x, s) : float32[2, 3]
      return y
"""

from __future__ import annotations

from dlc.graph.ir import Graph, TensorType
from dlc.graph.passes.infer_types import fold_node
from dlc.graph.passes.rewrite import free_names, subgraphs
from dlc.ops import registry


def fold_constants(graph: Graph) -> Graph:
    """Fold constant nodes of ``graph`` (see the module docstring); ``graph`` itself when
    nothing folds. Nodes left untyped that folding makes typeable get their types."""
    out = graph.copy()
    out.nodes = []
    known = {k: v for k, v in graph.constants.items() if k not in graph.inputs}
    changed = False
    for node in graph.nodes:
        ctx = _context(out, node, known)
        if ctx is None:
            out.nodes.append(node)
            continue
        for name, t in zip(node.outputs, ctx.out_types):
            if name and name not in out.types:
                out.types[name] = t
                changed = True
        values = None if free_names_read(node) else \
            fold_node(registry.get(node.op), ctx, node, known)
        if values is None:
            out.nodes.append(node)
            continue
        changed = True
        for name, value in zip(node.outputs, values):
            if name:
                out.constants[name] = known[name] = value
                out.types[name] = TensorType.of(value)
    return out if changed else graph


def free_names_read(node) -> bool:
    """Whether a body of ``node`` reads tensors of the enclosing graph by name (such a
    node cannot be evaluated on its inputs alone)."""
    return any(free_names(body) for body in subgraphs(node))


def _context(graph: Graph, node, known: dict):
    """The node's context after type inference when it may fold or is untyped; None
    when neither (or when its types need values known only at run time)."""
    op = registry.get(node.op)
    present = [x for x in node.inputs if x]
    if any(x not in graph.types for x in present):
        return None
    untyped = any(o and o not in graph.types for o in node.outputs)
    if not untyped and op.reads_input_values and not all(x in known for x in present):
        return None  # cheap test first; fold_node decides
    in_types = [graph.types[x] if x else None for x in node.inputs]
    in_values = [known.get(x) if x else None for x in node.inputs]
    ctx = registry.make_context(op, node.name, node.attrs, in_types, in_values)
    try:
        registry.infer_node(op, ctx)
    except registry.NeedsValueError:
        return None
    return ctx
