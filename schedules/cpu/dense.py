"""Dense layers (``x @ W`` with ``W`` pre-packed into column panels, ``dlc.ops.dense``) on
the CPU: register-blocked micro-kernel, reduction slices for the caches, epilogue applied
once per output panel, chosen by shape with no search.

The reduction (tag ``dense``) is computed per panel of ``nr`` output columns, inside the
loop over panels of the kernel's output (``compute_at``), into a scratch block of
``rows x nr`` accumulators (``rows`` at most ROW_BLOCK rows of x) that stays in L1/L2:

* the reduction runs in slices of ``kc`` (the slice of the panel, ``kc x nr`` weights, is
  read by every row tile while in cache);
* the micro-kernel updates an ``mr x nr`` tile for every k of a slice: ``mr`` rows
  unrolled, the ``nr`` columns vectorized; LLVM keeps the tile in ``mr * nr / 16`` zmm
  registers (``vfmadd231ps`` with the x value broadcast) and writes it back once per slice;
* the epilogue (bias, activation, residual add, ... inlined into the kernel's output) reads
  the finished block once and writes the output panel;
* the threads share the panels (the loop over panels is the parallel loop).

The loop nest of BERT's FFN layer ``gelu(x[1, 128, 768] @ W[768, 3072] + b)`` (nr = 64,
mr = 6, kc = 256; edges left out)::

    for j.outer in parallel(48):                      # panels of 64 columns
      acc[128, 64] = 0
      for k.outer in range(3):                        # reduction slices
        for i.outer in range(21):                     # row tiles (and a 2-row edge)
          for k.inner in range(256):                  # the micro-kernel
            for i.inner in unrolled(6):
              for j in vectorized(64):
                acc[6 * i.outer + i.inner, j] += x[0, 6 * i.outer + i.inner, 256 * k.outer
                    + k.inner] * w[j.outer, 256 * k.outer + k.inner, j]
      for i in range(128):
        for j.inner in vectorized(64):
          y[0, i, 64 * j.outer + j.inner] = gelu(acc[i, j.inner] + b[64 * j.outer + j.inner])

Rows that ``mr`` does not divide make a smaller unrolled edge tile (the loops are
partitioned, no guard in the main loop); a reduction that ``kc`` does not divide ends with
a shorter slice; the panels are zero-padded to whole panels by the packing, so the
micro-kernel always computes full vectors and only the epilogue's last panel is narrower.
"""

from __future__ import annotations

from dlc.autotune.space import options
from dlc.schedules import register_schedule
from dlc.schedules.generic import _schedule_root_stage, schedule_generic
from dlc.tir.schedule import Schedule

#: The tag of the reduction stage made by dlc.ops.dense.
DENSE_TAG = "dense"
#: Choices the tuner may try for the tile rows, the slice and the row block.
TILE_ROW_CHOICES = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28)
K_SLICE_CHOICES = (64, 128, 192, 256, 384, 512, 768, 1024)
ROW_BLOCK_CHOICES = (32, 64, 128, 256, 512, 1024)
#: The reduction slice: kc x nr weights stay in cache while every row tile reads them.
K_SLICE = 256
#: Rows per block of accumulators (rows x nr floats of scratch per thread).
ROW_BLOCK = 256


def tile_rows(nr: int, rows: int, hw) -> int:
    """``mr`` for a panel width ``nr`` and ``rows`` rows on ``hw`` (a CpuInfo)."""
    return max(1, min(hw.tile_rows(max(1, nr // hw.lanes("float32"))), rows))


def k_slice(k: int, kc: int = K_SLICE) -> int:
    """Equal slices of at most ``kc`` (and a divisor of ``k`` when one is close)."""
    slices = -(-k // kc)
    return -(-k // slices)


@register_schedule("dense")
def schedule_dense(sch: Schedule, outputs, anchor, cfg) -> Schedule:
    """The panel-blocked dense schedule (see the module docstring); knobs: the tile rows
    ``mr``, the reduction slice ``kc`` and the row block."""
    main = _tagged(sch, DENSE_TAG)
    if main is None or len(main.op.reduce_axes) != 1:
        return schedule_generic(sch, outputs, None, cfg)
    _inline_epilogue(sch, main)
    out_names = [sch.tensor_name(t) for t in outputs]
    if len(out_names) == 1 and out_names[0] != main.name:
        target, acc = out_names[0], main.name
    else:  # the sum is an output, or several outputs read it: accumulate in a copy
        acc = sch.tensor_name(sch.cache_write(main.name, "local"))
        target = main.name
        for name in out_names:
            if name != main.name:
                _schedule_root_stage(sch, sch[name], cfg)
    nr = main.op.attrs["nr"]
    rows = sch.get_loops(target)[-2].extent
    row_block = cfg.knob("row_block", options(ROW_BLOCK, ROW_BLOCK_CHOICES, max(rows, 1)),
                         default=ROW_BLOCK)
    panel_loop = _tile_output(sch, target, nr, row_block)
    sch.compute_at(acc, panel_loop)
    _micro_kernel(sch, acc, nr, rows, cfg)
    return sch


def _tile_output(sch: Schedule, name: str, nr: int, row_block: int):
    """Split the output into panels of ``nr`` columns (and blocks of ROW_BLOCK rows):
    ``(lead..., row blocks, panels, rows, columns)`` with the panels parallel (or the row
    blocks, when there is a single panel) and the columns vectorized; returns the loop over
    panels."""
    *lead, i, j = sch.get_loops(name)
    rows = i.extent
    jo, ji = sch.split(j, factor=nr)
    blocks = -(-rows // row_block)
    io, ii = sch.split(i, nparts=blocks)
    sch.reorder(*lead, io, jo, ii, ji)
    if jo.extent > 1:
        sch.parallel(jo)
    elif io.extent > 1:
        sch.parallel(io)
    sch.vectorize(ji)
    return jo


def _micro_kernel(sch: Schedule, acc: str, nr: int, rows: int, cfg) -> None:
    """Order the accumulation (attached at a panel): reduction slices, row tiles, the k of
    the slice, then the ``mr x nr`` tile unrolled over rows and vectorized over columns."""
    *lead, i, j, k = sch.get_loops(acc)
    # the choices follow from the workload's rows, not from the row block (another knob)
    default = tile_rows(nr, rows, cfg.target.hardware)
    mr = cfg.knob("mr", options(default, TILE_ROW_CHOICES, rows), default=default)
    kc = cfg.knob("kc", options(K_SLICE, K_SLICE_CHOICES, k.extent), default=K_SLICE)
    jo, j = sch.split(j, factor=nr)  # one panel: jo runs once where acc is attached
    ko, ki = sch.split(k, factor=k_slice(k.extent, kc))
    io, ii = sch.split(i, factor=mr)
    sch.reorder(jo, ko, *lead, io, ki, ii, j)
    sch.unroll(ii)
    sch.vectorize(j)


def _tagged(sch: Schedule, tag: str):
    found = [st for st in sch.stage_order() if st.op.tag == tag]
    return found[0] if len(found) == 1 else None


def _inline_epilogue(sch: Schedule, main) -> None:
    for stage in sch.stage_order():
        if stage is not main and not stage.is_output and not stage.op.reduce_axes:
            sch.compute_inline(stage.name)
