"""compute_root: compute a stage entirely at the top level (the default placement)."""

from __future__ import annotations

from helpers import check, rand

import dlc
from dlc import te


def chain():
    A = te.placeholder((5, 6), name="A")
    B = te.compute((5, 6), lambda i, j: A[i, j] * 2.0, name="B")
    C = te.compute((5, 6), lambda i, j: B[i, j] + B[4 - i, j], name="C")
    a = rand((5, 6), seed=1)
    return A, B, C, [a], a * 2 + a[::-1] * 2


def test_compute_root_is_the_default():
    A, B, C, inputs, ref = chain()
    sch = dlc.Schedule([A, C])
    before = str(dlc.lower(sch))
    sch.compute_root(B)
    assert str(dlc.lower(sch)) == before
    assert "alloc B: float32[5, 6]  # global" in before
    check(sch, inputs, ref)


def test_compute_root_undoes_compute_at():
    A, B, C, inputs, ref = chain()
    sch = dlc.Schedule([A, C])
    root = str(dlc.lower(sch))
    i, j = sch.get_loops(C)
    sch.compute_at(B, j)
    assert str(dlc.lower(sch)) != root
    sch.compute_root(B)
    assert str(dlc.lower(sch)) == root
    assert [r["primitive"] for r in sch.trace] == ["compute_at", "compute_root"]
    check(sch, inputs, ref)


def test_compute_root_lets_a_stage_be_inlined_after_its_producers_move():
    A, B, C, inputs, ref = chain()
    D = te.compute((5, 6), lambda i, j: C[i, j] - 1.0, name="D")
    sch = dlc.Schedule([A, D])
    sch.compute_at(B, sch.get_loops(C)[0])
    sch.compute_root(B)
    sch.compute_inline(C)  # nothing is attached to C any more
    check(sch, inputs, ref - 1)
