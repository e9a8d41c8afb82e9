"""Remove nodes and constants that no graph output depends on.

A node is live when a graph output, or a live node (through its inputs or the outer
tensors its bodies read), reads one of its outputs; ONNX inference has no ops with side
effects, so every other node goes. Unused outputs of a live node are renamed "" (an
omitted optional output, which the compiler does not compute). Constants nothing live
reads go too, except those a graph input overrides. Bodies are left alone.

Before::

    graph g(x: float32[4]):
      c = constant float32[] 2.0
      unused = constant float32[] 3.0
      a = Mul(x, c) : float32[4]
      dead = Exp(a) : float32[4]
      y = Relu(a) : float32[4]
      return y

After::

    graph g(x: float32[4]):
      c = constant float32[] 2.0
      a = Mul(x, c) : float32[4]
      y = Relu(a) : float32[4]
      return y
"""

from __future__ import annotations

from dlc.graph.ir import Graph
from dlc.graph.passes.rewrite import node_reads, prune_types


def eliminate_dead_nodes(graph: Graph) -> Graph:
    """Drop what no output needs (see the module docstring); ``graph`` itself when
    everything is live."""
    live = set(graph.outputs)
    kept = []
    for node in reversed(graph.nodes):
        if not any(o and o in live for o in node.outputs):
            continue
        live |= node_reads(node)
        if any(o and o not in live for o in node.outputs):
            node = node.with_(outputs=tuple(o if o in live else "" for o in node.outputs))
        kept.append(node)
    kept.reverse()
    constants = {k: v for k, v in graph.constants.items() if k in live or k in graph.inputs}
    if len(kept) == len(graph.nodes) and len(constants) == len(graph.constants) and \
            all(a is b for a, b in zip(kept, graph.nodes)):
        return graph
    out = graph.copy()
    out.nodes = kept
    out.constants = constants
    prune_types(out)
    return out
