"""Fold constant scales and biases into the Conv, ConvTranspose, MatMul or Gemm before
them.

``Mul(y, c)`` / ``Mul(c, y)`` / ``Div(y, c)`` where ``y`` is a float Conv/ConvTranspose/
MatMul/Gemm output with constant weights that nothing else reads, and ``c`` a finite,
nonzero constant that is a scalar or one value per output channel (axis 1 of a
convolution, the last axis of a matmul) and leaves the shape unchanged: the weights (and
bias) are scaled, ``w' = w * c`` (``w / c`` for Div, as ``w * (1 / c)``).
``Add(y, c)`` / ``Add(c, y)`` / ``Sub(y, c)``: ``c`` is added to the bias (Conv's and
ConvTranspose's B when ``c`` is per channel; Gemm's C, with beta folded in; a 2-D MatMul
becomes a Gemm with C = ``c``); the weights need not be constant. Chains fold one after
the other.

New weights are computed in float64 and rounded once; results differ only by that
rounding and the reassociation ``(x @ w) * c == x @ (w * c)``. Bodies are left alone.

Before::

    graph g(x: float32[3, 4]):
      w = constant float32[4, 2] [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]]
      s = constant float32[2] [2.0, 0.5]
      b = constant float32[2] [1.0, -1.0]
      m = MatMul(x, w) : float32[3, 2]
      p = Mul(m, s) : float32[3, 2]
      y = Add(p, b) : float32[3, 2]
      return y

After (``eliminate_dead_nodes`` removes the old constants)::

    graph g(x: float32[3, 4]):
      w = constant float32[4, 2] [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]]
      s = constant float32[2] [2.0, 0.5]
      b = constant float32[2] [1.0, -1.0]
      w_folded = constant float32[4, 2] [[0.0, 0.5], [4.0, 1.5], [8.0, 2.5], [12.0, 3.5]]
      w_bias_folded = constant float32[2] [1.0, -1.0]
      y = Gemm(x, w_folded, w_bias_folded) : float32[3, 2]
      return y
"""

from __future__ import annotations

import numpy as np

from dlc import dtypes
from dlc.graph.ir import Graph, Node, TensorType
from dlc.graph.passes.linear import (
    LINEAR_OPS,
    channel_axis,
    fold_affine,
    fold_into_producers,
    per_channel,
)
from dlc.graph.passes.rewrite import Namer, constant

_OPS = ("Mul", "Div", "Add", "Sub")


def fold_scales(graph: Graph) -> Graph:
    """Fold constant scales and biases (see the module docstring); ``graph`` itself when
    none folds."""
    return fold_into_producers(graph, _OPS, _fold)


def _operands(graph: Graph, node: Node):
    """(the linear op's output y, the constant c) of an elementwise node, or None."""
    orders = [(0, 1), (1, 0)] if node.op in ("Mul", "Add") else [(0, 1)]
    for i, j in orders:
        y, c = node.inputs[i], constant(graph, node.inputs[j])
        if c is not None and constant(graph, y) is None:
            return y, c
    return None


def _fold(out: Graph, node: Node, nodes: list, producer: dict, uses: dict, namer: Namer):
    """[the node replacing ``node`` and its producer (dropped from ``nodes``)], or None."""
    found = _operands(out, node) if len(node.inputs) == 2 else None
    if found is None:
        return None
    y, c = found
    index = producer.get(y)
    prod = nodes[index] if index is not None else None
    if prod is None or prod.op not in LINEAR_OPS or uses.get(y) != 1 or y in out.outputs:
        return None
    yt, zt = out.types.get(y), out.types.get(node.outputs[0])
    if yt is None or yt != zt or not dtypes.is_float(yt.dtype) or not node.outputs[0]:
        return None
    scale = shift = None
    if node.op in ("Mul", "Div"):
        scale = per_channel(c, yt.shape, channel_axis(prod.op))
        if scale is None or not np.all(np.isfinite(scale)) or np.any(scale == 0):
            return None
        if node.op == "Div":
            scale = 1.0 / scale
    else:
        shift = c.astype(np.float64) * (-1.0 if node.op == "Sub" else 1.0)
    result = fold_affine(out, prod, scale, shift, node.outputs[0], namer)
    if result is None:
        return None
    new, constants = result
    for name, value in constants.items():
        out.constants[name] = value
        out.types[name] = TensorType.of(value)
    nodes[index] = None
    return [new]
