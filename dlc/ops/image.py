"""Resize, GridSample, AffineGrid, RoiAlign, Col2Im and CenterCropPad.

Resize is separable: along each resized axis an output coordinate maps to a source
coordinate (``coordinate_transformation_mode``, computed in float64), then to a few input
taps and their weights (``nearest``: one tap; ``linear``/``cubic``: 2 / 4 taps of the
interpolation kernel, more with ``antialias`` when downscaling, renormalized when
``antialias`` or ``exclude_outside`` ask for it; taps past the edges read the edge). The
per-axis formulas are written once against a small math namespace (``NPM`` for the NumPy
reference, ``TEM`` for tensor expressions), as in ``dlc.ops.elementwise``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from dlc import dtypes, te
from dlc.ops.common import accumulation_dtype, normalize_axes, np_dtype, out_type
from dlc.ops.registry import FLOATS, INJECTIVE, NUMERIC, OPAQUE, OpDef, check_dtype, register

COORD_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
               "asymmetric", "tf_crop_and_resize")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


class NPM:
    """Math on NumPy arrays (float64 coordinates, int64 indices)."""

    floor, ceil, abs = staticmethod(np.floor), staticmethod(np.ceil), staticmethod(np.abs)
    maximum, minimum, where = staticmethod(np.maximum), staticmethod(np.minimum), \
        staticmethod(np.where)

    @staticmethod
    def f64(v):
        return np.asarray(v, np.float64)

    @staticmethod
    def i64(v):
        return np.asarray(v).astype(np.int64)


class TEM:
    """The same on tensor expressions."""

    floor, ceil, abs = staticmethod(te.floor), staticmethod(te.ceil), staticmethod(te.abs)
    maximum, minimum, where = staticmethod(te.maximum), staticmethod(te.minimum), \
        staticmethod(te.if_then_else)

    @staticmethod
    def f64(v):
        return te.cast(v, "float64")

    @staticmethod
    def i64(v):
        return te.cast(v, "int64")


# -- Resize ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResizeAxis:
    """How one axis is resized: ``size -> out`` with ``scale``; ``taps`` input positions
    per output position (1 for nearest)."""

    size: int
    out: int
    scale: float
    start: float = 0.0     # roi (tf_crop_and_resize)
    end: float = 1.0
    taps: int = 1
    kernel_scale: float = 1.0   # min(scale, 1) with antialias
    width: float = 0.0          # the (fractional) target length: scale * size (* roi extent)

    def source(self, m, o, mode: str):
        """The source coordinate (float64) of output index ``o``."""
        L, s = self.size, self.scale
        x = m.f64(o)
        if mode == "half_pixel":
            return (x + 0.5) / s - 0.5
        if mode == "half_pixel_symmetric":
            offset = L / 2 * (1 - self.out / (s * L))
            return offset + (x + 0.5) / s - 0.5
        if mode == "pytorch_half_pixel":
            return (x + 0.5) / s - 0.5 if self.out > 1 else x * 0.0
        if mode == "asymmetric":
            return x / s
        width = self.width
        if mode == "align_corners":
            return x * 0.0 if width == 1 else x * ((L - 1) / (width - 1))
        if width == 1:  # tf_crop_and_resize
            return x * 0.0 + 0.5 * (self.start + self.end) * (L - 1)
        return self.start * (L - 1) + x * ((self.end - self.start) * (L - 1) / (width - 1))

    def nearest(self, m, x, nearest_mode: str):
        if nearest_mode == "round_prefer_floor":
            i = m.ceil(x - 0.5)
        elif nearest_mode == "round_prefer_ceil":
            i = m.floor(x + 0.5)
        elif nearest_mode == "floor":
            i = m.floor(x)
        else:
            i = m.ceil(x)
        return m.minimum(m.maximum(m.i64(i), 0), self.size - 1)

    def tap(self, m, x, t):
        """(unclamped input index, offset from the source coordinate) of tap ``t``: taps
        ``f - n/2 + 1 .. f + n/2`` around ``f = ceil(x) - 1`` (ONNX prefers the left
        neighbour)."""
        f = m.ceil(x) - 1.0
        offset = m.f64(t) + (1 - self.taps // 2)
        return m.i64(f + offset), f + offset - x

    def weight(self, m, distance, mode: str, a: float):
        u = m.abs(distance * self.kernel_scale)
        if mode == "linear":
            return m.maximum(1.0 - u, 0.0)
        near = ((a + 2) * u - (a + 3)) * u * u + 1
        far = ((a * u - 5 * a) * u + 8 * a) * u - 4 * a
        return m.where(u <= 1.0, near, m.where(u < 2.0, far, u * 0.0))


def antialias_taps(mode: str, scale: float) -> int:
    s = min(scale, 1.0)
    start = math.floor((-1 if mode == "linear" else -2) / s) + 1
    return 2 - 2 * start


@register
class Resize(OpDef):
    """Resize with ONNX's opset 19 semantics (see the module docstring). Output sizes from
    ``scales`` are ``floor(size * scale)``; with tf_crop_and_resize, the spec's
    ``floor(size * (roi_end - roi_start) * scale)`` (ONNX's reference and onnxruntime
    leave the roi extent out; with ``sizes`` all agree). Integer inputs are interpolated
    in float64, then rounded half to even and saturated, like ONNX's saturate_cast."""

    name = "Resize"
    pattern = INJECTIVE
    num_inputs = (1, 4)
    value_inputs = (1, 2, 3)
    attrs = {"antialias": 0, "axes": [], "coordinate_transformation_mode": "half_pixel",
             "cubic_coeff_a": -0.75, "exclude_outside": 0, "extrapolation_value": 0.0,
             "keep_aspect_ratio_policy": "stretch", "mode": "nearest",
             "nearest_mode": "round_prefer_floor"}

    def plan(self, ctx) -> list:
        """A ResizeAxis per input axis (None for axes left as they are)."""
        a = ctx.attrs
        shape = ctx.type(0).shape
        rank = len(shape)
        mode, coord = a["mode"], a["coordinate_transformation_mode"]
        if mode not in ("nearest", "linear", "cubic"):
            raise ctx.error(f"mode must be nearest, linear or cubic, got {mode!r}")
        if coord not in COORD_MODES:
            raise ctx.error(f"coordinate_transformation_mode {coord!r} is not one of "
                            f"{', '.join(COORD_MODES)}")
        if a["nearest_mode"] not in NEAREST_MODES:
            raise ctx.error(f"nearest_mode {a['nearest_mode']!r} is not one of "
                            f"{', '.join(NEAREST_MODES)}")
        policy = a["keep_aspect_ratio_policy"]
        if policy not in ("stretch", "not_larger", "not_smaller"):
            raise ctx.error(f"keep_aspect_ratio_policy {policy!r} is not stretch, not_larger "
                            "or not_smaller")
        axes = normalize_axes(ctx, a["axes"], rank) if a["axes"] else list(range(rank))
        scales = self.optional_value(ctx, 2)
        sizes = self.optional_value(ctx, 3)
        if (scales is None) == (sizes is None):
            raise ctx.error("exactly one of scales and sizes must be given")
        given = scales if scales is not None else sizes
        if given.ndim != 1 or given.size != len(axes):
            raise ctx.error(f"{'scales' if scales is not None else 'sizes'} has shape "
                            f"{list(given.shape)}; expected [{len(axes)}] (one per axis)")
        roi = self.optional_value(ctx, 1) if coord == "tf_crop_and_resize" else None
        if coord == "tf_crop_and_resize" and (roi is None or roi.size != 2 * len(axes)):
            raise ctx.error(f"tf_crop_and_resize needs roi with {2 * len(axes)} values")
        if scales is not None:
            sc = [float(np.float64(v)) for v in scales]
            if any(not v > 0 for v in sc):
                raise ctx.error(f"scales must be positive, got {scales.tolist()}")
            # the spec's output size: floor(size * (roi_end - roi_start) * scale)
            widths = [shape[d] * sc[k] * (float(roi[len(axes) + k] - roi[k]) if roi is not None
                                          else 1.0) for k, d in enumerate(axes)]
            outs = [int(math.floor(w)) for w in widths]
        else:
            outs = [int(v) for v in sizes]
            if any(v < 0 for v in outs):
                raise ctx.error(f"sizes must be non-negative, got {outs}")
            if any(shape[d] == 0 for d in axes):
                raise ctx.error("cannot resize an empty axis")
            sc = [o / shape[d] for o, d in zip(outs, axes)]
            if policy != "stretch":
                s = min(sc) if policy == "not_larger" else max(sc)
                sc = [s] * len(axes)
                outs = [int(s * shape[d] + 0.5) for d in axes]
            widths = [sc[k] * shape[d] for k, d in enumerate(axes)]
        plan = [None] * rank
        for k, d in enumerate(axes):
            start, end = (float(roi[k]), float(roi[len(axes) + k])) if roi is not None \
                else (0.0, 1.0)
            if math.isclose(sc[k], 1.0) and outs[k] == shape[d] and \
                    math.isclose(start, 0.0) and math.isclose(end, 1.0):
                continue  # identity along this axis
            taps, kscale = 1, 1.0
            if mode != "nearest":
                taps = antialias_taps(mode, sc[k]) if a["antialias"] else \
                    (2 if mode == "linear" else 4)
                kscale = min(sc[k], 1.0) if a["antialias"] else 1.0
            plan[d] = ResizeAxis(shape[d], outs[k], sc[k], start, end, taps, kscale, widths[k])
        return plan

    @staticmethod
    def optional_value(ctx, index):
        if not ctx.has_input(index) or ctx.type(index).size == 0:
            return None
        return ctx.value(index).astype(np.float64) if index != 3 else ctx.value(index)

    def infer(self, ctx):
        dtype = check_dtype(ctx, 0, NUMERIC)
        plan = self.plan(ctx)
        shape = [p.out if p is not None else s for p, s in zip(plan, ctx.type(0).shape)]
        return [out_type(shape, dtype)]

    def normalized(self, ctx) -> bool:
        return bool(ctx.attrs["antialias"] or ctx.attrs["exclude_outside"])

    def axis_tables(self, ctx, ax: ResizeAxis, m, o, t):
        """(index, weight) of tap ``t`` of output ``o`` (weight None for nearest); the
        weight is not yet normalized."""
        a = ctx.attrs
        coord = a["coordinate_transformation_mode"]
        x = ax.source(m, o, coord)
        if a["mode"] == "nearest":
            return ax.nearest(m, x, a["nearest_mode"]), None
        index, dist = ax.tap(m, x, t)
        w = ax.weight(m, dist, a["mode"], float(a["cubic_coeff_a"]))
        if a["exclude_outside"]:
            w = m.where((index >= 0) & (index < ax.size), w, w * 0.0)
        return m.minimum(m.maximum(index, 0), ax.size - 1), w

    def norm_body(self, ctx, ax: ResizeAxis, d: int):
        """fcompute of the sum of the taps' weights of each output position."""
        rt = te.reduce_axis(ax.taps, f"nt{d}")

        def body(o):
            return te.sum(self.axis_tables(ctx, ax, TEM, o, rt)[1], axis=rt)

        return body

    def outside(self, ctx, ax: ResizeAxis, m, o):
        """tf_crop_and_resize: whether output ``o`` maps outside the input (or None)."""
        if ctx.attrs["coordinate_transformation_mode"] != "tf_crop_and_resize":
            return None
        x = ax.source(m, o, "tf_crop_and_resize")
        return (x < 0) | (x > ax.size - 1)

    def reference(self, ctx, x, roi=None, scales=None, sizes=None):
        plan = self.plan(ctx)
        y = x.astype(np.float64)
        extrap = np.zeros(ctx.out_types[0].shape, bool)
        for d, ax in enumerate(plan):
            if ax is None:
                continue
            o = np.arange(ax.out)[:, None]
            t = np.arange(ax.taps)[None, :]
            index, w = self.axis_tables(ctx, ax, NPM, o, t)
            index = np.broadcast_to(index, (ax.out, ax.taps))
            if w is None:
                w = np.ones((ax.out, 1))
            elif self.normalized(ctx):
                total = w.sum(axis=1, keepdims=True)
                w = w / np.where(total == 0, 1.0, total)
            gathered = np.take(y, index, axis=d)  # [..., out, taps, ...]
            shape = [1] * gathered.ndim
            shape[d], shape[d + 1] = ax.out, ax.taps
            y = (gathered * w.reshape(shape)).sum(axis=d + 1)
            out = self.outside(ctx, ax, NPM, np.arange(ax.out))
            if out is not None:
                shape = [1] * y.ndim
                shape[d] = ax.out
                extrap = extrap | out.reshape(shape)
        y = np.where(extrap, float(ctx.attrs["extrapolation_value"]), y)
        return [saturate(y, x.dtype)]

    def compute(self, ctx, x, roi=None, scales=None, sizes=None):
        plan = self.plan(ctx)
        name = ctx.name or self.name
        out_shape = ctx.out_types[0].shape
        acc = accumulation_dtype(x.dtype) if dtypes.is_float(x.dtype) else "float64"
        tapped = [d for d, ax in enumerate(plan) if ax is not None and ax.taps > 1]
        norms = {}
        if self.normalized(ctx):
            for d in tapped:
                norms[d] = te.compute((plan[d].out,), self.norm_body(ctx, plan[d], d),
                                      name=f"{name}_norm{d}")
        rts = {d: te.reduce_axis(plan[d].taps, f"t{d}") for d in tapped}

        def body(*o):
            idx, weight = [], None
            for d, ax in enumerate(plan):
                if ax is None:
                    idx.append(o[d])
                    continue
                i, w = self.axis_tables(ctx, ax, TEM, o[d], rts.get(d, 0))
                idx.append(i)
                if w is not None:
                    if d in norms:
                        n = norms[d][o[d]]
                        w = w / te.if_then_else(n == 0.0, te.const(1.0, "float64"), n)
                    weight = w if weight is None else weight * w
            value = te.cast(x[tuple(idx)], acc)
            if weight is None:
                return value
            return te.sum(value * te.cast(weight, acc), axis=[rts[d] for d in tapped])

        total = te.compute(out_shape, body, name=f"{name}_sum")
        extrapolation = float(ctx.attrs["extrapolation_value"])

        def finish(*o):
            v = total[o]
            conds = [self.outside(ctx, ax, TEM, o[d]) for d, ax in enumerate(plan)
                     if ax is not None]
            conds = [c for c in conds if c is not None]
            if conds:
                v = te.if_then_else(te.any(*conds), te.const(extrapolation, acc), v)
            return te_saturate(v, x.dtype)

        return [te.compute(out_shape, finish, name=name)]


def saturate(y: np.ndarray, dtype) -> np.ndarray:
    """NumPy: float results converted like ONNX's saturate_cast (integers round half to
    even, then clip to the dtype's range)."""
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.round(y), info.min, info.max).astype(dtype)
    return y.astype(dtype)


def te_saturate(v, dtype: str):
    if dtypes.is_float(dtype):
        return te.cast(v, dtype)
    lo, hi = dtypes.min_value(dtype), dtypes.max_value(dtype)
    r = te.round(v)
    r = te.minimum(te.maximum(r, te.const(float(lo), v.dtype)), te.const(float(hi), v.dtype))
    return te.cast(r, dtype)


# -- GridSample ------------------------------------------------------------------------------
@register
class GridSample(OpDef):
    """Samples ``X[N, C, D1..Dr]`` at the normalized positions of ``grid[N, O1..Or, r]``
    (last axis ordered x, y, z: the innermost spatial axis first), like PyTorch's
    grid_sample. Coordinates are computed in the grid's dtype (float32 for half
    precision); nearest rounds half to even. As in ONNX's reference and onnxruntime (unlike
    PyTorch), border and reflection padding move only coordinates outside the image's
    extent ([-0.5, size - 0.5], or [0, size - 1] with align_corners); the taps of a cubic
    or linear sample near the edge then read the edge (border) or reflect (reflection).
    Integer X supports nearest mode only."""

    name = "GridSample"
    pattern = OPAQUE
    num_inputs = (2, 2)
    attrs = {"align_corners": 0, "mode": "linear", "padding_mode": "zeros"}

    def check(self, ctx):
        xt, gt = ctx.type(0), ctx.type(1)
        r = xt.ndim - 2
        if r < 1 or gt.ndim != r + 2 or gt.shape[0] != xt.shape[0] or gt.shape[-1] != r:
            raise ctx.error(f"grid has shape {list(gt.shape)}; for X {list(xt.shape)} it "
                            f"must be [N, out_1..out_{max(r, 1)}, {r}]")
        if ctx.attrs["mode"] not in ("linear", "nearest", "cubic"):
            raise ctx.error(f"mode must be linear, nearest or cubic, got "
                            f"{ctx.attrs['mode']!r}")
        if ctx.attrs["padding_mode"] not in ("zeros", "border", "reflection"):
            raise ctx.error(f"padding_mode must be zeros, border or reflection, got "
                            f"{ctx.attrs['padding_mode']!r}")
        if ctx.attrs["mode"] != "nearest" and not dtypes.is_float(xt.dtype):
            raise ctx.error(f"mode {ctx.attrs['mode']!r} needs floating-point X, got "
                            f"{xt.dtype}")
        return r

    def infer(self, ctx):
        dtype = check_dtype(ctx, 0, NUMERIC)
        check_dtype(ctx, 1, FLOATS, "grid")
        self.check(ctx)
        return [out_type(ctx.type(0).shape[:2] + ctx.type(1).shape[1:-1], dtype)]

    def work_dtype(self, ctx) -> str:
        return accumulation_dtype(ctx.type(1).dtype)

    def reference(self, ctx, x, grid):
        r = self.check(ctx)
        work = np_dtype(self.work_dtype(ctx))
        sizes = x.shape[2:]
        g = grid.astype(work)
        taps = [self.taps(ctx, NPM, self.source(ctx, NPM, denormalize(
            NPM, g[..., r - 1 - d], sizes[d], ctx.attrs["align_corners"]), sizes[d]), sizes[d])
            for d in range(r)]  # per axis: [(index, weight)] of [N, out...] arrays
        acc = np.float64 if x.dtype == np.float64 else np.float32
        N = x.shape[0]
        out = np.zeros(x.shape[:2] + grid.shape[1:-1], acc if x.dtype.kind == "f" else x.dtype)
        for combo in itertools.product(*taps):
            w = np.ones(g.shape[:-1], work)
            for _, wd in combo:
                w = w * wd
            vals = np.stack([x[n][(slice(None), *[i[n] for i, _ in combo])] for n in range(N)])
            if ctx.attrs["mode"] == "nearest":
                out = np.where(w[:, None] != 0, vals, out)
            else:
                out += (vals * w[:, None]).astype(out.dtype)
        return [out.astype(x.dtype)]

    def source(self, ctx, m, x, size: int):
        """A denormalized coordinate after rounding (nearest) and the padding mode's
        treatment of positions outside the image."""
        mode, pad = ctx.attrs["mode"], ctx.attrs["padding_mode"]
        lo, hi = (0.0, size - 1.0) if ctx.attrs["align_corners"] else (-0.5, size - 0.5)
        if mode == "nearest":
            x = m.round_even(x)
        if pad == "border":
            x = m.where((x < lo) | (x > hi), m.minimum(m.maximum(x, 0.0), size - 1.0), x)
        elif pad == "reflection":
            x = reflect(m, x, lo, hi)
        return x

    def taps(self, ctx, m, x, L: int) -> list:
        """The (clamped index, weight) of each tap at coordinate ``x`` (from ``source``);
        a tap outside the image weighs 0 with zeros padding, reflects back inside with
        reflection padding (integer arithmetic, same result as PyTorch's float rule)."""
        mode, pad = ctx.attrs["mode"], ctx.attrs["padding_mode"]
        if mode == "nearest":
            points, weights = [m.i64(x)], [x * 0.0 + 1.0]
        else:
            f = m.floor(x)
            r = x - f
            offsets = (0, 1) if mode == "linear" else (-1, 0, 1, 2)
            points = [m.i64(f) + k for k in offsets]
            weights = [1.0 - r, r] if mode == "linear" else \
                [keys_cubic(m, r + 1.0), keys_cubic(m, r), keys_cubic(m, 1.0 - r),
                 keys_cubic(m, 2.0 - r)]
        out = []
        for i, w in zip(points, weights):
            if pad == "zeros":
                w = m.where((i >= 0) & (i < L), w, w * 0.0)
            elif pad == "reflection":
                i = reflect_index(i, L, ctx.attrs["align_corners"], m)
            out.append((m.minimum(m.maximum(i, 0), L - 1), w))
        return out

    def compute(self, ctx, x, grid):
        r = self.check(ctx)
        work = self.work_dtype(ctx)
        sizes = x.shape[2:]
        name = ctx.name or self.name
        acc = accumulation_dtype(x.dtype) if dtypes.is_float(x.dtype) else x.dtype
        m = TEMG(work)
        ntaps = {"nearest": 1, "linear": 2, "cubic": 4}[ctx.attrs["mode"]]

        def axis_select(d, values):
            """``values[k]`` for spatial axis ``d == k`` (d is an index expression)."""
            value = values[-1]
            for k in reversed(range(len(values) - 1)):
                value = te.if_then_else(d == k, values[k], value)
            return value

        def source(n, *o_d):  # the coordinate along each spatial axis, computed once
            o, d = o_d[:-1], o_d[-1]
            return axis_select(d, [self.source(ctx, m, denormalize(
                m, te.cast(grid[(n, *o, r - 1 - k)], work), sizes[k],
                ctx.attrs["align_corners"]), sizes[k]) for k in range(r)])

        coords = materialize(ctx.type(1).shape, source, f"{name}_coords")
        table_shape = ctx.type(1).shape + (ntaps,)

        def table(part):
            def fcompute(n, *rest):
                o, d, t = rest[:-2], rest[-2], rest[-1]
                per_axis = []
                for k in range(r):
                    taps = self.taps(ctx, m, coords[(n, *o, k)], sizes[k])
                    per_axis.append(axis_select(t, [tap[part] for tap in taps]))
                return axis_select(d, per_axis)
            return fcompute

        index = materialize(table_shape, table(0), f"{name}_index")
        weight = materialize(table_shape, table(1), f"{name}_weight")
        rt = [te.reduce_axis(ntaps, f"t{d}") for d in range(r)] if ntaps > 1 else None

        def body(n, c, *o):
            if rt is None:  # nearest: one tap, weight 0 outside the image
                v = x[(n, c, *[index[(n, *o, d, 0)] for d in range(r)])]
                inside = te.all(*[weight[(n, *o, d, 0)] != 0.0 for d in range(r)])
                return te.if_then_else(inside, v, te.const(0, x.dtype))
            v = te.cast(x[(n, c, *[index[(n, *o, d, rt[d])] for d in range(r)])], acc)
            for d in range(r):
                v = v * te.cast(weight[(n, *o, d, rt[d])], acc)
            return te.sum(v, axis=rt)

        total = te.compute(ctx.out_types[0].shape, body,
                           name=name if rt is None or acc == x.dtype else f"{name}_sum")
        if rt is None or acc == x.dtype:
            return [total]
        return [te.compute(total.shape, lambda *i: te.cast(total[i], x.dtype), name=name)]


def reflect_index(i, L: int, align: int, m):
    """Integer tap index reflected into [0, L): period 2L about the pixel edges, or
    2(L - 1) about the corner pixels' centres (align_corners)."""
    if align:
        if L == 1:
            return i * 0
        p = 2 * (L - 1)
        k = m.abs(i) % p
        return m.where(k > L - 1, p - k, k)
    k = i % (2 * L)
    return m.where(k >= L, 2 * L - 1 - k, k)


class TEMG(TEM):
    """TEM with float constants in the grid's working dtype."""

    def __init__(self, work: str):
        self.work = work

    def f64(self, v):
        return te.cast(v, self.work)

    @staticmethod
    def round_even(v):
        return te.round(v)


NPM.round_even = staticmethod(np.rint)


def materialize(shape, fcompute, name: str) -> te.Tensor:
    """A compute that the generic schedule stores instead of inlining into its reader (a
    one-element reduction): used for values that many expressions of the reader repeat."""
    one = te.reduce_axis(1, "once")
    return te.compute(shape, lambda *i: te.sum(fcompute(*i), axis=one), name=name)


def denormalize(m, g, size: int, align: int):
    if align:
        return (g + 1.0) / 2.0 * (size - 1)
    return ((g + 1.0) * size - 1.0) / 2.0


def reflect(m, x, lo: float, hi: float):
    """Reflect ``x`` by the nearer border until it lies in [lo, hi] (PyTorch's rule)."""
    rng = hi - lo
    if rng == 0:  # a single pixel with align_corners
        return x * 0.0 + lo
    below = x < lo
    dx = m.where(below, lo - x, x - hi)
    k = m.floor(dx / rng)
    rem = dx - k * rng
    even = m.floor(k / 2.0) * 2.0 == k
    inner = m.where(below, m.where(even, lo + rem, hi - rem), m.where(even, hi - rem, lo + rem))
    return m.where((x < lo) | (x > hi), inner, x)


def keys_cubic(m, u, a: float = -0.75):
    """Keys' cubic convolution kernel at distance ``u`` in [0, 2] (PyTorch's A=-0.75)."""
    u = m.abs(u)
    near = ((a + 2) * u - (a + 3)) * u * u + 1
    far = ((a * u - 5 * a) * u + 8 * a) * u - 4 * a
    return m.where(u <= 1.0, near, far)


# -- AffineGrid ------------------------------------------------------------------------------
@register
class AffineGrid(OpDef):
    """``grid[n, ..., :] = theta[n] @ [x, y, (z,) 1]`` over the normalized positions of
    an output of ``size``; the last axis is ordered x (innermost axis), y, z."""

    name = "AffineGrid"
    pattern = OPAQUE
    num_inputs = (2, 2)
    value_inputs = (1,)
    attrs = {"align_corners": 0}

    def spatial(self, ctx):
        size = [int(v) for v in ctx.value(1)]
        theta = ctx.type(0)
        r = len(size) - 2
        if r not in (2, 3) or theta.shape != (size[0], r, r + 1):
            raise ctx.error(f"theta {list(theta.shape)} and size {size} must be [N, 2, 3] with "
                            "[N, C, H, W], or [N, 3, 4] with [N, C, D, H, W]")
        if min(size) < 0:
            raise ctx.error(f"size {size} must be non-negative")
        return size[2:]

    def infer(self, ctx):
        dtype = check_dtype(ctx, 0, FLOATS)
        sp = self.spatial(ctx)
        return [out_type((ctx.type(0).shape[0], *sp, len(sp)), dtype)]

    @staticmethod
    def base(m, i, size: int, align: int):
        i = m.f64(i)
        if align:
            return i * 0.0 - 1.0 if size == 1 else i * (2.0 / (size - 1)) - 1.0
        return (2.0 * i + 1.0) / size - 1.0

    def reference(self, ctx, theta, size):
        sp = self.spatial(ctx)
        r = len(sp)
        align = ctx.attrs["align_corners"]
        axes = np.meshgrid(*[self.base(NPM, np.arange(s), s, align) for s in sp], indexing="ij")
        homo = np.stack([axes[r - 1 - k] for k in range(r)] + [np.ones(sp)], axis=-1)
        grid = np.einsum("nij,...j->n...i", theta.astype(np.float64), homo)
        return [grid.astype(theta.dtype)]

    def compute(self, ctx, theta, size):
        sp = self.spatial(ctx)
        r = len(sp)
        align = ctx.attrs["align_corners"]

        def body(n, *idx):
            pos, row = idx[:-1], idx[-1]
            total = te.cast(theta[n, row, r], "float64")
            for k in range(r):  # component k is the coordinate along spatial axis r-1-k
                d = r - 1 - k
                total = total + te.cast(theta[n, row, k], "float64") * \
                    self.base(TEM, pos[d], sp[d], align)
            return te.cast(total, theta.dtype)

        return [te.compute(ctx.out_types[0].shape, body, name=ctx.name or self.name)]


# -- RoiAlign --------------------------------------------------------------------------------
@register
class RoiAlign(OpDef):
    """Mask R-CNN's RoiAlign, following ONNX's reference (and onnxruntime): bilinear
    samples on a ``sampling_ratio`` grid per bin (adaptive ``ceil(roi / output)`` when 0),
    averaged, or for ``mode="max"`` the maximum over samples of the largest weighted
    corner. Samples outside ``[-1, size]`` read 0. Coordinates are computed in the rois'
    dtype (float32 for half precision)."""

    name = "RoiAlign"
    pattern = OPAQUE
    num_inputs = (3, 3)
    attrs = {"coordinate_transformation_mode": "half_pixel", "mode": "avg",
             "output_height": 1, "output_width": 1, "sampling_ratio": 0,
             "spatial_scale": 1.0}

    def infer(self, ctx):
        dtype = check_dtype(ctx, 0, FLOATS)
        xt, rt, bt = ctx.type(0), ctx.type(1), ctx.type(2)
        if xt.ndim != 4 or rt.ndim != 2 or rt.shape[1] != 4 or rt.dtype != dtype:
            raise ctx.error(f"X must be [N, C, H, W] and rois [num_rois, 4] of {dtype}, got "
                            f"{xt} and {rt}")
        check_dtype(ctx, 2, ("int64", "int32"), "batch_indices")
        if bt.shape != (rt.shape[0],):
            raise ctx.error(f"batch_indices has shape {list(bt.shape)}; expected "
                            f"[{rt.shape[0]}]")
        a = ctx.attrs
        if a["mode"] not in ("avg", "max") or a["coordinate_transformation_mode"] not in (
                "half_pixel", "output_half_pixel"):
            raise ctx.error(f"mode {a['mode']!r} / coordinate_transformation_mode "
                            f"{a['coordinate_transformation_mode']!r} is not supported")
        if a["output_height"] < 1 or a["output_width"] < 1 or a["sampling_ratio"] < 0:
            raise ctx.error("output_height and output_width must be positive and "
                            "sampling_ratio non-negative")
        return [out_type((rt.shape[0], xt.shape[1], a["output_height"], a["output_width"]),
                         dtype)]

    def roi_geometry(self, ctx, m, roi, work):
        """Per axis (y, x): (start, bin size, grid count as float) for one roi."""
        a = ctx.attrs
        half = a["coordinate_transformation_mode"] == "half_pixel"
        scale = float(np.dtype(work).type(a["spatial_scale"]))
        out = []
        for k_lo, k_hi, pooled in ((1, 3, a["output_height"]), (0, 2, a["output_width"])):
            start = roi(k_lo) * scale - (0.5 if half else 0.0)
            end = roi(k_hi) * scale - (0.5 if half else 0.0)
            extent = end - start
            if not half:
                extent = m.maximum(extent, 1.0)
            bin_size = extent / float(pooled)
            grid = float(a["sampling_ratio"]) if a["sampling_ratio"] > 0 else \
                m.ceil(extent / float(pooled))
            out.append((start, bin_size, grid))
        return out

    def reference(self, ctx, x, rois, batch_indices):
        a = ctx.attrs
        work = np.float64 if x.dtype == np.float64 else np.float32
        H, W = x.shape[2:]
        ph, pw = a["output_height"], a["output_width"]
        out = np.zeros(ctx.out_types[0].shape, work)
        for r in range(rois.shape[0]):
            roi = rois[r].astype(work)
            (sy, by, gy), (sx, bx, gx) = self.roi_geometry(ctx, NPM, roi.__getitem__, work)
            gy, gx = int(gy), int(gx)
            b = int(batch_indices[r])
            img = x[b].astype(work)
            for i in range(ph):
                for j in range(pw):
                    vals = []
                    for iy in range(max(gy, 0)):
                        yy = work(sy + i * by + (iy + 0.5) * by / gy)
                        for ix in range(max(gx, 0)):
                            xx = work(sx + j * bx + (ix + 0.5) * bx / gx)
                            vals.append(bilinear_corners(img, yy, xx, H, W, work))
                    if not vals:
                        continue
                    if a["mode"] == "avg":
                        out[r, :, i, j] = sum(sum(vs) for vs in vals) / max(gy * gx, 1)
                    else:
                        out[r, :, i, j] = np.max([np.max(vs, axis=0) for vs in vals], axis=0)
        return [out.astype(x.dtype)]

    def compute(self, ctx, x, rois, batch_indices):
        a = ctx.attrs
        N, C, H, W = x.shape
        work = "float64" if x.dtype == "float64" else "float32"
        acc = accumulation_dtype(x.dtype)
        name = ctx.name or self.name
        m = TEMG(work)
        fixed = a["sampling_ratio"] > 0
        # A bin's samples are >= 0.5 apart (adaptive grid), so at most 2 * size + 3 of them
        # fall in [-1, size]; the rest read 0 and are accounted for without visiting them.
        ext_y = a["sampling_ratio"] if fixed else min(2 * H + 6, 1 << 30)
        ext_x = a["sampling_ratio"] if fixed else min(2 * W + 6, 1 << 30)
        ry, rx = te.reduce_axis(ext_y, "sy"), te.reduce_axis(ext_x, "sx")
        zero_w = te.const(0.0, work)

        def geometry_row(r, k):  # (start, bin size, grid count) for y then x, per roi
            values = [v for axis in self.roi_geometry(
                ctx, m, lambda c: te.cast(rois[r, c], work), work) for v in axis]
            value = values[-1]
            for q in reversed(range(5)):
                value = te.if_then_else(k == q, te.cast(values[q], work), value)
            return value

        table = materialize((rois.shape[0], 6), geometry_row, f"{name}_geometry")

        def geometry(r):
            return [(table[r, 3 * a], table[r, 3 * a + 1], table[r, 3 * a + 2]) for a in (0, 1)]

        def first_sample(start, bin_size, grid, i, size):
            """The first sample index that can lie at or above -1 (minus one, for safety)."""
            if fixed:
                return te.const(0, "int64")
            base = start + te.cast(i, work) * bin_size
            step = bin_size / te.maximum(grid, te.const(1.0, work))
            k = te.floor((te.const(-1.0, work) - base) / te.if_then_else(
                step > zero_w, step, te.const(1.0, work)) - 0.5)
            return te.maximum(te.cast(k, "int64") - 1, 0)

        def sample(start, bin_size, grid, i, k):
            return start + te.cast(i, work) * bin_size + \
                (te.cast(k, work) + 0.5) * bin_size / grid

        def body(r, c, i, j):
            (sy, by, gy), (sx, bx, gx) = geometry(r)
            ky = first_sample(sy, by, gy, i, H) + ry
            kx = first_sample(sx, bx, gx, j, W) + rx
            yy, xx = sample(sy, by, gy, i, ky), sample(sx, bx, gx, j, kx)
            b = te.minimum(te.maximum(te.cast(batch_indices[r], "int64"), 0), N - 1)
            corners = te_bilinear_corners(lambda p, q: te.cast(x[b, c, p, q], acc), yy, xx,
                                          H, W, work, acc)
            valid = (te.cast(ky, work) < gy) & (te.cast(kx, work) < gx)
            if a["mode"] == "avg":
                return te.sum(corners[0] + corners[1] + corners[2] + corners[3], axis=[ry, rx],
                              where=valid)
            best = te.maximum(te.maximum(corners[0], corners[1]),
                              te.maximum(corners[2], corners[3]))
            return te.max(best, axis=[ry, rx], where=valid)

        total = te.compute(ctx.out_types[0].shape, body, name=f"{name}_acc")

        def finish(r, c, i, j):
            (sy, by, gy), (sx, bx, gx) = geometry(r)
            empty = (gy <= zero_w) | (gx <= zero_w)
            v = total[r, c, i, j]
            if a["mode"] == "avg":
                v = v / te.cast(te.maximum(gy * gx, te.const(1.0, work)), acc)
            else:  # a sample outside [-1, size] contributes 0 to the max
                out_y = (sample(sy, by, gy, i, 0) < -1.0) | \
                    (sample(sy, by, gy, i, te.cast(gy, "int64") - 1) > float(H))
                out_x = (sample(sx, bx, gx, j, 0) < -1.0) | \
                    (sample(sx, bx, gx, j, te.cast(gx, "int64") - 1) > float(W))
                v = te.if_then_else(out_y | out_x, te.maximum(v, te.const(0.0, acc)), v)
            return te.cast(te.if_then_else(empty, te.const(0.0, acc), v), x.dtype)

        return [te.compute(total.shape, finish, name=name)]


def bilinear_corners(img, y, x, H, W, work):
    """NumPy: the four weighted corners ``w_k * img[:, y_k, x_k]`` of RoiAlign's sample."""
    if y < -1.0 or y > H or x < -1.0 or x > W:
        return [np.zeros(img.shape[0], work)] * 4
    y, x = max(y, work(0)), max(x, work(0))
    yl, xl = int(y), int(x)
    if yl >= H - 1:
        yh = yl = H - 1
        y = work(yl)
    else:
        yh = yl + 1
    if xl >= W - 1:
        xh = xl = W - 1
        x = work(xl)
    else:
        xh = xl + 1
    ly, lx = work(y - yl), work(x - xl)
    hy, hx = work(1.0) - ly, work(1.0) - lx
    return [hy * hx * img[:, yl, xl], hy * lx * img[:, yl, xh], ly * hx * img[:, yh, xl],
            ly * lx * img[:, yh, xh]]


def te_bilinear_corners(read, y, x, H, W, work, acc):
    """Tensor-expression twin of ``bilinear_corners`` (zero outside [-1, size])."""
    outside = (y < -1.0) | (y > float(H)) | (x < -1.0) | (x > float(W))
    y = te.maximum(y, te.const(0.0, work))
    x = te.maximum(x, te.const(0.0, work))
    yl = te.minimum(te.cast(y, "int64"), H - 1)
    xl = te.minimum(te.cast(x, "int64"), W - 1)
    y = te.if_then_else(yl >= H - 1, te.cast(yl, work), y)
    x = te.if_then_else(xl >= W - 1, te.cast(xl, work), x)
    yh = te.minimum(yl + 1, H - 1)
    xh = te.minimum(xl + 1, W - 1)
    ly, lx = y - te.cast(yl, work), x - te.cast(xl, work)
    hy, hx = 1.0 - ly, 1.0 - lx
    zero = te.const(0.0, acc)

    def corner(w, p, q):
        return te.if_then_else(outside, zero, te.cast(w, acc) * read(p, q))

    return [corner(hy * hx, yl, xl), corner(hy * lx, yl, xh), corner(ly * hx, yh, xl),
            corner(ly * lx, yh, xh)]


# -- Col2Im ----------------------------------------------------------------------------------
@register
class Col2Im(OpDef):
    """Sums column blocks ``[N, C * prod(block), L]`` back into ``[N, C, image...]`` (the
    adjoint of im2col, PyTorch's fold); written as a pull over the kernel offsets."""

    name = "Col2Im"
    pattern = OPAQUE
    num_inputs = (3, 3)
    value_inputs = (1, 2)
    attrs = {"dilations": [], "pads": [], "strides": []}

    def geometry(self, ctx):
        from dlc.ops.conv import int_list

        image = [int(v) for v in ctx.value(1)]
        block = [int(v) for v in ctx.value(2)]
        r = len(image)
        xt = ctx.type(0)
        if r < 1 or len(block) != r or xt.ndim != 3 or min(image) < 1 or min(block) < 1:
            raise ctx.error(f"needs input [N, C * prod(block), L] and image_shape / "
                            f"block_shape of one positive length, got {xt}, {image}, {block}")
        dil = int_list(ctx, "dilations", r, 1, 1)
        strides = int_list(ctx, "strides", r, 1, 1)
        pads = int_list(ctx, "pads", 2 * r, 0, 0)
        K = int(np.prod(block))
        if xt.shape[1] % K:
            raise ctx.error(f"input dimension 1 ({xt.shape[1]}) is not a multiple of the "
                            f"block size {K}")
        blocks = [(image[d] + pads[d] + pads[r + d] - dil[d] * (block[d] - 1) - 1)
                  // strides[d] + 1 for d in range(r)]
        if min(blocks) < 1 or int(np.prod(blocks)) != xt.shape[2]:
            raise ctx.error(f"input has {xt.shape[2]} blocks; image_shape {image}, "
                            f"block_shape {block} and the attributes give {blocks}")
        return image, block, dil, strides, pads[:r], blocks

    def infer(self, ctx):
        dtype = check_dtype(ctx, 0, NUMERIC)
        image, block, *_ = self.geometry(ctx)
        N, CK = ctx.type(0).shape[:2]
        return [out_type((N, CK // int(np.prod(block)), *image), dtype)]

    def reference(self, ctx, x, image_shape, block_shape):
        image, block, dil, strides, begin, blocks = self.geometry(ctx)
        r = len(image)
        N, C = x.shape[0], x.shape[1] // int(np.prod(block))
        acc = x.dtype if x.dtype.kind != "f" else (np.float64 if x.dtype == np.float64
                                                   else np.float32)
        cols = x.astype(acc).reshape(N, C, *block, *blocks)
        full = [begin[d] + image[d] + (blocks[d] - 1) * strides[d] + dil[d] * block[d]
                for d in range(r)]
        out = np.zeros((N, C, *full), acc)
        for k in itertools.product(*[range(b) for b in block]):
            sl = tuple(slice(k[d] * dil[d], k[d] * dil[d] + (blocks[d] - 1) * strides[d] + 1,
                             strides[d]) for d in range(r))
            out[(Ellipsis, *sl)] += cols[(slice(None), slice(None), *k)]
        out = out[(Ellipsis, *[slice(begin[d], begin[d] + image[d]) for d in range(r)])]
        return [out.astype(x.dtype)]

    def compute(self, ctx, x, image_shape, block_shape):
        image, block, dil, strides, begin, blocks = self.geometry(ctx)
        r = len(image)
        K = int(np.prod(block))
        acc = accumulation_dtype(x.dtype)
        rk = [te.reduce_axis(b, f"rk{d}") for d, b in enumerate(block)]

        def body(n, c, *o):
            conds, lidx, kidx = [], None, None
            for d in range(r):
                t = o[d] + begin[d] - rk[d] * dil[d]
                i = t // strides[d] if strides[d] > 1 else t
                if strides[d] > 1:
                    conds.append(t % strides[d] == 0)
                conds += [t >= 0, i < blocks[d]]
                lidx = i if lidx is None else lidx * blocks[d] + i
                kidx = rk[d] if kidx is None else kidx * block[d] + rk[d]
            v = te.cast(x[n, c * K + kidx, te.minimum(te.maximum(lidx, 0), x.shape[2] - 1)],
                        acc)
            return te.sum(te.if_then_else(te.all(*conds), v, te.const(0, acc)), axis=rk)

        name = ctx.name or self.name
        shape = ctx.out_types[0].shape
        total = te.compute(shape, body, name=name if acc == x.dtype else f"{name}_sum")
        if acc == x.dtype:
            return [total]
        return [te.compute(shape, lambda *i: te.cast(total[i], x.dtype), name=name)]


# -- CenterCropPad ---------------------------------------------------------------------------
@register
class CenterCropPad(OpDef):
    """Crops (start rounded down) or zero-pads (extra pixel at the end) each listed axis
    to the target size, centred."""

    name = "CenterCropPad"
    pattern = INJECTIVE
    num_inputs = (2, 2)
    value_inputs = (1,)
    attrs = {"axes": []}

    def offsets(self, ctx):
        shape = ctx.type(0).shape
        rank = len(shape)
        target = [int(v) for v in ctx.value(1)]
        axes = normalize_axes(ctx, ctx.attrs["axes"], rank) if ctx.attrs["axes"] \
            else list(range(rank))
        if len(target) != len(axes) or min(target, default=0) < 0:
            raise ctx.error(f"shape {target} must give one non-negative size per axis "
                            f"({len(axes)})")
        out, shift = list(shape), [0] * rank
        for a, t in zip(axes, target):
            out[a] = t
            shift[a] = (shape[a] - t) // 2 if t <= shape[a] else -((t - shape[a]) // 2)
        return out, shift  # input index = output index + shift

    def infer(self, ctx):
        check_dtype(ctx, 0, NUMERIC + ("bool",))
        check_dtype(ctx, 1, ("int32", "int64"), "shape")
        return [out_type(self.offsets(ctx)[0], ctx.type(0).dtype)]

    def reference(self, ctx, x, shape):
        out, shift = self.offsets(ctx)
        y = np.zeros(out, x.dtype)
        src, dst = [], []
        for d, s in enumerate(shift):
            lo = max(0, -s)
            hi = min(out[d], x.shape[d] - s)
            dst.append(slice(lo, max(lo, hi)))
            src.append(slice(lo + s, max(lo, hi) + s))
        y[tuple(dst)] = x[tuple(src)]
        return [y]

    def compute(self, ctx, x, shape):
        out, shift = self.offsets(ctx)
        zero = te.const(0 if x.dtype != "bool" else False, x.dtype)

        def body(*o):
            idx, conds = [], []
            for d, s in enumerate(shift):
                i = o[d] + s
                if s < 0:
                    conds.append(i >= 0)
                if out[d] + s > x.shape[d]:
                    conds.append(i < x.shape[d])
                idx.append(i)
            v = x[tuple(idx)]
            return te.if_then_else(te.all(*conds), v, zero) if conds else v

        return [te.compute(out, body, name=ctx.name or self.name)]
