"""Helpers for passes that fold a per-output-channel affine map ``y * scale + shift``
into the linear op producing ``y`` (not a pass): Conv, ConvTranspose (channel axis 1),
MatMul and Gemm (channel axis -1, the columns of the weights).

Folding computes the new weights and biases in float64 and rounds them once to the
weights' dtype; the result differs from the unfolded graph only by that rounding and by
the reassociation ``(x @ w) * s == x @ (w * s)``.
"""

from __future__ import annotations

import numpy as np

from dlc import dtypes
from dlc.graph.ir import Graph, Node
from dlc.graph.passes.rewrite import Namer, constant, prune_types, use_counts

LINEAR_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def channel_axis(op: str) -> int:
    return 1 if op in ("Conv", "ConvTranspose") else -1


def per_channel(value: np.ndarray, out_shape: tuple, axis: int):
    """``value`` (which broadcasts to ``out_shape`` without changing it) as a float64
    vector with one entry per position of ``out_shape[axis]``, or None when it varies
    along another axis."""
    rank = len(out_shape)
    axis = axis % rank
    if value.ndim > rank:
        return None
    full = value.reshape((1,) * (rank - value.ndim) + value.shape)
    if any(d != 1 for k, d in enumerate(full.shape) if k != axis):
        return None
    if full.shape[axis] not in (1, out_shape[axis]):
        return None
    return np.broadcast_to(full.reshape(-1).astype(np.float64), (out_shape[axis],)).copy()


def fold_into_producers(graph: Graph, ops, fold) -> Graph:
    """The driver of the folding passes: ``fold(out, node, nodes, producer, uses, namer)``
    runs on each node whose op is in ``ops`` and returns the nodes that replace it, or None
    to keep it; it may set an entry of ``nodes`` (the graph so far, ``producer`` maps a
    tensor to its index) to None when it absorbs that producer. ``graph`` itself when
    nothing folds."""
    uses = use_counts(graph)
    namer = Namer(graph)
    out = graph.copy()
    nodes: list = []
    producer: dict = {}  # tensor -> index in nodes
    changed = False
    for node in graph.nodes:
        rewrite = fold(out, node, nodes, producer, uses, namer) if node.op in ops else None
        if rewrite is None:
            rewrite = [node]
        else:
            changed = True
        for new in rewrite:
            producer.update({o: len(nodes) for o in new.outputs if o})
            nodes.append(new)
    if not changed:
        return graph
    out.nodes = [n for n in nodes if n is not None]
    prune_types(out)
    return out


def fold_affine(graph: Graph, node: Node, scale, shift, output: str, namer: Namer):
    """A node computing ``node``'s output times ``scale`` plus ``shift`` into the tensor
    ``output``, and the new constants {name: array}; None when it cannot be folded.

    ``scale`` is None or a float64 vector per output channel; ``shift`` is None or a
    float64 array that broadcasts to the output without changing it (per channel for
    convolutions; any shape for Gemm and 2-D MatMul, whose C input takes it)."""
    out_type = graph.types.get(node.outputs[0])
    if out_type is None or not dtypes.is_float(out_type.dtype):
        return None
    if scale is not None and not np.all(np.isfinite(scale)):
        return None
    if node.op in ("Conv", "ConvTranspose"):
        return _fold_conv(graph, node, scale, shift, output, namer, out_type)
    if node.op in ("MatMul", "Gemm"):
        return _fold_gemm(graph, node, scale, shift, output, namer, out_type)
    return None


def _fold_conv(graph, node, scale, shift, output, namer, out_type):
    w_name = node.inputs[1]
    b_name = node.inputs[2] if len(node.inputs) > 2 else ""
    w = constant(graph, w_name)
    b = constant(graph, b_name) if b_name else None
    if (b_name and b is None) or (scale is not None and w is None):
        return None
    M = out_type.shape[1]
    if shift is not None:
        shift = per_channel(shift, out_type.shape, 1)
        if shift is None:
            return None
    new = {}
    inputs = list(node.inputs[:2])
    if scale is not None:
        if node.op == "Conv":
            factor = scale.reshape((M,) + (1,) * (w.ndim - 1))
            new_w = w.astype(np.float64) * factor
        else:  # ConvTranspose: W[C, M / group, k...], output channel g * Mg + j
            group = int(node.attrs.get("group", 1))
            grouped = w.astype(np.float64).reshape((group, w.shape[0] // group) + w.shape[1:])
            factor = scale.reshape((group, 1, M // group) + (1,) * (w.ndim - 2))
            new_w = (grouped * factor).reshape(w.shape)
        inputs[1] = _add(new, namer, w_name, new_w, w.dtype)
    bias = b.astype(np.float64) if b is not None else np.zeros(M)
    if scale is not None:
        bias = bias * scale
    if shift is not None:
        bias = bias + shift
    if b is not None or shift is not None:
        inputs.append(_add(new, namer, b_name or f"{_stem(w_name)}_bias", bias,
                           dtypes.to_numpy(out_type.dtype)))
    return node.with_(inputs=tuple(inputs), outputs=(output,)), new


def _fold_gemm(graph, node, scale, shift, output, namer, out_type):
    a_name, w_name = node.inputs[0], node.inputs[1]
    c_name = node.inputs[2] if len(node.inputs) > 2 else ""
    w = constant(graph, w_name)
    if scale is not None and (w is None or w.ndim != 2):
        return None
    gemm = node.op == "Gemm"
    attrs = dict(node.attrs)
    if not gemm and shift is not None:
        if graph.types[a_name].ndim != 2 or graph.types[w_name].ndim != 2:
            return None  # only a 2-D MatMul has a Gemm with a C input
        attrs = {}
    c = constant(graph, c_name) if c_name else None
    if c_name and c is None:
        return None
    new = {}
    inputs = [a_name, w_name]
    if scale is not None:
        trans = gemm and attrs.get("transB", 0)
        new_w = w.astype(np.float64) * (scale[:, None] if trans else scale[None, :])
        inputs[1] = _add(new, namer, w_name, new_w, w.dtype)
    beta = float(attrs.get("beta", 1.0)) if gemm else 1.0
    bias = None
    if c is not None and beta != 0.0:
        bias = c.astype(np.float64) * beta
        if scale is not None:
            bias = bias * scale
    if shift is not None:
        shift = _trim(shift)
        bias = shift if bias is None else bias + shift
    if bias is not None:
        if bias.ndim > 2:
            return None
        if "beta" in attrs:
            attrs["beta"] = 1.0
        inputs.append(_add(new, namer, c_name or f"{_stem(w_name)}_bias", bias,
                           dtypes.to_numpy(out_type.dtype)))
    elif c_name:
        inputs.append(c_name)  # beta == 0: C is ignored, keep it as it is
    op = "Gemm" if gemm or shift is not None else "MatMul"
    return Node(op, tuple(inputs), (output,), attrs, node.name), new


def _trim(value: np.ndarray) -> np.ndarray:
    """``value`` without leading unit dimensions beyond its last one."""
    while value.ndim > 1 and value.shape[0] == 1:
        value = value.reshape(value.shape[1:])
    return value


def _stem(name: str) -> str:
    """A tensor name without the suffix earlier folds gave it."""
    head, sep, tail = name.rpartition("_folded")
    return head if sep and (not tail or tail[1:].isdigit()) else name


def _add(new: dict, namer: Namer, base: str, value, dtype) -> str:
    name = namer.fresh(f"{_stem(base)}_folded")
    new[name] = np.ascontiguousarray(np.asarray(value).astype(dtype))
    return name
