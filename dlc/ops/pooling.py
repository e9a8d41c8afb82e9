"""Pooling: MaxPool, AveragePool, LpPool, global pools, MaxUnpool, MaxRoiPool.

Windows follow ``dlc.ops.conv.window_geometry`` (explicit pads or auto_pad, ceil_mode
dropping windows that would start in the end padding, dilations). Padded positions never
take part: MaxPool ignores them, AveragePool divides by the number of positions inside the
input (``count_include_pad=0``) or inside the padded input (``=1``; positions past the end
padding that ceil_mode adds are never counted), computed in closed form per axis. MaxPool's
``Indices`` are the row-major flat indices of the first maximum of each window (the first
NaN when the window has one; column-major over the spatial axes with ``storage_order=1``).
"""

from __future__ import annotations

import numpy as np

from dlc import te
from dlc.ops.common import accumulation_dtype, out_type, reduce_compute
from dlc.ops.conv import Window, int_list, np_windows, window_geometry, window_positions
from dlc.ops.registry import FLOATS, OPAQUE, REDUCE, REQUIRED, OpDef, check_dtype, register

POOL_ATTRS = {"auto_pad": "NOTSET", "ceil_mode": 0, "dilations": [], "kernel_shape": REQUIRED,
              "pads": [], "strides": []}


class _Pool(OpDef):
    pattern = OPAQUE
    allowed = FLOATS

    def window(self, ctx) -> Window:
        xt = ctx.type(0)
        kernel = tuple(int(k) for k in ctx.attrs["kernel_shape"])
        if xt.ndim < 3 or len(kernel) != xt.ndim - 2:
            raise ctx.error(f"kernel_shape {list(kernel)} does not fit input shape "
                            f"{list(xt.shape)} (N, C, then one spatial axis per kernel axis)")
        if ctx.attrs["ceil_mode"] not in (0, 1):
            raise ctx.error(f"ceil_mode must be 0 or 1, got {ctx.attrs['ceil_mode']}")
        return window_geometry(ctx, xt.shape[2:], kernel, bool(ctx.attrs["ceil_mode"]),
                               pool=True)

    def infer(self, ctx):
        dtype = check_dtype(ctx, 0, self.allowed)
        win = self.window(ctx)
        return [out_type(ctx.type(0).shape[:2] + win.out, dtype)]

    def windowed(self, x, win, combiner, value, name):
        """``combiner`` over each window of ``value(read)`` (padded positions skipped)."""
        rk = [te.reduce_axis(k, f"rk{d}") for d, k in enumerate(win.kernel)]
        reducer = te.max if combiner == "max" else te.sum

        def body(n, c, *o):
            pos, cond = window_positions(win, o, rk)
            return reducer(value(x[(n, c, *pos)]), axis=rk, where=cond)

        return te.compute(x.shape[:2] + win.out, body, name=name)


# -- MaxPool ---------------------------------------------------------------------------------
@register
class MaxPool(_Pool):
    name = "MaxPool"
    num_outputs = (1, 2)
    attrs = {**POOL_ATTRS, "storage_order": 0}
    allowed = FLOATS + ("int8", "uint8")

    def infer(self, ctx):
        if ctx.attrs["storage_order"] not in (0, 1):
            raise ctx.error(f"storage_order must be 0 or 1, got {ctx.attrs['storage_order']}")
        y = super().infer(ctx)[0]
        return [y, out_type(y.shape, "int64")]

    def reference(self, ctx, x):
        win = self.window(ctx)
        fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        xs = x.astype(np.float64)
        flat = np.arange(x.size, dtype=np.int64).reshape(x.shape)
        best = np.full(x.shape[:2] + win.out, -np.inf)
        index = np.full(best.shape, -1, np.int64)
        for (_, view), (_, fview) in zip(np_windows(xs, win, fill), np_windows(flat, win, -1)):
            take = (fview >= 0) & ((view > best) | (np.isnan(view) & ~np.isnan(best))
                                   | (index < 0))
            best = np.where(take, view, best)
            index = np.where(take, fview, index)
        if ctx.attrs["storage_order"]:
            index = column_major(index, x.shape)
        return [best.astype(x.dtype), index]

    def compute(self, ctx, x):
        win = self.window(ctx)
        name = ctx.name or self.name
        y = self.windowed(x, win, "max", lambda v: v, name)
        rk = [te.reduce_axis(k, f"ik{d}") for d, k in enumerate(win.kernel)]
        spatial = x.shape[2:]

        def first(n, c, *o):
            pos, cond = window_positions(win, o, rk)
            v = x[(n, c, *pos)]
            match = v == y[(n, c, *o)]
            if x.dtype in FLOATS:
                match = match | te.isnan(v)
            flat = n * x.shape[1] + c
            for p, size in zip(pos, spatial):
                flat = flat * size + p
            return te.min(flat, axis=rk, where=match if cond is None else cond & match)

        index = te.compute(y.shape, first, name=f"{name}_first")
        if ctx.attrs["storage_order"]:
            order = te.compute(y.shape, lambda *i: te_column_major(index[i], x.shape),
                               name=f"{name}_indices")
        else:
            order = index
        return [y, order]


def column_major(index, shape):
    """NumPy: row-major flat indices rewritten with column-major spatial axes."""
    plane = int(np.prod(shape[2:]))
    nc, rest = np.divmod(index, plane)
    coords = np.unravel_index(rest, shape[2:])
    col = np.zeros_like(index)
    for d in reversed(range(len(coords))):
        col = col * shape[2 + d] + coords[d]
    return nc * plane + col


def te_column_major(flat, shape):
    spatial = shape[2:]
    plane = int(np.prod(spatial))
    rest = flat % plane
    coords = []
    for size in reversed(spatial):
        coords.append(rest % size)
        rest = rest // size
    coords.reverse()
    col = te.const(0, "int64")
    for d in reversed(range(len(spatial))):
        col = col * spatial[d] + coords[d]
    return (flat // plane) * plane + col


# -- AveragePool and LpPool ------------------------------------------------------------------
def axis_count(win: Window, d: int, o, include_pad: bool):
    """The number of window positions along axis ``d`` that are counted for output ``o``
    (an int64 expression, or a NumPy array for an array ``o``)."""
    lo, hi = (-win.pads_begin[d], win.inp[d] + win.pads_end[d]) if include_pad \
        else (0, win.inp[d])
    base = o * win.strides[d] - win.pads_begin[d]
    dil, last = win.dilations[d], win.kernel[d] - 1
    if isinstance(o, np.ndarray):
        kmin = np.maximum(0, -((base - lo) // dil))
        kmax = np.minimum(last, (hi - 1 - base) // dil)
        return np.maximum(0, kmax - kmin + 1)
    kmin = te.maximum(-((base - lo) // dil), 0)
    kmax = te.minimum((hi - 1 - base) // dil, last)
    return te.maximum(kmax - kmin + 1, 0)


def np_counts(win: Window, include_pad: bool) -> np.ndarray:
    total = np.ones(win.out)
    for d in range(win.rank):
        shape = [1] * win.rank
        shape[d] = win.out[d]
        total = total * axis_count(win, d, np.arange(win.out[d]), include_pad).reshape(shape)
    return total


@register
class AveragePool(_Pool):
    name = "AveragePool"
    attrs = {**POOL_ATTRS, "count_include_pad": 0}

    def reference(self, ctx, x):
        win = self.window(ctx)
        acc = np.float64 if x.dtype == np.float64 else np.float32
        total = sum(view for _, view in np_windows(x.astype(acc), win, 0))
        counts = np_counts(win, bool(ctx.attrs["count_include_pad"]))
        return [(total / counts).astype(x.dtype)]

    def compute(self, ctx, x):
        win = self.window(ctx)
        name = ctx.name or self.name
        acc = accumulation_dtype(x.dtype)
        total = self.windowed(x, win, "sum", lambda v: te.cast(v, acc), f"{name}_sum")
        include = bool(ctx.attrs["count_include_pad"])

        def mean(n, c, *o):
            count = te.const(1, "int64")
            for d in range(win.rank):
                count = count * axis_count(win, d, o[d], include)
            return te.cast(total[(n, c, *o)] / te.cast(count, acc), x.dtype)

        return [te.compute(total.shape, mean, name=name)]


def lp_terms(v, p: int, acc: str):
    """|v| ** p in ``acc`` (exact products for p = 1, 2)."""
    a = te.abs(te.cast(v, acc))
    if p == 1:
        return a
    if p == 2:
        return a * a
    return te.pow(a, te.const(float(p), acc))


def lp_root(total, p: int, acc: str):
    if p == 1:
        return total
    if p == 2:
        return te.sqrt(total)
    return te.pow(total, te.const(1.0 / p, acc))


def check_p(ctx) -> int:
    p = ctx.attrs["p"]
    if int(p) != p or p < 1:
        raise ctx.error(f"p must be a positive integer, got {p}")
    return int(p)


@register
class LpPool(_Pool):
    """``(sum over the window of |x| ** p) ** (1 / p)``; padding contributes nothing."""

    name = "LpPool"
    attrs = {**POOL_ATTRS, "p": 2}

    def infer(self, ctx):
        check_p(ctx)
        return super().infer(ctx)

    def reference(self, ctx, x):
        win, p = self.window(ctx), check_p(ctx)
        acc = np.float64 if x.dtype == np.float64 else np.float32
        total = sum(np.abs(view) ** p for _, view in np_windows(x.astype(acc), win, 0))
        return [(total ** (1.0 / p)).astype(x.dtype)]

    def compute(self, ctx, x):
        win, p = self.window(ctx), check_p(ctx)
        name = ctx.name or self.name
        acc = accumulation_dtype(x.dtype)
        total = self.windowed(x, win, "sum", lambda v: lp_terms(v, p, acc), f"{name}_sum")
        return [te.compute(total.shape, lambda *i: te.cast(lp_root(total[i], p, acc), x.dtype),
                           name=name)]


# -- global pools ----------------------------------------------------------------------------
class _GlobalPool(OpDef):
    pattern = REDUCE

    def infer(self, ctx):
        dtype = check_dtype(ctx, 0, FLOATS)
        t = ctx.type(0)
        if t.ndim < 3:
            raise ctx.error(f"input must have rank 3 or more (N, C, spatial...), got shape "
                            f"{list(t.shape)}")
        if self.name == "GlobalLpPool":
            check_p(ctx)
        return [out_type(t.shape[:2] + (1,) * (t.ndim - 2), dtype)]


@register
class GlobalMaxPool(_GlobalPool):
    name = "GlobalMaxPool"

    def reference(self, ctx, x):
        return [np.max(x, axis=tuple(range(2, x.ndim)), keepdims=True)]

    def compute(self, ctx, x):
        return [reduce_compute(x.shape, range(2, x.ndim), lambda i: x[i], "max",
                               name=ctx.name or self.name)]


@register
class GlobalAveragePool(_GlobalPool):
    name = "GlobalAveragePool"

    def reference(self, ctx, x):
        acc = np.float64 if x.dtype == np.float64 else np.float32
        return [np.mean(x.astype(acc), axis=tuple(range(2, x.ndim)), keepdims=True)
                .astype(x.dtype)]

    def compute(self, ctx, x):
        name = ctx.name or self.name
        acc = accumulation_dtype(x.dtype)
        total = reduce_compute(x.shape, range(2, x.ndim), lambda i: te.cast(x[i], acc), "sum",
                               name=f"{name}_sum")
        count = int(np.prod(x.shape[2:]))
        return [te.compute(total.shape, lambda *i: te.cast(
            total[i] / te.const(count, acc), x.dtype), name=name)]


@register
class GlobalLpPool(_GlobalPool):
    name = "GlobalLpPool"
    attrs = {"p": 2}

    def reference(self, ctx, x):
        p = check_p(ctx)
        acc = np.float64 if x.dtype == np.float64 else np.float32
        total = np.sum(np.abs(x.astype(acc)) ** p, axis=tuple(range(2, x.ndim)), keepdims=True)
        return [(total ** (1.0 / p)).astype(x.dtype)]

    def compute(self, ctx, x):
        p = check_p(ctx)
        name = ctx.name or self.name
        acc = accumulation_dtype(x.dtype)
        total = reduce_compute(x.shape, range(2, x.ndim), lambda i: lp_terms(x[i], p, acc),
                               "sum", name=f"{name}_sum")
        return [te.compute(total.shape, lambda *i: te.cast(lp_root(total[i], p, acc), x.dtype),
                           name=name)]


# -- MaxUnpool -------------------------------------------------------------------------------
@register
class MaxUnpool(OpDef):
    """``Y.flat[I[i]] = X.flat[i]``, zeros elsewhere, in a tensor of the shape MaxPool had
    (``(in - 1) * stride + kernel - pads``). With ``output_shape``, that tensor is placed
    at the start of a zero tensor of that shape (like ONNX's reference). Written as a pull:
    each output element takes the last input whose index names it (O(|Y| |X|) work; no
    scatter primitive exists); indices outside the tensor match nothing."""

    name = "MaxUnpool"
    pattern = OPAQUE
    num_inputs = (2, 3)
    value_inputs = (2,)
    attrs = {"kernel_shape": REQUIRED, "pads": [], "strides": []}

    def shapes(self, ctx):
        xt = ctx.type(0)
        rank = xt.ndim - 2
        kernel = [int(k) for k in ctx.attrs["kernel_shape"]]
        if rank < 1 or len(kernel) != rank or any(k < 1 for k in kernel):
            raise ctx.error(f"kernel_shape {kernel} does not fit input shape {list(xt.shape)}")
        strides = int_list(ctx, "strides", rank, 1, 1)
        pads = int_list(ctx, "pads", 2 * rank, 0, 0)
        inferred = tuple(xt.shape[:2]) + tuple(
            (xt.shape[2 + d] - 1) * strides[d] - pads[d] - pads[rank + d] + kernel[d]
            for d in range(rank))
        if any(s < 1 for s in inferred):
            raise ctx.error(f"the unpooled shape {list(inferred)} is empty")
        out = inferred
        if ctx.has_input(2):
            out = tuple(int(v) for v in ctx.value(2))
            if len(out) != xt.ndim or any(o < i for o, i in zip(out, inferred)):
                raise ctx.error(f"output_shape {list(out)} must have rank {xt.ndim} and be at "
                                f"least the unpooled shape {list(inferred)}")
        return inferred, out

    def infer(self, ctx):
        check_dtype(ctx, 0, FLOATS)
        check_dtype(ctx, 1, ("int64",), "indices")
        if ctx.type(1).shape != ctx.type(0).shape:
            raise ctx.error(f"indices have shape {list(ctx.type(1).shape)}; expected X's "
                            f"{list(ctx.type(0).shape)}")
        return [out_type(self.shapes(ctx)[1], ctx.type(0).dtype)]

    def reference(self, ctx, x, indices, output_shape=None):
        inferred, out = self.shapes(ctx)
        y = np.zeros(int(np.prod(inferred)), x.dtype)
        flat = indices.reshape(-1)
        ok = (flat >= 0) & (flat < y.size)
        y[flat[ok]] = x.reshape(-1)[ok]
        res = np.zeros(out, x.dtype)
        res[tuple(slice(0, s) for s in inferred)] = y.reshape(inferred)
        return [res]

    def compute(self, ctx, x, indices, output_shape=None):
        inferred, out = self.shapes(ctx)
        name = ctx.name or self.name
        size = int(np.prod(x.shape))
        r = te.reduce_axis(size, "ri")
        src_shape = x.shape

        def unravel(flat, shape):
            idx = []
            for s in reversed(shape):
                idx.append(flat % s)
                flat = flat // s
            return tuple(reversed(idx))

        def last_source(*o):
            inside = te.all(*[o[d] < inferred[d] for d in range(len(out))
                              if out[d] != inferred[d]])
            flat = te.const(0, "int64")
            for d, s in enumerate(inferred):
                flat = flat * s + o[d]
            cond = indices[unravel(r, src_shape)] == flat
            return te.max(r, axis=r, where=cond & inside)

        src = te.compute(out, last_source, name=f"{name}_source")
        zero = te.const(0, x.dtype)
        return [te.compute(out, lambda *o: te.if_then_else(
            src[o] >= 0, x[unravel(te.maximum(src[o], 0), src_shape)], zero), name=name)]


# -- MaxRoiPool ------------------------------------------------------------------------------
def round_half_away(v):
    """C's round(): halves go away from zero."""
    return te.if_then_else(v >= 0, te.floor(v + 0.5), te.ceil(v - 0.5))


@register
class MaxRoiPool(OpDef):
    """Caffe's ROI max pooling: each roi ``[batch, x1, y1, x2, y2]`` (scaled by
    ``spatial_scale`` and rounded half away from zero) is split into ``pooled_shape`` bins
    (``floor`` / ``ceil`` bounds, clipped to the image); an empty bin gives 0."""

    name = "MaxRoiPool"
    pattern = OPAQUE
    num_inputs = (2, 2)
    attrs = {"pooled_shape": REQUIRED, "spatial_scale": 1.0}

    def infer(self, ctx):
        dtype = check_dtype(ctx, 0, FLOATS)
        xt, rt = ctx.type(0), ctx.type(1)
        pooled = [int(v) for v in ctx.attrs["pooled_shape"]]
        if xt.ndim != 4 or len(pooled) != 2 or min(pooled) < 1:
            raise ctx.error(f"needs X of rank 4 and 2 positive pooled_shape values, got X "
                            f"{list(xt.shape)} and pooled_shape {pooled}")
        if rt.ndim != 2 or rt.shape[1] != 5 or rt.dtype != dtype:
            raise ctx.error(f"rois must be [num_rois, 5] of {dtype}, got {rt}")
        return [out_type((rt.shape[0], xt.shape[1], *pooled), dtype)]

    def reference(self, ctx, x, rois):
        ph, pw = [int(v) for v in ctx.attrs["pooled_shape"]]
        scale = float(ctx.attrs["spatial_scale"])
        H, W = x.shape[2:]
        out = np.zeros((rois.shape[0], x.shape[1], ph, pw), x.dtype)

        def rnd(v):
            return float(np.sign(v) * np.floor(abs(v) + 0.5))

        for r, roi in enumerate(rois.astype(np.float64)):
            b = int(roi[0])
            x1, y1, x2, y2 = [rnd(v * scale) for v in np.float32(roi[1:]).astype(np.float64)]
            bh = max(y2 - y1 + 1, 1) / ph
            bw = max(x2 - x1 + 1, 1) / pw
            for i in range(ph):
                hs = min(max(int(np.floor(i * bh)) + int(y1), 0), H)
                he = min(max(int(np.ceil((i + 1) * bh)) + int(y1), 0), H)
                for j in range(pw):
                    ws = min(max(int(np.floor(j * bw)) + int(x1), 0), W)
                    we = min(max(int(np.ceil((j + 1) * bw)) + int(x1), 0), W)
                    if he > hs and we > ws:
                        out[r, :, i, j] = x[b, :, hs:he, ws:we].max(axis=(1, 2))
        return [out]

    def compute(self, ctx, x, rois):
        ph, pw = [int(v) for v in ctx.attrs["pooled_shape"]]
        H, W = x.shape[2:]
        name = ctx.name or self.name
        acc = "float64"
        scale = te.const(float(np.float32(ctx.attrs["spatial_scale"])), acc)

        def coord(r, k):
            return round_half_away(te.cast(rois[r, k], acc) * scale)

        def bounds(r, i, k_lo, k_hi, pooled, size):
            start = coord(r, k_lo)
            extent = te.maximum(coord(r, k_hi) - start + 1, te.const(1.0, acc))
            bin_size = extent / te.const(float(pooled), acc)
            s0 = te.cast(start, "int64")
            lo = te.cast(te.floor(te.cast(i, acc) * bin_size), "int64") + s0
            hi = te.cast(te.ceil(te.cast(i + 1, acc) * bin_size), "int64") + s0
            return (te.minimum(te.maximum(lo, 0), size), te.minimum(te.maximum(hi, 0), size))

        rh, rw = te.reduce_axis(H, "rh"), te.reduce_axis(W, "rw")

        def body(r, c, i, j):
            hs, he = bounds(r, i, 2, 4, ph, H)
            ws, we = bounds(r, j, 1, 3, pw, W)
            b = te.minimum(te.maximum(te.cast(rois[r, 0], "int64"), 0), x.shape[0] - 1)
            inside = te.all(rh >= hs, rh < he, rw >= ws, rw < we)
            return te.max(x[b, c, rh, rw], axis=[rh, rw], where=inside)

        best = te.compute((rois.shape[0], x.shape[1], ph, pw), body, name=f"{name}_max")
        zero = te.const(0, x.dtype)

        def finish(r, c, i, j):
            hs, he = bounds(r, i, 2, 4, ph, H)
            ws, we = bounds(r, j, 1, 3, pw, W)
            return te.if_then_else((he <= hs) | (we <= ws), zero, best[r, c, i, j])

        return [te.compute(best.shape, finish, name=name)]
