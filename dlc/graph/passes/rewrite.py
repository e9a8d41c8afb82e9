"""Helpers shared by the graph passes (not a pass): where tensors are read, renaming
reads, fresh names, constants.

Control-flow bodies (Graph attributes of If/Loop/Scan) may read tensors of the enclosing
graph by name. The passes leave bodies alone (each body is compiled, and optimized, on its
own), but every read of an outer tensor from a body counts as a use of it, and renaming a
tensor renames those reads too (except where a body input shadows the name).
"""

from __future__ import annotations

import numpy as np

from dlc.graph.ir import Graph, Node


def subgraphs(node: Node) -> list:
    """The Graph attributes of ``node`` (bodies), including those inside lists."""
    found = []
    for value in node.attrs.values():
        if isinstance(value, Graph):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(v for v in value if isinstance(v, Graph))
    return found


def free_names(graph: Graph) -> set:
    """Tensors that ``graph`` or a body nested in it reads but does not define."""
    defined = set(graph.inputs) | set(graph.constants)
    free = set()
    for node in graph.nodes:
        free.update(x for x in node.inputs if x and x not in defined)
        for body in subgraphs(node):
            free.update(free_names(body) - defined)
        defined.update(o for o in node.outputs if o)
    free.update(x for x in graph.outputs if x not in defined)
    return free


def node_reads(node: Node) -> set:
    """The tensors ``node`` reads: its inputs and the outer tensors its bodies read."""
    reads = {x for x in node.inputs if x}
    for body in subgraphs(node):
        reads |= free_names(body)
    return reads


def use_counts(graph: Graph) -> dict:
    """Tensor name -> number of reads: node inputs (each occurrence), nodes whose bodies
    read it (once per node), and graph outputs (each occurrence)."""
    counts: dict = {}
    for node in graph.nodes:
        for x in node.inputs:
            if x:
                counts[x] = counts.get(x, 0) + 1
        for x in set().union(*(free_names(b) for b in subgraphs(node))):
            counts[x] = counts.get(x, 0) + 1
    for x in graph.outputs:
        counts[x] = counts.get(x, 0) + 1
    return counts


def resolve(mapping: dict, name: str) -> str:
    """``name`` followed through ``mapping`` (old name -> new name) to its final name."""
    seen = set()
    while name in mapping and name not in seen:
        seen.add(name)
        name = mapping[name]
    return name


def rename_reads(node: Node, mapping: dict) -> Node:
    """``node`` reading ``resolve(mapping, x)`` for every tensor ``x`` it reads (inputs
    and free reads of its bodies); the node itself when nothing changes."""
    if not mapping:
        return node
    inputs = tuple(resolve(mapping, x) if x else x for x in node.inputs)
    attrs = node.attrs
    if subgraphs(node):
        attrs = {k: _rename_attr(v, mapping) for k, v in node.attrs.items()}
        if all(attrs[k] is node.attrs[k] for k in attrs):
            attrs = node.attrs
    if inputs == node.inputs and attrs is node.attrs:
        return node
    return node.with_(inputs=inputs, attrs=attrs)


def _rename_attr(value, mapping):
    if isinstance(value, Graph):
        return _rename_body(value, mapping)
    if isinstance(value, (list, tuple)) and any(isinstance(v, Graph) for v in value):
        new = [_rename_attr(v, mapping) for v in value]
        return value if all(a is b for a, b in zip(new, value)) else type(value)(new)
    return value


def _rename_body(body: Graph, mapping: dict) -> Graph:
    """A body whose reads of outer tensors follow ``mapping`` (names the body defines
    itself shadow the outer ones)."""
    local = set(body.inputs) | set(body.constants) | {
        o for n in body.nodes for o in n.outputs if o}
    inner = {k: v for k, v in mapping.items() if k not in local}
    if not inner or not (free_names(body) & set(inner)):
        return body
    out = body.copy()
    out.nodes = [rename_reads(n, inner) for n in body.nodes]
    out.outputs = [resolve(inner, x) if x not in local else x for x in body.outputs]
    return out


def rename_everywhere(nodes: list, mapping: dict) -> list:
    """``nodes`` with every read and every output name ``x`` replaced by
    ``resolve(mapping, x)``."""
    if not mapping:
        return list(nodes)
    out = []
    for node in nodes:
        node = rename_reads(node, mapping)
        outputs = tuple(resolve(mapping, o) if o else o for o in node.outputs)
        out.append(node if outputs == node.outputs else node.with_(outputs=outputs))
    return out


def all_names(graph: Graph) -> set:
    """Every tensor name of ``graph`` and of the bodies nested in it."""
    names = set(graph.inputs) | set(graph.constants) | set(graph.outputs) | set(graph.types)
    for node in graph.nodes:
        names.update(x for x in node.inputs + node.outputs if x)
        for body in subgraphs(node):
            names |= all_names(body)
    return names


class Namer:
    """Fresh tensor names for a graph: ``fresh("w")`` is ``w`` if unused, else ``w_1``..."""

    def __init__(self, graph: Graph):
        self.taken = all_names(graph)

    def fresh(self, base: str) -> str:
        name, k = base, 0
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name


def constant(graph: Graph, name: str):
    """The value of tensor ``name`` if it is a constant that no graph input overrides."""
    if not name or name in graph.inputs:
        return None
    return graph.constants.get(name)


def scalar_constant(graph: Graph, name: str):
    """The single value of a one-element constant as a Python float, else None."""
    value = constant(graph, name)
    if value is None or value.size != 1 or value.dtype.kind not in "fiu":
        return None
    return float(value.reshape(-1)[0])


def prune_types(graph: Graph) -> None:
    """Drop (in place) the types of tensors ``graph`` no longer defines."""
    defined = set(graph.inputs) | set(graph.constants) | {
        o for n in graph.nodes for o in n.outputs if o}
    graph.types = {k: t for k, t in graph.types.items() if k in defined}


def rewrite_nodes(graph: Graph, rewrite) -> Graph:
    """Replace each node that ``rewrite(out, node)`` answers with a list of nodes (``out``:
    the copy being built, where it adds constants and types; None keeps the node); the
    weights (input 1) of replaced nodes that nothing reads any more are dropped. Returns
    ``graph`` itself when no node was replaced."""
    out = graph.copy()
    nodes: list = []
    replaced: set = set()
    for node in graph.nodes:
        new = rewrite(out, node)
        if new is None:
            nodes.append(node)
        else:
            nodes.extend(new)
            replaced.add(node.inputs[1])
    if not replaced:
        return graph
    out.nodes = nodes
    uses = use_counts(out)
    for name in replaced:
        if not uses.get(name) and name not in out.inputs:
            out.constants.pop(name, None)
    prune_types(out)
    return out


def as_array(value, like: np.ndarray) -> np.ndarray:
    """``value`` as a C-contiguous array of ``like``'s dtype."""
    return np.ascontiguousarray(np.asarray(value).astype(like.dtype))
