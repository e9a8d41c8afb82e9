"""Blocked channel layouts (internal ops, made by the alter_conv_layout graph pass; no ONNX
converter names them).

``NCHW{b}c`` stores a logical ``[N, C, H, W]`` tensor as ``[N, ceil(C / b), H, W, b]``:
channel ``c`` lives at ``[:, c // b, :, :, c % b]``; LayoutTransform fills the channels
past ``C`` in the last block with zeros (convolutions read them with zero weights).
Blocks of 8, 16 or 32 channels make the channel the unit-stride, vectorized axis of
convolutions and pools.

* ``LayoutTransform(x) {src_layout, dst_layout, channels}``: NCHW <-> NCHW{b}c, or between
  two block sizes (``channels``: the logical channel count, needed to drop the padding).
* ``Conv2dNCHWc(x, w, b?)``: ``x`` NCHW{ic_bn}c, ``w`` packed ``[OC / oc_bn, IC / ic_bn,
  KH, KW, ic_bn, oc_bn]`` (``pack_conv_weights``), bias ``[1, OC / oc_bn, 1, 1, oc_bn]``;
  output NCHW{oc_bn}c. ``DepthwiseConv2dNCHWc(x, w, b?)``: ``w`` ``[C / b, KH, KW, b]``.
* ``MaxPoolNCHWc``, ``AveragePoolNCHWc`` (2-D windows, the attributes of MaxPool and
  AveragePool) and ``GlobalAveragePoolNCHWc``: the pools on blocked tensors.

Padded convolution inputs are copied once into a zero-bordered stage (tag ``pad``) so
that the convolution itself (tag ``conv2d_nchwc`` / ``depthwise_conv2d_nchwc``) reads
without bounds tests; the schedules in ``dlc.schedules.cpu.conv2d`` place both.
"""

from __future__ import annotations

import re

import numpy as np

from dlc import te
from dlc.ops.common import out_type
from dlc.ops.conv import Window, int_list, np_windows, window_geometry, window_positions
from dlc.ops.pooling import POOL_ATTRS, axis_count, np_counts
from dlc.ops.registry import ALL, COMPLEX, INJECTIVE, OPAQUE, REDUCE, OpDef, check_dtype, register

CONV_DTYPES = ("float32", "float64")
CONV_TAG, DEPTHWISE_TAG, DEPTHWISE_PLAIN_TAG, PAD_TAG, POOL_TAG = \
    "conv2d_nchwc", "depthwise_conv2d_nchwc", "depthwise_conv2d_nchw", "pad", "pool_nchwc"
_LAYOUT = re.compile(r"NCHW(?:(\d+)c)?")


def parse_layout(text: str) -> int | None:
    """The block size of ``"NCHW{b}c"`` (None for ``"NCHW"``); ValueError otherwise."""
    m = _LAYOUT.fullmatch(text or "")
    if m is None or (m.group(1) is not None and int(m.group(1)) < 1):
        raise ValueError(f"layout {text!r} is neither NCHW nor NCHW<b>c with b >= 1")
    return int(m.group(1)) if m.group(1) else None


def blocked_layout(block: int | None) -> str:
    return "NCHW" if block is None else f"NCHW{block}c"


# -- NumPy packing (the reference semantics, also used to repack constants) ------------------
def np_to_blocked(x: np.ndarray, block: int) -> np.ndarray:
    """``[N, C, H, W]`` -> ``[N, ceil(C / block), H, W, block]``, zero-padded channels."""
    n, c = x.shape[:2]
    chunks = -(-c // block)
    if chunks * block != c:
        pad = np.zeros((n, chunks * block - c) + x.shape[2:], x.dtype)
        x = np.concatenate([x, pad], axis=1)
    y = x.reshape(n, chunks, block, *x.shape[2:])
    return np.ascontiguousarray(np.moveaxis(y, 2, -1))


def np_from_blocked(x: np.ndarray, channels: int) -> np.ndarray:
    """``[N, Co, H, W, b]`` -> ``[N, channels, H, W]``."""
    y = np.moveaxis(x, -1, 2)
    y = y.reshape(x.shape[0], x.shape[1] * x.shape[-1], *x.shape[2:-1])
    return np.ascontiguousarray(y[:, :channels])


def pack_conv_weights(w: np.ndarray, ic_bn: int, oc_bn: int) -> np.ndarray:
    """OIHW -> ``[O / oc_bn, I / ic_bn, H, W, ic_bn, oc_bn]`` (zero-padded blocks)."""
    o, i = w.shape[:2]
    oco, ico = -(-o // oc_bn), -(-i // ic_bn)
    full = np.zeros((oco * oc_bn, ico * ic_bn) + w.shape[2:], w.dtype)
    full[:o, :i] = w
    full = full.reshape(oco, oc_bn, ico, ic_bn, *w.shape[2:])
    return np.ascontiguousarray(full.transpose(0, 2, 4, 5, 3, 1))


def unpack_conv_weights(w: np.ndarray) -> np.ndarray:
    """The inverse of ``pack_conv_weights`` (block padding kept)."""
    oco, ico, kh, kw, ic_bn, oc_bn = w.shape
    return w.transpose(0, 5, 1, 4, 2, 3).reshape(oco * oc_bn, ico * ic_bn, kh, kw)


def pack_depthwise_weights(w: np.ndarray, block: int) -> np.ndarray:
    """``[C, 1, KH, KW]`` -> ``[C / block, KH, KW, block]``."""
    c = w.shape[0]
    full = np.zeros((-(-c // block) * block,) + w.shape[2:], w.dtype)
    full[:c] = w[:, 0]
    return np.ascontiguousarray(np.moveaxis(full.reshape(-1, block, *w.shape[2:]), 1, -1))


def pack_channel_vector(v: np.ndarray, block: int) -> np.ndarray:
    """A per-channel vector ``[C]`` as ``[1, C / block, 1, 1, block]`` (zero-padded)."""
    return np_to_blocked(v.reshape(1, -1, 1, 1), block)


# -- LayoutTransform -------------------------------------------------------------------------
@register
class LayoutTransform(OpDef):
    """Between NCHW and NCHW{b}c, or two block sizes; see the module docstring."""

    name = "LayoutTransform"
    pattern = INJECTIVE
    attrs = {"src_layout": "NCHW", "dst_layout": "NCHW", "channels": 0}

    def blocks(self, ctx):
        """(source block, destination block, logical channels)."""
        try:
            src, dst = parse_layout(ctx.attrs["src_layout"]), parse_layout(ctx.attrs["dst_layout"])
        except ValueError as err:
            raise ctx.error(str(err)) from None
        xt = ctx.type(0)
        if xt.ndim != (4 if src is None else 5) or (src is not None and xt.shape[4] != src):
            raise ctx.error(f"input shape {list(xt.shape)} is not in layout "
                            f"{ctx.attrs['src_layout']}")
        stored = xt.shape[1] * (src or 1)
        channels = int(ctx.attrs["channels"]) or stored
        if channels > stored or (src is not None and channels <= stored - src):
            raise ctx.error(f"channels={channels} does not fit the input's {xt.shape[1]} "
                            f"blocks of {src}")
        return src, dst, channels

    def infer(self, ctx):
        check_dtype(ctx, 0, ALL)
        src, dst, channels = self.blocks(ctx)
        n, _, h, w = ctx.type(0).shape[:4]
        shape = (n, channels, h, w) if dst is None else (n, -(-channels // dst), h, w, dst)
        return [out_type(shape, ctx.type(0).dtype)]

    def reference(self, ctx, x):
        src, dst, channels = self.blocks(ctx)
        plain = x if src is None else np_from_blocked(x, channels)
        return [plain if dst is None else np_to_blocked(plain, dst)]

    def compute(self, ctx, x):
        src, dst, channels = self.blocks(ctx)
        name = ctx.name or self.name

        def read(n, c, h, w):
            return x[n, c, h, w] if src is None else x[n, c // src, h, w, c % src]

        if dst is None:
            return [te.compute(ctx.out_types[0].shape, read, name=name)]
        zero = te.const(0, x.dtype)

        def body(n, co, h, w, ci):
            c = co * dst + ci
            if ctx.out_types[0].shape[1] * dst == channels:
                return read(n, c, h, w)
            return te.if_then_else(c < channels, read(n, te.minimum(c, channels - 1), h, w),
                                   zero)

        return [te.compute(ctx.out_types[0].shape, body, name=name)]


# -- convolutions ----------------------------------------------------------------------------
def conv_window(ctx, hw, kernel) -> Window:
    """The window of an NCHWc convolution from explicit strides, pads and dilations."""
    strides = int_list(ctx, "strides", 2, 1, 1)
    dilations = int_list(ctx, "dilations", 2, 1, 1)
    pads = int_list(ctx, "pads", 4, 0, 0)
    out = []
    for d in range(2):
        span = hw[d] + pads[d] + pads[2 + d] - (kernel[d] - 1) * dilations[d] - 1
        if span < 0:
            raise ctx.error(f"the window is larger than the padded input along spatial axis {d}")
        out.append(span // strides[d] + 1)
    return Window(tuple(hw), tuple(kernel), strides, dilations, pads[:2], pads[2:], tuple(out))


def conv_input(x: te.Tensor, block: int, win: Window, name: str):
    """``data(n, c, h, w, ci)``: the input of a window, blocked by ``block`` channels, at
    positions of the zero-padded input. When the window leaves ``x``, the padded input is a
    stage of its own (tag ``pad``; it also blocks a plain ``x``); else ``x`` is read
    directly."""
    plain = len(x.shape) == 4

    def read(n, c, h, w, ci):
        return x[n, c * block + ci, h, w] if plain else x[n, c, h, w, ci]

    need = _padded_extent(win)
    begin = win.pads_begin
    if not any(begin) and all(need[d] <= win.inp[d] for d in range(2)):
        return read
    shape = (x.shape[0], x.shape[1] // (block if plain else 1), need[0], need[1], block)
    stage = te.compute(shape, lambda n, c, h, w, ci: _bordered(
        win, need, (h, w), lambda hh, ww: read(n, c, hh, ww, ci), x.dtype),
        name=f"{name}_pad", tag=PAD_TAG)
    return lambda n, c, h, w, ci: stage[n, c, h, w, ci]


def _padded_extent(win: Window) -> list:
    """The extent of the padded input the window reads along each spatial axis."""
    return [(win.out[d] - 1) * win.strides[d] + (win.kernel[d] - 1) * win.dilations[d] + 1
            for d in range(2)]


def _bordered(win: Window, need, pos, read, dtype):
    """``read`` at padded position ``pos`` shifted by the pads, zero in the border."""
    conds = []
    for d in range(2):
        if win.pads_begin[d]:
            conds.append(pos[d] >= win.pads_begin[d])
        if need[d] > win.pads_begin[d] + win.inp[d]:
            conds.append(pos[d] < win.pads_begin[d] + win.inp[d])
    value = read(pos[0] - win.pads_begin[0], pos[1] - win.pads_begin[1])
    return te.if_then_else(te.all(*conds), value, te.const(0, dtype)) if conds else value


def conv_output(total: te.Tensor, b, plain: bool, name: str) -> te.Tensor:
    """The op's output from the blocked sums: plus the bias, and unblocked if ``plain``."""
    if not plain:
        if b is None:
            return total
        return te.compute(total.shape, lambda n, c, h, w, ci: total[n, c, h, w, ci]
                          + b[0, c, 0, 0, ci], name=name)
    bn = total.shape[4]

    def body(n, c, h, w):
        value = total[n, c // bn, h, w, c % bn]
        return value + b[0, c // bn, 0, 0, c % bn] if b is not None else value

    shape = (total.shape[0], total.shape[1] * bn, *total.shape[2:4])
    return te.compute(shape, body, name=name)


class _ConvNCHWc(OpDef):
    """Shared checks: X is NCHW{b}c (rank 5) or NCHW (rank 4, read as blocks of the
    weights' input block); ``out_layout`` is "" (NCHW{oc_bn}c) or "NCHW"."""

    pattern = COMPLEX
    num_inputs = (2, 3)
    attrs = {"dilations": [], "out_layout": "", "pads": [], "strides": []}

    def check(self, ctx):
        """(window, in block, out blocks, out block); validates dtypes, shapes, the bias."""
        dtype = check_dtype(ctx, 0, CONV_DTYPES)
        xt, wt = ctx.type(0), ctx.type(1)
        if wt.dtype != dtype or (ctx.has_input(2) and ctx.type(2).dtype != dtype):
            raise ctx.error("X, W and B must have one dtype")
        if ctx.attrs["out_layout"] not in ("", "NCHW"):
            raise ctx.error(f"out_layout must be '' (blocked like the weights) or 'NCHW', got "
                            f"{ctx.attrs['out_layout']!r}")
        if xt.ndim not in (4, 5):
            raise ctx.error(f"X must be NCHW<b>c (rank 5) or NCHW (rank 4), got shape "
                            f"{list(xt.shape)}")
        in_bn, in_blocks, out_blocks, out_bn, kernel = self.weight_geometry(ctx, wt.shape)
        blocks = xt.shape[1] if xt.ndim == 5 else xt.shape[1] // in_bn
        if blocks != in_blocks or (xt.ndim == 5 and xt.shape[4] != in_bn) or \
                (xt.ndim == 4 and xt.shape[1] != in_blocks * in_bn):
            raise ctx.error(f"X has shape {list(xt.shape)}, W {list(wt.shape)}: expected "
                            f"{in_blocks} blocks of {in_bn} input channels")
        win = conv_window(ctx, xt.shape[2:4], kernel)
        if ctx.has_input(2) and ctx.type(2).shape != (1, out_blocks, 1, 1, out_bn):
            raise ctx.error(f"bias has shape {list(ctx.type(2).shape)}; expected "
                            f"{[1, out_blocks, 1, 1, out_bn]}")
        return win, in_bn, out_blocks, out_bn

    def infer(self, ctx):
        win, _, blocks, bn = self.check(ctx)
        n = ctx.type(0).shape[0]
        shape = (n, blocks * bn, *win.out) if ctx.attrs["out_layout"] == "NCHW" \
            else (n, blocks, *win.out, bn)
        return [out_type(shape, ctx.type(0).dtype)]

    def reference(self, ctx, x, w, b=None):
        from dlc.ops.conv import np_conv

        win, _, blocks, bn = self.check(ctx)
        plain_x = x if x.ndim == 4 else np_from_blocked(x, x.shape[1] * x.shape[4])
        plain_w, group = self.plain_weights(w)
        y = np_conv(plain_x, plain_w, win, group, x.dtype)
        if b is not None:
            y = y + np_from_blocked(b, blocks * bn)
        y = y.astype(x.dtype)
        return [y if ctx.attrs["out_layout"] == "NCHW" else np_to_blocked(y, bn)]


@register
class Conv2dNCHWc(_ConvNCHWc):
    """A 2-D convolution (group 1) with weights packed ``[OC / oc_bn, IC / ic_bn, KH, KW,
    ic_bn, oc_bn]``."""

    name = "Conv2dNCHWc"
    schedule = "conv2d_nchwc"

    def weight_geometry(self, ctx, ws):
        if len(ws) != 6:
            raise ctx.error(f"W has shape {list(ws)}; expected [OC / oc_bn, IC / ic_bn, KH, "
                            "KW, ic_bn, oc_bn]")
        return ws[4], ws[1], ws[0], ws[5], ws[2:4]

    def plain_weights(self, w):
        return unpack_conv_weights(w), 1

    def compute(self, ctx, x, w, b=None):
        win, in_bn, blocks, bn = self.check(ctx)
        name = ctx.name or self.name
        data = conv_input(x, in_bn, win, name)
        ico = te.reduce_axis(w.shape[1], "ico")
        kh, kw = te.reduce_axis(win.kernel[0], "kh"), te.reduce_axis(win.kernel[1], "kw")
        ici = te.reduce_axis(in_bn, "ici")
        (sh, sw), (dh, dw) = win.strides, win.dilations

        def body(n, oc, oh, ow, oci):
            return te.sum(data(n, ico, oh * sh + kh * dh, ow * sw + kw * dw, ici)
                          * w[oc, ico, kh, kw, ici, oci], axis=[ico, kh, kw, ici])

        plain = ctx.attrs["out_layout"] == "NCHW"
        total = te.compute((x.shape[0], blocks, *win.out, bn), body, tag=CONV_TAG,
                           name=name if b is None and not plain else f"{name}_sum")
        return [conv_output(total, b, plain, name)]


@register
class DepthwiseConv2dNCHWc(_ConvNCHWc):
    """A depthwise 2-D convolution (group = channels, one output channel each) with
    weights ``[C / b, KH, KW, b]``. With plain input and output and unit strides it is
    computed in NCHW, vectorized along rows (tag ``depthwise_conv2d_nchw``)."""

    name = "DepthwiseConv2dNCHWc"
    schedule = "depthwise_conv2d_nchwc"

    def weight_geometry(self, ctx, ws):
        if len(ws) != 4:
            raise ctx.error(f"W has shape {list(ws)}; expected [C / b, KH, KW, b]")
        return ws[3], ws[0], ws[0], ws[3], ws[1:3]

    def plain_weights(self, w):
        plain = np.moveaxis(w, 3, 1).reshape(-1, 1, *w.shape[1:3])
        return plain, plain.shape[0]

    def compute(self, ctx, x, w, b=None):
        win, bn, blocks, _ = self.check(ctx)
        name = ctx.name or self.name
        plain = ctx.attrs["out_layout"] == "NCHW"
        if plain and len(x.shape) == 4 and win.strides == (1, 1):
            return [self.compute_plain(x, w, b, win, name)]
        data = conv_input(x, bn, win, name)
        kh, kw = te.reduce_axis(win.kernel[0], "kh"), te.reduce_axis(win.kernel[1], "kw")
        (sh, sw), (dh, dw) = win.strides, win.dilations

        def body(n, c, oh, ow, ci):
            return te.sum(data(n, c, oh * sh + kh * dh, ow * sw + kw * dw, ci)
                          * w[c, kh, kw, ci], axis=[kh, kw])

        total = te.compute((x.shape[0], blocks, *win.out, bn), body, tag=DEPTHWISE_TAG,
                           name=name if b is None and not plain else f"{name}_sum")
        return [conv_output(total, b, plain, name)]

    def compute_plain(self, x, w, b, win, name):
        """NCHW in and out: rows of the (padded) input times broadcast weights."""
        bn = w.shape[3]
        need = _padded_extent(win)
        data = x
        if any(win.pads_begin) or any(need[d] > win.inp[d] for d in range(2)):
            data = te.compute((*x.shape[:2], *need), lambda n, c, h, ww: _bordered(
                win, need, (h, ww), lambda hh, wi: x[n, c, hh, wi], x.dtype),
                name=f"{name}_pad", tag=PAD_TAG)
        kh, kw = te.reduce_axis(win.kernel[0], "kh"), te.reduce_axis(win.kernel[1], "kw")
        dh, dw = win.dilations

        def body(n, c, oh, ow):
            return te.sum(data[n, c, oh + kh * dh, ow + kw * dw]
                          * w[c // bn, kh, kw, c % bn], axis=[kh, kw])

        total = te.compute((*x.shape[:2], *win.out), body, tag=DEPTHWISE_PLAIN_TAG,
                           name=name if b is None else f"{name}_sum")
        if b is None:
            return total
        return te.compute(total.shape, lambda n, c, h, ww: total[n, c, h, ww]
                          + b[0, c // bn, 0, 0, c % bn], name=name)


# -- pools -----------------------------------------------------------------------------------
class _PoolNCHWc(OpDef):
    pattern = OPAQUE
    schedule = "pool_nchwc"

    def window(self, ctx) -> Window:
        xt = ctx.type(0)
        kernel = tuple(int(k) for k in ctx.attrs["kernel_shape"])
        if xt.ndim != 5 or len(kernel) != 2:
            raise ctx.error(f"needs X in NCHW<b>c (rank 5) and a 2-D kernel_shape, got X "
                            f"{list(xt.shape)} and kernel_shape {list(kernel)}")
        if ctx.attrs["ceil_mode"] not in (0, 1):
            raise ctx.error(f"ceil_mode must be 0 or 1, got {ctx.attrs['ceil_mode']}")
        return window_geometry(ctx, xt.shape[2:4], kernel, bool(ctx.attrs["ceil_mode"]),
                               pool=True)

    def infer(self, ctx):
        dtype = check_dtype(ctx, 0, CONV_DTYPES)
        xs, win = ctx.type(0).shape, self.window(ctx)
        return [out_type((xs[0], xs[1], *win.out, xs[4]), dtype)]

    def windowed(self, x, win, reducer, name):
        rk = [te.reduce_axis(k, f"rk{d}") for d, k in enumerate(win.kernel)]

        def body(n, c, oh, ow, ci):
            pos, cond = window_positions(win, (oh, ow), rk)
            return reducer(x[n, c, pos[0], pos[1], ci], axis=rk, where=cond)

        return te.compute((*x.shape[:2], *win.out, x.shape[4]), body, name=name, tag=POOL_TAG)

    @staticmethod
    def np_views(x, win, fill):
        """NumPy windows of a blocked ``x``, each view blocked again."""
        planar = np.moveaxis(x, -1, 2)
        for _, view in np_windows(planar, win, fill):
            yield np.moveaxis(view, 2, -1)


@register
class MaxPoolNCHWc(_PoolNCHWc):
    """MaxPool (its first output) on NCHW{b}c data."""

    name = "MaxPoolNCHWc"
    attrs = {**POOL_ATTRS, "storage_order": 0}

    def reference(self, ctx, x):
        win = self.window(ctx)
        return [np.maximum.reduce(list(self.np_views(x, win, -np.inf))).astype(x.dtype)]

    def compute(self, ctx, x):
        return [self.windowed(x, self.window(ctx), te.max, ctx.name or self.name)]


@register
class AveragePoolNCHWc(_PoolNCHWc):
    """AveragePool on NCHW{b}c data."""

    name = "AveragePoolNCHWc"
    attrs = {**POOL_ATTRS, "count_include_pad": 0}

    def reference(self, ctx, x):
        win = self.window(ctx)
        total = sum(self.np_views(x, win, 0))
        counts = np_counts(win, bool(ctx.attrs["count_include_pad"]))
        return [(total / counts[None, None, :, :, None]).astype(x.dtype)]

    def compute(self, ctx, x):
        win = self.window(ctx)
        name = ctx.name or self.name
        total = self.windowed(x, win, te.sum, f"{name}_sum")
        include = bool(ctx.attrs["count_include_pad"])

        def mean(n, c, oh, ow, ci):
            count = axis_count(win, 0, oh, include) * axis_count(win, 1, ow, include)
            return total[n, c, oh, ow, ci] / te.cast(count, x.dtype)

        return [te.compute(total.shape, mean, name=name)]


@register
class GlobalAveragePoolNCHWc(OpDef):
    """GlobalAveragePool on NCHW{b}c data: ``[N, Co, 1, 1, b]``."""

    name = "GlobalAveragePoolNCHWc"
    pattern = REDUCE
    schedule = "pool_nchwc"

    def infer(self, ctx):
        dtype = check_dtype(ctx, 0, CONV_DTYPES)
        xs = ctx.type(0).shape
        if len(xs) != 5:
            raise ctx.error(f"needs X in NCHW<b>c (rank 5), got shape {list(xs)}")
        return [out_type((xs[0], xs[1], 1, 1, xs[4]), dtype)]

    def reference(self, ctx, x):
        return [np.mean(x, axis=(2, 3), keepdims=True).astype(x.dtype)]

    def compute(self, ctx, x):
        name = ctx.name or self.name
        rh, rw = te.reduce_axis(x.shape[2], "rh"), te.reduce_axis(x.shape[3], "rw")
        total = te.compute((x.shape[0], x.shape[1], 1, 1, x.shape[4]), lambda n, c, h, w, ci:
                           te.sum(x[n, c, rh, rw, ci], axis=[rh, rw]), name=f"{name}_sum",
                           tag=POOL_TAG)
        count = te.const(x.shape[2] * x.shape[3], x.dtype)
        return [te.compute(total.shape, lambda *i: total[i] / count, name=name)]
