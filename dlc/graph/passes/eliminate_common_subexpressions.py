"""Merge nodes that compute the same thing, and constants with the same value.

Two nodes are the same when they have one op, equal attributes (defaults filled in) and
the same inputs (in any order for the commutative Add, Mul, And, Or, Xor, Equal and
BitwiseAnd/Or/Xor; float addition and multiplication commute exactly). Attribute values
compare by kind and exact value: arrays by dtype, shape and bytes, floats bit for bit
(``0.0`` and ``-0.0`` differ), bodies (Graph attributes) by structure, tensor names
included. Random ops are never merged. Constants merge when dtype, shape and bytes are
equal (constants a graph input overrides are left alone).

The later duplicate's reads are redirected to the first one's outputs. When the duplicate
produces a graph output, the survivor takes over that name; a duplicate of a graph
output by another graph output is kept (the graph needs both names).

Before::

    graph g(x: float32[4]):
      c1 = constant float32[] 2.0
      c2 = constant float32[] 2.0
      a = Mul(x, c1) : float32[4]
      b = Mul(c2, x) : float32[4]
      y = Add(a, b) : float32[4]
      return y

After::

    graph g(x: float32[4]):
      c1 = constant float32[] 2.0
      a = Mul(x, c1) : float32[4]
      y = Add(a, a) : float32[4]
      return y
"""

from __future__ import annotations

import hashlib

import numpy as np

from dlc.graph.ir import Graph
from dlc.graph.passes.rewrite import prune_types, rename_everywhere, rename_reads
from dlc.ops import registry

COMMUTATIVE = {"Add", "Mul", "And", "Or", "Xor", "Equal", "BitwiseAnd", "BitwiseOr",
               "BitwiseXor"}


def eliminate_common_subexpressions(graph: Graph) -> Graph:
    """Merge duplicate nodes and constants (see the module docstring); ``graph`` itself
    when there are none."""
    subst, constants = _merge_constants(graph)
    outputs = set(graph.outputs)
    seen: dict = {}      # node key -> index in nodes
    nodes: list = []
    renames: dict = {}   # survivor output -> graph output name it takes over
    for node in graph.nodes:
        node = rename_reads(node, subst)
        key = _node_key(node)
        first = seen.get(key) if key is not None else None
        if first is None or not _mergeable(nodes[first], node, outputs):
            if key is not None and first is None:
                seen[key] = len(nodes)
            nodes.append(node)
            continue
        kept = nodes[first]
        new_outputs = list(kept.outputs)
        for k, (a, b) in enumerate(zip(kept.outputs, node.outputs)):
            if not b:
                continue
            if b in outputs:  # the survivor takes over the graph output's name
                renames[a] = b
                subst[a] = b
                new_outputs[k] = b
            else:
                subst[b] = a
        nodes[first] = kept.with_(outputs=tuple(new_outputs))
    if len(nodes) == len(graph.nodes) and len(constants) == len(graph.constants):
        return graph
    out = graph.copy()
    out.constants = constants
    out.nodes = rename_everywhere(nodes, renames)
    prune_types(out)
    return out


def _merge_constants(graph: Graph):
    """(name -> surviving constant name, the constants kept)."""
    first: dict = {}
    subst: dict = {}
    kept: dict = {}
    for name, value in graph.constants.items():
        if name in graph.inputs or name in graph.outputs:
            kept[name] = value
            continue
        value = np.ascontiguousarray(value)
        key = (value.dtype.str, value.shape, hashlib.sha256(value.tobytes()).digest())
        other = first.get(key)
        if other is not None and graph.constants[other].tobytes() == value.tobytes():
            subst[name] = other
            continue
        first.setdefault(key, name)
        kept[name] = graph.constants[name]
    return subst, kept


def _mergeable(kept, dup, outputs: set) -> bool:
    if len(kept.outputs) != len(dup.outputs):
        return False
    for a, b in zip(kept.outputs, dup.outputs):
        if b and not a:
            return False  # the survivor does not produce that output
        if b in outputs and a in outputs:
            return False  # both names are graph outputs
    return True


def _node_key(node):
    """A hashable key equal for nodes computing the same values; None: never merge."""
    op = registry.get(node.op)
    if getattr(op, "random", False):
        return None
    attrs = {k: v for k, v in op.attrs.items() if v is not registry.REQUIRED}
    attrs.update(node.attrs)
    try:
        attr_key = tuple(sorted((k, _value_key(v)) for k, v in attrs.items()))
    except _Opaque:
        return None
    inputs = node.inputs
    if node.op in COMMUTATIVE and len(inputs) == 2:
        inputs = tuple(sorted(inputs))
    return node.op, attr_key, inputs, len(node.outputs)


class _Opaque(Exception):
    """An attribute value this pass cannot compare."""


def _value_key(value):
    if value is None:
        return ("none",)
    if isinstance(value, (bool, int, np.integer)):
        return ("int", int(value))
    if isinstance(value, (float, np.floating)):
        return ("float", float(value).hex())
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, np.ndarray):
        v = np.ascontiguousarray(value)
        return ("array", v.dtype.str, v.shape, v.tobytes())
    if isinstance(value, (list, tuple)):
        return ("list", tuple(_value_key(v) for v in value))
    if isinstance(value, Graph):
        return ("graph", _graph_key(value))
    raise _Opaque


def _graph_key(g: Graph):
    """Structure of a body: everything but its name and node names."""
    return (tuple(g.inputs), tuple(g.outputs),
            tuple((k, str(g.types.get(k))) for k in sorted(g.types)),
            tuple((k, _value_key(v)) for k, v in sorted(g.constants.items())),
            tuple((n.op, n.inputs, n.outputs,
                   tuple(sorted((k, _value_key(v)) for k, v in n.attrs.items())))
                  for n in g.nodes))
