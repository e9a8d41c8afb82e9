"""Convolutions: Conv, ConvTranspose, ConvInteger, QLinearConv, DeformConv.

Layouts are ONNX's: ``X[N, C, D1, ..., Dn]``, ``W[M, C / group, k1, ..., kn]`` (for
ConvTranspose ``W[C, M / group, k1, ..., kn]``). A convolution is one reduction over
``(c, k1, ..., kn)`` of the window read at ``o * stride + k * dilation - pad_begin``;
padded positions read as zero (the bounds test is only emitted on the sides where a
window can leave the input). Half-precision inputs accumulate in float32. The window
geometry (``window_geometry``) is shared with the pooling family.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from dlc import te
from dlc.ops.common import accumulation_dtype, out_type
from dlc.ops.registry import COMPLEX, FLOATS, OpDef, check_dtype, register

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


# -- window geometry (shared with pooling) --------------------------------------------------
@dataclass(frozen=True)
class Window:
    """How a sliding window of ``kernel`` visits an input of spatial shape ``inp``:
    output position ``o`` reads ``o * strides + k * dilations - pads_begin``."""

    inp: tuple
    kernel: tuple
    strides: tuple
    dilations: tuple
    pads_begin: tuple
    pads_end: tuple
    out: tuple

    @property
    def rank(self) -> int:
        return len(self.inp)

    def may_leave(self, d: int) -> tuple:
        """(may read below 0, may read at or past the end) along spatial axis ``d``."""
        last = (self.out[d] - 1) * self.strides[d] + (self.kernel[d] - 1) * self.dilations[d] \
            - self.pads_begin[d]
        return self.pads_begin[d] > 0, last >= self.inp[d]

    def position(self, d: int, o, k):
        """The input coordinate read by output ``o`` at kernel offset ``k`` (an expr)."""
        return o * self.strides[d] + k * self.dilations[d] - self.pads_begin[d]


def int_list(ctx, key: str, length: int, default: int, minimum: int) -> tuple:
    """Attribute ``key`` as a tuple of ``length`` ints >= ``minimum`` (``default`` each
    when the attribute is empty)."""
    value = [int(v) for v in ctx.attrs.get(key) or []]
    if not value:
        return (default,) * length
    if len(value) != length:
        raise ctx.error(f"{key} has {len(value)} values; expected {length}")
    if any(v < minimum for v in value):
        raise ctx.error(f"{key} must be >= {minimum}, got {value}")
    return tuple(value)


def window_geometry(ctx, inp, kernel, ceil_mode: bool = False, pool: bool = False) -> Window:
    """The window of a convolution or pooling from the node's ``strides``, ``dilations``,
    ``pads`` and ``auto_pad`` attributes, by ONNX's output-size rules:

    - explicit ``pads`` (NOTSET), and VALID, which is explicit pads of 0: ``floor(span /
      stride) + 1`` windows, ``span = in + pads - effective kernel``; with ``ceil_mode``,
      ``ceil(span / stride) + 1`` less a last window that would start in the end padding
      (or past the input). For VALID the spec's text gives ``ceil((in - kernel + 1) /
      stride)``, which never differs from the floor size; ONNX's shape inference and
      onnxruntime use the rule above, so ceil_mode does change VALID sizes.
    - SAME_UPPER / SAME_LOWER: ``ceil(in / stride)`` windows with or without ``ceil_mode``
      (the padding makes the span a multiple of the stride), the total padding
      ``(out - 1) * stride + effective kernel - in`` clamped at 0 (as ONNX's shape inference
      does) and split with the odd pixel at the end (UPPER) or the beginning (LOWER)."""
    rank = len(inp)
    if any(k < 1 for k in kernel):
        raise ctx.error(f"kernel shape {list(kernel)} must be positive")
    strides = int_list(ctx, "strides", rank, 1, 1)
    dilations = int_list(ctx, "dilations", rank, 1, 1)
    auto_pad = ctx.attrs.get("auto_pad", "NOTSET") or "NOTSET"
    if auto_pad not in AUTO_PADS:
        raise ctx.error(f"auto_pad must be one of {', '.join(AUTO_PADS)}, got {auto_pad!r}")
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = [-(-inp[d] // strides[d]) for d in range(rank)]
        total = [max(0, (out[d] - 1) * strides[d] + eff[d] - inp[d]) for d in range(rank)]
        small = tuple(t // 2 for t in total)
        large = tuple(t - t // 2 for t in total)
        begin, end = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
    else:
        if auto_pad == "VALID":
            if any(inp[d] < eff[d] for d in range(rank)):
                raise ctx.error(f"auto_pad=VALID: the window {eff} is larger than the input "
                                f"{list(inp)}")
            begin = end = (0,) * rank
        else:
            pads = int_list(ctx, "pads", 2 * rank, 0, 0)
            begin, end = pads[:rank], pads[rank:]
        out = []
        for d in range(rank):
            span = inp[d] + begin[d] + end[d] - eff[d]
            if span < 0:
                raise ctx.error(f"the window ({eff[d]} with dilation) is larger than the padded "
                                f"input ({inp[d] + begin[d] + end[d]}) along spatial axis {d}")
            size = span // strides[d] + 1
            if ceil_mode and span % strides[d]:
                size += 1
                if (size - 1) * strides[d] >= inp[d] + begin[d]:
                    size -= 1  # the last window would start in the end padding
            out.append(size)
    if not pool and ctx.attrs.get("pads") and auto_pad != "NOTSET" and \
            any(int(p) for p in ctx.attrs["pads"]):
        raise ctx.error(f"pads {ctx.attrs['pads']} cannot be combined with auto_pad={auto_pad}")
    return Window(tuple(inp), tuple(kernel), strides, dilations, tuple(begin), tuple(end),
                  tuple(out))


def window_positions(win: Window, out_idx, k_idx):
    """The input coordinates read at output ``out_idx``, kernel offset ``k_idx``, and the
    in-bounds condition (None when the window never leaves the input)."""
    pos, conds = [], []
    for d in range(win.rank):
        p = win.position(d, out_idx[d], k_idx[d])
        lo, hi = win.may_leave(d)
        if lo:
            conds.append(p >= 0)
        if hi:
            conds.append(p < win.inp[d])
        pos.append(p)
    return pos, (te.all(*conds) if conds else None)


def guarded(cond, value, fill):
    """``value`` where ``cond`` holds (always when ``cond`` is None), else ``fill``."""
    if cond is None:
        return value
    return te.if_then_else(cond, value, te.const(fill, value.dtype))


def np_windows(x: np.ndarray, win: Window, fill):
    """NumPy: yields (kernel index, view of shape ``x.shape[:2] + win.out``) for every
    kernel offset, reading ``fill`` outside the input."""
    rank = win.rank
    pad_after = [max(0, (win.out[d] - 1) * win.strides[d] + (win.kernel[d] - 1)
                     * win.dilations[d] - win.pads_begin[d] + 1 - win.inp[d])
                 for d in range(rank)]
    padded = np.pad(x, [(0, 0)] * (x.ndim - rank)
                    + [(win.pads_begin[d], pad_after[d]) for d in range(rank)],
                    constant_values=fill)
    for k in itertools.product(*[range(s) for s in win.kernel]):
        sl = tuple(slice(k[d] * win.dilations[d],
                         k[d] * win.dilations[d] + (win.out[d] - 1) * win.strides[d] + 1,
                         win.strides[d]) for d in range(rank))
        yield k, padded[(Ellipsis, *sl)]


# -- Conv ------------------------------------------------------------------------------------
class _ConvBase(OpDef):
    """Shared checks of Conv-like ops: X[N, C, spatial...], W[M, C / group, kernel...]."""

    pattern = COMPLEX
    attrs = {"auto_pad": "NOTSET", "dilations": [], "group": 1, "kernel_shape": [],
             "pads": [], "strides": []}
    x_index, w_index = 0, 1

    def geometry(self, ctx):
        """(N, C, M, group, Window)."""
        xt, wt = ctx.type(self.x_index), ctx.type(self.w_index)
        if xt.ndim < 3:
            raise ctx.error(f"input X must have rank 3 or more (N, C, spatial...), got "
                            f"shape {list(xt.shape)}")
        if wt.ndim != xt.ndim:
            raise ctx.error(f"weights W have shape {list(wt.shape)}; expected rank "
                            f"{xt.ndim} like X {list(xt.shape)}")
        group = int(ctx.attrs["group"])
        N, C = xt.shape[:2]
        M = wt.shape[0]
        if group < 1 or C % group or M % group or wt.shape[1] * group != C:
            raise ctx.error(f"X has {C} channels and W shape {list(wt.shape)}: with "
                            f"group={group}, W.shape[1] * group must equal C and group must "
                            "divide the output channels")
        kernel = tuple(wt.shape[2:])
        if ctx.attrs["kernel_shape"] and tuple(ctx.attrs["kernel_shape"]) != kernel:
            raise ctx.error(f"kernel_shape {list(ctx.attrs['kernel_shape'])} does not match "
                            f"the weights' spatial shape {list(kernel)}")
        win = window_geometry(ctx, xt.shape[2:], kernel)
        return N, C, M, group, win


def conv_sum(x, w, win: Window, group: int, M: int, acc: str, name: str,
             xval=None, wval=None) -> te.Tensor:
    """``sum_{c, k} xval(x[n, g*Cg + c, window]) * wval(w[m, c, k], m)`` in ``acc``, with
    padded positions contributing 0; ``xval``/``wval`` map the raw reads (default: cast)."""
    N, Cg = x.shape[0], w.shape[1]
    Mg = M // group
    xval = xval or (lambda v: te.cast(v, acc))
    wval = wval or (lambda v, m: te.cast(v, acc))
    rc = te.reduce_axis(Cg, "rc")
    rk = [te.reduce_axis(k, f"rk{d}") for d, k in enumerate(win.kernel)]

    def body(n, m, *o):
        chan = (m // Mg) * Cg + rc if group > 1 else rc
        pos, cond = window_positions(win, o, rk)
        value = guarded(cond, xval(x[(n, chan, *pos)]), 0)
        return te.sum(value * wval(w[(m, rc, *rk)], m), axis=[rc, *rk])

    return te.compute((N, M, *win.out), body, name=name)


def np_conv(x, w, win: Window, group: int, acc) -> np.ndarray:
    """NumPy convolution (zero padding) in dtype ``acc``."""
    N, M, Cg = x.shape[0], w.shape[0], w.shape[1]
    x = x.astype(acc).reshape(N, group, Cg, *x.shape[2:])
    w = w.astype(acc).reshape(group, M // group, Cg, *w.shape[2:])
    y = np.zeros((N, group, M // group, *win.out), acc)
    for k, view in np_windows(x, win, 0):
        y += np.einsum("ngc...,gmc->ngm...", view, w[(Ellipsis, *k)])
    return y.reshape(N, M, *win.out)


@register
class Conv(_ConvBase):
    name = "Conv"
    num_inputs = (2, 3)

    def infer(self, ctx):
        dtype = check_dtype(ctx, 0, FLOATS)
        if ctx.type(1).dtype != dtype or (ctx.has_input(2) and ctx.type(2).dtype != dtype):
            raise ctx.error("X, W and B must have one dtype")
        N, _, M, _, win = self.geometry(ctx)
        if ctx.has_input(2) and ctx.type(2).shape != (M,):
            raise ctx.error(f"bias B has shape {list(ctx.type(2).shape)}; expected [{M}]")
        return [out_type((N, M, *win.out), dtype)]

    def reference(self, ctx, x, w, b=None):
        _, _, _, group, win = self.geometry(ctx)
        y = np_conv(x, w, win, group, np.float64 if x.dtype == np.float64 else np.float32)
        if b is not None:
            y = y + b.astype(y.dtype).reshape(-1, *[1] * win.rank)
        return [y.astype(x.dtype)]

    def compute(self, ctx, x, w, b=None):
        _, _, M, group, win = self.geometry(ctx)
        name = ctx.name or self.name
        acc = accumulation_dtype(x.dtype)
        total = conv_sum(x, w, win, group, M, acc, f"{name}_sum" if b is not None or
                         acc != x.dtype else name)
        if b is None and acc == x.dtype:
            return [total]
        return [te.compute(total.shape, lambda n, m, *o: te.cast(
            total[(n, m, *o)] + (te.cast(b[m], acc) if b is not None else te.const(0, acc)),
            x.dtype), name=name)]


# -- ConvTranspose ---------------------------------------------------------------------------
@register
class ConvTranspose(OpDef):
    """``y[n, m, o] = sum over c, k with o + pad_begin = i * stride + k * dilation`` of
    ``x[n, c, i] * w[c, m % Mg, k]`` (the adjoint of Conv), plus the bias."""

    name = "ConvTranspose"
    pattern = COMPLEX
    num_inputs = (2, 3)
    attrs = {"auto_pad": "NOTSET", "dilations": [], "group": 1, "kernel_shape": [],
             "output_padding": [], "output_shape": [], "pads": [], "strides": []}

    def geometry(self, ctx):
        """(N, C, M, group, kernel, strides, dilations, pads_begin, out)."""
        xt, wt = ctx.type(0), ctx.type(1)
        if xt.ndim < 3 or wt.ndim != xt.ndim:
            raise ctx.error(f"X {list(xt.shape)} and W {list(wt.shape)} must both have rank "
                            "3 or more and the same rank")
        rank = xt.ndim - 2
        group = int(ctx.attrs["group"])
        N, C = xt.shape[:2]
        if group < 1 or wt.shape[0] != C or C % group:
            raise ctx.error(f"W has shape {list(wt.shape)}; expected W.shape[0] == C == {C}, "
                            f"divisible by group={group}")
        M = wt.shape[1] * group
        kernel = tuple(wt.shape[2:])
        if ctx.attrs["kernel_shape"] and tuple(ctx.attrs["kernel_shape"]) != kernel:
            raise ctx.error(f"kernel_shape {list(ctx.attrs['kernel_shape'])} does not match "
                            f"the weights' spatial shape {list(kernel)}")
        strides = int_list(ctx, "strides", rank, 1, 1)
        dilations = int_list(ctx, "dilations", rank, 1, 1)
        out_pad = int_list(ctx, "output_padding", rank, 0, 0)
        auto_pad = ctx.attrs["auto_pad"] or "NOTSET"
        if auto_pad not in AUTO_PADS:
            raise ctx.error(f"auto_pad must be one of {', '.join(AUTO_PADS)}, got {auto_pad!r}")
        full = [strides[d] * (xt.shape[2 + d] - 1) + out_pad[d] + (kernel[d] - 1)
                * dilations[d] + 1 for d in range(rank)]
        out_shape = [int(v) for v in ctx.attrs["output_shape"] or []]
        if len(out_shape) == rank + 2:
            out_shape = out_shape[2:]
        if out_shape and len(out_shape) != rank:
            raise ctx.error(f"output_shape has {len(out_shape)} values; expected {rank}")
        if not out_shape and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out_shape = [xt.shape[2 + d] * strides[d] for d in range(rank)]
        if out_shape:
            if any(o < 1 for o in out_shape):
                raise ctx.error(f"output_shape {out_shape} must be positive")
            # a negative total pads the output with positions no input reaches (bias only)
            total = [full[d] - out_shape[d] for d in range(rank)]
            if auto_pad == "SAME_UPPER":
                begin = [t // 2 for t in total]
            else:
                begin = [t - t // 2 for t in total]
            out = out_shape
        else:
            pads = int_list(ctx, "pads", 2 * rank, 0, 0) if auto_pad == "NOTSET" \
                else (0,) * (2 * rank)
            begin = list(pads[:rank])
            out = [full[d] - pads[d] - pads[rank + d] for d in range(rank)]
            if any(o < 1 for o in out):
                raise ctx.error(f"pads {list(pads)} leave an empty output {out}")
        return N, C, M, group, kernel, strides, dilations, begin, out

    def infer(self, ctx):
        dtype = check_dtype(ctx, 0, FLOATS)
        if ctx.type(1).dtype != dtype or (ctx.has_input(2) and ctx.type(2).dtype != dtype):
            raise ctx.error("X, W and B must have one dtype")
        N, _, M, _, _, _, _, _, out = self.geometry(ctx)
        if ctx.has_input(2) and ctx.type(2).shape != (M,):
            raise ctx.error(f"bias B has shape {list(ctx.type(2).shape)}; expected [{M}]")
        return [out_type((N, M, *out), dtype)]

    def reference(self, ctx, x, w, b=None):
        N, C, M, group, kernel, strides, dil, begin, out = self.geometry(ctx)
        acc = np.float64 if x.dtype == np.float64 else np.float32
        rank = len(kernel)
        Cg, Mg = C // group, M // group
        full = [strides[d] * (x.shape[2 + d] - 1) + (kernel[d] - 1) * dil[d] + 1
                for d in range(rank)]
        lead = [max(0, -begin[d]) for d in range(rank)]  # output before the first input
        size = [lead[d] + max(full[d], begin[d] + out[d]) for d in range(rank)]
        y = np.zeros((N, group, Mg, *size), acc)
        xg = x.astype(acc).reshape(N, group, Cg, *x.shape[2:])
        wg = w.astype(acc).reshape(group, Cg, Mg, *kernel)
        for k in itertools.product(*[range(s) for s in kernel]):
            sl = tuple(slice(lead[d] + k[d] * dil[d], lead[d] + k[d] * dil[d] + strides[d]
                             * (x.shape[2 + d] - 1) + 1, strides[d]) for d in range(rank))
            y[(Ellipsis, *sl)] += np.einsum("ngc...,gcm->ngm...", xg, wg[(Ellipsis, *k)])
        y = y.reshape(N, M, *size)[(Ellipsis, *[slice(lead[d] + begin[d], lead[d] + begin[d]
                                                        + out[d]) for d in range(rank)])]
        if b is not None:
            y = y + b.astype(acc).reshape(-1, *[1] * rank)
        return [y.astype(x.dtype)]

    def compute(self, ctx, x, w, b=None):
        N, C, M, group, kernel, strides, dil, begin, out = self.geometry(ctx)
        rank = len(kernel)
        Cg, Mg = C // group, M // group
        acc = accumulation_dtype(x.dtype)
        name = ctx.name or self.name
        rc = te.reduce_axis(Cg, "rc")
        rk = [te.reduce_axis(k, f"rk{d}") for d, k in enumerate(kernel)]
        zero = te.const(0, acc)

        def body(n, m, *o):
            chan = (m // Mg) * Cg + rc if group > 1 else rc
            idx, conds = [], []
            for d in range(rank):
                t = o[d] + begin[d] - rk[d] * dil[d]
                i = t // strides[d] if strides[d] > 1 else t
                if strides[d] > 1:
                    conds.append(t % strides[d] == 0)
                conds += [t >= 0, i < x.shape[2 + d]]
                idx.append(i)
            value = te.cast(x[(n, chan, *idx)], acc) * te.cast(w[(chan, m % Mg, *rk)], acc)
            return te.sum(te.if_then_else(te.all(*conds), value, zero), axis=[rc, *rk])

        single = b is None and acc == x.dtype
        total = te.compute((N, M, *out), body, name=name if single else f"{name}_sum")
        if single:
            return [total]
        return [te.compute(total.shape, lambda n, m, *o: te.cast(
            total[(n, m, *o)] + (te.cast(b[m], acc) if b is not None else zero), x.dtype),
            name=name)]


# -- integer and quantized convolutions -------------------------------------------------------
QTYPES = ("int8", "uint8")


def zero_point_read(zp, m=None):
    """The int32 value of a zero point: scalar / 1-element, or per output channel ``m``."""
    if zp is None:
        return te.const(0, "int32")
    if zp.ndim == 0:
        return te.cast(zp[()], "int32")
    return te.cast(zp[m if zp.shape[0] > 1 else 0], "int32")


def check_param(ctx, index, per_channel: int, what: str, dtypes=None):
    """Check a scale / zero point: a scalar, or (when ``per_channel``) 1-D of that length."""
    if not ctx.has_input(index):
        return
    t = ctx.type(index)
    if dtypes is not None and t.dtype not in dtypes:
        raise ctx.error(f"{what} has dtype {t.dtype}; expected {' or '.join(dtypes)}")
    ok = t.ndim == 0 or (t.ndim == 1 and (t.shape[0] == 1 or t.shape[0] == per_channel))
    if not ok:
        allowed = "a scalar" + (f" or a 1-D tensor of {per_channel}" if per_channel else "")
        raise ctx.error(f"{what} has shape {list(t.shape)}; expected {allowed}")


def np_param(value, rank: int):
    """NumPy: a scale / zero point shaped to broadcast over [N, M, spatial...]."""
    if value is None:
        return 0
    value = np.asarray(value)
    return value.reshape(-1, *[1] * rank) if value.ndim == 1 and value.size > 1 \
        else value.reshape(())


@register
class ConvInteger(_ConvBase):
    """``sum((x - x_zero_point) * (w - w_zero_point))`` in int32; padding reads
    ``x_zero_point`` (it contributes zero)."""

    name = "ConvInteger"
    num_inputs = (2, 4)

    def infer(self, ctx):
        check_dtype(ctx, 0, QTYPES)
        check_dtype(ctx, 1, QTYPES, "weights")
        N, _, M, _, win = self.geometry(ctx)
        check_param(ctx, 2, 0, "x_zero_point", (ctx.type(0).dtype,))
        check_param(ctx, 3, M, "w_zero_point", (ctx.type(1).dtype,))
        return [out_type((N, M, *win.out), "int32")]

    def reference(self, ctx, x, w, xzp=None, wzp=None):
        _, _, _, group, win = self.geometry(ctx)
        xs = x.astype(np.int64) - np_param(xzp, 0)
        ws = w.astype(np.int64) - np_param(wzp, win.rank + 1)
        return [np_conv(xs, ws, win, group, np.int64).astype(np.int32)]

    def compute(self, ctx, x, w, xzp=None, wzp=None):
        _, _, M, group, win = self.geometry(ctx)
        return [conv_sum(x, w, win, group, M, "int32", ctx.name or self.name,
                         xval=lambda v: te.cast(v, "int32") - zero_point_read(xzp),
                         wval=lambda v, m: te.cast(v, "int32") - zero_point_read(wzp, m))]


def requantize(acc, multiplier, zp, dtype: str):
    """``saturate(round_half_even(float64(acc) * multiplier) + zp)`` as ``dtype``."""
    lo, hi = (-128, 127) if dtype == "int8" else (0, 255)
    scaled = te.round(te.cast(acc, "float64") * te.cast(multiplier, "float64"))
    value = scaled + te.cast(zp, "float64")
    value = te.minimum(te.maximum(value, te.const(lo, "float64")), te.const(hi, "float64"))
    return te.cast(value, dtype)


def np_requantize(acc, multiplier, zp, dtype):
    lo, hi = (-128, 127) if dtype == np.int8 else (0, 255)
    value = np.round(acc.astype(np.float64) * np.asarray(multiplier, np.float64)) + zp
    return np.clip(value, lo, hi).astype(dtype)


@register
class QLinearConv(_ConvBase):
    """``y = saturate(round(acc * (x_scale * w_scale / y_scale)) + y_zero_point)`` with
    ``acc = sum((x - x_zp) * (w - w_zp)) + B`` in int32; the multiplier is computed in
    float32 and applied in float64 (like ONNX's reference); rounding is half to even."""

    name = "QLinearConv"
    num_inputs = (8, 9)
    x_index, w_index = 0, 3

    def infer(self, ctx):
        xd = check_dtype(ctx, 0, QTYPES)
        wd = check_dtype(ctx, 3, QTYPES, "weights")
        N, _, M, _, win = self.geometry(ctx)
        check_param(ctx, 1, 0, "x_scale", ("float32",))
        check_param(ctx, 2, 0, "x_zero_point", (xd,))
        check_param(ctx, 4, M, "w_scale", ("float32",))
        check_param(ctx, 5, M, "w_zero_point", (wd,))
        check_param(ctx, 6, 0, "y_scale", ("float32",))
        check_param(ctx, 7, 0, "y_zero_point", QTYPES)
        if ctx.has_input(8) and (ctx.type(8).shape != (M,) or ctx.type(8).dtype != "int32"):
            raise ctx.error(f"bias B must be int32 of shape [{M}], got {ctx.type(8)}")
        return [out_type((N, M, *win.out), ctx.type(7).dtype)]

    def reference(self, ctx, x, xs, xzp, w, ws, wzp, ys, yzp, b=None):
        _, _, _, group, win = self.geometry(ctx)
        r = win.rank
        acc = np_conv(x.astype(np.int64) - np_param(xzp, 0),
                      w.astype(np.int64) - np_param(wzp, r + 1), win, group, np.int64)
        if b is not None:
            acc = acc + b.astype(np.int64).reshape(-1, *[1] * r)
        acc = acc.astype(np.int32)
        mult = (np.float32(np_param(xs, 0)) * np_param(ws, r).astype(np.float32)
                / np.float32(np_param(ys, 0))).astype(np.float32)
        return [np_requantize(acc, mult, np_param(yzp, 0), yzp.dtype)]

    def compute(self, ctx, x, xs, xzp, w, ws, wzp, ys, yzp, b=None):
        _, _, M, group, win = self.geometry(ctx)
        name = ctx.name or self.name
        total = conv_sum(x, w, win, group, M, "int32", f"{name}_sum",
                         xval=lambda v: te.cast(v, "int32") - zero_point_read(xzp),
                         wval=lambda v, m: te.cast(v, "int32") - zero_point_read(wzp, m))

        def scale(p, m=None):
            return p[()] if p.ndim == 0 else p[m if p.shape[0] > 1 else 0]

        def out(n, m, *o):
            acc = total[(n, m, *o)] + (b[m] if b is not None else 0)
            mult = scale(xs) * scale(ws, m) / scale(ys)
            return requantize(acc, mult, scale(yzp), yzp.dtype)

        return [te.compute(total.shape, out, name=name)]


# -- DeformConv ------------------------------------------------------------------------------
@register
class DeformConv(_ConvBase):
    """Deformable convolution: each kernel tap samples X (multilinear interpolation, zero
    outside the input) at its regular position plus a learned offset, scaled by the
    mask. Offsets are laid out ``[N, offset_group, k1 .. kn, n, o1 .. on]``."""

    name = "DeformConv"
    num_inputs = (3, 5)
    attrs = {"dilations": [], "group": 1, "kernel_shape": [], "offset_group": 1,
             "pads": [], "strides": []}

    def deform_geometry(self, ctx):
        N, C, M, group, win = self.geometry(ctx)
        og = int(ctx.attrs["offset_group"])
        if og < 1 or C % og:
            raise ctx.error(f"offset_group={og} must divide the {C} input channels")
        K = int(np.prod(win.kernel))
        want = (N, og * K * win.rank, *win.out)
        if ctx.type(2).shape != want:
            raise ctx.error(f"offset has shape {list(ctx.type(2).shape)}; expected "
                            f"{list(want)}")
        if ctx.has_input(4) and ctx.type(4).shape != (N, og * K, *win.out):
            raise ctx.error(f"mask has shape {list(ctx.type(4).shape)}; expected "
                            f"{[N, og * K, *win.out]}")
        return N, C, M, group, win, og

    def infer(self, ctx):
        dtype = check_dtype(ctx, 0, FLOATS)
        for k in range(1, 5):
            if ctx.has_input(k) and ctx.type(k).dtype != dtype:
                raise ctx.error("all inputs must have one dtype")
        N, _, M, _, win, _ = self.deform_geometry(ctx)
        if ctx.has_input(3) and ctx.type(3).shape != (M,):
            raise ctx.error(f"bias B has shape {list(ctx.type(3).shape)}; expected [{M}]")
        return [out_type((N, M, *win.out), dtype)]

    def reference(self, ctx, x, w, offset, b=None, mask=None):
        N, C, M, group, win, og = self.deform_geometry(ctx)
        r, K = win.rank, int(np.prod(win.kernel))
        acc = np.float64 if x.dtype == np.float64 else np.float32
        off = offset.astype(acc).reshape(N, og, K, r, *win.out)
        msk = np.ones((N, og, K, *win.out), acc) if mask is None else \
            mask.astype(acc).reshape(N, og, K, *win.out)
        Cog, Cg, Mg = C // og, C // group, M // group
        cols = np.zeros((N, C, K, *win.out), acc)
        grids = np.meshgrid(*[np.arange(o) for o in win.out], indexing="ij")
        for kf, k in enumerate(itertools.product(*[range(s) for s in win.kernel])):
            for g in range(og):
                coords = [grids[d] * win.strides[d] - win.pads_begin[d] + k[d]
                          * win.dilations[d] + off[:, g, kf, d] for d in range(r)]
                val = np_multilinear(x[:, g * Cog:(g + 1) * Cog].astype(acc), coords)
                cols[:, g * Cog:(g + 1) * Cog, kf] = val * msk[:, g, kf][:, None]
        wg = w.astype(acc).reshape(group, Mg, Cg, K)
        cg = cols.reshape(N, group, Cg, K, *win.out)
        y = np.einsum("ngck...,gmck->ngm...", cg, wg).reshape(N, M, *win.out)
        if b is not None:
            y = y + b.astype(acc).reshape(-1, *[1] * r)
        return [y.astype(x.dtype)]

    def compute(self, ctx, x, w, offset, b=None, mask=None):
        N, C, M, group, win, og = self.deform_geometry(ctx)
        r = win.rank
        acc = accumulation_dtype(x.dtype)
        Cog, Cg, Mg = C // og, C // group, M // group
        name = ctx.name or self.name
        rc = te.reduce_axis(Cg, "rc")
        rk = [te.reduce_axis(k, f"rk{d}") for d, k in enumerate(win.kernel)]

        def body(n, m, *o):
            chan = (m // Mg) * Cg + rc if group > 1 else rc
            g = chan // Cog
            kf = 0
            for d in range(r):
                kf = kf * win.kernel[d] + rk[d]
            K = int(np.prod(win.kernel))
            coords = [te.cast(win.position(d, o[d], rk[d]), acc)
                      + te.cast(offset[(n, (g * K + kf) * r + d, *o)], acc) for d in range(r)]
            val = multilinear(lambda pos: te.cast(x[(n, chan, *pos)], acc), coords,
                              win.inp, acc)
            if mask is not None:
                val = val * te.cast(mask[(n, g * K + kf, *o)], acc)
            return te.sum(val * te.cast(w[(m, rc, *rk)], acc), axis=[rc, *rk])

        total = te.compute((N, M, *win.out), body,
                           name=name if b is None and acc == x.dtype else f"{name}_sum")
        if b is None and acc == x.dtype:
            return [total]
        return [te.compute(total.shape, lambda n, m, *o: te.cast(
            total[(n, m, *o)] + (te.cast(b[m], acc) if b is not None else te.const(0, acc)),
            x.dtype), name=name)]


def multilinear(read, coords, sizes, acc: str):
    """Multilinear interpolation at float ``coords`` of ``read(int positions)``; corners
    outside ``[0, size)`` contribute zero."""
    lows = [te.floor(c) for c in coords]
    fracs = [c - lo for c, lo in zip(coords, lows)]
    ilows = [te.cast(lo, "int64") for lo in lows]
    total = None
    for corner in itertools.product((0, 1), repeat=len(coords)):
        pos = [il + c for il, c in zip(ilows, corner)]
        weight = None
        for f, c in zip(fracs, corner):
            wgt = f if c else 1 - f
            weight = wgt if weight is None else weight * wgt
        inside = te.all(*[p >= 0 for p in pos], *[p < s for p, s in zip(pos, sizes)])
        term = te.if_then_else(inside, read(pos) * weight, te.const(0, acc))
        total = term if total is None else total + term
    return total


def np_multilinear(x, coords):
    """NumPy twin of ``multilinear``: ``x[N, C, spatial...]``, coords of shape
    ``[N, out...]`` per spatial axis; returns ``[N, C, out...]``."""
    r = len(coords)
    sizes = x.shape[2:]
    lows = [np.floor(c) for c in coords]
    fracs = [c - lo for c, lo in zip(coords, lows)]
    ilows = [lo.astype(np.int64) for lo in lows]
    total = np.zeros((x.shape[0], x.shape[1], *coords[0].shape[1:]), x.dtype)
    for corner in itertools.product((0, 1), repeat=r):
        pos = [il + c for il, c in zip(ilows, corner)]
        weight = np.ones_like(coords[0])
        for f, c in zip(fracs, corner):
            weight = weight * (f if c else 1 - f)
        inside = np.ones(coords[0].shape, bool)
        for p, s in zip(pos, sizes):
            inside &= (p >= 0) & (p < s)
        clipped = [np.clip(p, 0, s - 1) for p, s in zip(pos, sizes)]
        vals = np.stack([x[b][(slice(None), *[c[b] for c in clipped])]
                         for b in range(x.shape[0])])
        total += vals * (weight * inside)[:, None]
    return total
