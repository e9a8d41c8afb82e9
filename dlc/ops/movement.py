"""Data movement: Concat, Split, Slice, Pad, Tile, DepthToSpace, SpaceToDepth, Trilu,
ReverseSequence. Each output element reads one input element (or a constant) at an index
computed from its own: the computes are index arithmetic around one read."""

from __future__ import annotations

import numpy as np

from dlc import te
from dlc.expr import nodes as n
from dlc.ops.common import normalize_axes, normalize_axis, out_type, same_dtype
from dlc.ops.registry import INJECTIVE, REQUIRED, OpDef, register
from dlc.ops.shape import first_element, int_values


def _name(ctx) -> str:
    return ctx.name or ctx.op


def _zero(dtype: str) -> n.Expr:
    return n.const(False if dtype == "bool" else 0, dtype)


@register
class Concat(OpDef):
    name = "Concat"
    pattern = INJECTIVE
    attrs = {"axis": REQUIRED}
    num_inputs = (1, None)

    def infer(self, ctx):
        dtype = same_dtype(ctx)
        types = [ctx.type(k) for k in range(len(ctx.in_types))]
        rank = types[0].ndim
        if rank == 0:
            raise ctx.error("cannot concatenate scalars (rank 0)")
        axis = normalize_axis(ctx, ctx.attrs["axis"], rank)
        shape = list(types[0].shape)
        for t in types[1:]:
            if t.ndim != rank or any(a != b for k, (a, b) in enumerate(zip(t.shape, shape))
                                     if k != axis):
                raise ctx.error(f"input shapes {', '.join(str(list(t.shape)) for t in types)} "
                                f"differ outside axis {axis}")
            shape[axis] += t.shape[axis]
        return [out_type(shape, dtype)]

    def reference(self, ctx, *xs):
        axis = normalize_axis(ctx, ctx.attrs["axis"], xs[0].ndim)
        return [np.concatenate(xs, axis=axis)]

    def compute(self, ctx, *xs):
        axis = normalize_axis(ctx, ctx.attrs["axis"], ctx.type(0).ndim)
        parts, offset = [], 0
        for k, x in enumerate(xs):
            size = ctx.type(k).shape[axis]
            if size:
                parts.append((offset, x))
            offset += size

        def body(*i):
            def read(offset, x):
                return x[i[:axis] + (i[axis] - offset,) + i[axis + 1:]]

            expr = read(*parts[-1])
            for off, x in reversed(parts[:-1]):
                end = off + x.shape[axis]
                expr = te.if_then_else(i[axis] < end, read(off, x), expr)
            return expr

        return [te.compute(ctx.out_types[0].shape, body, name=_name(ctx))]


@register
class Split(OpDef):
    """Split along ``axis`` into the sizes of input ``split``, or into ``num_outputs``
    parts of ``ceil(size / num_outputs)`` (the last one smaller)."""

    name = "Split"
    pattern = INJECTIVE
    attrs = {"axis": 0, "num_outputs": None}
    num_inputs = (1, 2)
    num_outputs = (1, None)
    value_inputs = (1,)

    def _sizes(self, ctx):
        t = ctx.type(0)
        axis = normalize_axis(ctx, ctx.attrs["axis"], t.ndim)
        dim = t.shape[axis]
        count = ctx.attrs["num_outputs"]
        if ctx.has_input(1):
            if count is not None:
                raise ctx.error("give either the split input or num_outputs, not both")
            sizes = int_values(ctx, 1, "split")
            if any(s < 0 for s in sizes) or sum(sizes) != dim:
                raise ctx.error(f"split {sizes} does not add up to {dim}, the size of axis "
                                f"{axis}")
            return axis, sizes
        if count is None:
            raise ctx.error("give the split input or the num_outputs attribute")
        if count < 1:
            raise ctx.error(f"num_outputs={count} must be at least 1")
        chunk = -(-dim // count)
        if count > 1 and chunk * (count - 1) > dim:
            raise ctx.error(f"cannot split {dim} elements into {count} parts of {chunk} with "
                            "a smaller last part")
        return axis, [chunk] * (count - 1) + [dim - chunk * (count - 1)]

    def infer(self, ctx):
        t = ctx.type(0)
        axis, sizes = self._sizes(ctx)
        return [out_type(t.shape[:axis] + (s,) + t.shape[axis + 1:], t.dtype) for s in sizes]

    def reference(self, ctx, x, split=None):
        axis, sizes = self._sizes(ctx)
        return np.split(x, np.cumsum(sizes)[:-1], axis=axis)

    def compute(self, ctx, x, split=None):
        axis, sizes = self._sizes(ctx)
        outs, offset = [], 0
        for k, (size, t) in enumerate(zip(sizes, ctx.out_types)):
            def body(*i, offset=offset):
                return x[i[:axis] + (i[axis] + offset,) + i[axis + 1:]]

            if t.size:
                outs.append(te.compute(t.shape, body, name=f"{_name(ctx)}_{k}"))
            else:
                outs.append(None)
            offset += size
        return outs


def slice_params(ctx, shape, starts, ends, axes, steps) -> list:
    """Per dimension (start, step, count) of an ONNX Slice (clamping as the spec says)."""
    rank = len(shape)
    if axes is None:
        axes = list(range(len(starts)))
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ctx.error(f"starts, ends, axes and steps have different lengths "
                        f"({len(starts)}, {len(ends)}, {len(axes)}, {len(steps)})")
    axes = normalize_axes(ctx, axes, rank)
    params = [(0, 1, d) for d in shape]
    for a, start, end, step in zip(axes, starts, ends, steps):
        dim = shape[a]
        if step == 0:
            raise ctx.error(f"step of axis {a} is 0")
        start = start + dim if start < 0 else start
        end = end + dim if end < 0 else end
        if step > 0:
            start, end = min(max(start, 0), dim), min(max(end, 0), dim)
            count = max(0, -(-(end - start) // step))
        else:
            start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
            count = max(0, -(-(start - end) // -step))
        params[a] = (start, step, count)
    return params


@register
class Slice(OpDef):
    name = "Slice"
    pattern = INJECTIVE
    num_inputs = (3, 5)
    value_inputs = (1, 2, 3, 4)

    def _params(self, ctx):
        shape = ctx.type(0).shape
        starts = int_values(ctx, 1, "starts")
        ends = int_values(ctx, 2, "ends")
        axes = int_values(ctx, 3, "axes") if ctx.has_input(3) else None
        steps = int_values(ctx, 4, "steps") if ctx.has_input(4) else [1] * len(starts)
        return slice_params(ctx, shape, starts, ends, axes, steps)

    def infer(self, ctx):
        return [out_type([c for _, _, c in self._params(ctx)], ctx.type(0).dtype)]

    def reference(self, ctx, x, *rest):
        index = tuple(np.arange(count) * step + start if count else np.zeros(0, np.int64)
                      for start, step, count in self._params(ctx))
        return [x[np.ix_(*index)] if index else x.copy()]

    def compute(self, ctx, x, *rest):
        params = self._params(ctx)

        def body(*i):
            return x[tuple(k if (start, step) == (0, 1) else start + k * step
                           for k, (start, step, _) in zip(i, params))]

        return [te.compute(ctx.out_types[0].shape, body, name=_name(ctx))]


PAD_MODES = ("constant", "reflect", "edge", "wrap")


@register
class Pad(OpDef):
    """Pad (or, with negative pads, crop) each axis. Non-constant modes pad the cropped
    tensor: reflect mirrors without repeating the edge, edge repeats it, wrap is periodic;
    pads longer than the axis keep mirroring or wrapping (like numpy.pad)."""

    name = "Pad"
    pattern = INJECTIVE
    attrs = {"mode": "constant"}
    num_inputs = (2, 4)
    value_inputs = (1, 3)

    def _pads(self, ctx):
        t = ctx.type(0)
        mode = ctx.attrs["mode"]
        if mode not in PAD_MODES:
            raise ctx.error(f"mode {mode!r} is not one of {', '.join(PAD_MODES)}")
        values = int_values(ctx, 1, "pads")
        axes = list(range(t.ndim))
        if ctx.has_input(3):
            axes = normalize_axes(ctx, int_values(ctx, 3, "axes"), t.ndim)
        if len(values) != 2 * len(axes):
            raise ctx.error(f"pads has {len(values)} values; expected {2 * len(axes)} (twice "
                            "the number of axes)")
        pads = [(0, 0)] * t.ndim
        for k, a in enumerate(axes):
            pads[a] = (values[k], values[k + len(axes)])
        for a, (begin, end) in enumerate(pads):
            dim = t.shape[a]
            kept = dim - max(-begin, 0) - max(-end, 0)
            if dim + begin + end < 0 or (kept < 0 and dim + begin + end > 0):
                raise ctx.error(f"pads ({begin}, {end}) crop more than the {dim} elements of "
                                f"axis {a}")
            if mode != "constant" and kept <= 0 and dim + begin + end > 0:
                raise ctx.error(f"mode {mode!r} cannot pad axis {a}: no elements are left to "
                                f"repeat (size {dim}, pads ({begin}, {end}))")
        return mode, pads

    def infer(self, ctx):
        t = ctx.type(0)
        if ctx.has_input(2):
            value = ctx.type(2)
            if value.dtype != t.dtype or value.size != 1:
                raise ctx.error(f"constant_value must be one {t.dtype} value, got {value}")
        _, pads = self._pads(ctx)
        return [out_type([d + b + e for d, (b, e) in zip(t.shape, pads)], t.dtype)]

    def reference(self, ctx, x, pads, value=None, axes=None):
        mode, pads = self._pads(ctx)
        crop = tuple(slice(max(-b, 0), d - max(-e, 0)) for d, (b, e) in zip(x.shape, pads))
        widths = [(max(b, 0), max(e, 0)) for b, e in pads]
        if mode == "constant":
            fill = value.reshape(-1)[0] if value is not None else 0
            return [np.pad(x[crop], widths, mode="constant", constant_values=fill)]
        return [np.pad(x[crop], widths, mode=mode)]

    def compute(self, ctx, x, pads, value=None, axes=None):
        mode, pads = self._pads(ctx)
        dtype = ctx.type(0).dtype
        fill = first_element(value) if value is not None else _zero(dtype)
        shape = ctx.type(0).shape

        def body(*i):
            src, inside = [], []
            for k, (d, (b, e)) in enumerate(zip(shape, pads)):
                if (b, e) == (0, 0):
                    src.append(i[k])
                elif mode == "constant":
                    s = i[k] - b
                    src.append(s)
                    if b > 0:
                        inside.append(s >= 0)
                    if e > 0:
                        inside.append(s < d)
                else:
                    first, kept = max(-b, 0), d - max(-b, 0) - max(-e, 0)
                    src.append(first + _fold(i[k] - max(b, 0), kept, mode))
            read = x[tuple(src)]
            return te.if_then_else(te.all(*inside), read, fill) if inside else read

        return [te.compute(ctx.out_types[0].shape, body, name=_name(ctx))]


def _fold(r: n.Expr, size: int, mode: str) -> n.Expr:
    """Map a position ``r`` relative to an axis of ``size`` elements into ``[0, size)``."""
    if mode == "edge" or size == 1:
        return te.minimum(te.maximum(r, 0), size - 1)
    if mode == "wrap":
        return r % size
    period = 2 * (size - 1)
    t = r % period
    return te.if_then_else(t < size, t, period - t)


@register
class Tile(OpDef):
    name = "Tile"
    pattern = INJECTIVE
    num_inputs = (2, 2)
    value_inputs = (1,)

    def _repeats(self, ctx):
        t = ctx.type(0)
        repeats = int_values(ctx, 1, "repeats")
        if len(repeats) != t.ndim or any(r < 0 for r in repeats):
            raise ctx.error(f"repeats {repeats} must have {t.ndim} non-negative values (one "
                            "per input dimension)")
        return repeats

    def infer(self, ctx):
        t = ctx.type(0)
        return [out_type([d * r for d, r in zip(t.shape, self._repeats(ctx))], t.dtype)]

    def reference(self, ctx, x, repeats):
        return [np.tile(x, self._repeats(ctx))]

    def compute(self, ctx, x, repeats):
        reps = self._repeats(ctx)

        def body(*i):
            return x[tuple(0 if d == 1 else k if r == 1 else te.truncmod(k, d)
                           for k, d, r in zip(i, x.shape, reps))]

        return [te.compute(ctx.out_types[0].shape, body, name=_name(ctx))]


class _BlockOp(OpDef):
    pattern = INJECTIVE
    attrs = {"blocksize": REQUIRED, "mode": "DCR"}

    def _check(self, ctx):
        t = ctx.type(0)
        if t.ndim != 4:
            raise ctx.error(f"input must have rank 4 (N, C, H, W), got shape {list(t.shape)}")
        bs, mode = ctx.attrs["blocksize"], ctx.attrs["mode"]
        if bs < 1:
            raise ctx.error(f"blocksize={bs} must be at least 1")
        if mode not in ("DCR", "CRD"):
            raise ctx.error(f"mode {mode!r} is not DCR or CRD")
        return t, bs, mode


@register
class DepthToSpace(_BlockOp):
    name = "DepthToSpace"

    def infer(self, ctx):
        t, bs, _ = self._check(ctx)
        b, c, h, w = t.shape
        if c % (bs * bs):
            raise ctx.error(f"channels ({c}) are not a multiple of blocksize² ({bs * bs})")
        return [out_type((b, c // (bs * bs), h * bs, w * bs), t.dtype)]

    def reference(self, ctx, x):
        _, bs, mode = self._check(ctx)
        b, c, h, w = x.shape
        c2 = c // (bs * bs)
        if mode == "DCR":
            tmp = x.reshape(b, bs, bs, c2, h, w).transpose(0, 3, 4, 1, 5, 2)
        else:
            tmp = x.reshape(b, c2, bs, bs, h, w).transpose(0, 1, 4, 2, 5, 3)
        return [tmp.reshape(b, c2, h * bs, w * bs)]

    def compute(self, ctx, x):
        _, bs, mode = self._check(ctx)
        c2 = ctx.out_types[0].shape[1]

        def body(b, c, y, z):
            i1, i2 = te.truncmod(y, bs), te.truncmod(z, bs)
            channel = (i1 * bs + i2) * c2 + c if mode == "DCR" else (c * bs + i1) * bs + i2
            return x[b, channel, te.truncdiv(y, bs), te.truncdiv(z, bs)]

        return [te.compute(ctx.out_types[0].shape, body, name=_name(ctx))]


@register
class SpaceToDepth(_BlockOp):
    name = "SpaceToDepth"

    def infer(self, ctx):
        t, bs, _ = self._check(ctx)
        b, c, h, w = t.shape
        if h % bs or w % bs:
            raise ctx.error(f"height and width ({h}, {w}) are not multiples of blocksize {bs}")
        return [out_type((b, c * bs * bs, h // bs, w // bs), t.dtype)]

    def reference(self, ctx, x):
        _, bs, mode = self._check(ctx)
        b, c, h, w = x.shape
        tmp = x.reshape(b, c, h // bs, bs, w // bs, bs)
        perm = (0, 3, 5, 1, 2, 4) if mode == "DCR" else (0, 1, 3, 5, 2, 4)
        return [tmp.transpose(perm).reshape(b, c * bs * bs, h // bs, w // bs)]

    def compute(self, ctx, x):
        _, bs, mode = self._check(ctx)
        c_in = ctx.type(0).shape[1]

        def body(b, c, y, z):
            if mode == "DCR":
                block, channel = te.truncdiv(c, c_in), te.truncmod(c, c_in)
            else:
                block, channel = te.truncmod(c, bs * bs), te.truncdiv(c, bs * bs)
            i1, i2 = te.truncdiv(block, bs), te.truncmod(block, bs)
            return x[b, channel, y * bs + i1, z * bs + i2]

        return [te.compute(ctx.out_types[0].shape, body, name=_name(ctx))]


@register
class Trilu(OpDef):
    """Keep the upper (``j - i >= k``) or lower (``j - i <= k``) triangle of the last two
    dimensions; ``k`` is read at run time."""

    name = "Trilu"
    pattern = INJECTIVE
    attrs = {"upper": 1}
    num_inputs = (1, 2)

    def infer(self, ctx):
        t = ctx.type(0)
        if t.ndim < 2:
            raise ctx.error(f"input must have rank 2 or more, got shape {list(t.shape)}")
        if ctx.has_input(1):
            k = ctx.type(1)
            if k.dtype != "int64" or k.size != 1 or k.ndim > 1:
                raise ctx.error(f"k must be one int64 value, got {k}")
        return [t]

    def reference(self, ctx, x, k=None):
        k = 0 if k is None else int(k.reshape(-1)[0])
        return [np.triu(x, k) if ctx.attrs["upper"] else np.tril(x, k)]

    def compute(self, ctx, x, k=None):
        upper = ctx.attrs["upper"]
        zero = _zero(x.dtype)

        def body(*i):
            kk = first_element(k) if k is not None else n.const(0)
            diag = i[-1] - i[-2]
            keep = diag >= kk if upper else diag <= kk
            return te.if_then_else(keep, x[i], zero)

        return [te.compute(x.shape, body, name=_name(ctx))]


@register
class ReverseSequence(OpDef):
    """Reverse the first ``sequence_lens[b]`` elements along ``time_axis`` of each batch
    entry ``b``; lengths outside ``[0, time]`` (undefined by the spec) are clamped."""

    name = "ReverseSequence"
    pattern = INJECTIVE
    attrs = {"batch_axis": 1, "time_axis": 0}
    num_inputs = (2, 2)

    def _axes(self, ctx):
        t = ctx.type(0)
        if t.ndim < 2:
            raise ctx.error(f"input must have rank 2 or more, got shape {list(t.shape)}")
        batch = normalize_axis(ctx, ctx.attrs["batch_axis"], t.ndim, "batch_axis")
        time = normalize_axis(ctx, ctx.attrs["time_axis"], t.ndim, "time_axis")
        if batch not in (0, 1) or time not in (0, 1) or batch == time:
            raise ctx.error(f"batch_axis={batch} and time_axis={time} must be 0 and 1 in "
                            "some order")
        return batch, time

    def infer(self, ctx):
        t = ctx.type(0)
        batch, _ = self._axes(ctx)
        lens = ctx.type(1)
        if lens.dtype != "int64" or lens.shape != (t.shape[batch],):
            raise ctx.error(f"sequence_lens must be int64[{t.shape[batch]}], got {lens}")
        return [t]

    def reference(self, ctx, x, lens):
        batch, time = self._axes(ctx)
        out = x.copy()
        for b, length in enumerate(lens):
            length = min(max(int(length), 0), x.shape[time])
            index = [slice(None)] * x.ndim
            index[batch], index[time] = b, slice(0, length)
            src = list(index)
            src[time] = slice(length - 1, None, -1) if length else slice(0, 0)
            out[tuple(index)] = x[tuple(src)]
        return [out]

    def compute(self, ctx, x, lens):
        batch, time = self._axes(ctx)
        steps = x.shape[time]

        def body(*i):
            length = te.minimum(te.maximum(lens[i[batch]], 0), steps)
            t = i[time]
            src = list(i)
            src[time] = te.if_then_else(t < length, length - 1 - t, t)
            return x[tuple(src)]

        return [te.compute(x.shape, body, name=_name(ctx))]

