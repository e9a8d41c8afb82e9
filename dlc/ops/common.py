"""Helpers shared by op families: broadcasting, axes, dtype handling."""

from __future__ import annotations

import numpy as np

from dlc import dtypes, te
from dlc.expr import nodes as n
from dlc.graph.ir import TensorType


def broadcast_shapes(ctx, *shapes) -> tuple:
    """NumPy (multidirectional) broadcasting of shapes, with a clear error."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for d in range(rank):
        size = 1
        for s in shapes:
            k = d - (rank - len(s))
            if k < 0:
                continue
            dim = s[k]
            if dim == size or dim == 1:
                continue
            if size == 1:
                size = dim
            else:
                raise ctx.error(f"shapes {', '.join(str(list(x)) for x in shapes)} cannot be "
                                "broadcast together")
        out.append(size)
    return tuple(out)


def broadcast_read(tensor: te.Tensor, index: tuple) -> n.Expr:
    """Read ``tensor`` at an output index of higher or equal rank, with broadcasting."""
    rank = len(tensor.shape)
    offset = len(index) - rank
    idx = []
    for d in range(rank):
        idx.append(0 if tensor.shape[d] == 1 else index[offset + d])
    return tensor[tuple(idx)] if rank else tensor[()]


def normalize_axis(ctx, axis: int, rank: int, what: str = "axis") -> int:
    if not -rank <= axis < max(rank, 1):
        raise ctx.error(f"{what}={axis} is out of range for a tensor of rank {rank}")
    return axis + rank if axis < 0 else axis


def normalize_axes(ctx, axes, rank: int, what: str = "axes") -> list:
    out = [normalize_axis(ctx, int(a), rank, what) for a in axes]
    if len(set(out)) != len(out):
        raise ctx.error(f"{what} {list(axes)} repeats an axis")
    return out


def same_dtype(ctx, indices=None) -> str:
    """The common dtype of the given inputs (all present ones by default)."""
    present = [k for k, t in enumerate(ctx.in_types) if t is not None]
    indices = present if indices is None else indices
    dts = {ctx.type(k).dtype for k in indices}
    if len(dts) != 1:
        raise ctx.error(f"inputs must have one dtype, got {', '.join(sorted(dts))}")
    return dts.pop()


def const_like(value, dtype: str) -> n.Expr:
    return n.const(value, dtype)


def np_dtype(dtype: str) -> np.dtype:
    return dtypes.to_numpy(dtype)


def out_type(shape, dtype) -> TensorType:
    return TensorType(tuple(shape), dtype)


# -- reductions (shared by the reduction, normalization, softmax and loss families) ------
def accumulation_dtype(dtype: str) -> str:
    """The dtype to compute and accumulate ``dtype`` values in: float32 for float16 and
    bfloat16 (more accurate than the storage type), the dtype itself otherwise."""
    return "float32" if dtype in ("float16", "bfloat16") else dtype


def sum_dtype(dtype: str) -> str:
    """The dtype to accumulate sums and products of ``dtype`` values in: float64 for
    float32 (a sequential float32 sum of n terms loses up to n * 2^-24 relative accuracy),
    float32 for float16 and bfloat16, the dtype itself otherwise (integers wrap)."""
    return "float64" if dtype == "float32" else accumulation_dtype(dtype)


def reduced_shape(shape, axes, keepdims: bool) -> tuple:
    """``shape`` with ``axes`` reduced: kept as 1 (keepdims) or dropped."""
    if keepdims:
        return tuple(1 if d in axes else s for d, s in enumerate(shape))
    return tuple(s for d, s in enumerate(shape) if d not in axes)


def reduce_compute(shape, axes, body, combiner: str = "sum", keepdims: bool = True,
                   where=None, name: str = "reduce") -> te.Tensor:
    """A compute of ``reduced_shape(shape, axes, keepdims)`` whose element is the
    ``combiner`` (sum, prod, max, min) of ``body(index)`` over ``axes``, where ``index``
    is a full index of ``shape`` (reduction variables at the reduced axes); ``where``
    (index -> bool expression) filters the reduced elements. No axes: ``body`` itself.
    An axis of extent 0 gives the combiner's identity."""
    axes = sorted(axes)
    rvars = {a: te.reduce_axis(shape[a], f"r{a}") for a in axes}
    reducer = {"sum": te.sum, "prod": te.prod, "max": te.max, "min": te.min}[combiner]

    def full_index(out_index):
        index, pos = [], 0
        for d in range(len(shape)):
            if d in rvars:
                index.append(rvars[d])
                pos += 1 if keepdims else 0
            else:
                index.append(out_index[pos])
                pos += 1
        return tuple(index)

    def fcompute(*i):
        index = full_index(i)
        if not axes:
            return body(index)
        return reducer(body(index), axis=[rvars[a] for a in axes],
                       where=where(index) if where is not None else None)

    return te.compute(reduced_shape(shape, axes, keepdims), fcompute, name=name)
