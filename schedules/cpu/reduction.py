"""Softmax, normalizations and reductions on the CPU: rows in parallel, each row's stages
computed while the row is in L1, reductions vectorized; chosen by shape with no search.

**Rows.** The leading axes of the output up to the first reduced axis are the *rows*
(Softmax over the last axis of [12, 128, 128]: 1536 rows of 128; LayerNormalization of
[128, 768]: 128 rows of 768; ReduceMean over the last axis: one result per row). They are
fused into one loop, run in parallel when the kernel is large enough, and every stage but
the output is computed inside it (``compute_at``), only for the current rows: the rows are
read from memory once and stay in L1 between the max, exp/sum and normalize passes. Short
rows (up to ROW_BLOCK_MAX_ELEMENTS) are taken two at a time, so that the out-of-order core
has two independent dependency chains to work on in every (latency-bound) reduction.

**Reductions over the innermost axes** (the innermost index of the reduced reads is a
reduced variable) are vectorized by splitting the innermost reduced axis by 32 (two
registers of float32: two independent dependency chains) and ``rfactor``-ing the lanes into
partial results; the partial results are then combined by halving, one vector operation
per level (32 -> 16 -> ... -> 2), rather than a chain of dependent scalar operations.
Softmax over the last axis of [12, 128, 128] (``rows`` are two rows of the input)::

    for pair in parallel(768):
      max.rf[rows, 0:32] = -inf
      for k.outer in range(4):
        max.rf[rows, 0:32] = max(max.rf[rows, 0:32], x[rows, 32 * k.outer + 0:32])
      max.rf_1[rows, 0:16] = max(max.rf[rows, 0:16], max.rf[rows, 16:32]); ...
      max[rows] = max(max.rf_4[rows, 0], max.rf_4[rows, 1])
      exp[rows, 0:128] = exp(x[rows, 0:128] - max[rows])     # 16 lanes at a time
      sum.rf[rows, 0:32] = sum over k.outer of float64(exp[rows, 32 * k.outer + 0:32]); ...
      y[rows, 0:128] = exp[rows, 0:128] / float32(sum[rows])  # 16 lanes at a time

A reduced axis that 32 does not divide keeps its tail correct: the rfactored reduction
masks the lanes past the end (axes shorter than 16 stay scalar).

**Reductions over an outer axis** (Softmax over axis 1 of [N, C, L], ReduceSum over axis
0, ...: the innermost index of the reduced reads is spatial) are vectorized along the
innermost spatial axis instead: the reduced loops run outside a vector loop over the
contiguous columns, which accumulate in place.

**No rows** (a reduction over the leading axis, or over everything, or a single row): the
stages are computed at root, outer-axis reductions in parallel over blocks of columns; a
large full reduction is split into chunks of vector partial results (two rfactors) that
the threads share.

Accumulation dtypes are those of the ops (float64 sums of float32 values); only the order
of the additions changes. Kernels the rules do not fit (several outputs, stages that are
not one block per row, reductions of different kinds or depths) get the generic schedule.
"""

from __future__ import annotations

import math

from dlc import dtypes
from dlc.expr import nodes as n
from dlc.expr.functor import collect_vars, post_order, substitute
from dlc.schedules import register_schedule
from dlc.schedules.generic import (
    PARALLEL_MIN_ELEMENTS,
    _readers,
    _schedule_root_stage,
    schedule_generic,
)
from dlc.tir.schedule import Schedule

#: Registers of partial results of an innermost-axis reduction (independent chains; a
#: knob). Reduced extents shorter than one register of float32 stay scalar.
REDUCE_REGISTERS = 2
#: Elements of the largest input below which nothing runs in parallel.
PARALLEL_MIN_WORK = PARALLEL_MIN_ELEMENTS
#: A full reduction (no rows) of at least this many elements is split between threads.
CHUNKED_MIN_ELEMENTS = 1 << 16
#: Rows whose stages are computed together (independent dependency chains for the
#: out-of-order core: the reductions of a short row are latency-bound), when each row has
#: at most ROW_BLOCK_MAX_ELEMENTS elements and the innermost row axis is a multiple.
ROW_BLOCK = 2
ROW_BLOCK_MAX_ELEMENTS = 2048
#: Chunks of a full reduction (several per thread, taken from a shared counter).
CHUNKS = 8
INNER, OUTER = "inner", "outer"


def vector_lanes(itemsize: int, hw) -> int:
    """Lanes of one vector register of ``hw`` (a CpuInfo) for elements of ``itemsize``
    bytes (at most 32)."""
    return max(1, min(32, hw.vector_bits // 8 // max(1, itemsize)))


@register_schedule("reduction")
def schedule_reduction(sch: Schedule, outputs, anchor, cfg) -> Schedule:
    """The row schedule (see the module docstring), or the generic one where it does not
    apply. Knobs: the registers of partial results, the rows computed together."""
    plan = _plan(sch, outputs, cfg)
    if plan is None:
        return schedule_generic(sch, outputs, None, cfg)
    if plan.rows == 0:
        _schedule_without_rows(sch, plan)
    else:
        _schedule_rows(sch, plan)
    return sch


# -- analysis ---------------------------------------------------------------------------
class _Plan:
    def __init__(self, out, kind: str, rows: int, lanes: int, work: int, cfg):
        self.out = out      # the output stage
        self.kind = kind    # INNER or OUTER
        self.rows = rows    # leading axes of the output that are rows (0: none)
        self.lanes = lanes  # vector lanes of the elementwise loops
        self.work = work    # elements of the largest input
        self.cfg = cfg
        self.min_vector = cfg.target.hardware.lanes("float32")  # shorter stays scalar
        self.registers = cfg.knob("reduce_registers", (1, 2, 4), default=REDUCE_REGISTERS)
        self.row_block = cfg.knob("row_block", (1, 2, 4), default=ROW_BLOCK)


def _plan(sch: Schedule, outputs, cfg):
    """What to do with ``sch``, or None for the generic schedule."""
    names = {sch.tensor_name(t) for t in outputs}
    if len(names) != 1:
        return None
    _inline_elementwise(sch)
    out = sch[names.pop()]
    live = [st for st in sch.stage_order() if st.attach.kind != "inline"]
    reductions = [st for st in live if st.op.reduce_axes]
    if not reductions:
        return None
    found = {_classify(sch, st) for st in reductions}
    if len(found) != 1 or None in found:
        return None
    kind, rows = found.pop()
    shape = tuple(out.op.shape)
    if len(shape) < rows:
        return None
    for st in live:
        if tuple(st.op.shape[:rows]) != shape[:rows]:
            return None  # not one block per row of the output
    if math.prod(shape[:rows]) == 1:
        rows = 0  # a single row: parallelize inside it instead
    itemsizes = [dtypes.itemsize(st.op.dtype) for st in live]
    itemsizes += [dtypes.itemsize(p.dtype) for p in sch.placeholders.values()]
    work = max([math.prod(p.shape) for p in sch.placeholders.values()] + [1])
    lanes = vector_lanes(min(itemsizes), cfg.target.hardware)
    return _Plan(out, kind, rows, lanes, work, cfg)


def _inline_elementwise(sch: Schedule) -> None:
    """Inline the elementwise stages read once (as the generic schedule does); the others
    (Softmax's exponentials, LayerNormalization's mean) are stored, once per row."""
    readers = _readers(sch)
    for stage in sch.stage_order():
        if (not stage.is_output and not stage.op.reduce_axes
                and stage.attach.kind != "inline"
                and len(readers.get(stage.name, ())) <= 1):
            sch.compute_inline(stage.name)


def _stored_reads(sch: Schedule, expr) -> list:
    """The indices of the reads of stored tensors in ``expr``, looking through inlined
    stages."""
    found = []

    def visit(e, mapping):
        reads = []
        post_order(e, lambda x: reads.append(x) if isinstance(x, n.TensorRead) else None)
        for read in reads:
            indices = tuple(substitute(i, mapping) for i in read.indices)
            stage = sch.stages.get(sch._names.get(id(read.tensor.op)))
            if stage is not None and stage.attach.kind == "inline":
                visit(stage.op.body, dict(zip(stage.op.axes, indices)))
            else:
                found.append(indices)

    visit(expr, {})
    return found


def _classify(sch: Schedule, st):
    """``(kind, rows)`` of a reduction stage: INNER when every read of reduced elements
    has a reduced variable in its innermost index, OUTER when it has a spatial one there;
    ``rows``: the position of the first index with a reduced variable in the reads of the
    highest rank (lower-rank reads are broadcast), the indices before it being the stage's
    own leading axes. None when the reads fit neither."""
    body = st.op.body
    parts = [body.source] + ([body.condition] if body.condition is not None else [])
    reduced_vars = {id(a) for a in st.op.reduce_axes}
    axes = list(st.op.axes)
    kinds, depths = set(), {}
    for part in parts:
        for indices in _stored_reads(sch, part):
            used = [{id(v) for v in collect_vars(i)} for i in indices]
            reduced = [bool(u & reduced_vars) for u in used]
            if not any(reduced):
                continue  # one value per row (a mean, say), not reduced here
            if reduced[-1]:
                kinds.add(INNER)
            elif used[-1]:
                kinds.add(OUTER)
            else:
                return None
            first = reduced.index(True)
            aligned = first <= len(axes) and all(indices[d] is axes[d] for d in range(first))
            depths.setdefault(len(indices), set()).add(first if aligned else None)
    if len(kinds) != 1 or not depths:
        return None
    found = depths[max(depths)]
    if len(found) != 1 or None in found:
        return None
    return kinds.pop(), found.pop()


# -- with rows ----------------------------------------------------------------------------
def _schedule_rows(sch: Schedule, plan: _Plan) -> None:
    out, lanes = plan.out, plan.lanes
    attached = []
    if out.op.reduce_axes and plan.kind == INNER:
        attached += _vectorize_inner_reduction(sch, out, plan)
    rows = sch.get_loops(out.name)[:plan.rows]
    count = math.prod(lp.extent for lp in rows)
    block = plan.row_block
    if (block > 1 and not out.op.reduce_axes and rows[-1].extent % block == 0
            and plan.work // count <= ROW_BLOCK_MAX_ELEMENTS
            and count >= 4 * block):
        sch.split(rows[-1], factor=block)  # the stages compute ``block`` rows at a time
        rows = sch.get_loops(out.name)[:plan.rows]
    row = sch.fuse(*rows)
    rest = sch.get_loops(out.name)[1:]
    spatial = [lp for lp in rest if not _is_reduce(sch, lp)]
    if not out.op.reduce_axes:
        _vectorize_columns(sch, spatial, lanes)
    elif plan.kind == OUTER:
        _vectorize_outer_reduction(sch, out, 1, lanes)
    if plan.work >= PARALLEL_MIN_WORK and row.extent >= 2:
        sch.parallel(row)
    for st in sch.stage_order():
        if st is out or st.attach.kind != "root" or st.name in attached:
            continue
        if st.op.reduce_axes and plan.kind == INNER:
            attached += _vectorize_inner_reduction(sch, st, plan)
        elif st.op.reduce_axes:
            _vectorize_outer_reduction(sch, st, plan.rows, lanes)
        else:
            _vectorize_columns(sch, sch.get_loops(st.name)[plan.rows:], lanes)
        attached.append(st.name)
    for st in sch.stage_order():  # producers first
        if st.name in attached:
            sch.compute_at(st.name, row)


def _vectorize_columns(sch: Schedule, loops, lanes: int):
    """Vectorize the innermost of ``loops`` (the columns of a row), split by ``lanes``
    when longer (the remainder is a shorter vector loop after the main one, not a guard);
    returns the loop outside the vector loop, or None."""
    if not loops:
        return None
    inner = loops[-1]
    if inner.extent > lanes:
        outer, inner = sch.split(inner, factor=lanes)
        sch.vectorize(inner)
        return outer
    if inner.extent >= 4:
        sch.vectorize(inner)
    return loops[-2] if len(loops) > 1 else None


def _vectorize_outer_reduction(sch: Schedule, st, rows: int, lanes: int,
                               parallel: bool = False) -> None:
    """The reduced loops outside the spatial loops after the ``rows`` first ones, whose
    innermost is vectorized (the reduction accumulates vectors of columns in place); with
    ``parallel``, the columns outside the vector loop are fused into a parallel loop
    outside the reduced loops."""
    loops = sch.get_loops(st.name)
    spatial = [lp for lp in loops if not _is_reduce(sch, lp)][rows:]
    reduce = [lp for lp in loops if _is_reduce(sch, lp)]
    if not spatial:
        return
    sch.reorder(*reduce, *spatial)
    tail = spatial[-1].extent % lanes != 0
    block = _vectorize_columns(sch, spatial, lanes)
    if not parallel or block is None:
        return
    names = [lp.name for lp in sch.get_loops(st.name)]
    first = names.index(reduce[-1].name) + 1
    last = names.index(block.name) + (0 if tail else 1)  # a guarded block stays inside
    outside = sch.get_loops(st.name)[first:last]
    if outside and math.prod(lp.extent for lp in outside) >= 2:
        block = sch.fuse(*outside)
        sch.reorder(block, *reduce)
        sch.parallel(block)


def _vectorize_inner_reduction(sch: Schedule, st, plan: _Plan, chunks: int = 1) -> list:
    """Split the innermost reduced axis of ``st`` by ``plan.registers * lanes`` (or
    ``lanes``) and
    rfactor the lanes into vector partial results (first split into ``chunks`` parallel
    chunks when ``chunks > 1``); ``st`` then combines them by halving. Returns the new
    stages, producers first (the caller places them); none when the axis is short."""
    lanes = plan.lanes
    last = sch.get_loops(st.name)[-1]
    if last.extent < plan.min_vector or last.extent < lanes:
        return []
    width = plan.registers * lanes if last.extent >= plan.registers * lanes else lanes
    outer, inner = sch.split(last, factor=width)
    chunked = chunks > 1 and outer.extent >= 2 * chunks
    rf = sch.tensor_name(sch.rfactor(st.name, inner, factor_axis=len(st.op.axes)))
    new = [rf]
    if chunked:  # partial results per chunk, in parallel, then per lane
        outer = sch.loop(rf, outer.name)
        chunk, _ = sch.split(outer, nparts=chunks)
        part = sch.tensor_name(sch.rfactor(rf, chunk, factor_axis=0))
        _lanes_innermost(sch, part, first_spatial=True)
        _lanes_innermost(sch, rf)
        new.insert(0, part)
    else:
        _lanes_innermost(sch, rf)
    return new + _combine_by_halving(sch, st)


def _lanes_innermost(sch: Schedule, name: str, first_spatial: bool = False) -> None:
    """Order a partial-results stage (its last spatial loop is the lanes) as: spatial loops,
    the reduced loops (the rfactored one, listed first, last), the lanes (vectorized); with
    ``first_spatial``, its first loop (the chunks) is made parallel."""
    loops = sch.get_loops(name)
    spatial = [lp for lp in loops if not _is_reduce(sch, lp)]
    reduce = [lp for lp in loops if _is_reduce(sch, lp)]
    lane = spatial[-1]
    sch.reorder(*spatial[:-1], *reduce[1:], *reduce[:1], lane)
    sch.vectorize(lane)
    if first_spatial:
        sch.parallel(spatial[0])


def _combine_by_halving(sch: Schedule, st) -> list:
    """``st`` reduces (over its last loop) a power-of-two number of partial results:
    combine them in levels of one vector operation on half the lanes, down to 2."""
    levels = []
    while True:
        k = sch.get_loops(st.name)[-1]
        if k.extent <= 2 or k.extent & (k.extent - 1):
            return levels
        _, half = sch.split(k, nparts=2)
        level = sch.tensor_name(sch.rfactor(st.name, half, factor_axis=len(st.op.axes)))
        sch.vectorize(sch.get_loops(level)[len(st.op.axes)])
        levels.append(level)


# -- without rows -----------------------------------------------------------------------
def _schedule_without_rows(sch: Schedule, plan: _Plan) -> None:
    """Every stage at root: reductions vectorized (a large full reduction split between
    threads), the other stages as in the generic schedule."""
    parallel = plan.work >= PARALLEL_MIN_WORK
    for st in sch.stage_order():
        if st.attach.kind != "root" or not st.op.reduce_axes:
            continue
        if plan.kind == OUTER:
            _vectorize_outer_reduction(sch, st, 0, plan.lanes, parallel)
            continue
        full = all(ext == 1 for ext in st.op.shape)
        total = math.prod(a.extent for a in st.op.reduce_axes)
        chunks = CHUNKS if parallel and full and total >= CHUNKED_MIN_ELEMENTS else 1
        _vectorize_inner_reduction(sch, st, plan, chunks)
    for st in sch.stage_order():
        if st.attach.kind == "root" and not st.op.reduce_axes:
            _schedule_root_stage(sch, st, plan.cfg)


def _is_reduce(sch: Schedule, loop) -> bool:
    lv = sch[loop.stage].find(loop.name)
    return lv is not None and lv.is_reduce
