"""Check that a graph is well formed: every tensor defined once and before use, every
operator known, attributes valid, stored types consistent with inference."""

from __future__ import annotations

from dlc.errors import ModelError
from dlc.graph.ir import Graph
from dlc.ops import registry


def verify(graph: Graph, outer: set | None = None) -> None:
    """Raise ModelError naming the first problem found."""
    defined = set(outer or ())
    for name in list(graph.inputs) + list(graph.constants):
        if name in defined and name not in (outer or ()):
            raise ModelError(f"graph {graph.name}: tensor {name!r} is defined twice")
        defined.add(name)
    for node in graph.nodes:
        label = f"{node.op} node {node.name!r}"
        if not registry.is_registered(node.op):
            raise ModelError(f"graph {graph.name}: {label} uses unknown operator {node.op}")
        for name in node.inputs:
            if name and name not in defined:
                raise ModelError(f"graph {graph.name}: {label} reads {name!r}, which is not "
                                 "defined before it (dangling edge or cycle)")
        for value in node.attrs.values():  # bodies see the scope before the node
            if isinstance(value, Graph):
                verify(value, defined)
        for name in node.outputs:
            if not name:
                continue
            if name in defined:
                raise ModelError(f"graph {graph.name}: {label} redefines tensor {name!r}")
            defined.add(name)
    for name in graph.outputs:
        if name not in defined:
            raise ModelError(f"graph {graph.name}: output {name!r} is not defined")
