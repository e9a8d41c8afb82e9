"""The three kernels of a Winograd convolution (``dlc.ops.winograd``) on the CPU.

* Input transform: one tile per iteration of a parallel loop over (n, channel block,
  tile); the tile is copied (zeros past the borders) and its ``B^T d`` half computed into
  tile-local buffers (``compute_at``), then
  ``(B^T d) B`` is written, both with the tile's rows and columns unrolled (the select
  chains of the transform matrices fold to sparse sums) and the channel block vectorized.
* Products: like a direct convolution's register tile: ``tile_columns`` tiles times the
  output channel block accumulate in vector registers over the input channels, the
  transform points (e, nu), the batch and the output channel blocks fused into a parallel
  loop (knob ``parallel_tiles``: the loop over column tiles joins it).
* Output transform: the (fused) output split into ``m x m`` tiles, (n, channel block, tile
  row) parallel (knob ``rows_outside_channels``: (n, tile row, channel block)), each
  tile's ``A^T M`` half into a tile-local buffer, then ``(A^T M) A`` with the epilogue
  (bias, Relu, a residual Add, ...) inlined, written once.
"""

from __future__ import annotations

from dlc.ops.winograd import (
    GEMM_TAG,
    INPUT_DATA_TAG,
    INPUT_TAG,
    INPUT_TILE_TAG,
    OUTPUT_TILE_TAG,
)
from dlc.schedules import register_schedule
from dlc.schedules.cpu.conv2d import MAX_TILE, _tagged, register_tile
from dlc.schedules.generic import schedule_generic
from dlc.tir.schedule import Schedule


def _single_output(sch: Schedule, outputs, tag: str):
    """The one output's stage name when ``outputs`` is one tensor made by the stage tagged
    ``tag`` (None otherwise: the kernel is scheduled generically)."""
    main = _tagged(sch, tag)
    if main is None or len(outputs) != 1 or sch.tensor_name(outputs[0]) != main.name:
        return None
    return main.name


@register_schedule("winograd_input")
def schedule_winograd_input(sch: Schedule, outputs, anchor, cfg) -> Schedule:
    """The input transform (see the module docstring)."""
    name = _single_output(sch, outputs, INPUT_TAG)
    data, half = _tagged(sch, INPUT_DATA_TAG), _tagged(sch, INPUT_TILE_TAG)
    if name is None or half is None or data is None:
        return schedule_generic(sch, outputs, anchor, cfg)
    e, nu, n, c, p, i = sch.get_loops(name)
    sch.reorder(n, c, p, e, nu, i)
    tile_loop = sch.fuse(n, c, p)
    sch.parallel(tile_loop)
    sch.unroll(e)
    sch.unroll(nu)
    sch.vectorize(i)
    for stage in (half, data):
        sch.compute_at(stage.name, tile_loop)
        *_, row, col, lane = sch.get_loops(stage.name)
        sch.unroll(row)
        sch.unroll(col)
        sch.vectorize(lane)
    return sch


@register_schedule("winograd_gemm")
def schedule_winograd_gemm(sch: Schedule, outputs, anchor, cfg) -> Schedule:
    """The batched products (see the module docstring)."""
    name = _single_output(sch, outputs, GEMM_TAG)
    if name is None:
        return schedule_generic(sch, outputs, anchor, cfg)
    shape = sch[name].op.shape
    tiles, block = shape[4], shape[5]
    reg_n = cfg.knob("tile_columns", range(1, min(tiles, MAX_TILE) + 1),
                     default=register_tile(tiles, block, cfg.target.hardware))
    parallel_tiles = cfg.knob("parallel_tiles", (False, True), default=False)
    acc = sch.tensor_name(sch.cache_write(name, "local"))
    e, nu, n, oc, p, o = sch.get_loops(name)
    po, pi = sch.split(p, factor=reg_n)
    sch.reorder(e, nu, n, oc, po, pi, o)
    if parallel_tiles:
        sch.parallel(sch.fuse(e, nu, n, oc, po))
        attach = sch.get_loops(name)[0]
    else:
        sch.parallel(sch.fuse(e, nu, n, oc))
        attach = po
    sch.unroll(pi)
    sch.vectorize(o)
    sch.compute_at(acc, attach)
    *_, p, o, c, i = sch.get_loops(acc)
    sch.reorder(c, i, p, o)
    sch.unroll(p)
    sch.vectorize(o)
    return sch


@register_schedule("winograd_output")
def schedule_winograd_output(sch: Schedule, outputs, anchor, cfg) -> Schedule:
    """The output transform and its epilogue (see the module docstring)."""
    half = _tagged(sch, OUTPUT_TILE_TAG)
    if half is None or len(outputs) != 1:
        return schedule_generic(sch, outputs, anchor, cfg)
    out = sch.tensor_name(outputs[0])
    for stage in sch.stage_order():
        if stage is not half and not stage.is_output:
            sch.compute_inline(stage.name)
    tile = half.op.shape[3]
    rows_outside = cfg.knob("rows_outside_channels", (False, True), default=False)
    n, c, h, w, o = sch.get_loops(out)
    ho, hi = sch.split(h, factor=tile)
    wo, wi = sch.split(w, factor=tile)
    outer = (n, ho, c) if rows_outside else (n, c, ho)
    sch.reorder(*outer, wo, hi, wi, o)
    sch.parallel(sch.fuse(*outer))
    sch.unroll(hi)
    sch.unroll(wi)
    sch.vectorize(o)
    sch.compute_at(half.name, wo)
    *_, row, col, lane = sch.get_loops(half.name)
    sch.unroll(row)
    sch.unroll(col)
    sch.vectorize(lane)
    return sch
