"""fuse: adjacent loops become one loop whose counter is split back by // and %."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import add2d, check, loop_lines, matmul, rand

import dlc
from dlc import te


def cube(a, b, c):
    A = te.placeholder((a, b, c), name="A")
    B = te.compute((a, b, c), lambda i, j, k: A[i, j, k] * 2.0 - A[a - 1 - i, j, 0], name="B")
    x = rand((a, b, c), seed=1)
    return A, B, [x], x * 2 - x[::-1, :, :1]


@pytest.mark.parametrize("shape", [(3, 4, 5), (1, 7, 1), (2, 1, 3)])
@pytest.mark.parametrize("which", [(0, 1), (1, 2), (0, 1, 2)])
def test_fuse_spatial_loops(shape, which):
    A, B, inputs, ref = cube(*shape)
    sch = dlc.Schedule([A, B])
    loops = sch.get_loops(B)
    fused = sch.fuse(*[loops[k] for k in which])
    assert fused.extent == int(np.prod([shape[k] for k in which]))
    check(sch, inputs, ref)


def test_fuse_names_and_lowering():
    A, B, C, inputs, ref = add2d(4, 8)
    sch = dlc.Schedule([A, B, C])
    i, j = sch.get_loops(C)
    f = sch.fuse([i, j])  # a list works too
    assert f.name == "i.j.fused"
    text = str(dlc.lower(sch))
    assert loop_lines(text) == ["for i.j.fused in range(32):"]
    assert "C[i.j.fused // 8, i.j.fused % 8] = A[i.j.fused // 8, i.j.fused % 8] + " \
           "B[i.j.fused % 8]" in text
    check(sch, inputs, ref)


def test_fuse_one_loop_is_that_loop():
    A, B, C, _, _ = add2d(4, 8)
    sch = dlc.Schedule([A, B, C])
    i, _ = sch.get_loops(C)
    assert sch.fuse(i).name == "i" and len(sch.trace) == 0


def test_fuse_reduction_loops():
    A = te.placeholder((3, 4, 5), name="A")
    k1, k2 = te.reduce_axis(4, "k1"), te.reduce_axis(5, "k2")
    B = te.compute((3,), lambda i: te.sum(A[i, k1, k2] * A[i, k1, k2], axis=[k1, k2]), name="B")
    sch = dlc.Schedule([A, B])
    i, r1, r2 = sch.get_loops(B)
    f = sch.fuse(r1, r2)
    fo, fi = sch.split(f, factor=6)  # 20 is not a multiple of 6
    sch.reorder(fo, i, fi)
    x = rand((3, 4, 5), seed=2)
    check(sch, [x], (x * x).sum((1, 2)))


def test_fuse_the_two_halves_of_a_non_divisible_split():
    A, B, C, inputs, ref = add2d(5, 7)
    sch = dlc.Schedule([A, B, C])
    i, j = sch.get_loops(C)
    jo, ji = sch.split(j, factor=3)  # 3 * 3 = 9 > 7
    f = sch.fuse(jo, ji)
    assert f.extent == 9
    check(sch, inputs, ref)


def test_fuse_then_split_vectorize_and_parallel():
    A, B, C, inputs, ref = matmul(6, 10, 5)
    sch = dlc.Schedule([A, B, C])
    i, j, k = sch.get_loops(C)
    f = sch.fuse(i, j)
    fo, fi = sch.split(f, factor=8)
    sch.reorder(fo, k, fi)
    sch.vectorize(fi)
    sch.parallel(fo)
    check(sch, inputs, ref, rtol=1e-4)


def test_fuse_split_loops_of_a_tile():
    A, B, C, inputs, ref = add2d(9, 10)
    sch = dlc.Schedule([A, B, C])
    i, j = sch.get_loops(C)
    io, jo, ii, ji = sch.tile(i, j, 4, 3)
    outer = sch.fuse(io, jo)
    inner = sch.fuse(ii, ji)
    sch.parallel(outer)
    sch.unroll(inner)
    check(sch, inputs, ref)
