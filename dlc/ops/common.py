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
