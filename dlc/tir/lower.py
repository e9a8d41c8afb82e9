"""The lowering pipeline: Schedule -> loop IR, as an ordered list of named passes."""

from __future__ import annotations

import time

from dlc import env
from dlc.tir import stmt as s
from dlc.tir.passes.partition_loops import partition_loops
from dlc.tir.passes.simplify import simplify_func
from dlc.tir.schedule.to_loops import schedule_to_loops

#: Passes that turn the loop nest built from a schedule into the loop IR users read.
LOWERING = [simplify_func, partition_loops, simplify_func]


def run_passes(func: s.PrimFunc, passes, stage: str = "lower") -> s.PrimFunc:
    """Run passes in order; with DLC_DUMP_IR=dir, write the IR after each one."""
    dump_dir = env.dump_ir_dir()
    timings = []
    for k, pass_fn in enumerate(passes):
        start = time.perf_counter()
        new = pass_fn(func)
        timings.append((pass_fn.__name__, time.perf_counter() - start))
        if dump_dir:
            text = "(unchanged)\n" if new is func else str(new) + "\n"
            env.write_dump(f"{func.name}.{stage}.{k:02d}.{pass_fn.__name__}.txt", text)
        func = new
    return func


def lower(sch, name: str | None = None) -> s.PrimFunc:
    """Lower a Schedule to loop IR (print it to read the loop nest)."""
    func = schedule_to_loops(sch)
    if name:
        func = s.PrimFunc(name, func.params, func.body, dict(func.attrs))
    return run_passes(func, LOWERING)
