"""Softmax, LogSoftmax and Hardmax along one axis (opset 13 semantics; the frontend
turns the older "coerce to 2-D" versions into these).

Softmax is computed stably, as ``exp(x - max) / sum(exp(x - max))`` (LogSoftmax as
``x - max - log(sum(exp(x - max)))``). The exponential is ``te.exp_nonpositive``: its
argument is never above 0, and values below 2^-125 are 0 (a probability that small is 0,
not a subnormal number), which saves a third of exp's instructions. The sum is accumulated
in the compute dtype (its terms lie in [0, 1] and the schedule sums them as a tree of vector
partial sums, so float32 loses no more than NumPy's pairwise sum does). Half-precision
inputs are computed in float32 with the intermediate results (``x - max``, ``exp``, the sum, its
log) rounded to the input dtype, as the ops of the spec's function body (Exp, ReduceSum,
Div in the input type) round them.
"""

from __future__ import annotations

import numpy as np

from dlc import te
from dlc.ops.common import accumulation_dtype, normalize_axis, reduce_compute
from dlc.ops.registry import FLOATS, OPAQUE, OpDef, check_dtype, register
from dlc.te.intrinsics import np_exp_nonpositive


def kept(index, axis: int) -> tuple:
    """``index`` with 0 at ``axis``: where a reduction with keepdims is read."""
    return tuple(0 if d == axis else i for d, i in enumerate(index))


def softmax_stages(x: te.Tensor, axis: int, name: str):
    """Functions of a full index ``idx`` for a stable softmax of ``x`` along ``axis``, in
    the accumulation dtype: ``shifted(idx)`` is ``x - max``, ``exp(idx)`` its exponential
    (a stage of its own, so it is computed once) and ``total(idx)`` the sum of ``exp``
    along the axis; each rounded to ``x``'s dtype when that is a half-precision one."""
    acc = accumulation_dtype(x.dtype)
    rounded = _rounding(x.dtype, acc)
    mx = reduce_compute(x.shape, [axis], lambda idx: te.cast(x[idx], acc), "max",
                        name=f"{name}_max")

    def shifted(idx):
        return rounded(te.cast(x[idx], acc) - mx[kept(idx, axis)])

    e = te.compute(x.shape, lambda *i: rounded(te.exp_nonpositive(shifted(i))), name=f"{name}_exp")
    sums = reduce_compute(x.shape, [axis], lambda idx: e[idx],
                          "sum", name=f"{name}_sum")
    return shifted, (lambda idx: e[idx]), \
        (lambda idx: rounded(te.cast(sums[kept(idx, axis)], acc)))


def _rounding(dtype: str, acc: str):
    """``v -> v`` rounded to ``dtype`` (and back to ``acc``) when they differ."""
    if dtype == acc:
        return lambda v: v
    return lambda v: te.cast(te.cast(v, dtype), acc)


def np_softmax_parts(x, axis: int):
    """NumPy (shifted values, exp, sum of exp) in the accumulation dtype, rounded like
    ``softmax_stages``."""
    def rounded(v):
        return v.astype(x.dtype).astype(np.float32) if x.dtype.itemsize < 4 else v

    v = x.astype(np.float32) if x.dtype.itemsize < 4 else x
    shifted = rounded(v - np.max(v, axis=axis, keepdims=True))
    e = rounded(np_exp_nonpositive(shifted))
    return shifted, e, rounded(np.sum(e, axis=axis, keepdims=True))


class _AlongAxis(OpDef):
    pattern = OPAQUE
    schedule = "reduction"
    attrs = {"axis": -1}

    def infer(self, ctx):
        check_dtype(ctx, 0, FLOATS)
        t = ctx.type(0)
        if t.ndim == 0:
            raise ctx.error("input must have rank 1 or more")
        normalize_axis(ctx, ctx.attrs["axis"], t.ndim)
        return [t]

    def axis(self, ctx) -> int:
        return normalize_axis(ctx, ctx.attrs["axis"], ctx.type(0).ndim)


@register
class Softmax(_AlongAxis):
    name = "Softmax"

    def reference(self, ctx, x):
        _, e, total = np_softmax_parts(x, self.axis(ctx))
        return [(e * (total.dtype.type(1) / total)).astype(x.dtype)]

    def compute(self, ctx, x):
        axis, name = self.axis(ctx), ctx.name or self.name
        _, exp, total = softmax_stages(x, axis, name)

        def probability(*i):  # one division per row, then a product per element
            sum_ = total(i)
            return te.cast(exp(i) * (te.const(1.0, sum_.dtype) / sum_), x.dtype)

        return [te.compute(x.shape, probability, name=name)]


@register
class LogSoftmax(_AlongAxis):
    name = "LogSoftmax"

    def reference(self, ctx, x):
        shifted, _, total = np_softmax_parts(x, self.axis(ctx))
        log = np.log(total)
        log = log.astype(x.dtype).astype(np.float32) if x.dtype.itemsize < 4 else log
        return [(shifted - log).astype(x.dtype)]

    def compute(self, ctx, x):
        axis, name = self.axis(ctx), ctx.name or self.name
        shifted, _, total = softmax_stages(x, axis, name)
        rounded = _rounding(x.dtype, accumulation_dtype(x.dtype))
        return [te.compute(x.shape, lambda *i: te.cast(shifted(i) - rounded(te.log(total(i))),
                                                       x.dtype), name=name)]


@register
class Hardmax(_AlongAxis):
    """1 at the first maximum along the axis (the first NaN if any, like NumPy's argmax),
    0 elsewhere."""

    name = "Hardmax"

    def reference(self, ctx, x):
        axis = self.axis(ctx)
        first = np.expand_dims(np.argmax(x, axis=axis), axis)
        y = np.zeros_like(x)
        np.put_along_axis(y, first, 1, axis=axis)
        return [y]

    def compute(self, ctx, x):
        axis, name = self.axis(ctx), ctx.name or self.name
        acc = accumulation_dtype(x.dtype)

        def value(idx):
            return te.cast(x[idx], acc)

        mx = reduce_compute(x.shape, [axis], value, "max", name=f"{name}_max")
        first = reduce_compute(
            x.shape, [axis], lambda idx: idx[axis], "min", name=f"{name}_first",
            where=lambda idx: (value(idx) == mx[kept(idx, axis)]) | te.isnan(value(idx)))
        one, zero = te.const(1, x.dtype), te.const(0, x.dtype)
        return [te.compute(x.shape, lambda *i: te.if_then_else(
            i[axis] == first[kept(i, axis)], one, zero), name=name)]
