"""Convolutions and pools on blocked channels (NCHW{b}c) on the CPU: the classic x86
direct convolution, chosen by shape, with no search.

The ops of ``dlc.ops.layout`` tag their stages: the reduction (``conv2d_nchwc``,
``depthwise_conv2d_nchwc`` or ``pool_nchwc``) and the zero-bordered copy of a padded input
(``pad``). Every schedule here has the same shape:

* the epilogue the fusion pass attached (bias, activation, residual add, ...) is inlined
  into the kernel's output, whose rows are tiled by ``reg_n`` output columns; the loops
  over (batch, channel block, output row) are fused into one parallel loop (the knob
  ``rows_outside_channels`` puts the rows outside the channel blocks instead: a thread
  then takes neighbouring rows of every channel block, which share their input rows,
  where the default shares one block's weights);
* the reduction is computed inside that tile (``compute_at``): an accumulator tile of
  ``reg_n x oc_bn`` values, ``reg_n`` unrolled and the channel block vectorized, that LLVM
  keeps in vector registers (``reg_n * oc_bn / 16 <= 28`` of the 32 zmm registers);
  the output tile is written once, after the epilogue, straight from the registers;
* a padded input is copied once into its zero-bordered stage, in parallel, so the inner
  loops read without bounds tests (knob ``read_borders_in_place``: no copy, every read
  tests its bounds, which saves a memory-bound kernel a pass over its input).

The loop nest of a 3x3 convolution 64 -> 64 channels on 56x56 (oc_bn = ic_bn = 32,
reg_n = 14) with a fused bias and Relu::

    for (n, c, h) in parallel(1 * 2 * 58): pad[...] = x[...] or 0           # the border
    for (n, oc, oh) in parallel(1 * 2 * 56):
      for ow.outer in range(4):
        acc[14, 32] = 0                                  # 28 zmm registers
        for ico in range(2): for kh in range(3): for kw in range(3): for ici in range(32):
          for ow in unrolled(14):
            acc[ow, 0:32] += broadcast(pad[n, ico, oh + kh, 14 * ow.outer + ow + kw, ici])
                             * w[oc, ico, kh, kw, ici, 0:32]      # vfmadd231ps {1to16}
        for ow.inner in unrolled(14):
          out[n, oc, oh, 14 * ow.outer + ow.inner, 0:32] = max(acc[ow.inner, 0:32] + b, 0)

Depthwise convolutions accumulate the same way, with the input read as vectors (the channel
block is the unit-stride axis) and the kernel window unrolled so that neighbouring taps
share their loads; pools use the same tiling with a window reduction.
"""

from __future__ import annotations

from dlc.schedules import register_schedule
from dlc.schedules.generic import _schedule_root_stage, schedule_generic
from dlc.tir.schedule import Schedule

#: Tags of the stages made by dlc.ops.layout.
CONV_TAG, DEPTHWISE_TAG, DEPTHWISE_PLAIN_TAG, POOL_TAG, PAD_TAG = \
    "conv2d_nchwc", "depthwise_conv2d_nchwc", "depthwise_conv2d_nchw", "pool_nchwc", "pad"
#: Vector registers kept for weights and inputs; the others hold accumulators (28 of
#: AVX-512's 32, 12 of AVX2's 16).
SPARE_REGISTERS = 4
#: Most output columns per register tile offered to the tuner.
MAX_TILE = 32


def register_tile(width: int, block: int, hw) -> int:
    """Output columns per register tile on ``hw`` (a dlc.hardware.CpuInfo): as many as
    its accumulator registers hold with ``block`` channels each, preferring a divisor of
    ``width`` (no partial tile) when one is at least half that large."""
    registers = hw.vector_registers - SPARE_REGISTERS
    vectors = -(-block // hw.lanes("float32"))
    limit = max(1, min(width, registers // vectors))
    best = max(d for d in range(1, limit + 1) if width % d == 0)
    return best if 2 * best >= limit else limit


@register_schedule("conv2d_nchwc")
def schedule_conv2d_nchwc(sch: Schedule, outputs, anchor, cfg) -> Schedule:
    """The NCHWc direct convolution (see the module docstring)."""

    window_first = cfg.knob("window_outside_channels", (False, True), default=False)
    unroll_kw = cfg.knob("unroll_kw", (False, True), default=False)

    def order(loops):
        n, c, h, w, ci, ico, kh, kw, ici = loops
        if window_first:
            sch.reorder(n, c, h, kh, kw, ico, ici, w, ci)
        else:
            sch.reorder(n, c, h, ico, kh, kw, ici, w, ci)
        return [kw, w] if unroll_kw else [w]

    return _schedule_tiled(sch, outputs, CONV_TAG, order, cfg)


@register_schedule("depthwise_conv2d_nchwc")
def schedule_depthwise_conv2d_nchwc(sch: Schedule, outputs, anchor, cfg) -> Schedule:
    """Depthwise: the window loops outside the register tile, ``kw`` unrolled too."""
    if _tagged(sch, DEPTHWISE_PLAIN_TAG) is not None:
        return _schedule_depthwise_plain(sch, outputs, cfg)

    def order(loops):
        n, c, h, w, ci, kh, kw = loops
        sch.reorder(n, c, h, kh, kw, w, ci)
        return [kw, w]

    return _schedule_tiled(sch, outputs, DEPTHWISE_TAG, order, cfg)


@register_schedule("pool_nchwc")
def schedule_pool_nchwc(sch: Schedule, outputs, anchor, cfg) -> Schedule:
    """Pools: the window loops outside the (unrolled, vectorized) tile."""

    def order(loops):
        n, c, h, w, ci, *window = loops
        sch.reorder(n, c, h, *window, w, ci)
        return [w]

    return _schedule_tiled(sch, outputs, POOL_TAG, order, cfg)


def _tagged(sch: Schedule, tag: str):
    found = [st for st in sch.stage_order() if st.op.tag == tag]
    return found[0] if len(found) == 1 else None


def _inline_epilogue(sch: Schedule, main) -> None:
    """Inline every elementwise stage but the outputs and the padded input."""
    for stage in sch.stage_order():
        if stage is not main and not stage.is_output and not stage.op.reduce_axes \
                and stage.op.tag != PAD_TAG:
            sch.compute_inline(stage.name)


def _schedule_pad(sch: Schedule, cfg) -> None:
    """The padded input at root: rows in parallel, vectorized along the unit-stride axis
    (the channel block, or the row when the source is plain NCHW)."""
    pad = _tagged(sch, PAD_TAG)
    if pad is None:
        return
    loops = sch.get_loops(pad.name)
    if len(loops) == 4:  # NCHW
        n, c, h, w = loops
        sch.parallel(sch.fuse(n, c, h))
        sch.vectorize(_row_vector(sch, w))
        return
    n, c, h, w, ci = loops
    sch.parallel(sch.fuse(n, c, h))
    if len(pad.op.inputs[0].shape) == 4:  # blocking a plain input: read rows
        wo, wi = sch.split(w, factor=cfg.target.hardware.lanes("float32"))
        sch.reorder(wo, ci, wi)
        sch.unroll(ci)
        sch.vectorize(wi)
    else:
        sch.vectorize(ci)


def _row_vector(sch: Schedule, w):
    """The loop to vectorize along a row: the whole row up to 64 lanes, else equal tiles."""
    if w.extent <= 64:
        return w
    return sch.split(w, nparts=-(-w.extent // 64))[1]


def _schedule_tiled(sch: Schedule, outputs, tag: str, order, cfg) -> Schedule:
    """Tile the output, compute the tagged reduction in each tile; ``order(loops)``
    reorders the reduction's loops (spatial n, c, h, w, ci then its reduction loops) and
    returns the loops to unroll."""
    main = _tagged(sch, tag)
    if main is None or len(main.op.shape) != 5:
        return schedule_generic(sch, outputs, None, cfg)
    _inline_epilogue(sch, main)
    pad = _tagged(sch, PAD_TAG)
    if pad is not None and cfg.knob("read_borders_in_place", (False, True), default=False):
        sch.compute_inline(pad.name)  # no padded copy: each read tests its bounds
    else:
        _schedule_pad(sch, cfg)
    width = main.op.shape[3]
    reg_n = cfg.knob("tile_columns", range(1, min(width, MAX_TILE) + 1),
                     default=register_tile(width, main.op.shape[4], cfg.target.hardware))
    rows_outside = cfg.knob("rows_outside_channels", (False, True), default=False)
    out_names = [sch.tensor_name(t) for t in outputs]
    if len(out_names) == 1 and out_names[0] != main.name:
        tile_loop = _tile_output(sch, out_names[0], reg_n, main.op.shape[4], rows_outside)
        inner = main.name
    else:  # the reduction is an output, or several outputs read it: accumulate in a copy
        inner = sch.tensor_name(sch.cache_write(main.name, "local"))
        tile_loop = _tile_output(sch, main.name, reg_n, main.op.shape[4], rows_outside)
        for name in out_names:
            if name != main.name:
                _schedule_root_stage(sch, sch[name], cfg)
    sch.compute_at(inner, tile_loop)
    loops = sch.get_loops(inner)
    for loop in order(loops):
        sch.unroll(loop)
    sch.vectorize(loops[4])
    return sch


def _tile_output(sch: Schedule, name: str, reg_n: int, block: int,
                 rows_outside: bool = False):
    """Split the width of an output into tiles of ``reg_n`` columns; (n, channel block, h)
    fused and parallel (``rows_outside``: (n, h, channel block)), the tile unrolled, the
    channel block vectorized (a plain NCHW output is split into blocks first, and stored
    by scatters); returns the loop over tiles."""
    loops = sch.get_loops(name)
    if len(loops) == 4:
        n, c, h, w = loops
        c, ci = sch.split(c, factor=block)
    else:
        n, c, h, w, ci = loops
    wo, wi = sch.split(w, factor=reg_n)
    outer = (n, h, c) if rows_outside else (n, c, h)
    sch.reorder(*outer, wo, wi, ci)
    sch.parallel(sch.fuse(*outer))
    sch.unroll(wi)
    sch.vectorize(ci)
    return wo


def _schedule_depthwise_plain(sch: Schedule, outputs, cfg) -> Schedule:
    """NCHW depthwise: one output row per iteration of the parallel (n, c, h) loop, the
    row accumulated in vector registers over the unrolled window."""
    main = _tagged(sch, DEPTHWISE_PLAIN_TAG)
    _inline_epilogue(sch, main)
    _schedule_pad(sch, cfg)
    out_names = [sch.tensor_name(t) for t in outputs]
    if len(out_names) == 1 and out_names[0] != main.name:
        target, inner = out_names[0], main.name
    else:
        inner = sch.tensor_name(sch.cache_write(main.name, "local"))
        target = main.name
        for name in out_names:
            if name != main.name:
                _schedule_root_stage(sch, sch[name], cfg)
    n, c, h, w = sch.get_loops(target)
    sch.parallel(sch.fuse(n, c, h))
    row = _row_vector(sch, w)
    sch.vectorize(row)
    sch.compute_at(inner, sch.get_loops(target)[-2] if row is not w else
                   sch.get_loops(target)[0])
    n, c, h, w, kh, kw = sch.get_loops(inner)
    sch.reorder(n, c, h, kh, kw, w)
    sch.unroll(kw)
    sch.vectorize(_row_vector(sch, w))
    return sch
