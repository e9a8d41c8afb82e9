"""Pre-pack the constant weights of float32 dense layers into column panels, once, at
compile time (``Dense``, see dlc.ops.dense), so that the kernel reads them contiguously.

* ``MatMul(x, W)`` with a constant 2-D ``W`` and ``x`` of rank 2 or more becomes
  ``Dense(x, W_packed)``.
* ``Gemm(x, W, C)`` with a constant ``W`` (``transB`` either way) and ``transA = 0``
  becomes ``Dense(x, alpha * W'_packed)`` followed by ``Add(.., beta * C)`` (with ``C``
  folded by ``beta`` when it is constant, else a ``Mul`` by ``beta``); the fusion pass then
  makes that Add the kernel's epilogue.

Weights that nothing else reads are dropped. The panel width depends only on the number of
output columns (``panel_width``).

Before::

    graph g(x: float32[2, 3]):
      w = constant float32[3, 20]
      b = constant float32[20]
      y = Gemm(x, w, b) : float32[2, 20]
      return y

After::

    graph g(x: float32[2, 3]):
      b = constant float32[20]
      w_packed = constant float32[1, 3, 32]
      y_dense = Dense(x, w_packed) {units=20} : float32[2, 20]
      y = Add(y_dense, b) : float32[2, 20]
      return y
"""

from __future__ import annotations

import numpy as np

from dlc.graph.ir import Graph, Node, TensorType
from dlc.graph.passes.rewrite import Namer, constant, rewrite_nodes
from dlc.ops.dense import DENSE_DTYPES, np_pack_panels, panel_width
from dlc.target import Target


def pack_dense_weights(graph: Graph, target: Target | str | None = None) -> Graph:
    """Turn matmuls with constant float32 weights into Dense layers (see the module
    docstring), with panels as wide as ``target``'s vectors call for; ``graph`` itself
    when none qualifies."""
    hw = Target.parse(target).hardware
    namer = Namer(graph)

    def rewrite(out: Graph, node: Node):
        if node.op == "MatMul":
            return _matmul(out, node, namer, hw)
        if node.op == "Gemm":
            return _gemm(out, node, namer, hw)
        return None

    return rewrite_nodes(graph, rewrite)


def _fits(graph: Graph, x: str, w) -> bool:
    """Whether ``w`` (a constant, or None) can be the weights of a dense layer on ``x``:
    float32 matrices, ``x`` of rank 2 or more with ``w.shape[0]`` columns."""
    xt = graph.types.get(x)
    return w is not None and w.ndim == 2 and w.size > 0 and xt is not None and \
        xt.ndim >= 2 and xt.dtype in DENSE_DTYPES and w.dtype == np.dtype(xt.dtype) and \
        w.shape[0] == xt.shape[-1]


def _dense(graph: Graph, x: str, w: np.ndarray, wname: str, y: str, out_name: str,
           node_name: str, namer: Namer, hw) -> Node:
    units = w.shape[1]
    packed = namer.fresh(f"{wname}_packed")
    graph.constants[packed] = np_pack_panels(w, panel_width(units, hw))
    graph.types[packed] = TensorType.of(graph.constants[packed])
    graph.types[out_name] = graph.types[y]
    return Node("Dense", (x, packed), (out_name,), {"units": units}, node_name)


def _matmul(graph: Graph, node: Node, namer: Namer, hw):
    x, wname = node.inputs
    y = node.outputs[0]
    w = constant(graph, wname)
    if not y or not _fits(graph, x, w):
        return None
    return [_dense(graph, x, w, wname, y, y, node.name, namer, hw)]


def _gemm(graph: Graph, node: Node, namer: Namer, hw):
    x, wname = node.inputs[:2]
    c = node.inputs[2] if len(node.inputs) > 2 else ""
    y = node.outputs[0]
    attrs = node.attrs
    w = constant(graph, wname)
    if attrs.get("transA", 0) or not y or w is None or w.ndim != 2:
        return None
    w = w.T if attrs.get("transB", 0) else w
    if not _fits(graph, x, w):
        return None
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    if alpha != 1.0:
        w = (w.astype(np.float64) * alpha).astype(w.dtype)
    w = np.ascontiguousarray(w)
    base = node.name or y
    if not c or beta == 0.0:
        return [_dense(graph, x, w, wname, y, y, node.name, namer, hw)]
    product = namer.fresh(f"{y}_dense")
    nodes = [_dense(graph, x, w, wname, y, product, node.name, namer, hw)]
    cval = constant(graph, c)
    if beta != 1.0 and cval is not None:
        scaled = namer.fresh(f"{c}_scaled")
        graph.constants[scaled] = (cval.astype(np.float64) * beta).astype(cval.dtype)
        graph.types[scaled] = TensorType.of(graph.constants[scaled])
        c = scaled
    elif beta != 1.0:
        factor = namer.fresh(f"{base}_beta")
        graph.constants[factor] = np.array(beta, graph.types[c].dtype)
        graph.types[factor] = TensorType((), graph.types[c].dtype)
        scaled = namer.fresh(f"{c}_scaled")
        graph.types[scaled] = graph.types[c]
        nodes.append(Node("Mul", (c, factor), (scaled,), {}, f"{base}_beta"))
        c = scaled
    nodes.append(Node("Add", (product, c), (y,), {}, f"{base}_bias"))
    return nodes
