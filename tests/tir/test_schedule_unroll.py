"""unroll: one copy of the loop body per iteration."""

from __future__ import annotations

import pytest
from helpers import add2d, check, matmul, rand

import dlc
from dlc import te
from dlc.build import prepare


@pytest.mark.parametrize("n, factor", [(8, 4), (10, 4), (3, 8), (7, 1)])
def test_unroll_inner_part_of_a_split(n, factor):
    A, B, C, inputs, ref = add2d(3, n)
    sch = dlc.Schedule([A, B, C])
    _, j = sch.get_loops(C)
    _, ji = sch.split(j, factor=factor)
    sch.unroll(ji)
    check(sch, inputs, ref)


def test_unrolled_loop_is_replaced_by_copies():
    A, B, C, inputs, ref = add2d(2, 3)
    sch = dlc.Schedule([A, B, C])
    _, j = sch.get_loops(C)
    sch.unroll(j)
    assert "for j in unrolled(3):" in str(dlc.lower(sch))
    text = str(prepare(dlc.lower(sch)))
    assert "for j" not in text
    assert "C[i * 3] = A[i * 3] + B[0]" in text
    for k in (1, 2):
        assert f"C[i * 3 + {k}] = A[i * 3 + {k}] + B[{k}]" in text
    check(sch, inputs, ref)


def test_unroll_a_reduction_loop():
    A, B, C, inputs, ref = matmul(3, 4, 10)
    sch = dlc.Schedule([A, B, C])
    i, j, k = sch.get_loops(C)
    ko, ki = sch.split(k, factor=4)
    sch.unroll(ki)
    check(sch, inputs, ref, rtol=1e-4)


def test_unroll_outer_and_vectorize_inner():
    A, B, C, inputs, ref = matmul(6, 16, 5)
    sch = dlc.Schedule([A, B, C])
    i, j, k = sch.get_loops(C)
    io, ii = sch.split(i, factor=4)  # 6 is not a multiple of 4
    sch.reorder(io, k, ii, j)
    sch.unroll(ii)
    sch.vectorize(j)
    check(sch, inputs, ref, rtol=1e-4)


def test_unroll_the_maximum_extent():
    A, B, C, inputs, ref = add2d(1, 512)
    sch = dlc.Schedule([A, B, C])
    sch.unroll(sch.get_loops(C)[1])
    check(sch, inputs, ref, interp=False)


@pytest.mark.parametrize("unroll_first", [False, True])
def test_unroll_a_stage_computed_at_a_block(unroll_first):
    """P's column loop is nominally 1024 iterations, 8 once P is computed at C.j.outer:
    the limit is checked against the 8, whichever order the primitives come in."""
    A = te.placeholder((3, 1024), name="A")
    P = te.compute((3, 1024), lambda i, j: A[i, j] * 2.0, name="P")
    C = te.compute((3, 1024), lambda i, j: P[i, j] + 1.0, name="C")
    sch = dlc.Schedule([A, C])
    _, pj = sch.get_loops(P)
    if unroll_first:
        sch.unroll(pj)
    jo, _ = sch.split(sch.get_loops(C)[1], factor=8)
    sch.compute_at(P, jo)
    if not unroll_first:
        sch.unroll(pj)
    assert "for j in unrolled(8):" in str(dlc.lower(sch))
    a = rand((3, 1024), seed=6)
    check(sch, [a], a * 2 + 1, interp=False)
