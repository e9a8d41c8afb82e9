"""reorder: permute loops of one stage (spatial and reduction loops alike)."""

from __future__ import annotations

import itertools

import pytest
from helpers import check, loop_lines, matmul, rand

import dlc
from dlc import te


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_every_order_of_a_matmul(order):
    A, B, C, inputs, ref = matmul(4, 5, 3)
    sch = dlc.Schedule([A, B, C])
    loops = sch.get_loops(C)
    sch.reorder(*[loops[k] for k in order])
    assert [lp.name for lp in sch.get_loops(C)] == [["i", "j", "k"][k] for k in order]
    check(sch, inputs, ref, rtol=1e-4)


def test_reorder_a_subset_keeps_the_other_positions():
    A = te.placeholder((2, 3, 4, 5), name="A")
    B = te.compute((2, 3, 4, 5), lambda a, b, c, d: A[a, b, c, d] + 1.0, name="B")
    sch = dlc.Schedule([A, B])
    a, b, c, d = sch.get_loops(B)
    sch.reorder(d, b)  # positions 1 and 3 swap, 0 and 2 stay
    assert [lp.name for lp in sch.get_loops(B)] == ["a", "d", "c", "b"]
    x = rand((2, 3, 4, 5), seed=3)
    check(sch, [x], x + 1)


def test_reduction_loops_outside_spatial_loops_initialize_first():
    A, B, C, inputs, ref = matmul(5, 6, 7)
    sch = dlc.Schedule([A, B, C])
    i, j, k = sch.get_loops(C)
    ko, ki = sch.split(k, factor=3)
    io, ii = sch.split(i, factor=2)
    sch.reorder(ko, io, ki, ii, j)
    text = str(dlc.lower(sch))
    # the initialization runs before the outermost reduction loop, over every spatial loop
    assert text.index("= 0.0") < text.index("for k.outer")
    check(sch, inputs, ref, rtol=1e-4)


def test_reorder_after_split_with_a_list():
    A, B, C, inputs, ref = matmul(9, 4, 5)
    sch = dlc.Schedule([A, B, C])
    i, j, k = sch.get_loops(C)
    io, ii = sch.split(i, nparts=2)
    sch.reorder([ii, k, j, io])
    assert loop_lines(str(dlc.lower(sch)))[0].startswith("for i.inner")
    check(sch, inputs, ref, rtol=1e-4)


def test_reorder_of_nothing_is_a_no_op():
    A, B, C, _, _ = matmul(2, 2, 2)
    sch = dlc.Schedule([A, B, C])
    sch.reorder()
    assert len(sch.trace) == 0
