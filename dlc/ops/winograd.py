"""Winograd convolutions F(m x m, 3 x 3) on blocked channels (internal ops, made by the
winograd_conv graph pass; no ONNX converter names them).

A 3x3 stride-1 convolution computes each ``m x m`` tile of its output from the
``(m + 2) x (m + 2)`` input tile around it with ``(m + 2)^2`` products per channel pair
instead of ``9 m^2`` (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks",
2016): 4x fewer for ``m = 4``. The weights are transformed once, at compile time
(``transform_weights``: ``U = G w G^T``); three kernels do the rest:

* ``WinogradInputNCHWc(x) {tile, pads}``: ``x`` NCHW{b}c -> ``V[e, nu, n, c, p, i]``, the
  input tiles transformed (``B^T d B``), ``p`` the tile index (``th * tiles_w + tw``);
  each tile is first read into a tile-local copy (tag ``winograd_input_data``), the reads
  past the borders being the padding's zeros, so the transform reads without tests.
* ``WinogradGemmNCHWc(V, U)``: ``(m + 2)^2`` independent products over the input channels,
  ``M[e, nu, n, oc, p, o] = sum_(c, i) V[e, nu, n, c, p, i] * U[e, nu, oc, c, i, o]``.
* ``WinogradOutputNCHWc(M, b?) {tile, out_height, out_width}``: ``A^T M A`` back to
  NCHW{b}c output tiles, cut to the output size, plus the bias; the fusion pass appends the
  epilogue (Relu, residual Add) as for any convolution.

Rounding differs from the direct convolution: the transforms add and scale (by up to 8 and
1/24 for m = 4) before the products, so each output carries the rounding of those sums too
(the tests bound it against a float64 reference; ResNet-18's output stays as close to
onnxruntime's as with direct convolutions).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from dlc import te
from dlc.ops.common import out_type
from dlc.ops.registry import COMPLEX, OpDef, check_dtype, register

#: Output tile sizes supported, each with its transform matrices (A^T, G, B^T) over the
#: interpolation points 0, +-1, (+-2,) infinity.
WINOGRAD_DTYPES = ("float32",)
#: Tags of the stages: the tile-local halves of the two transforms and the products.
INPUT_DATA_TAG, INPUT_TILE_TAG, INPUT_TAG, GEMM_TAG, OUTPUT_TILE_TAG = \
    "winograd_input_data", "winograd_input_tile", "winograd_input", "winograd_gemm", \
    "winograd_output_tile"

_F = Fraction
_MATRICES = {
    2: ([[1, 1, 1, 0],
         [0, 1, -1, -1]],
        [[1, 0, 0],
         [_F(1, 2), _F(1, 2), _F(1, 2)],
         [_F(1, 2), _F(-1, 2), _F(1, 2)],
         [0, 0, 1]],
        [[1, 0, -1, 0],
         [0, 1, 1, 0],
         [0, -1, 1, 0],
         [0, 1, 0, -1]]),
    4: ([[1, 1, 1, 1, 1, 0],
         [0, 1, -1, 2, -2, 0],
         [0, 1, 1, 4, 4, 0],
         [0, 1, -1, 8, -8, 1]],
        [[_F(1, 4), 0, 0],
         [_F(-1, 6), _F(-1, 6), _F(-1, 6)],
         [_F(-1, 6), _F(1, 6), _F(-1, 6)],
         [_F(1, 24), _F(1, 12), _F(1, 6)],
         [_F(1, 24), _F(-1, 12), _F(1, 6)],
         [0, 0, 1]],
        [[4, 0, -5, 0, 1, 0],
         [0, -4, -4, 1, 1, 0],
         [0, 4, -4, -1, 1, 0],
         [0, -2, -1, 2, 1, 0],
         [0, 2, -1, -2, 1, 0],
         [0, 4, 0, -5, 0, 1]]),
}
TILE_SIZES = tuple(sorted(_MATRICES))


def winograd_matrices(tile: int) -> tuple:
    """``(A^T, G, B^T)`` of F(tile x tile, 3 x 3) as float64 arrays."""
    if tile not in _MATRICES:
        raise ValueError(f"Winograd tile must be one of {TILE_SIZES}, got {tile}")
    return tuple(np.array([[float(v) for v in row] for row in m]) for m in _MATRICES[tile])


def tile_counts(out_h: int, out_w: int, tile: int) -> tuple:
    """Tiles down and across an ``out_h x out_w`` output."""
    return -(-out_h // tile), -(-out_w // tile)


def transform_weights(w: np.ndarray, tile: int) -> np.ndarray:
    """Packed 3x3 weights ``[OC / ob, IC / ib, 3, 3, ib, ob]`` -> ``U = G w G^T`` as
    ``[t, t, OC / ob, IC / ib, ib, ob]`` (t = tile + 2), computed in float64."""
    _, g, _ = winograd_matrices(tile)
    u = np.einsum("ek,ocklij,nl->enocij", g, w.astype(np.float64), g, optimize=True)
    return np.ascontiguousarray(u.astype(w.dtype))


def _rows_selected(matrix, row, terms):
    """``sum_j matrix[row][j] * terms[j]`` for a symbolic ``row``: one sparse expression per
    row (no products by 0 or +-1), chosen by a chain of selects that folds away once the
    row's loop is unrolled."""

    def expression(coefficients):
        out = None
        for c, t in zip(coefficients, terms):
            if c == 0:
                continue
            if out is None:
                out = t if c == 1 else -t if c == -1 else t * float(c)
            elif c == 1:
                out = out + t
            elif c == -1:
                out = out - t
            else:
                out = out + t * float(c)
        return out

    out = expression(matrix[-1])
    for k in range(len(matrix) - 2, -1, -1):
        out = te.select(row == k, expression(matrix[k]), out)
    return out


class _Winograd(OpDef):
    pattern = COMPLEX

    def tile(self, ctx) -> int:
        tile = ctx.attrs["tile"]
        if tile not in TILE_SIZES:
            raise ctx.error(f"tile must be one of {list(TILE_SIZES)}, got {tile}")
        return tile

    def blocked(self, ctx, index: int, rank: int, what: str):
        check_dtype(ctx, index, WINOGRAD_DTYPES)
        t = ctx.type(index)
        if t.ndim != rank:
            raise ctx.error(f"{what} must have rank {rank}, got shape {list(t.shape)}")
        return t.shape


@register
class WinogradInputNCHWc(_Winograd):
    """The input transform: NCHW{b}c ``x`` -> ``V[t, t, N, C / b, tiles, b]``."""

    name = "WinogradInputNCHWc"
    schedule = "winograd_input"
    attrs = {"tile": 4, "pads": []}

    def geometry(self, ctx):
        """(tile, (top, left, bottom, right), out_h, out_w, tiles_h, tiles_w)."""
        n, c, h, w, b = self.blocked(ctx, 0, 5, "X")
        tile = self.tile(ctx)
        pads = list(ctx.attrs["pads"]) or [0, 0, 0, 0]
        if len(pads) != 4 or min(pads) < 0:
            raise ctx.error(f"pads must be 4 non-negative numbers, got {pads}")
        out_h, out_w = h + pads[0] + pads[2] - 2, w + pads[1] + pads[3] - 2
        if out_h < 1 or out_w < 1:
            raise ctx.error(f"a 3x3 window does not fit the padded {h}x{w} input")
        return (tile, pads, out_h, out_w, *tile_counts(out_h, out_w, tile))

    def infer(self, ctx):
        tile, _, _, _, th, tw = self.geometry(ctx)
        n, c, _, _, b = ctx.type(0).shape
        t = tile + 2
        return [out_type((t, t, n, c, th * tw, b), ctx.type(0).dtype)]

    def reference(self, ctx, x):
        tile, pads, _, _, th, tw = self.geometry(ctx)
        _, _, bt = winograd_matrices(tile)
        t = tile + 2
        height, width = th * tile + 2, tw * tile + 2
        padded = np.zeros(x.shape[:2] + (height, width, x.shape[4]), np.float64)
        rows = min(x.shape[2], height - pads[0])
        cols = min(x.shape[3], width - pads[1])
        padded[:, :, pads[0]:pads[0] + rows, pads[1]:pads[1] + cols] = x[:, :, :rows, :cols]
        tiles = np.stack([padded[:, :, a * tile:a * tile + t, b * tile:b * tile + t]
                          for a in range(th) for b in range(tw)], axis=2)  # n c p t t i
        v = np.einsum("ea,ncpabi,fb->efncpi", bt, tiles, bt)
        return [v.astype(x.dtype)]

    def compute(self, ctx, x):
        tile, pads, _, _, _, tiles_w = self.geometry(ctx)
        _, _, bt = _MATRICES[tile]
        t = tile + 2
        n_, c_, h_, w_, b_ = x.shape
        _, _, _, _, p_, _ = self.infer(ctx)[0].shape
        zero = te.const(0.0, x.dtype)

        name = ctx.name or self.name

        def read(n, c, p, a, col, i):
            row, col = (p // tiles_w) * tile - pads[0] + a, (p % tiles_w) * tile - pads[1] + col
            inside = te.all(row >= 0, row < h_, col >= 0, col < w_)
            return te.if_then_else(inside, x[n, c, row, col, i], zero)

        data = te.compute((n_, c_, p_, t, t, b_), read, name=f"{name}_data",
                          tag=INPUT_DATA_TAG)

        def rows(n, c, p, e, col, i):
            return _rows_selected(bt, e, [data[n, c, p, a, col, i] for a in range(t)])

        half = te.compute((n_, c_, p_, t, t, b_), rows, name=f"{name}_rows",
                          tag=INPUT_TILE_TAG)

        def body(e, nu, n, c, p, i):
            return _rows_selected(bt, nu, [half[n, c, p, e, col, i] for col in range(t)])

        return [te.compute((t, t, n_, c_, p_, b_), body, name=name, tag=INPUT_TAG)]


@register
class WinogradGemmNCHWc(_Winograd):
    """The products: ``V[t, t, N, C / ib, tiles, ib]`` and ``U[t, t, OC / ob, C / ib, ib,
    ob]`` -> ``M[t, t, N, OC / ob, tiles, ob]``."""

    name = "WinogradGemmNCHWc"
    schedule = "winograd_gemm"
    num_inputs = (2, 2)
    attrs = {}

    def infer(self, ctx):
        vs = self.blocked(ctx, 0, 6, "V")
        us = self.blocked(ctx, 1, 6, "U")
        if ctx.type(1).dtype != ctx.type(0).dtype:
            raise ctx.error("V and U must have one dtype")
        if vs[0] != vs[1] or us[:2] != vs[:2] or us[3] != vs[3] or us[4] != vs[5]:
            raise ctx.error(f"V has shape {list(vs)}, U {list(us)}: expected V [t, t, N, C "
                            "/ ib, tiles, ib] and U [t, t, OC / ob, C / ib, ib, ob]")
        return [out_type((vs[0], vs[1], vs[2], us[2], vs[4], us[5]), ctx.type(0).dtype)]

    def reference(self, ctx, v, u):
        m = np.einsum("efncpi,efocij->efnopj", v.astype(np.float64), u.astype(np.float64))
        return [m.astype(v.dtype)]

    def compute(self, ctx, v, u):
        shape = self.infer(ctx)[0].shape
        c = te.reduce_axis(v.shape[3], "c")
        i = te.reduce_axis(v.shape[5], "i")

        def body(e, nu, n, oc, p, o):
            return te.sum(v[e, nu, n, c, p, i] * u[e, nu, oc, c, i, o], axis=[c, i])

        return [te.compute(shape, body, name=ctx.name or self.name, tag=GEMM_TAG)]


@register
class WinogradOutputNCHWc(_Winograd):
    """The output transform: ``M[t, t, N, OC / ob, tiles, ob]`` (and a bias ``[1, OC / ob,
    1, 1, ob]``) -> NCHW{ob}c ``[N, OC / ob, out_height, out_width, ob]``."""

    name = "WinogradOutputNCHWc"
    schedule = "winograd_output"
    num_inputs = (1, 2)
    attrs = {"tile": 4, "out_height": 0, "out_width": 0}

    def geometry(self, ctx):
        t_, _, n, blocks, p, b = self.blocked(ctx, 0, 6, "M")
        tile = self.tile(ctx)
        out_h, out_w = ctx.attrs["out_height"], ctx.attrs["out_width"]
        th, tw = tile_counts(max(out_h, 1), max(out_w, 1), tile)
        if out_h < 1 or out_w < 1 or t_ != tile + 2 or th * tw != p:
            raise ctx.error(f"M has shape {list(ctx.type(0).shape)}: expected [{tile + 2}, "
                            f"{tile + 2}, N, blocks, {th * tw}, b] for a {out_h}x{out_w} "
                            f"output in {tile}x{tile} tiles")
        if ctx.has_input(1) and (ctx.type(1).shape != (1, blocks, 1, 1, b)
                                 or ctx.type(1).dtype != ctx.type(0).dtype):
            raise ctx.error(f"bias has shape {list(ctx.type(1).shape)}; expected "
                            f"{[1, blocks, 1, 1, b]} of M's dtype")
        return tile, out_h, out_w, tw

    def infer(self, ctx):
        _, out_h, out_w, _ = self.geometry(ctx)
        _, _, n, blocks, _, b = ctx.type(0).shape
        return [out_type((n, blocks, out_h, out_w, b), ctx.type(0).dtype)]

    def reference(self, ctx, m, bias=None):
        tile, out_h, out_w, tw = self.geometry(ctx)
        at, _, _ = winograd_matrices(tile)
        y = np.einsum("ae,efncpo,bf->ncpabo", at, m.astype(np.float64), at)
        n, blocks, p, _, _, b = y.shape
        th = p // tw
        y = y.reshape(n, blocks, th, tw, tile, tile, b).transpose(0, 1, 2, 4, 3, 5, 6)
        y = y.reshape(n, blocks, th * tile, tw * tile, b)[:, :, :out_h, :out_w]
        if bias is not None:
            y = y + bias
        return [y.astype(m.dtype)]

    def compute(self, ctx, m, bias=None):
        tile, out_h, out_w, tiles_w = self.geometry(ctx)
        at, _, _ = _MATRICES[tile]
        t = tile + 2
        _, _, n_, blocks, p_, b_ = m.shape
        name = ctx.name or self.name

        def rows(n, oc, p, a, nu, o):
            return _rows_selected(at, a, [m[e, nu, n, oc, p, o] for e in range(t)])

        half = te.compute((n_, blocks, p_, tile, t, b_), rows, name=f"{name}_rows",
                          tag=OUTPUT_TILE_TAG)

        def body(n, oc, h, w, o):
            p = (h // tile) * tiles_w + w // tile
            value = _rows_selected(at, w % tile, [half[n, oc, p, h % tile, nu, o]
                                                  for nu in range(t)])
            return value if bias is None else value + bias[0, oc, 0, 0, o]

        return [te.compute((n_, blocks, out_h, out_w, b_), body, name=name)]
