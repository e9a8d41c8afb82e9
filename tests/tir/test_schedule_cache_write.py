"""cache_write: compute a tensor into a buffer of another scope, then copy it out."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check, matmul, rand

import dlc
from dlc import te


def test_cache_write_of_an_elementwise_stage():
    A = te.placeholder((7, 5), name="A")
    B = te.compute((7, 5), lambda i, j: A[i, j] * 3.0, name="B")
    sch = dlc.Schedule([A, B])
    BL = sch.cache_write(B, "local")
    assert BL.name == "B.local"
    i, _ = sch.get_loops(B)
    sch.compute_at(BL, i)
    text = str(dlc.lower(sch))
    assert "alloc B.local: float32[1, 5]  # local" in text
    assert "B[i, j] = B.local[0, j]" in text
    a = rand((7, 5), seed=1)
    check(sch, [a], a * 3)


@pytest.mark.parametrize("m, n, k", [(16, 16, 16), (13, 17, 11), (1, 1, 1), (5, 32, 7)])
def test_gemm_with_a_local_accumulator(m, n, k):
    """The TVM CPU GEMM recipe: tile C, accumulate a tile in a local buffer computed at the
    tile loop, split and unroll the reduction, vectorize, parallelize the outer loop."""
    A, B, C, inputs, ref = matmul(m, n, k)
    sch = dlc.Schedule([A, B, C])
    CC = sch.cache_write(C, "local")
    i, j = sch.get_loops(C)
    io, jo, ii, ji = sch.tile(i, j, 4, 8)
    sch.compute_at(CC, jo)
    ci, cj, ck = sch.get_loops(CC)
    ko, ki = sch.split(ck, factor=4)
    sch.reorder(ko, ki, ci, cj)
    sch.unroll(ki)
    sch.vectorize(cj)
    sch.vectorize(ji)
    sch.parallel(io)
    check(sch, inputs, ref, rtol=1e-4)


def test_cache_write_of_a_reduction_keeps_its_axes_and_condition():
    A = te.placeholder((4, 6), name="A")
    k = te.reduce_axis(6, "k")
    M = te.compute((4,), lambda i: te.max(A[i, k], axis=k, where=k != i), name="M")
    sch = dlc.Schedule([A, M])
    ML = sch.cache_write(M, "local")
    assert [lp.name for lp in sch.get_loops(ML)] == ["i", "k"]
    assert [lp.name for lp in sch.get_loops(M)] == ["i"]
    a = rand((4, 6), seed=2)
    mask = np.arange(6)[None, :] != np.arange(4)[:, None]
    check(sch, [a], np.where(mask, a, -np.inf).max(1))


def test_cache_write_twice_chains_two_copies():
    A = te.placeholder((3, 4), name="A")
    B = te.compute((3, 4), lambda i, j: A[i, j] + 1.0, name="B")
    sch = dlc.Schedule([A, B])
    first = sch.cache_write(B, "local")
    second = sch.cache_write(first, "local")
    assert (first.name, second.name) == ("B.local", "B.local.local")
    a = rand((3, 4), seed=3)
    check(sch, [a], a + 1)
    again = dlc.Schedule.from_trace([A, B], sch.trace.to_json())
    assert str(dlc.lower(again)) == str(dlc.lower(sch))
