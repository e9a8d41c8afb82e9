"""Fold inference BatchNormalization with constant parameters into what precedes it.

BN computes ``(x - mean) / sqrt(var + eps) * gamma + beta`` per channel, that is
``x * f + (beta - mean * f)`` with ``f = gamma / sqrt(var + eps)``.

- After a Conv or ConvTranspose (constant weights, constant or no bias), or a MatMul or
  Gemm with constant 2-D weights and a 2-D output (BN's channel is then the column),
  whose output nothing else reads: the weights are scaled per output channel,
  ``w' = w * f``, and the bias becomes ``b' = (b - mean) * f + beta`` (a MatMul becomes a
  Gemm with that C).
- Otherwise, for float32 and float64 inputs: ``Mul(x, f)`` then ``Add(.., beta - mean *
  f)``, with ``f`` and the shift shaped per channel (half-precision BN is left alone: the
  folded factors would be rounded to half precision).

Factors are computed in float64 and rounded once to the tensor dtype; results differ
from BN's by that rounding and by the reassociation above. Bodies are left alone.

Before::

    graph g(x: float32[1, 2, 4, 4]):
      w = constant float32[2, 2, 1, 1] [[[[1.0]], [[2.0]]], [[[3.0]], [[4.0]]]]
      gamma = constant float32[2] [2.0, 3.0]
      beta = constant float32[2] [0.5, 0.0]
      mean = constant float32[2] [1.0, 0.0]
      var = constant float32[2] [4.0, 1.0]
      c = Conv(x, w) : float32[1, 2, 4, 4]
      y = BatchNormalization(c, gamma, beta, mean, var) {epsilon=0.0} : float32[1, 2, 4, 4]
      return y

After (``eliminate_dead_nodes`` removes the old constants)::

    graph g(x: float32[1, 2, 4, 4]):
      w = constant float32[2, 2, 1, 1] [[[[1.0]], [[2.0]]], [[[3.0]], [[4.0]]]]
      gamma = constant float32[2] [2.0, 3.0]
      beta = constant float32[2] [0.5, 0.0]
      mean = constant float32[2] [1.0, 0.0]
      var = constant float32[2] [4.0, 1.0]
      w_folded = constant float32[2, 2, 1, 1] [[[[1.0]], [[2.0]]], [[[9.0]], [[12.0]]]]
      w_bias_folded = constant float32[2] [-0.5, 0.0]
      y = Conv(x, w_folded, w_bias_folded) : float32[1, 2, 4, 4]
      return y
"""

from __future__ import annotations

import numpy as np

from dlc import dtypes
from dlc.graph.ir import Graph, Node, TensorType
from dlc.graph.passes.linear import LINEAR_OPS, fold_affine, fold_into_producers
from dlc.graph.passes.rewrite import Namer, constant


def fold_batchnorm(graph: Graph) -> Graph:
    """Fold BatchNormalization nodes (see the module docstring); ``graph`` itself when
    none folds."""
    return fold_into_producers(graph, ("BatchNormalization",), _rewrite)


def _rewrite(out: Graph, node: Node, nodes: list, producer: dict, uses: dict, namer: Namer):
    """The nodes replacing BN ``node`` (adding constants to ``out`` and dropping a folded
    producer from ``nodes``), or None."""
    x, y = node.inputs[0], node.outputs[0]
    params = [constant(out, name) for name in node.inputs[1:5]]
    if any(p is None for p in params) or any(o for o in node.outputs[1:]) or \
            node.attrs.get("training_mode", 0) or x not in out.types or not y:
        return None
    gamma, beta, mean, var = (p.astype(np.float64) for p in params)
    with np.errstate(all="ignore"):
        factor = gamma / np.sqrt(var + float(node.attrs.get("epsilon", 1e-5)))
    if not np.all(np.isfinite(factor)):
        return None
    shift = beta - mean * factor
    xt = out.types[x]
    per_activation = xt.ndim >= 2 and gamma.shape != (xt.shape[1],)
    index = producer.get(x)
    if index is not None and not per_activation and uses.get(x) == 1 and \
            x not in out.outputs:
        folded = _into_producer(out, nodes[index], factor, shift, y, namer)
        if folded is not None:
            nodes[index] = None
            return [folded]
    if xt.dtype not in ("float32", "float64"):
        return None
    shape = gamma.shape if per_activation or xt.ndim < 2 else \
        (xt.shape[1],) + (1,) * (xt.ndim - 2)
    dt = dtypes.to_numpy(xt.dtype)
    base = node.name or y
    f_name = _add(out, namer, f"{base}_scale", factor.reshape(shape).astype(dt))
    s_name = _add(out, namer, f"{base}_shift", shift.reshape(shape).astype(dt))
    scaled = namer.fresh(f"{y}_scaled")
    out.types[scaled] = xt
    return [Node("Mul", (x, f_name), (scaled,), {}, f"{base}_mul"),
            Node("Add", (scaled, s_name), (y,), {}, f"{base}_add")]


def _into_producer(out: Graph, prod: Node, factor, shift, y: str, namer: Namer):
    if prod.op not in LINEAR_OPS:
        return None
    if prod.op in ("MatMul", "Gemm") and out.types[prod.outputs[0]].ndim != 2:
        return None  # BN's channel axis (1) is the matmul's column axis only in 2-D
    rank = out.types[prod.outputs[0]].ndim
    if prod.op in ("Conv", "ConvTranspose"):
        shift = shift.reshape(shift.shape + (1,) * (rank - 2))  # broadcasts along axis 1
    result = fold_affine(out, prod, factor, shift, y, namer)
    if result is None:
        return None
    node, constants = result
    for name, value in constants.items():
        out.constants[name] = value
        out.types[name] = TensorType.of(value)
    return node


def _add(out: Graph, namer: Namer, base: str, value: np.ndarray) -> str:
    name = namer.fresh(base)
    out.constants[name] = np.ascontiguousarray(value)
    out.types[name] = TensorType.of(value)
    return name
