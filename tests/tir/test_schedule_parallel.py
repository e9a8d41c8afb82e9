"""parallel: run the iterations of a spatial loop on the thread pool."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import add2d, check, matmul

import dlc
from dlc import te


@pytest.mark.parametrize("m", [1, 2, 7, 64])
def test_parallel_outer_loop(m):
    A, B, C, inputs, ref = add2d(m, 9)
    sch = dlc.Schedule([A, B, C])
    sch.parallel(sch.get_loops(C)[0])
    check(sch, inputs, ref)


def test_parallel_loop_is_printed_and_kept_by_partitioning():
    A, B, C, inputs, ref = add2d(10, 4)
    sch = dlc.Schedule([A, B, C])
    i, _ = sch.get_loops(C)
    io, ii = sch.split(i, factor=3)
    sch.parallel(io)
    text = str(dlc.lower(sch))
    # all 4 blocks stay in the parallel loop; the partial last one is a branch of its body
    assert "for i.outer in parallel(4):" in text and "if i.outer < 3:" in text
    check(sch, inputs, ref)


def test_parallel_reduction_stage_over_spatial_loop():
    A, B, C, inputs, ref = matmul(19, 20, 7)
    sch = dlc.Schedule([A, B, C])
    i, j, k = sch.get_loops(C)
    io, ii = sch.split(i, factor=8)
    sch.reorder(io, k, ii, j)
    sch.parallel(io)
    sch.vectorize(j)
    check(sch, inputs, ref, rtol=1e-4)


def test_parallel_loop_inside_a_serial_reduction_loop():
    A, B, C, inputs, ref = matmul(16, 8, 5)
    sch = dlc.Schedule([A, B, C])
    i, j, k = sch.get_loops(C)
    sch.reorder(k, i, j)
    sch.parallel(i)
    check(sch, inputs, ref, rtol=1e-4)


def test_parallel_fused_loop():
    A, B, C, inputs, ref = add2d(5, 7)
    sch = dlc.Schedule([A, B, C])
    sch.parallel(sch.fuse(*sch.get_loops(C)))
    check(sch, inputs, ref)


def test_parallel_producer_and_consumer_at_root():
    A, B, C, inputs, ref = matmul(24, 16, 9)
    D = te.compute(C.shape, lambda i, j: C[i, j] * 2.0, name="D")
    sch = dlc.Schedule([A, B, D])
    sch.parallel(sch.get_loops(C)[0])
    sch.parallel(sch.get_loops(D)[0])
    check(sch, inputs, ref * 2, rtol=1e-4)


def test_parallel_result_is_independent_of_the_thread_count():
    A, B, C, inputs, ref = matmul(50, 24, 12)
    sch = dlc.Schedule([A, B, C])
    i, j, k = sch.get_loops(C)
    sch.parallel(i)
    mod = dlc.build(sch)
    for threads in (1, 2, 3, 8):
        mod.set_num_threads(threads)
        out = np.full(C.shape, np.nan, "float32")
        mod(*inputs, out)
        np.testing.assert_allclose(out, ref, rtol=1e-4, err_msg=f"{threads} threads")
