"""Lowering details that the fast GEMM schedule (dlc.schedules.cpu.gemm) relies on."""

from __future__ import annotations

from helpers import check, loop_lines, matmul, rand

import dlc
from dlc import te


def _packed_rows(m=64, k=5, mr=8):
    """``C[i, j] = Ap[i // mr, j, i % mr] * 2`` with ``Ap`` a packed copy of A."""
    A = te.placeholder((m, k), name="A")
    Ap = te.compute((m // mr, k, mr), lambda io, kk, ii: A[io * mr + ii, kk], name="Ap")
    C = te.compute((m, k), lambda i, j: Ap[i // mr, j, i % mr] * 2.0, name="C")
    return A, Ap, C


def test_region_read_through_floordiv_of_a_block_is_exact():
    """At a loop over blocks of 16 rows, ``(16 * i.outer + [0, 15]) // 8`` spans exactly 2
    panels: the buffer has 2 panels, not 3, and needs no guard against running off the
    end of Ap."""
    A, Ap, C = _packed_rows()
    sch = dlc.Schedule([A, C])
    i, _ = sch.get_loops(C)
    io, _ = sch.split(i, factor=16)
    sch.compute_at(Ap, io)
    text = str(dlc.lower(sch))
    assert "alloc Ap: float32[2, 5, 8]" in text, text
    assert "if " not in text, text
    a = rand((64, 5), seed=3)
    check(sch, [a], a * 2)


def test_region_read_through_floordiv_of_an_unaligned_block():
    """Blocks of 12 rows straddle panels of 8: the region stays conservative (and right)."""
    A, Ap, C = _packed_rows()
    sch = dlc.Schedule([A, C])
    i, _ = sch.get_loops(C)
    io, _ = sch.split(i, factor=12)
    sch.compute_at(Ap, io)
    assert "alloc Ap: float32[3, 5, 8]" in str(dlc.lower(sch))
    a = rand((64, 5), seed=4)
    check(sch, [a], a * 2)


def test_init_of_a_reduction_keeps_its_parallel_loop():
    """With the reduction loop outside the parallel one, the initialisation of C (emitted
    before the reduction loop) is parallel too."""
    A, B, C, inputs, ref = matmul(16, 8, 5)
    sch = dlc.Schedule([A, B, C])
    i, j, k = sch.get_loops(C)
    sch.reorder(k, i, j)
    sch.parallel(i)
    lines = loop_lines(str(dlc.lower(sch)))
    assert lines.count("for i in parallel(16):") == 2, lines
    check(sch, inputs, ref, rtol=1e-4)

