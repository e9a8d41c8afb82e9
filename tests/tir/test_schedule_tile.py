"""tile: split two loops and reorder them to (x.outer, y.outer, x.inner, y.inner)."""

from __future__ import annotations

import pytest
from helpers import add2d, check, matmul

import dlc


@pytest.mark.parametrize("m, n, fx, fy", [(8, 8, 4, 4), (7, 9, 2, 4), (5, 3, 8, 8), (1, 6, 1, 6),
                                          (13, 11, 13, 1)])
def test_tile_elementwise(m, n, fx, fy):
    A, B, C, inputs, ref = add2d(m, n)
    sch = dlc.Schedule([A, B, C])
    i, j = sch.get_loops(C)
    io, jo, ii, ji = sch.tile(i, j, fx, fy)
    assert [lp.name for lp in sch.get_loops(C)] == ["i.outer", "j.outer", "i.inner", "j.inner"]
    assert [io.extent, jo.extent, ii.extent, ji.extent] == [-(-m // fx), -(-n // fy), fx, fy]
    check(sch, inputs, ref)


@pytest.mark.parametrize("m, n, k", [(16, 16, 8), (9, 10, 7)])
def test_tile_matmul_keeps_the_reduction_innermost(m, n, k):
    A, B, C, inputs, ref = matmul(m, n, k)
    sch = dlc.Schedule([A, B, C])
    i, j, r = sch.get_loops(C)
    sch.tile(i, j, 4, 8)
    assert [lp.name for lp in sch.get_loops(C)] == ["i.outer", "j.outer", "i.inner", "j.inner",
                                                    "k"]
    check(sch, inputs, ref, rtol=1e-4)


def test_tile_in_swapped_order():
    A, B, C, inputs, ref = add2d(6, 10)
    sch = dlc.Schedule([A, B, C])
    i, j = sch.get_loops(C)
    sch.tile(j, i, 4, 4)
    assert [lp.name for lp in sch.get_loops(C)] == ["j.outer", "i.outer", "j.inner", "i.inner"]
    check(sch, inputs, ref)


def test_tile_is_one_trace_record_that_replays():
    A, B, C, inputs, ref = add2d(6, 10)
    sch = dlc.Schedule([A, B, C])
    i, j = sch.get_loops(C)
    sch.tile(i, j, 4, 3)
    assert len(sch.trace) == 1 and sch.trace.records[0]["primitive"] == "tile"
    again = dlc.Schedule.from_trace([A, B, C], sch.trace.to_json())
    assert str(dlc.lower(again)) == str(dlc.lower(sch))
