"""Group nodes into kernels: a convolution or matmul absorbs its elementwise epilogue
(bias, activation, residual add, clip, quantize); a reduction absorbs elementwise
producers and its epilogue; chains of elementwise, broadcast and injective ops become
one kernel.

A node joins the group of one of its producers only when that keeps the graph acyclic at
the level of groups (the other groups it waits for must not wait for this one) and a group
anchored at a convolution, matmul or reduction keeps the anchor's result private. Groups
hold at most MAX_GROUP_SIZE nodes.

Before::

    graph g(x: float32[1, 16, 8, 8]):
      w = constant float32[16, 16, 3, 3]
      b = constant float32[16]
      c = Conv(x, w, b) {pads=[1, 1, 1, 1]} : float32[1, 16, 8, 8]
      r = Relu(c) : float32[1, 16, 8, 8]
      y = Add(r, x) : float32[1, 16, 8, 8]
      return y

After::

    graph g(x: float32[1, 16, 8, 8]):
      w = constant float32[16, 16, 3, 3]
      b = constant float32[16]
      y = FusedGroup(x, w, b) {anchor='c', body=<graph fused_conv_relu_add_0>} : float32[1, 16, 8, 8]
        graph fused_conv_relu_add_0(x: float32[1, 16, 8, 8], w: float32[16, 16, 3, 3], b: float32[16]):
          w = constant float32[16, 16, 3, 3]
          b = constant float32[16]
          c = Conv(x, w, b) {pads=[1, 1, 1, 1]} : float32[1, 16, 8, 8]
          r = Relu(c) : float32[1, 16, 8, 8]
          y = Add(r, x) : float32[1, 16, 8, 8]
          return y
      return y
"""

from __future__ import annotations

from dlc.graph.ir import Graph, Node
from dlc.graph.passes.rewrite import prune_types
from dlc.ops import registry
from dlc.ops.registry import BROADCAST, COMPLEX, ELEMWISE, INJECTIVE, OPAQUE, REDUCE

MAX_GROUP_SIZE = 24
_EWISE = (ELEMWISE, BROADCAST)


class _Group:
    def __init__(self, node: Node, pattern: str):
        self.nodes = [node]
        self.anchor = node
        self.kind = pattern

    @property
    def produced(self) -> set:
        return {o for n in self.nodes for o in n.outputs if o}


def _pattern(node: Node) -> str:
    op = registry.get(node.op)
    if op.host or any(hasattr(v, "nodes") for v in node.attrs.values()):
        return OPAQUE
    return op.node_pattern(node.attrs)


def fuse_ops(graph: Graph) -> Graph:
    """Replace groups of fusable nodes by FusedGroup nodes (see the module docstring)."""
    consumers = graph.consumers()
    producers = graph.producers()
    outputs = set(graph.outputs)
    group_of: dict = {}
    groups: list = []
    for node in graph.nodes:
        pattern = _pattern(node)
        target = _merge_target(graph, node, pattern, group_of, consumers, producers, outputs)
        if target is not None:
            target.nodes.append(node)
            if pattern == REDUCE and target.kind in _EWISE:
                target.kind, target.anchor = REDUCE, node
            elif target.kind in _EWISE and pattern == INJECTIVE:
                target.kind = INJECTIVE
            if target.kind in _EWISE + (INJECTIVE,):
                target.anchor = node
            group_of[id(node)] = target
        else:
            group = _Group(node, pattern)
            groups.append(group)
            group_of[id(node)] = group
    if all(len(g.nodes) == 1 for g in groups):
        return graph
    return _rebuild(graph, groups, consumers, outputs)


def _merge_target(graph, node, pattern, group_of, consumers, producers, outputs):
    """The producer group ``node`` can join, or None."""
    if pattern not in _EWISE + (INJECTIVE, REDUCE):
        return None
    candidates = []
    for x in node.inputs:
        p = producers.get(x) if x else None
        if p is not None:
            g = group_of[id(p)]
            if g not in candidates:
                candidates.append(g)
    for g in candidates:
        if len(g.nodes) >= MAX_GROUP_SIZE or not _compatible(graph, g, node, pattern):
            continue
        if not _links_are_private(g, node, consumers, outputs):
            continue
        if _creates_cycle(graph, g, node, group_of, producers):
            continue
        return g
    return None


def _out_type(graph, node):
    return graph.types.get(node.outputs[0])


def _compatible(graph, g, node, pattern) -> bool:
    if pattern == REDUCE:
        return g.kind in _EWISE  # elementwise prologue, inlined into the reduction
    if g.kind in _EWISE + (INJECTIVE,):
        return pattern in _EWISE + (INJECTIVE,)
    if g.kind in (COMPLEX, REDUCE) and pattern in _EWISE:
        # an epilogue over the anchor's own iteration space
        return _out_type(graph, node) is not None and \
            _out_type(graph, node).shape == _out_type(graph, g.anchor).shape
    return False


def _links_are_private(g, node, consumers, outputs) -> bool:
    """Tensors of the group that ``node`` reads: for groups anchored at a convolution,
    matmul or reduction, the anchor's result must not be needed elsewhere."""
    produced = g.produced
    members = set(map(id, g.nodes)) | {id(node)}
    for x in node.inputs:
        if x not in produced:
            continue
        readers = consumers.get(x, [])
        private = x not in outputs and all(id(r) in members for r in readers)
        if not private and g.kind in (COMPLEX, REDUCE):
            return False
    return True


def _creates_cycle(graph, g, node, group_of, producers) -> bool:
    """True if an input of ``node`` from outside ``g`` depends on ``g``, through nodes or
    through other groups (a group depends on every group that produces one of its
    members' inputs: merging would make the two groups wait for each other)."""
    produced = g.produced
    stack = [group_of[id(producers[x])] for x in node.inputs
             if x and x not in produced and x in producers]
    seen = set()
    while stack:
        h = stack.pop()
        if h is g:
            return True
        if id(h) in seen:
            continue
        seen.add(id(h))
        inside = h.produced
        for member in h.nodes:
            for x in member.inputs:
                if x and x not in inside and x in producers:
                    stack.append(group_of[id(producers[x])])
    return False


def _rebuild(graph: Graph, groups, consumers, outputs) -> Graph:
    out = graph.copy()
    nodes = []
    for k, g in enumerate(groups):
        if len(g.nodes) == 1:
            nodes.append(g.nodes[0])
            continue
        nodes.append(_group_node(graph, g, k, consumers, outputs))
    out.nodes = _topological(nodes)
    prune_types(out)  # tensors inside groups are typed in the group bodies
    return out


def _group_node(graph, g, index, consumers, outputs) -> Node:
    members = set(map(id, g.nodes))
    produced = g.produced
    inputs = []
    for n in g.nodes:
        for x in n.inputs:
            if x and x not in produced and x not in inputs:
                inputs.append(x)
    outs = [o for n in g.nodes for o in n.outputs if o and (
        o in outputs or any(id(r) not in members for r in consumers.get(o, [])))]
    name = "fused_" + "_".join(n.op.lower() for n in g.nodes[:4]) + f"_{index}"
    body = Graph(name, list(inputs), list(outs), list(g.nodes))
    for x in inputs:
        body.types[x] = graph.types[x]
        if x in graph.constants:
            body.constants[x] = graph.constants[x]
    for o in produced:
        body.types[o] = graph.types[o]
    anchor = g.anchor.outputs[0]
    return Node("FusedGroup", tuple(inputs), tuple(outs), {"body": body, "anchor": anchor},
                name)


def _topological(nodes: list) -> list:
    """Kahn's algorithm, keeping the original order among ready nodes."""
    producer = {o: n for n in nodes for o in n.outputs if o}
    position = {id(n): k for k, n in enumerate(nodes)}
    deps = {id(n): {id(producer[x]) for x in n.inputs if x in producer} - {id(n)}
            for n in nodes}
    users: dict = {}
    for n in nodes:
        for d in deps[id(n)]:
            users.setdefault(d, []).append(n)
    import heapq

    ready = [(position[id(n)], id(n), n) for n in nodes if not deps[id(n)]]
    heapq.heapify(ready)
    order = []
    while ready:
        _, key, n = heapq.heappop(ready)
        order.append(n)
        for u in users.get(key, []):
            deps[id(u)].discard(key)
            if not deps[id(u)]:
                heapq.heappush(ready, (position[id(u)], id(u), u))
    if len(order) != len(nodes):  # pragma: no cover - guarded by _creates_cycle
        raise AssertionError("fuse_ops produced a cycle")
    return order
