"""Gather/Scatter family, OneHot and TopK.

Gathers read through loaded indices, made non-negative and clamped so that an
out-of-range index (undefined by the spec) never reads out of bounds. Scatters are
written as pull-style reductions: each output element reduces over the updates that
target it (``te.max`` of the last matching update for ``reduction="none"``, the
reduction itself otherwise, with the original value as the first reduced element so that
the updates apply in the spec's sequential order). Out-of-range scatter indices match no
element. TopK ranks every element of a row (ties broken by the lower index, NaN largest,
like the ONNX reference), then picks the elements of ranks ``0 .. k-1``.
"""

from __future__ import annotations

import math

import numpy as np

from dlc import dtypes, te
from dlc.expr import nodes as n
from dlc.ops.common import normalize_axis, out_type
from dlc.ops.registry import INJECTIVE, NUMERIC, OPAQUE, OpDef, check_dtype, register
from dlc.ops.shape import INDEX_DTYPES, clamp_index, int_values, scalar_value, unravel

REDUCTIONS = ("none", "add", "mul", "max", "min")


def _name(ctx, suffix: str = "") -> str:
    return (ctx.name or ctx.op) + suffix


def _normalize_np(ctx, indices: np.ndarray, size: int) -> np.ndarray:
    """Non-negative indices for the NumPy references; out-of-range ones are an error."""
    idx = indices.astype(np.int64)
    if idx.size and (idx.min() < -size or idx.max() >= size):
        raise ctx.error(f"an index is out of range [-{size}, {size - 1}]")
    return np.where(idx < 0, idx + size, idx)


def _wrapped(k: n.Expr, size: int) -> n.Expr:
    """A run-time index with ``size`` added when negative (not clamped)."""
    k = te.cast(k, "int64")
    return te.if_then_else(k < 0, k + size, k)


@register
class Gather(OpDef):
    name = "Gather"
    pattern = INJECTIVE
    attrs = {"axis": 0}
    num_inputs = (2, 2)

    def infer(self, ctx):
        t = ctx.type(0)
        check_dtype(ctx, 1, INDEX_DTYPES, "indices")
        if t.ndim == 0:
            raise ctx.error("data must have rank 1 or more")
        axis = normalize_axis(ctx, ctx.attrs["axis"], t.ndim)
        shape = t.shape[:axis] + ctx.type(1).shape + t.shape[axis + 1:]
        return [out_type(shape, t.dtype)]

    def reference(self, ctx, data, indices):
        axis = normalize_axis(ctx, ctx.attrs["axis"], data.ndim)
        return [np.take(data, _normalize_np(ctx, indices, data.shape[axis]), axis=axis)]

    def compute(self, ctx, data, indices):
        axis = normalize_axis(ctx, ctx.attrs["axis"], data.ndim)
        q = indices.ndim

        def body(*i):
            k = clamp_index(indices[i[axis:axis + q]], data.shape[axis])
            return data[i[:axis] + (k,) + i[axis + q:]]

        return [te.compute(ctx.out_types[0].shape, body, name=_name(ctx))]


@register
class GatherElements(OpDef):
    name = "GatherElements"
    pattern = INJECTIVE
    attrs = {"axis": 0}
    num_inputs = (2, 2)

    def infer(self, ctx):
        t, idx = ctx.type(0), ctx.type(1)
        check_dtype(ctx, 1, INDEX_DTYPES, "indices")
        if t.ndim == 0 or idx.ndim != t.ndim:
            raise ctx.error(f"data and indices must have the same rank (1 or more), got "
                            f"{list(t.shape)} and {list(idx.shape)}")
        axis = normalize_axis(ctx, ctx.attrs["axis"], t.ndim)
        if any(a > b for k, (a, b) in enumerate(zip(idx.shape, t.shape)) if k != axis):
            raise ctx.error(f"indices shape {list(idx.shape)} exceeds data shape "
                            f"{list(t.shape)} outside axis {axis}")
        return [out_type(idx.shape, t.dtype)]

    def reference(self, ctx, data, indices):
        axis = normalize_axis(ctx, ctx.attrs["axis"], data.ndim)
        idx = _normalize_np(ctx, indices, data.shape[axis])
        return [np.take_along_axis(data[tuple(slice(0, s) if k != axis else slice(None)
                                              for k, s in enumerate(idx.shape))],
                                   idx, axis=axis)]

    def compute(self, ctx, data, indices):
        axis = normalize_axis(ctx, ctx.attrs["axis"], data.ndim)

        def body(*i):
            k = clamp_index(indices[i], data.shape[axis])
            return data[i[:axis] + (k,) + i[axis + 1:]]

        return [te.compute(ctx.out_types[0].shape, body, name=_name(ctx))]


@register
class GatherND(OpDef):
    name = "GatherND"
    pattern = INJECTIVE
    attrs = {"batch_dims": 0}
    num_inputs = (2, 2)

    def _check(self, ctx):
        t, idx = ctx.type(0), ctx.type(1)
        if idx.dtype != "int64":
            raise ctx.error(f"indices must be int64, got {idx.dtype}")
        b = ctx.attrs["batch_dims"]
        if idx.ndim < 1 or t.ndim < 1 or not 0 <= b < min(t.ndim, idx.ndim):
            raise ctx.error(f"batch_dims={b} must be less than the ranks of data "
                            f"({t.ndim}) and indices ({idx.ndim}), which must be at least 1")
        if t.shape[:b] != idx.shape[:b]:
            raise ctx.error(f"batch dimensions differ: data {list(t.shape)}, indices "
                            f"{list(idx.shape)}")
        last = idx.shape[-1]
        if not 1 <= last <= t.ndim - b:
            raise ctx.error(f"the last dimension of indices ({last}) must be between 1 and "
                            f"{t.ndim - b} (the rank of data minus batch_dims)")
        return b, last

    def infer(self, ctx):
        b, last = self._check(ctx)
        t = ctx.type(0)
        return [out_type(ctx.type(1).shape[:-1] + t.shape[b + last:], t.dtype)]

    def reference(self, ctx, data, indices):
        b, last = self._check(ctx)
        out = np.empty(ctx.out_types[0].shape, data.dtype)
        for pos in np.ndindex(indices.shape[:-1]):
            where = tuple(int(_normalize_np(ctx, indices[pos + (j,)], data.shape[b + j]))
                          for j in range(last))
            out[pos] = data[pos[:b] + where]
        return [out]

    def compute(self, ctx, data, indices):
        b, last = self._check(ctx)
        q = indices.ndim

        def body(*i):
            lead = i[:q - 1]
            where = tuple(clamp_index(indices[lead + (j,)], data.shape[b + j])
                          for j in range(last))
            return data[i[:b] + where + i[q - 1:]]

        return [te.compute(ctx.out_types[0].shape, body, name=_name(ctx))]


def _scatter_compute(ctx, data, updates, count: int, target, update_index, reduction):
    """``out[p]``: ``data[p]`` combined, in order, with every update ``u < count`` (a flat
    position among the candidate updates of ``p``) for which ``target(p, u)`` holds; the
    update's value is ``updates[update_index(p, u)]``."""
    shape, dtype = data.shape, data.dtype
    name = _name(ctx)
    if count == 0:
        return te.compute(shape, lambda *p: data[p], name=name)
    if reduction == "none":
        def last(*p):
            u = te.reduce_axis(count, "u")
            return te.max(u, axis=u, where=target(p, u))

        found = te.compute(shape, last, name=name + "_last")
        return te.compute(shape, lambda *p: te.if_then_else(
            found[p] >= 0, updates[update_index(p, found[p])], data[p]), name=name)
    work = "uint8" if dtype == "bool" else dtype
    reducer = {"add": te.sum, "mul": te.prod, "max": te.max, "min": te.min}[reduction]
    if dtype == "bool":  # numpy's bool + is "or", * is "and"
        reducer = {"add": te.max, "mul": te.min, "max": te.max, "min": te.min}[reduction]

    def combine(*p):
        u = te.reduce_axis(count + 1, "u")
        first = u == 0
        value = te.if_then_else(first, te.cast(data[p], work),
                                te.cast(updates[update_index(p, u - 1)], work))
        return reducer(value, axis=u, where=te.if_then_else(first, True, target(p, u - 1)))

    result = te.compute(shape, combine, name=name + "_acc" if dtype == "bool" else name)
    if dtype == "bool":
        return te.compute(shape, lambda *p: result[p] != 0, name=name)
    return result


class _Scatter(OpDef):
    pattern = OPAQUE
    attrs = {"reduction": "none"}
    num_inputs = (3, 3)

    def _reduction(self, ctx):
        r = ctx.attrs["reduction"]
        if r not in REDUCTIONS:
            raise ctx.error(f"reduction {r!r} is not one of {', '.join(REDUCTIONS)}")
        return r

    def _check_types(self, ctx):
        t, u = ctx.type(0), ctx.type(2)
        check_dtype(ctx, 1, INDEX_DTYPES, "indices")
        if u.dtype != t.dtype:
            raise ctx.error(f"updates have dtype {u.dtype}, data has {t.dtype}")
        return t


def _apply_np(out, where, value, reduction):
    if reduction == "none":
        out[where] = value
    elif reduction == "add":
        out[where] = out[where] + value
    elif reduction == "mul":
        out[where] = out[where] * value
    elif reduction == "max":
        out[where] = np.maximum(out[where], value)
    else:
        out[where] = np.minimum(out[where], value)


@register
class ScatterElements(_Scatter):
    name = "ScatterElements"
    attrs = {"axis": 0, "reduction": "none"}

    def infer(self, ctx):
        t = self._check_types(ctx)
        self._reduction(ctx)
        idx, upd = ctx.type(1), ctx.type(2)
        if t.ndim == 0 or idx.shape != upd.shape or idx.ndim != t.ndim:
            raise ctx.error(f"indices {list(idx.shape)} and updates {list(upd.shape)} must "
                            f"have one shape, of the rank of data {list(t.shape)} (1 or more)")
        axis = normalize_axis(ctx, ctx.attrs["axis"], t.ndim)
        if any(a > b for k, (a, b) in enumerate(zip(idx.shape, t.shape)) if k != axis):
            raise ctx.error(f"indices shape {list(idx.shape)} exceeds data shape "
                            f"{list(t.shape)} outside axis {axis}")
        return [t]

    def reference(self, ctx, data, indices, updates):
        axis = normalize_axis(ctx, ctx.attrs["axis"], data.ndim)
        reduction = self._reduction(ctx)
        idx = _normalize_np(ctx, indices, data.shape[axis])
        out = data.copy()
        for pos in np.ndindex(idx.shape):
            where = pos[:axis] + (int(idx[pos]),) + pos[axis + 1:]
            _apply_np(out, where, updates[pos], reduction)
        return [out]

    def compute(self, ctx, data, indices, updates):
        axis = normalize_axis(ctx, ctx.attrs["axis"], data.ndim)
        count, size = indices.shape[axis], data.shape[axis]

        def update_index(p, u):
            return p[:axis] + (u,) + p[axis + 1:]

        def target(p, u):
            inside = [p[k] < indices.shape[k] for k in range(data.ndim)
                      if k != axis and indices.shape[k] < data.shape[k]]
            hit = _wrapped(indices[update_index(p, u)], size) == p[axis]
            return te.if_then_else(te.all(*inside), hit, False) if inside else hit

        return [_scatter_compute(ctx, data, updates, count, target, update_index,
                                 self._reduction(ctx))]


@register
class ScatterND(_Scatter):
    name = "ScatterND"

    def infer(self, ctx):
        t = self._check_types(ctx)
        self._reduction(ctx)
        idx, upd = ctx.type(1), ctx.type(2)
        if idx.dtype != "int64":
            raise ctx.error(f"indices must be int64, got {idx.dtype}")
        if idx.ndim < 1 or t.ndim < 1 or not 1 <= idx.shape[-1] <= t.ndim:
            raise ctx.error(f"indices {list(idx.shape)} must have a last dimension between 1 "
                            f"and the rank of data {list(t.shape)}")
        want = idx.shape[:-1] + t.shape[idx.shape[-1]:]
        if upd.shape != want:
            raise ctx.error(f"updates have shape {list(upd.shape)}, expected {list(want)}")
        return [t]

    def reference(self, ctx, data, indices, updates):
        reduction = self._reduction(ctx)
        last = indices.shape[-1]
        out = data.copy()
        for pos in np.ndindex(indices.shape[:-1]):
            where = tuple(int(_normalize_np(ctx, indices[pos + (j,)], data.shape[j]))
                          for j in range(last))
            _apply_np(out, where, updates[pos], reduction)
        return [out]

    def compute(self, ctx, data, indices, updates):
        last = indices.shape[-1]
        lead = indices.shape[:-1]
        count = math.prod(lead)

        def coords(u):
            return tuple(unravel(u, lead))

        def update_index(p, u):
            return coords(u) + tuple(p[last:])

        def target(p, u):
            c = coords(u)
            return te.all(*[_wrapped(indices[c + (j,)], data.shape[j]) == p[j]
                            for j in range(last)])

        return [_scatter_compute(ctx, data, updates, count, target, update_index,
                                 self._reduction(ctx))]


@register
class TensorScatter(OpDef):
    """Write ``update`` into a copy of ``past_cache`` along ``axis``, at
    ``write_indices[batch]`` (0 when omitted); ``mode="circular"`` wraps around."""

    name = "TensorScatter"
    pattern = INJECTIVE
    attrs = {"axis": -2, "mode": "linear"}
    num_inputs = (2, 3)

    def _check(self, ctx):
        t, u = ctx.type(0), ctx.type(1)
        if u.dtype != t.dtype:
            raise ctx.error(f"update has dtype {u.dtype}, past_cache has {t.dtype}")
        if t.ndim < 2:
            raise ctx.error(f"past_cache must have rank 2 or more, got {list(t.shape)}")
        axis = normalize_axis(ctx, ctx.attrs["axis"], t.ndim)
        if axis == 0:
            raise ctx.error("axis must not be the batch axis (0)")
        mode = ctx.attrs["mode"]
        if mode not in ("linear", "circular"):
            raise ctx.error(f"mode {mode!r} is not 'linear' or 'circular'")
        if u.ndim != t.ndim or u.shape[axis] > t.shape[axis] or any(
                a != b for k, (a, b) in enumerate(zip(u.shape, t.shape)) if k != axis):
            raise ctx.error(f"update shape {list(u.shape)} does not fit past_cache shape "
                            f"{list(t.shape)} along axis {axis}")
        if ctx.has_input(2):
            w = ctx.type(2)
            if w.dtype != "int64" or w.shape != (t.shape[0],):
                raise ctx.error(f"write_indices must be int64[{t.shape[0]}], got {w}")
        return axis, mode

    def infer(self, ctx):
        self._check(ctx)
        return [ctx.type(0)]

    def reference(self, ctx, past, update, write=None):
        axis, mode = self._check(ctx)
        out = past.copy()
        size, count = past.shape[axis], update.shape[axis]
        for prefix in np.ndindex(past.shape[:axis]):
            start = int(write[prefix[0]]) if write is not None else 0
            for s in range(count):
                pos = start + s
                pos = pos % size if mode == "circular" else pos
                if not 0 <= pos < size:
                    raise ctx.error(f"write index {pos} is out of range [0, {size})")
                out[prefix + (pos,)] = update[prefix + (s,)]
        return [out]

    def compute(self, ctx, past, update, write=None):
        axis, mode = self._check(ctx)
        size, count = past.shape[axis], update.shape[axis]

        def body(*p):
            start = write[p[0]] if write is not None else n.const(0)
            s = p[axis] - start
            if mode == "circular":
                s = s % size
                hit = s < count
            else:
                hit = te.all(s >= 0, s < count)
            return te.if_then_else(hit, update[p[:axis] + (s,) + p[axis + 1:]], past[p])

        return [te.compute(past.shape, body, name=_name(ctx))]


@register
class OneHot(OpDef):
    """``output[..., d, ...] = values[1]`` where ``indices[...]`` (plus ``depth`` when
    negative) equals ``d``, else ``values[0]``; other indices give ``values[0]``."""

    name = "OneHot"
    pattern = INJECTIVE
    attrs = {"axis": -1}
    num_inputs = (3, 3)
    value_inputs = (1,)

    def _depth(self, ctx) -> int:
        check_dtype(ctx, 0, NUMERIC, "indices")
        depth = scalar_value(ctx, 1, "depth")
        if depth != math.floor(depth) or depth < 0:
            raise ctx.error(f"depth {depth} must be a non-negative integer")
        return int(depth)

    def infer(self, ctx):
        t, v = ctx.type(0), ctx.type(2)
        depth = self._depth(ctx)
        if v.shape != (2,):
            raise ctx.error(f"values must have shape [2] (off, on), got {list(v.shape)}")
        axis = normalize_axis(ctx, ctx.attrs["axis"], t.ndim + 1)
        return [out_type(t.shape[:axis] + (depth,) + t.shape[axis:], v.dtype)]

    def reference(self, ctx, indices, depth, values):
        depth = self._depth(ctx)
        axis = normalize_axis(ctx, ctx.attrs["axis"], indices.ndim + 1)
        idx = indices.astype(np.float64) if indices.dtype.kind == "f" else \
            indices.astype(object)
        idx = np.where(idx < 0, idx + depth, idx)
        targets = np.arange(depth).reshape((depth,) + (1,) * (indices.ndim - axis))
        hit = (np.expand_dims(idx, axis) == targets).astype(bool)
        return [np.where(hit, values[1], values[0]).astype(values.dtype)]

    def compute(self, ctx, indices, depth, values):
        depth = self._depth(ctx)
        axis = normalize_axis(ctx, ctx.attrs["axis"], indices.ndim + 1)
        dtype = indices.dtype

        def hit(v, d):
            if dtypes.is_float(dtype):
                v = te.cast(v, "float64")
                v = te.if_then_else(v < 0.0, v + float(depth), v)
                return v == te.cast(d, "float64")
            if dtypes.is_unsigned_int(dtype):
                exact = te.cast(v, "int64") == d
                if depth <= dtypes.max_value(dtype):
                    return te.if_then_else(v < n.const(depth, dtype), exact, False)
                return exact
            return _wrapped(v, depth) == d

        def body(*p):
            v = indices[p[:axis] + p[axis + 1:]]
            return te.if_then_else(hit(v, p[axis]), values[1], values[0])

        return [te.compute(ctx.out_types[0].shape, body, name=_name(ctx))]


@register
class TopK(OpDef):
    name = "TopK"
    pattern = OPAQUE
    attrs = {"axis": -1, "largest": 1, "sorted": 1}
    num_inputs = (2, 2)
    num_outputs = (2, 2)
    value_inputs = (1,)
    allowed = NUMERIC

    def _params(self, ctx):
        t = ctx.type(0)
        check_dtype(ctx, 0, self.allowed)
        if t.ndim == 0:
            raise ctx.error("X must have rank 1 or more")
        axis = normalize_axis(ctx, ctx.attrs["axis"], t.ndim)
        values = int_values(ctx, 1, "K", allow_scalar=True)
        if len(values) != 1 or not 0 <= values[0] <= t.shape[axis]:
            raise ctx.error(f"K={values} must be one value between 0 and {t.shape[axis]} "
                            f"(the size of axis {axis})")
        return axis, values[0]

    def infer(self, ctx):
        t = ctx.type(0)
        axis, k = self._params(ctx)
        shape = t.shape[:axis] + (k,) + t.shape[axis + 1:]
        return [out_type(shape, t.dtype), out_type(shape, "int64")]

    def reference(self, ctx, x, k):
        axis, k = self._params(ctx)
        position = np.indices(x.shape)[axis]
        if ctx.attrs["largest"]:
            order = np.flip(np.lexsort((-position, x), axis=axis), axis=axis)
        else:
            order = np.lexsort((position, x), axis=axis)
        order = np.take(order, np.arange(k), axis=axis)
        return [np.take_along_axis(x, order, axis=axis), order.astype(np.int64)]

    def compute(self, ctx, x, k):
        axis, _ = self._params(ctx)
        size = x.shape[axis]
        largest = ctx.attrs["largest"]
        floats = dtypes.is_float(x.dtype)

        def greater(a, b):
            if not floats:
                return a > b
            return te.any(a > b, te.all(te.isnan(a), ~te.isnan(b)))

        def equal(a, b):
            if not floats:
                return a == b
            return te.any(a == b, te.all(te.isnan(a), te.isnan(b)))

        def at(p, m):
            return p[:axis] + (m,) + p[axis + 1:]

        def rank(*p):
            m = te.reduce_axis(size, "m")
            a, b = x[at(p, m)], x[p]
            first = greater(a, b) if largest else greater(b, a)
            before = te.any(first, te.all(equal(a, b), m < p[axis]))
            return te.sum(te.cast(before, "int64"), axis=m)

        ranks = te.compute(x.shape, rank, name=_name(ctx, "_rank"))

        def pick(*p):
            m = te.reduce_axis(size, "m")
            return te.max(m, axis=m, where=ranks[at(p, m)] == p[axis])

        out = ctx.out_types[0].shape
        indices = te.compute(out, pick, name=_name(ctx, "_indices"))
        values = te.compute(out, lambda *p: x[at(p, clamp_index(indices[p], size))],
                            name=_name(ctx, "_values"))
        return [values, indices]
