"""Reductions over axes (ReduceSum, ..., ReduceLogSumExp), ArgMax/ArgMin, and the
cumulative ops CumSum/CumProd.

A reduction is ``post(combine_k pre(x[.., k, ..]))``: ``pre`` maps an element (cast to the
accumulation dtype: float64 for float32 sums and products, float32 for half precision) to
what is combined, ``combine`` is sum/prod/max/min, ``post`` finishes (mean, sqrt, log) and
casts back. Reducing over an axis of size 0 gives the op's ``empty_value`` (0, 1, -inf,
...); with no axes and ``noop_with_empty_axes``, each element is reduced alone (e.g.
ReduceL2 gives ``|x|``).
"""

from __future__ import annotations

import math

import numpy as np

from dlc import dtypes, te
from dlc.ops.common import (
    accumulation_dtype,
    normalize_axes,
    normalize_axis,
    out_type,
    reduce_compute,
    reduced_shape,
    sum_dtype,
)
from dlc.ops.registry import ALL, INJECTIVE, NUMERIC, REDUCE, OpDef, check_dtype, register


def axes_value(ctx, index: int, what: str = "axes") -> list:
    """The integers of a 0-D or 1-D integer input holding axes (empty when omitted)."""
    if not ctx.has_input(index):
        return []
    t = ctx.type(index)
    if not dtypes.is_int(t.dtype) or t.ndim > 1:
        raise ctx.error(f"{what} must be a 1-D integer tensor, got {t}")
    return [int(a) for a in ctx.value(index).reshape(-1)]


class Reduce(OpDef):
    """ReduceXxx(data, axes): keepdims, noop_with_empty_axes (opset 18 semantics)."""

    pattern = REDUCE
    schedule = "reduction"
    attrs = {"keepdims": 1, "noop_with_empty_axes": 0}
    num_inputs = (1, 2)
    value_inputs = (1,)
    allowed = NUMERIC
    combiner = "sum"

    # -- per-op hooks --------------------------------------------------------------------
    def pre(self, v):
        """The value combined for element ``v`` (already in the accumulation dtype)."""
        return v

    def post(self, acc, count: int, dtype: str):
        """The result from the combined value ``acc`` of ``count`` elements."""
        return te.cast(acc, dtype)

    def empty_value(self, dtype: str):
        return te.identity_of(self.combiner, dtype)

    def np_reduce(self, x, axes: tuple, keepdims: bool):
        raise NotImplementedError

    def acc_dtype(self, dtype: str) -> str:
        return sum_dtype(dtype)

    # -- shared --------------------------------------------------------------------------
    def reduced_axes(self, ctx) -> list:
        rank = ctx.type(0).ndim
        axes = axes_value(ctx, 1)
        if not axes:
            return [] if ctx.attrs["noop_with_empty_axes"] else list(range(rank))
        return sorted(normalize_axes(ctx, axes, rank))

    def infer(self, ctx):
        dtype = check_dtype(ctx, 0, self.allowed)
        shape = reduced_shape(ctx.type(0).shape, self.reduced_axes(ctx),
                              bool(ctx.attrs["keepdims"]))
        return [out_type(shape, dtype)]

    def reference(self, ctx, x, axes=None):
        axes = tuple(self.reduced_axes(ctx))
        out = ctx.out_types[0]
        dt = dtypes.to_numpy(out.dtype)
        if any(x.shape[a] == 0 for a in axes):
            return [np.full(out.shape, self.empty_value(out.dtype), dtype=dt)]
        result = self.np_reduce(x, axes, True)
        return [np.asarray(result).astype(dt).reshape(out.shape)]

    def compute(self, ctx, x, axes=None):
        axes = self.reduced_axes(ctx)
        out = ctx.out_types[0]
        keep = bool(ctx.attrs["keepdims"])
        name = ctx.name or self.name
        if any(x.shape[a] == 0 for a in axes):
            value = self.empty_value(out.dtype)
            return [te.compute(out.shape, lambda *i: te.const(value, out.dtype), name=name)]
        acc = self.acc_dtype(out.dtype)
        combined = reduce_compute(x.shape, axes, lambda idx: self.pre(te.cast(x[idx], acc)),
                                  self.combiner, keep, name=f"{name}_acc")
        count = math.prod(x.shape[a] for a in axes)
        return [te.compute(out.shape, lambda *i: self.post(combined[i], count, out.dtype),
                           name=name)]


def _np_acc(x):
    """``x`` in its sum dtype, as a NumPy array."""
    return x.astype(dtypes.to_numpy(sum_dtype(dtypes.canonical(x.dtype))))


@register
class ReduceSum(Reduce):
    name = "ReduceSum"

    def np_reduce(self, x, axes, keepdims):
        return np.sum(_np_acc(x), axis=axes, keepdims=keepdims)


@register
class ReduceMean(Reduce):
    name = "ReduceMean"

    def post(self, acc, count, dtype):
        if dtypes.is_float(acc.dtype):
            return te.cast(acc / count, dtype)
        wide = "uint64" if acc.dtype == "uint64" else "int64"  # count may not fit in acc
        return te.cast(te.truncdiv(te.cast(acc, wide), count), dtype)  # NumPy: truncated

    def empty_value(self, dtype):
        return math.nan if dtypes.is_float(dtype) else 0

    def np_reduce(self, x, axes, keepdims):
        if dtypes.is_float(dtypes.canonical(x.dtype)):
            return np.mean(_np_acc(x), axis=axes, keepdims=keepdims)
        count = math.prod(x.shape[a] for a in axes)
        total = np.sum(x, axis=axes, keepdims=keepdims, dtype=x.dtype)
        return np.sign(total) * (np.abs(total) // count)  # truncated, like the kernel


class _MaxMin(Reduce):
    allowed = ALL  # bool since opset 20 (False < True)

    def acc_dtype(self, dtype):
        return "uint8" if dtype == "bool" else accumulation_dtype(dtype)

    def post(self, acc, count, dtype):
        return acc != 0 if dtype == "bool" else te.cast(acc, dtype)


@register
class ReduceMax(_MaxMin):
    name = "ReduceMax"
    combiner = "max"

    def np_reduce(self, x, axes, keepdims):
        return np.max(x, axis=axes, keepdims=keepdims)  # propagates NaN


@register
class ReduceMin(_MaxMin):
    name = "ReduceMin"
    combiner = "min"

    def np_reduce(self, x, axes, keepdims):
        return np.min(x, axis=axes, keepdims=keepdims)


@register
class ReduceProd(Reduce):
    name = "ReduceProd"
    combiner = "prod"

    def np_reduce(self, x, axes, keepdims):
        return np.prod(_np_acc(x), axis=axes, keepdims=keepdims)


@register
class ReduceL1(Reduce):
    name = "ReduceL1"

    def pre(self, v):
        return v if dtypes.is_unsigned_int(v.dtype) else te.abs(v)

    def np_reduce(self, x, axes, keepdims):
        return np.sum(np.abs(_np_acc(x)), axis=axes, keepdims=keepdims)


@register
class ReduceSumSquare(Reduce):
    name = "ReduceSumSquare"

    def pre(self, v):
        return v * v

    def np_reduce(self, x, axes, keepdims):
        v = _np_acc(x)
        return np.sum(v * v, axis=axes, keepdims=keepdims)


def _float_post(fn, acc, dtype):
    """``fn`` applied in floating point (float64 for integers), cast to ``dtype``."""
    if not dtypes.is_float(acc.dtype):
        acc = te.cast(acc, "float64")
    return te.cast(fn(acc), dtype)


@register
class ReduceL2(Reduce):
    name = "ReduceL2"

    def pre(self, v):
        return v * v

    def post(self, acc, count, dtype):
        return _float_post(te.sqrt, acc, dtype)

    def np_reduce(self, x, axes, keepdims):
        v = _np_acc(x)
        return np.sqrt(np.sum(v * v, axis=axes, keepdims=keepdims).astype(
            np.float64 if v.dtype.kind in "iu" else v.dtype))


@register
class ReduceLogSum(Reduce):
    name = "ReduceLogSum"

    def post(self, acc, count, dtype):
        return _float_post(te.log, acc, dtype)

    def empty_value(self, dtype):
        return -math.inf if dtypes.is_float(dtype) else dtypes.min_value(dtype)

    def np_reduce(self, x, axes, keepdims):
        s = np.sum(_np_acc(x), axis=axes, keepdims=keepdims)
        return np.log(s.astype(np.float64) if s.dtype.kind in "iu" else s)


@register
class ReduceLogSumExp(Reduce):
    """``log(sum(exp(x - m))) + m`` with ``m`` the largest finite element (0 if none):
    exact for infinities, no overflow for large finite values."""

    name = "ReduceLogSumExp"

    def acc_dtype(self, dtype):
        return accumulation_dtype(dtype) if dtypes.is_float(dtype) else "float64"

    def empty_value(self, dtype):
        return -math.inf if dtypes.is_float(dtype) else dtypes.min_value(dtype)

    def compute(self, ctx, x, axes=None):
        axes = self.reduced_axes(ctx)
        out = ctx.out_types[0]
        if any(x.shape[a] == 0 for a in axes):
            return super().compute(ctx, x, axes)
        keep = bool(ctx.attrs["keepdims"])
        name = ctx.name or self.name
        acc = self.acc_dtype(out.dtype)

        def val(idx):
            return te.cast(x[idx], acc)

        def finite(idx):
            return ~(te.isinf(val(idx)) | te.isnan(val(idx)))

        # the largest finite value, read at the kept (size-1) axes by the later stages
        mx = reduce_compute(x.shape, axes, val, "max", True, where=finite, name=f"{name}_max")

        def shift(idx):
            m = mx[tuple(0 if d in axes else i for d, i in enumerate(idx))]
            return te.if_then_else(te.isinf(m), te.const(0.0, acc), m)

        total = reduce_compute(
            x.shape, axes, lambda idx: te.cast(te.exp(val(idx) - shift(idx)), sum_dtype(acc)),
            "sum", keep, name=f"{name}_sum")

        def finish(*i):
            full = _kept_index(i, x.ndim, axes, keep)
            return te.cast(te.log(te.cast(total[i], acc)) + shift(full), out.dtype)

        return [te.compute(out.shape, finish, name=name)]

    def np_reduce(self, x, axes, keepdims):
        v = x.astype(np.float64) if x.dtype.kind in "iu" else _np_acc(x)
        finite = np.where(np.isfinite(v), v, -np.inf)
        m = np.max(finite, axis=axes, keepdims=True) if axes else finite
        m = np.where(np.isinf(m), 0, m)
        return np.log(np.sum(np.exp(v - m), axis=axes, keepdims=True)) + m


def _kept_index(index, rank: int, axes, keepdims: bool) -> tuple:
    """A full index (0 at reduced axes) from an output index of a reduction."""
    if keepdims:
        return tuple(0 if d in axes else index[d] for d in range(rank))
    it = iter(index)
    return tuple(0 if d in axes else next(it) for d in range(rank))


# -- ArgMax / ArgMin --------------------------------------------------------------------
class _ArgReduce(OpDef):
    pattern = REDUCE
    schedule = "reduction"
    attrs = {"axis": 0, "keepdims": 1, "select_last_index": 0}
    combiner = "max"

    def infer(self, ctx):
        check_dtype(ctx, 0, NUMERIC)
        x = ctx.type(0)
        axis = normalize_axis(ctx, ctx.attrs["axis"], x.ndim)
        if x.ndim == 0:
            raise ctx.error("input must have rank 1 or more")
        if x.shape[axis] == 0:
            raise ctx.error(f"cannot take the {self.combiner} of an empty axis {axis} "
                            f"(input {x})")
        return [out_type(reduced_shape(x.shape, [axis], bool(ctx.attrs["keepdims"])),
                         "int64")]

    def reference(self, ctx, x):
        axis = normalize_axis(ctx, ctx.attrs["axis"], x.ndim)
        fn = np.argmax if self.combiner == "max" else np.argmin
        if ctx.attrs["select_last_index"]:
            result = x.shape[axis] - 1 - fn(np.flip(x, axis), axis=axis)
        else:
            result = fn(x, axis=axis)
        return [np.asarray(result, np.int64).reshape(ctx.out_types[0].shape)]

    def compute(self, ctx, x):
        axis = normalize_axis(ctx, ctx.attrs["axis"], x.ndim)
        name = ctx.name or self.name
        acc = accumulation_dtype(x.dtype)

        def val(idx):
            return te.cast(x[idx], acc)

        best = reduce_compute(x.shape, [axis], val, self.combiner, True, name=f"{name}_best")

        def matches(idx):
            hit = val(idx) == best[tuple(0 if d == axis else i for d, i in enumerate(idx))]
            # NumPy's argmax/argmin pick NaN (the reduction propagates it) like a maximum
            return hit | te.isnan(val(idx)) if dtypes.is_float(acc) else hit

        pick = "max" if ctx.attrs["select_last_index"] else "min"
        return [reduce_compute(x.shape, [axis], lambda idx: idx[axis], pick,
                               bool(ctx.attrs["keepdims"]), where=matches, name=name)]


@register
class ArgMax(_ArgReduce):
    name = "ArgMax"
    combiner = "max"


@register
class ArgMin(_ArgReduce):
    name = "ArgMin"
    combiner = "min"


# -- CumSum / CumProd -------------------------------------------------------------------
class _Cumulative(OpDef):
    """``y[.., i, ..] = combine of x[.., k, ..]`` for k <= i (k < i when exclusive; k >= i,
    k > i when reversed). Short axes are one masked reduction (O(n^2) work); longer ones
    are cut into blocks of about sqrt(n): each position combines the totals of the blocks
    before its own with the elements of its block up to it (O(n^1.5) work)."""

    pattern = INJECTIVE
    attrs = {"exclusive": 0, "reverse": 0}
    num_inputs = (2, 2)
    value_inputs = (1,)
    combiner = "sum"
    #: axes longer than this are scanned in blocks
    BLOCKED_MIN = 64

    def axis(self, ctx) -> int:
        t = ctx.type(1)
        if not dtypes.is_int(t.dtype) or t.size != 1 or t.ndim > 1:
            raise ctx.error(f"axis must be a 0-D integer tensor, got {t}")
        return normalize_axis(ctx, int(ctx.value(1).reshape(-1)[0]), ctx.type(0).ndim)

    def infer(self, ctx):
        check_dtype(ctx, 0, NUMERIC)
        if ctx.type(0).ndim == 0:
            raise ctx.error("input must have rank 1 or more")
        self.axis(ctx)
        return [ctx.type(0)]

    def reference(self, ctx, x, axis=None):
        a = self.axis(ctx)
        fn = np.cumsum if self.combiner == "sum" else np.cumprod
        identity = 0 if self.combiner == "sum" else 1
        v = np.flip(x, a) if ctx.attrs["reverse"] else x
        res = fn(_np_acc(v), axis=a)
        if ctx.attrs["exclusive"]:
            pad = np.full_like(np.take(res, [0], axis=a), identity)
            res = np.concatenate([pad, np.take(res, range(v.shape[a] - 1), axis=a)], axis=a)
        res = np.flip(res, a) if ctx.attrs["reverse"] else res
        return [res.astype(x.dtype)]

    def compute(self, ctx, x, axis=None):
        a = self.axis(ctx)
        name = ctx.name or self.name
        acc = sum_dtype(x.dtype)
        n = x.shape[a]
        exclusive, reverse = ctx.attrs["exclusive"], ctx.attrs["reverse"]
        reducer = te.sum if self.combiner == "sum" else te.prod
        identity = te.const(te.identity_of(self.combiner, acc), acc)

        def at(i, pos):
            """x at index ``i`` with position ``pos`` along the axis."""
            return te.cast(x[i[:a] + (pos,) + i[a + 1:]], acc)

        def contributes(k, j):
            """Element ``k`` of the axis goes into the result at position ``j``."""
            if reverse:
                return k > j if exclusive else k >= j
            return k < j if exclusive else k <= j

        def scan(shape, extent, start, limit, stage):
            """``combine`` of ``at(pos)`` for pos = start(i) + k, k < extent, where pos is
            below ``limit`` and contributes to position ``i[a]``."""
            k = te.reduce_axis(extent, "k")

            def fcompute(*i):
                pos = start(i) + k
                inside = te.all(pos < limit, contributes(pos, i[a]))
                return reducer(te.if_then_else(inside, at(i, pos), identity), axis=k)

            return te.compute(shape, fcompute, name=f"{name}_{stage}")

        if n <= self.BLOCKED_MIN:
            y = scan(x.shape, n, lambda i: 0, n, "scan")
        else:
            b = math.isqrt(n - 1) + 1  # block size
            blocks = x.shape[:a] + (-(-n // b),) + x.shape[a + 1:]
            kb = te.reduce_axis(blocks[a], "kb")
            k = te.reduce_axis(b, "k")
            totals = te.compute(blocks, lambda *i: reducer(te.if_then_else(
                i[a] * b + k < n, at(i, i[a] * b + k), identity), axis=k), name=f"{name}_blocks")
            # combine of the whole blocks before (after, reversed) each block
            before = te.compute(blocks, lambda *i: reducer(
                totals[i[:a] + (kb,) + i[a + 1:]], axis=kb,
                where=kb > i[a] if reverse else kb < i[a]), name=f"{name}_before")
            part = scan(x.shape, b, lambda i: i[a] // b * b, n, "part")
            combine = (lambda p, q: p + q) if self.combiner == "sum" else (lambda p, q: p * q)
            y = te.compute(x.shape, lambda *i: combine(
                before[i[:a] + (i[a] // b,) + i[a + 1:]], part[i]), name=f"{name}_acc")
        return [te.compute(x.shape, lambda *i: te.cast(y[i], x.dtype), name=name)]


@register
class CumSum(_Cumulative):
    name = "CumSum"
    combiner = "sum"


@register
class CumProd(_Cumulative):
    name = "CumProd"
    combiner = "prod"
