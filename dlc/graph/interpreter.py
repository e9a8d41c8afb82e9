"""Run a graph with each op's NumPy reference: the oracle for tests."""

from __future__ import annotations

import numpy as np

from dlc.errors import ArgumentError
from dlc.graph.ir import Graph, TensorType
from dlc.ops import registry


def run_graph(graph: Graph, inputs: dict, outer: dict | None = None) -> list:
    """Evaluate ``graph`` on ``inputs`` (name -> array); returns the outputs in order.
    ``outer`` provides values of enclosing graphs (for control-flow bodies)."""
    env = dict(outer or {})
    env.update(graph.constants)
    for name in graph.inputs:
        if name not in inputs:
            if name in graph.constants:
                continue
            raise ArgumentError(f"missing input {name!r}")
        env[name] = np.asarray(inputs[name])
    for node in graph.nodes:
        op = registry.get(node.op)
        arrays = [env[x] if x else None for x in node.inputs]
        in_types = [TensorType.of(a) if a is not None else None for a in arrays]
        ctx = registry.make_context(op, node.name, node.attrs, in_types, arrays)
        ctx.outer_env = env
        registry.infer_node(op, ctx)
        results = op.reference(ctx, *arrays)
        for name, value in zip(node.outputs, results):
            if name:
                env[name] = np.asarray(value)
    return [env[name] for name in graph.outputs]

