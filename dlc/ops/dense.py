"""Dense layers with pre-packed weights (an internal op, made by the pack_dense_weights
graph pass; no ONNX converter names it).

``Dense(x, w_packed) {units}`` is ``x @ W`` for a constant ``W`` of shape ``[K, units]``
stored as column panels ``[ceil(units / nr), K, nr]``: column ``j`` of ``W`` lives at
``[j // nr, :, j % nr]``, and the columns past ``units`` in the last panel are zero. A
micro-kernel that updates ``nr`` columns at a time then reads its panel contiguously, one
row of ``nr`` weights per step of the reduction (see ``dlc.schedules.cpu.dense``).

The compute sums into a tensor tagged ``dense`` whose last axis covers whole panels
(``ceil(units / nr) * nr`` columns, the padding columns are zero), so the micro-kernel needs
no guard on the last panel; when ``units`` is not a multiple of ``nr`` the op's output is
a copy of the first ``units`` columns (inlined into the epilogue by the schedule).
"""

from __future__ import annotations

import numpy as np

from dlc import te
from dlc.ops.common import out_type
from dlc.ops.registry import COMPLEX, REQUIRED, OpDef, check_dtype, register

DENSE_TAG = "dense"
DENSE_DTYPES = ("float32",)
def panel_widths(hw) -> tuple:
    """Panel widths for the float32 vectors of ``hw`` (a CpuInfo), best first: 4, 3, 2 or 1
    registers in the order ``hw.panel_vectors()`` gives (64, 48, 32, 16 with AVX-512)."""
    lanes = hw.lanes("float32")
    return tuple(v * lanes for v in hw.panel_vectors())


def panel_width(units: int, hw) -> int:
    """The panel width ``nr`` for a layer of ``units`` output columns on ``hw``: the first
    of ``panel_widths(hw)`` that divides ``units`` (no padding), else the one that pads
    least."""
    widths = panel_widths(hw)
    for nr in widths:
        if units % nr == 0:
            return nr
    return min(widths, key=lambda nr: (-units % nr, widths.index(nr)))


def np_pack_panels(w: np.ndarray, nr: int) -> np.ndarray:
    """``[K, N]`` -> ``[ceil(N / nr), K, nr]`` (zero-padded columns)."""
    k, n = w.shape
    panels = -(-n // nr)
    full = np.zeros((k, panels * nr), w.dtype)
    full[:, :n] = w
    return np.ascontiguousarray(full.reshape(k, panels, nr).transpose(1, 0, 2))


def np_unpack_panels(wp: np.ndarray, units: int) -> np.ndarray:
    """The inverse of ``np_pack_panels``: ``[K, units]``."""
    panels, k, nr = wp.shape
    return np.ascontiguousarray(wp.transpose(1, 0, 2).reshape(k, panels * nr)[:, :units])


def dense_packed(x: te.Tensor, wp: te.Tensor, units: int, name: str) -> te.Tensor:
    """``x[..., K] @ W`` with ``W`` given as panels ``wp`` (see the module docstring)."""
    panels, K, nr = wp.shape
    k = te.reduce_axis(K, "k")
    lead = tuple(x.shape[:-1])

    def body(*idx):
        j = idx[-1]
        return te.sum(x[idx[:-1] + (k,)] * wp[j // nr, k, j % nr], axis=k)

    padded = panels * nr != units
    total = te.compute(lead + (panels * nr,), body, tag=DENSE_TAG, attrs={"nr": nr},
                       name=f"{name}_sum" if padded else name)
    if not padded:
        return total
    return te.compute(lead + (units,), lambda *idx: total[idx], name=name)


@register
class Dense(OpDef):
    """``x @ W`` with ``W`` pre-packed into column panels ``[ceil(units / nr), K, nr]``."""

    name = "Dense"
    pattern = COMPLEX
    num_inputs = (2, 2)
    attrs = {"units": REQUIRED}
    schedule = "dense"

    def infer(self, ctx):
        dtype = check_dtype(ctx, 0, DENSE_DTYPES)
        xs, ws = ctx.type(0).shape, ctx.type(1).shape
        units = ctx.attrs["units"]
        if ctx.type(1).dtype != dtype:
            raise ctx.error(f"x is {dtype} but the packed weights are {ctx.type(1).dtype}")
        if len(xs) < 2 or len(ws) != 3:
            raise ctx.error(f"x must have rank 2 or more and the packed weights rank 3 "
                            f"([panels, K, nr]); got shapes {list(xs)} and {list(ws)}")
        if ws[1] != xs[-1]:
            raise ctx.error(f"x has {xs[-1]} columns but the packed weights have K = {ws[1]}")
        if not 0 < units <= ws[0] * ws[2] or units <= (ws[0] - 1) * ws[2]:
            raise ctx.error(f"units={units} does not fit {ws[0]} panels of {ws[2]} columns")
        return [out_type(tuple(xs[:-1]) + (units,), dtype)]

    def reference(self, ctx, x, wp):
        w = np_unpack_panels(wp, ctx.attrs["units"])
        return [np.matmul(x, w).astype(x.dtype)]

    def compute(self, ctx, x, wp):
        return [dense_packed(x, wp, ctx.attrs["units"], ctx.name or self.name)]
