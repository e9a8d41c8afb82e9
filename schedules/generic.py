"""A default schedule that works for any tensor-expression graph of one kernel.

Elementwise intermediate stages with a single reader are inlined; every other stage is
computed at root with its spatial loops fused into one parallel loop when the work is
large enough, and its innermost spatial axis split and vectorized (one vector register of
the target) when it is long enough.
"""

from __future__ import annotations

from dlc.tir.schedule import Schedule

PARALLEL_MIN_ELEMENTS = 1 << 14


def schedule_generic(sch: Schedule, outputs, anchor=None, cfg=None) -> Schedule:
    """Apply the default schedule to every stage of ``sch`` (see module docstring); the
    vector width follows ``cfg.target`` (default: the host CPU)."""
    if cfg is None:
        from dlc.schedules import default_config

        cfg = default_config()
    readers = _readers(sch)
    for stage in sch.stage_order():
        if (not stage.is_output and not stage.op.reduce_axes
                and len(readers.get(stage.name, ())) <= 1):
            sch.compute_inline(stage.name)
    for stage in sch.stage_order():
        if stage.attach.kind == "inline":
            continue
        _schedule_root_stage(sch, stage, cfg)
    return sch


def _readers(sch: Schedule) -> dict:
    readers: dict = {}
    for stage in sch.stages.values():
        for t in stage.op.inputs:
            name = sch._names.get(id(t.op))
            readers.setdefault(name, set()).add(stage.name)
    return readers


def _schedule_root_stage(sch: Schedule, stage, cfg) -> None:
    loops = sch.get_loops(stage.name)
    spatial = [lp for lp in loops if not _is_reduce(stage, lp)]
    if not spatial:
        return
    n_reduce = len(loops) - len(spatial)
    total = 1
    for lp in spatial:
        total *= lp.extent
    lanes = cfg.target.hardware.lanes(stage.op.dtype)
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
