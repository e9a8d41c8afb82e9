"""Operators without a family of their own: Det, Dropout (inference)."""

from __future__ import annotations

import numpy as np

from dlc import te
from dlc.errors import UnsupportedOpError
from dlc.ops.common import np_dtype, out_type
from dlc.ops.registry import ELEMWISE, FLOATS, OPAQUE, OpDef, check_dtype, register

_F64 = "float64"


@register
class Det(OpDef):
    """Determinant of the square matrices in the last two axes: ``[..., M, M] -> [...]``.

    Gaussian elimination with partial pivoting (the largest magnitude in the column, the
    first one on ties), unrolled over the M columns at compile time and computed in
    float64: per column a pivot search (two reductions) and the eliminated matrix (one
    stage). A zero pivot makes the determinant 0."""

    name = "Det"
    pattern = OPAQUE

    def infer(self, ctx):
        dtype = check_dtype(ctx, 0, FLOATS)
        shape = ctx.type(0).shape
        if len(shape) < 2 or shape[-1] != shape[-2]:
            raise ctx.error(f"input must be [..., M, M] (square matrices), got shape "
                            f"{list(shape)}")
        return [out_type(shape[:-2], dtype)]

    def reference(self, ctx, x):
        if x.shape[-1] == 0:
            return [np.ones(x.shape[:-2], x.dtype)]
        return [np.linalg.det(x.astype(np.float64)).astype(np_dtype(ctx.type(0).dtype))]

    def compute(self, ctx, x):
        out = ctx.out_types[0]
        name = ctx.name or self.name
        m = x.shape[-1]
        batch = x.shape[:-2]
        if m == 0:
            return [te.compute(out.shape, lambda *b: te.const(1.0, out.dtype), name=name)]
        a = te.compute(x.shape, lambda *i: te.cast(x[i], _F64), name=name + "_a0")
        pivots, swapped = [], []
        for k in range(m):
            a, pivot, swap = _eliminate(a, k, m, batch, f"{name}_k{k}")
            pivots.append(pivot)
            swapped.append(swap)

        def body(*b):
            value = te.const(1.0, _F64)
            for k in range(m):
                sign = te.if_then_else(swapped[k][b], te.const(-1.0, _F64),
                                       te.const(1.0, _F64))
                value = value * pivots[k][b] * sign
            return te.cast(value, out.dtype)

        return [te.compute(out.shape if out.shape else (), body, name=name)]


def _eliminate(a, k: int, m: int, batch: tuple, tag: str):
    """One column of the elimination: returns (the next matrix, the pivot value stage,
    whether rows were swapped)."""
    r = te.reduce_axis(m - k, "r")
    biggest = te.compute(batch, lambda *b: te.max(te.abs(a[(*b, r + k, k)]), axis=r),
                         name=tag + "_max")
    r2 = te.reduce_axis(m - k, "r")
    first = te.compute(batch, lambda *b: te.min(
        r2 + k, axis=r2, where=te.abs(a[(*b, r2 + k, k)]) == biggest[b]), name=tag + "_arg")

    def pivot_row(b):
        return te.minimum(te.maximum(first[b], k), m - 1)  # NaN columns: no match

    def source(b, i):
        p = pivot_row(b)
        return te.if_then_else(i == k, p, te.if_then_else(i == p, te.const(k, "int64"), i))

    def swapped_value(b, i, j):
        return a[(*b, source(b, i), j)]

    pivot = te.compute(batch, lambda *b: a[(*b, pivot_row(b), k)], name=tag + "_pivot")

    def body(*idx):
        b, i, j = idx[:-2], idx[-2], idx[-1]
        value = swapped_value(b, i, j)
        factor = te.if_then_else(pivot[b] == 0.0, te.const(0.0, _F64),
                                 swapped_value(b, i, k) / pivot[b])
        return te.if_then_else(i > k, value - factor * a[(*b, pivot_row(b), j)], value)

    nxt = te.compute(a.shape, body, name=tag + "_a")
    swap = te.compute(batch, lambda *b: pivot_row(b) != k, name=tag + "_swap")
    return nxt, pivot, swap


@register
class Dropout(OpDef):
    """Inference Dropout: ``output`` is a copy of ``data`` and ``mask`` is all true.

    In training mode (input ``training_mode`` true) Dropout zeroes random elements, which
    dlc does not do: a true ``training_mode`` is accepted only with ``ratio`` 0, where the
    result is the same. ``ratio`` (default 0.5) is read only then."""

    name = "Dropout"
    pattern = ELEMWISE
    attrs = {"seed": None}
    num_inputs = (1, 3)
    num_outputs = (1, 2)
    value_inputs = (1, 2)

    def infer(self, ctx):
        t = ctx.type(0)
        check_dtype(ctx, 0, FLOATS)
        if ctx.has_input(1):
            check_dtype(ctx, 1, FLOATS)
            if ctx.type(1).ndim:
                raise ctx.error(f"ratio must be a scalar, got shape {list(ctx.type(1).shape)}")
        if ctx.has_input(2):
            check_dtype(ctx, 2, ("bool",))
            if ctx.type(2).ndim:
                raise ctx.error("training_mode must be a scalar, got shape "
                                f"{list(ctx.type(2).shape)}")
            if bool(ctx.value(2)):
                ratio = float(ctx.value(1)) if ctx.has_input(1) else 0.5
                if ratio != 0.0:
                    raise UnsupportedOpError(
                        f"Dropout node {ctx.name!r}: training_mode is true with ratio "
                        f"{ratio}; training-mode dropout draws random numbers and dlc "
                        "compiles inference only (give training_mode false, or ratio 0)")
        return [t, out_type(t.shape, "bool")]

    def reference(self, ctx, x, ratio=None, training_mode=None):
        return [x.copy(), np.ones(x.shape, bool)]

    def compute(self, ctx, x, ratio=None, training_mode=None):
        name = ctx.name or self.name
        return [te.compute(x.shape, lambda *i: x[i], name=name),
                te.compute(x.shape, lambda *i: te.const(True, "bool"), name=name + "_mask")]
