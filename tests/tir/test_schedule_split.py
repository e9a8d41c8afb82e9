"""split: one loop becomes (outer, inner); non-divisible splits are guarded, then partitioned."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from helpers import add2d, check, loop_lines, matmul, rand

import dlc
from dlc import te


def vector(n):
    A = te.placeholder((n,), name="A")
    B = te.compute((n,), lambda i: A[i] * 3.0 + 1.0, name="B")
    return A, B


@pytest.mark.parametrize("extent, amount", list(itertools.product(
    [1, 7, 12, 13], [1, 3, 4, 12, 16])))
@pytest.mark.parametrize("how", ["factor", "nparts"])
def test_split_1d(extent, amount, how):
    A, B = vector(extent)
    sch = dlc.Schedule([A, B])
    (i,) = sch.get_loops(B)
    outer, inner = sch.split(i, **{how: amount})
    expect_inner = amount if how == "factor" else -(-extent // amount)
    expect_outer = -(-extent // amount) if how == "factor" else amount
    assert (outer.extent, inner.extent) == (expect_outer, expect_inner)
    assert (outer.name, inner.name) == ("i.outer", "i.inner")
    a = rand((extent,), seed=extent)
    check(sch, [a], a * 3 + 1)


@pytest.mark.parametrize("m, n, fi, fj", [(5, 7, 2, 3), (8, 8, 4, 4), (1, 9, 1, 4), (11, 1, 3, 2),
                                          (13, 17, 5, 16)])
def test_split_both_axes_with_broadcasting(m, n, fi, fj):
    A, B, C, inputs, ref = add2d(m, n)
    sch = dlc.Schedule([A, B, C])
    i, j = sch.get_loops(C)
    io, ii = sch.split(i, factor=fi)
    jo, ji = sch.split(j, nparts=fj)
    sch.reorder(io, jo, ii, ji)
    check(sch, inputs, ref)


@pytest.mark.parametrize("k, factor", [(7, 2), (8, 4), (13, 5), (3, 8), (1, 1)])
def test_split_reduction_axis(k, factor):
    A, B, C, inputs, ref = matmul(4, 5, k)
    sch = dlc.Schedule([A, B, C])
    i, j, r = sch.get_loops(C)
    ro, ri = sch.split(r, factor=factor)
    assert sch[C].find(ri.name).is_reduce and sch[C].find(ro.name).is_reduce
    sch.reorder(ro, i, ri, j)
    check(sch, inputs, ref, rtol=1e-4)


def test_split_every_axis_of_a_matmul_non_divisibly():
    A, B, C, inputs, ref = matmul(7, 11, 13)
    sch = dlc.Schedule([A, B, C])
    i, j, r = sch.get_loops(C)
    io, ii = sch.split(i, factor=3)
    jo, ji = sch.split(j, nparts=4)
    ro, ri = sch.split(r, factor=5)
    sch.reorder(io, jo, ro, ii, ri, ji)
    check(sch, inputs, ref, rtol=1e-4)


def test_split_a_reduction_with_several_axes_and_where():
    A = te.placeholder((3, 5, 7), name="A")
    r1, r2 = te.reduce_axis(5, "r1"), te.reduce_axis(7, "r2")
    B = te.compute((3,), lambda i: te.max(A[i, r1, r2], axis=[r1, r2], where=r1 + r2 < 8),
                   name="B")
    sch = dlc.Schedule([A, B])
    i, k1, k2 = sch.get_loops(B)
    o1, i1 = sch.split(k1, factor=2)
    o2, i2 = sch.split(k2, nparts=3)
    sch.reorder(o2, o1, i, i2, i1)
    a = rand((3, 5, 7), seed=9)
    mask = np.add.outer(np.arange(5), np.arange(7)) < 8
    check(sch, [a], np.where(mask, a, -np.inf).max(axis=(1, 2)))


def test_nested_splits_and_names():
    A, B = vector(29)
    sch = dlc.Schedule([A, B])
    (i,) = sch.get_loops(B)
    io, ii = sch.split(i, factor=8)
    ioo, ioi = sch.split(io, nparts=2)
    iio, iii = sch.split(ii, factor=3)
    assert [lp.name for lp in sch.get_loops(B)] == [
        "i.outer.outer", "i.outer.inner", "i.inner.outer", "i.inner.inner"]
    assert [lp.extent for lp in sch.get_loops(B)] == [2, 2, 3, 3]
    a = rand((29,), seed=29)
    check(sch, [a], a * 3 + 1)


def test_split_names_stay_unique_after_fuse():
    A, B, C, _, _ = add2d(6, 8)
    sch = dlc.Schedule([A, B, C])
    i, j = sch.get_loops(C)
    io, ii = sch.split(i, factor=2)
    f = sch.fuse(io, ii)
    fo, fi = sch.split(f, factor=3)
    assert (fo.name, fi.name) == ("i.outer.i.inner.fused.outer", "i.outer.i.inner.fused.inner")


def test_split_loop_that_is_split_off_entirely_by_size_one():
    """A split whose inner part has extent 1 leaves the outer loop alone in the output."""
    A, B = vector(6)
    sch = dlc.Schedule([A, B])
    (i,) = sch.get_loops(B)
    sch.split(i, factor=1)
    assert loop_lines(str(dlc.lower(sch))) == ["for i.outer in range(6):"]
    check(sch, [np.arange(6, dtype="float32")], np.arange(6) * 3 + 1)


def test_non_divisible_split_lowering_has_no_guard_and_covers_every_element():
    A, B = vector(10)
    sch = dlc.Schedule([A, B])
    (i,) = sch.get_loops(B)
    sch.split(i, factor=4)
    text = str(dlc.lower(sch))
    assert "if" not in text
    assert loop_lines(text) == ["for i.outer in range(2):", "for i.inner in range(4):",
                                "for i.inner in range(2):"]


@pytest.mark.parametrize("dtype", ["int8", "int32", "float64", "uint16"])
def test_split_other_dtypes(dtype):
    A = te.placeholder((19,), dtype, name="A")
    B = te.compute((19,), lambda i: A[i] + A[18 - i], name="B")
    sch = dlc.Schedule([A, B])
    (i,) = sch.get_loops(B)
    _, ji = sch.split(i, factor=8)
    sch.vectorize(ji)
    a = rand((19,), dtype, seed=5, low=0, high=50)
    check(sch, [a], a + a[::-1])
