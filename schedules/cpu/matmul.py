"""Matrix products whose operands are known only at run time (``MatMul`` of float32
matrices or stacks of matrices, see ``dlc.ops.matmul.packed_matmul``) on the CPU: blocks for
the caches, a register-blocked micro-kernel, B packed into column panels inside the kernel
when that pays, the epilogue fused; chosen by shape with no search.

The sum (tag ``matmul``) reads B through a packing stage (tag ``matmul_pack_b``,
``Bp[..., j // nr, k, j % nr] = B[..., k, j]``, zero past column N). The output is cut into
blocks of ``mb`` rows and ``nc`` columns; the blocks of all the matrices of the batch form
one parallel loop (cut until there are at least two, and an even number when there are
few, so that both threads get equal shares; tiny products stay on one thread). For each
block, into a scratch block of ``mb x nc`` accumulators (or straight into the output when
there is no epilogue):

* the reduction runs in slices of ``kc``; blocks of at least PACK_ROWS rows pack the slice of
  B (``kc x nc``) at the start of each slice (``compute_at`` the loop over slices), so that
  the micro-kernel reads it contiguously; smaller blocks read B in place (``compute_inline``
  of the packing: for them the copy costs more than it saves), in slices of about twice
  their rows, so that each row of the slice of B is read whole while in cache;
* the rows run in blocks of ``mc`` (the ``mc x kc`` values of A they read stay in L2), then
  panels of ``nr`` columns, then tiles of ``mr`` rows;
* the micro-kernel updates an ``mr x nr`` tile for every k of the slice: ``mr`` rows
  unrolled, the ``nr`` columns vectorized; LLVM keeps the tile in ``mr * nr / 16`` zmm
  registers (``vfmadd231ps`` with the value of A broadcast) and writes it back once per slice;
* the epilogue (a scale, a mask, a bias, an activation, ... inlined into the kernel's
  output) reads the finished block once and writes the output.

The loop nest of ``Y[1024, 1024] = (A @ B) / s + m`` (nr = 64, mr = 6, nc = 512, mc = 114,
kc = 512; the edges of the row blocks left out)::

    for j.outer in parallel(2):                       # blocks of 512 columns
      acc[1024, 512] = 0
      for k.outer in range(2):                        # reduction slices
        Bp[8, 512, 64] = B[slice, block]              # the slice of B, packed
        for i.outer in range(8):                      # blocks of 114 rows of A
          for j.inner.outer in range(8):              # panels of 64 columns
            for i.inner.outer in range(19):           # tiles of 6 rows
              for k.inner in range(512):              # the micro-kernel
                for i.inner.inner in unrolled(6):
                  for j.inner.inner in vectorized(64):
                    acc[i, j] += A[i, 512 * k.outer + k.inner] * Bp[j.inner.outer, k.inner,
                                                                   j.inner.inner]
      for i in range(1024):                           # the epilogue
        for j.inner.outer in range(32):
          for j.inner.inner in vectorized(16):
            Y[i, 512 * j.outer + j] = acc[i, j] / s + m[512 * j.outer + j]

BERT's attention products (``[1, 12, 128, 64] @ [1, 12, 64, 128]`` with the scale and the
mask as epilogue, then ``[1, 12, 128, 128] @ [1, 12, 128, 64]``) make one block per head:
the parallel loop runs over the 12 heads, and B is read in place (128 rows).

Rows that ``mr`` does not divide make a smaller unrolled edge tile (the loops are
partitioned, no guard in the main loop); the panels cover whole vectors (zero-padded), so
only the epilogue's last columns are narrower.
"""

from __future__ import annotations

from dlc.autotune.space import options
from dlc.ops.matmul import MATMUL_TAG, PACK_B_TAG
from dlc.schedules import register_schedule
from dlc.schedules.cpu.dense import K_SLICE_CHOICES, TILE_ROW_CHOICES, tile_rows
from dlc.schedules.generic import _schedule_root_stage, schedule_generic
from dlc.tir.schedule import Schedule

#: The reduction slice: the packed ``kc x nc`` block of B. Where B is read in place, the
#: slices are shorter for fewer rows (``2 * mb``, at least MIN_SLICE): the rows of a slice
#: of B are then read whole, panel after panel, instead of one panel down all of K (a new
#: page every row).
K_SLICE = 512
MIN_SLICE = 8
#: Bytes of A that a block of rows of the micro-kernel loops reads per slice (``mc x kc``
#: values, kept in L2).
A_BLOCK_BYTES = 256 * 1024
#: Columns per block of the output (a multiple of nr).
COL_BLOCK = 512
#: Most rows per block of the output (``mb x nc`` accumulators of scratch per thread).
ROW_BLOCK = 1024
#: The parallel loop gets at least MIN_BLOCKS iterations, and an even number of them below
#: BALANCED_BLOCKS (so that two threads get equal shares): blocks are cut further while
#: they keep a panel of columns and a tile of rows.
MIN_BLOCKS = 2
BALANCED_BLOCKS = 16
#: Products of fewer multiply-adds run on one thread (starting threads costs more).
PARALLEL_MIN_WORK = 1 << 18
#: Blocks of at least this many rows read B through the packed panels; smaller ones read
#: it in place (measured on Zen 4: for them the copy costs more than it saves).
PACK_ROWS = 192


def plan(batch: int, M: int, N: int, K: int, nr: int, hw) -> dict:
    """Block sizes for ``batch`` products of ``M x K`` by ``K x N`` with panels of ``nr``
    columns: output blocks of ``mb`` rows and ``nc`` columns, blocks of ``mc`` rows of A,
    reduction slices of ``kc``, register tiles of ``mr`` rows, whether B is packed
    (``pack``) and whether the blocks run in parallel (``parallel``)."""
    panels = -(-N // nr)
    tiles = -(-M // tile_rows(nr, M, hw))
    col_blocks = -(-panels // max(1, COL_BLOCK // nr))
    row_blocks = -(-M // ROW_BLOCK)

    def count() -> int:
        return batch * col_blocks * row_blocks

    parallel = batch * M * N * K >= PARALLEL_MIN_WORK
    while parallel and (count() < MIN_BLOCKS or (count() < BALANCED_BLOCKS and count() % 2)):
        more_cols, more_rows = col_blocks < panels, row_blocks < tiles
        if more_cols and (not more_rows or panels * row_blocks >= tiles * col_blocks):
            col_blocks += 1
        elif more_rows:
            row_blocks += 1
        else:
            break
    nc = -(-panels // col_blocks) * nr
    mb = -(-M // row_blocks)
    mr = tile_rows(nr, mb, hw)
    if row_blocks > 1:  # whole tiles per block (the last block is smaller)
        mb = -(-mb // mr) * mr
    pack = mb >= PACK_ROWS
    kc = _even(K, K_SLICE if pack else min(K_SLICE, max(MIN_SLICE, 2 * mb)), 1)
    mc = min(mb, _even(mb, max(mr, A_BLOCK_BYTES // (4 * kc) // mr * mr), mr))
    return {"mb": mb, "nc": nc, "mc": mc, "kc": kc, "mr": mr, "pack": pack,
            "parallel": parallel}


def _even(extent: int, block: int, multiple: int) -> int:
    """The block size, at most about ``block`` (rounded up to ``multiple``), that cuts
    ``extent`` into equal parts."""
    parts = -(-extent // block)
    size = -(-extent // parts)
    return -(-size // multiple) * multiple


@register_schedule("matmul")
def schedule_matmul(sch: Schedule, outputs, anchor, cfg) -> Schedule:
    """The packed, blocked MatMul schedule (see the module docstring); other computes (a
    product of 1-D operands, other dtypes) get the generic schedule. Knobs: the tile rows
    ``mr``, the slice ``kc``, the rows of A per block ``mc``, the columns per block ``nc``
    and whether B is packed; their defaults are ``plan``'s."""
    main = _tagged(sch, MATMUL_TAG)
    pack = _tagged(sch, PACK_B_TAG)
    if main is None or pack is None or len(main.op.reduce_axes) != 1:
        return schedule_generic(sch, outputs, None, cfg)
    nr = main.op.attrs["nr"]
    _inline_epilogue(sch, main, pack)
    out_names = [sch.tensor_name(t) for t in outputs]
    *lead, i, j, k = sch.get_loops(main.name)
    batch = 1
    for loop in lead:
        batch *= loop.extent
    p = _tunable(plan(batch, i.extent, j.extent, k.extent, nr, cfg.target.hardware), cfg,
                 i.extent, j.extent, k.extent, nr)
    if len(out_names) == 1 and out_names[0] != main.name:
        # accumulate a block in scratch, then run the epilogue on it
        block, _, _ = _tile_output(sch, out_names[0], p, epilogue=True)
        sch.compute_at(main.name, block)
        *lead, i, j, k = sch.get_loops(main.name)
        kloop = _micro_kernel(sch, main.name, lead, i, j, k, p, nr)
    else:  # the sum is an output, or several outputs read it: accumulate in place
        for name in out_names:
            if name != main.name:
                _schedule_root_stage(sch, sch[name], cfg)
        block, i, j = _tile_output(sch, main.name, p, epilogue=False)
        k = sch.get_loops(main.name)[-1]
        kloop = _micro_kernel(sch, main.name, [], i, j, k, p, nr)
    if p["pack"]:
        sch.compute_at(pack.name, kloop)
        *_, inner = sch.get_loops(pack.name)
        sch.vectorize(inner)
    else:
        sch.compute_inline(pack.name)
    return sch


def _tunable(p: dict, cfg, M: int, N: int, K: int, nr: int) -> dict:
    """``plan``'s block sizes as the defaults of the template's knobs."""
    p = dict(p, lanes=cfg.target.hardware.lanes("float32"))
    mr = p["mr"]  # the choices of every knob follow from the defaults, never another knob
    p["mr"] = cfg.knob("mr", options(mr, TILE_ROW_CHOICES, p["mb"]), default=mr)
    p["kc"] = cfg.knob("kc", options(p["kc"], K_SLICE_CHOICES, K), default=p["kc"])
    p["mc"] = cfg.knob("mc", options(p["mc"], (mr * m for m in (4, 8, 16, 32, 64)), p["mb"]),
                       default=p["mc"])
    p["nc"] = cfg.knob("nc", options(p["nc"], (nr * c for c in (1, 2, 4, 8, 16)),
                                     -(-N // nr) * nr), default=p["nc"])
    p["pack"] = cfg.knob("pack_b", (False, True), default=p["pack"])
    return p


def _tile_output(sch: Schedule, name: str, p: dict, epilogue: bool):
    """Cut the stage ``name`` into blocks of ``mb x nc``: ``(batch..., column blocks, row
    blocks)`` fused into one parallel loop, then the rows and the columns of the block
    (split into vectors and vectorized for an epilogue); returns the fused loop and the
    loops over the block's rows and columns."""
    *lead, i, j = sch.get_loops(name)[:len(sch[name].op.axes)]
    jc, j = sch.split(j, factor=p["nc"])
    ib, i = sch.split(i, factor=p["mb"])
    sch.reorder(*lead, jc, ib, i, j)
    block = sch.fuse(*lead, jc, ib)
    if p["parallel"] and block.extent > 1:
        sch.parallel(block)
    if epilogue:
        _, ji = sch.split(j, factor=p["lanes"])
        sch.vectorize(ji)
    return block, i, j


def _micro_kernel(sch: Schedule, name: str, lead, i, j, k, p: dict, nr: int):
    """Order the accumulation of a block: reduction slices, blocks of rows, panels, tiles
    of rows, the k of the slice, then the ``mr x nr`` tile unrolled over rows and vectorized
    over columns; returns the loop over slices."""
    ko, ki = sch.split(k, factor=p["kc"])
    ic, i = sch.split(i, factor=p["mc"])
    ir, ii = sch.split(i, factor=p["mr"])
    jr, jj = sch.split(j, factor=nr)
    sch.reorder(*lead, ko, ic, jr, ir, ki, ii, jj)
    sch.unroll(ii)
    sch.vectorize(jj)
    return ko


def _tagged(sch: Schedule, tag: str):
    found = [st for st in sch.stage_order() if st.op.tag == tag]
    return found[0] if len(found) == 1 else None


def _inline_epilogue(sch: Schedule, main, pack) -> None:
    for stage in sch.stage_order():
        if stage is not main and stage is not pack and not stage.is_output \
                and not stage.op.reduce_axes:
            sch.compute_inline(stage.name)
