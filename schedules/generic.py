"""A default schedule that works for any tensor-expression graph of one kernel.

Elementwise intermediate stages with a single reader are inlined; every other stage is
computed at root with its spatial loops fused into one parallel loop when the work is
large enough, and its innermost spatial axis split and vectorized when it is long enough.
"""

from __future__ import annotations

from dlc.tir.schedule import Schedule

VECTOR_LANES = {"float32": 16, "int32": 16, "float64": 8, "int64": 8, "float16": 16,
                "bfloat16": 16, "int8": 32, "uint8": 32, "int16": 32, "bool": 32}
PARALLEL_MIN_ELEMENTS = 1 << 14


def schedule_generic(sch: Schedule, outputs, anchor=None) -> Schedule:
    """Apply the default schedule to every stage of ``sch`` (see module docstring)."""
    readers = _readers(sch)
    for stage in sch.stage_order():
        if (not stage.is_output and not stage.op.reduce_axes
                and len(readers.get(stage.name, ())) <= 1):
            sch.compute_inline(stage.name)
    for stage in sch.stage_order():
        if stage.attach.kind == "inline":
            continue
        _schedule_root_stage(sch, stage)
    return sch


def _readers(sch: Schedule) -> dict:
    readers: dict = {}
    for stage in sch.stages.values():
        for t in stage.op.inputs:
            name = sch._names.get(id(t.op))
            readers.setdefault(name, set()).add(stage.name)
    return readers


def _schedule_root_stage(sch: Schedule, stage) -> None:
    loops = sch.get_loops(stage.name)
    spatial = [lp for lp in loops if not _is_reduce(stage, lp)]
    if not spatial:
        return
    n_reduce = len(loops) - len(spatial)
    total = 1
    for lp in spatial:
        total *= lp.extent
    lanes = VECTOR_LANES.get(stage.op.dtype, 8)
    inner = spatial[-1]
    vector = None
    if n_reduce == 0 and inner.extent >= 4:
        if inner.extent > lanes:
            outer_part, vector = sch.split(inner, factor=lanes)
            spatial = spatial[:-1] + [outer_part]
        else:
            vector, spatial = inner, spatial[:-1]
    if spatial and total >= PARALLEL_MIN_ELEMENTS:
        fused = sch.fuse(*spatial) if len(spatial) > 1 else spatial[0]
        sch.parallel(fused)
    if vector is not None:
        sch.vectorize(vector)


def _is_reduce(stage, loop) -> bool:
    lv = stage.find(loop.name)
    return lv is not None and lv.is_reduce
