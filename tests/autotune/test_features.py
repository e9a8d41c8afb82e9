"""Loop-IR features of candidates: fixed length, finite, and telling schedules apart."""

import time

import numpy as np
import pytest

from dlc import te
from dlc.autotune import features
from dlc.autotune.features import FEATURE_NAMES, FEATURE_VERSION, N_FEATURES, extract
from dlc.schedules.cpu.gemm import gemm_schedule, naive_schedule
from dlc.tir.lower import lower
from dlc.tir.schedule import Schedule


def feature(vector, name):
    return vector[FEATURE_NAMES.index(name)]


def scaled(n=64, vectorize=False, unroll=False, parallel=False):
    A = te.placeholder((n, n), "float32", name="A")
    B = te.compute((n, n), lambda i, j: te.exp(A[i, j]) * 2.0, name="B")
    sch = Schedule([A, B], name="scaled")
    i, j = sch.get_loops(B)
    jo, ji = sch.split(j, factor=16)
    if vectorize:
        sch.vectorize(ji)
    if unroll:
        sch.unroll(jo)
    if parallel:
        sch.parallel(i)
    return lower(sch)


def transposed(n=64, inner_j=True):
    A = te.placeholder((n, n), "float32", name="A")
    B = te.compute((n, n), lambda i, j: A[j, i] + 1.0, name="B")
    sch = Schedule([A, B], name="t")
    i, j = sch.get_loops(B)
    if not inner_j:
        sch.reorder(j, i)
    return lower(sch)


KERNELS = {
    "naive gemm": lambda: lower(naive_schedule(32, 48, 16)[0]),
    "packed gemm": lambda: lower(gemm_schedule(64, 96, 80, mr=4, nr=16, kc=32, mc=16,
                                               nc=48)[0]),
    "vectorized": lambda: scaled(vectorize=True, parallel=True),
    "edges": lambda: scaled(n=37, vectorize=True, unroll=True),
    "transposed": transposed,
}


def test_names_and_version():
    assert isinstance(FEATURE_VERSION, int)
    assert len(FEATURE_NAMES) == N_FEATURES == len(set(FEATURE_NAMES))


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_fixed_length_and_finite(kernel):
    x = extract(KERNELS[kernel]())
    assert x.shape == (N_FEATURES,) and x.dtype == np.float64
    assert np.isfinite(x).all()
    assert feature(x, "main.log_iterations") > 0


def test_vectorized_and_scalar_schedules_differ():
    scalar, vector = extract(scaled()), extract(scaled(vectorize=True))
    assert feature(scalar, "main.log_extent_vectorized") == 0
    assert feature(vector, "main.log_extent_vectorized") == 4  # 16 lanes
    assert feature(vector, "main.inner_is_vectorized") == 1
    assert feature(scalar, "main.inner_is_serial") == 1
    assert feature(vector, "main.log_vector_bytes") == pytest.approx(np.log2(1 + 64))
    assert feature(vector, "vectorized_share") == 1 and feature(scalar, "vectorized_share") == 0
    # the same work: the loop nests differ, the counts do not
    for name in ("main.log_iterations", "main.log_float_ops", "main.log_math_calls",
                 "log_total_float_ops"):
        assert feature(scalar, name) == feature(vector, name)


def test_parallel_and_unrolled_loops():
    x = extract(scaled(parallel=True, unroll=True))
    assert feature(x, "main.log_parallel_extent") == 6  # 64 rows
    assert feature(x, "main.parallel_position") == 0
    assert feature(x, "main.log_forks") == 0  # the region starts once
    assert feature(x, "main.log_extent_unrolled") == 2  # 64 / 16
    assert feature(extract(scaled()), "main.parallel_position") == 1  # none


def test_access_patterns_follow_the_innermost_loop():
    """B[i, j] = A[j, i]: with j innermost A jumps by a row; with i innermost B does."""
    j_inner, i_inner = extract(transposed()), extract(transposed(inner_j=False))
    for x in (j_inner, i_inner):
        assert feature(x, "main.frac_contiguous") == 0.5
        assert feature(x, "main.frac_strided") == 0.5
    # the naive gemm's B[k, j] moves by a row every k (innermost): a line per iteration
    naive = extract(lower(naive_schedule(128, 128, 128)[0]))
    packed = extract(lower(gemm_schedule(128, 128, 128, mr=4, nr=32, kc=64, mc=32,
                                         nc=64)[0]))
    assert feature(naive, "main.log_bytes_per_iter_l1") > \
        feature(packed, "main.log_bytes_per_iter_l1") + 3
    assert feature(packed, "main.log_register_tile") == 7  # 4 rows x 32 lanes
    assert feature(naive, "main.log_register_tile") == 0
    assert feature(packed, "log_allocations") > 0 and feature(naive, "log_allocations") == 0


def test_working_set_in_lines():
    """A column of a row-major array touches a cache line per element."""
    x = extract(transposed(n=64))
    # A (64x64 floats, all lines) and B: 2 x 16 KiB
    assert feature(x, "main.log_working_set") == pytest.approx(np.log2(1 + 2 * 64 * 64 * 4))
    assert features.CACHE_BYTES[0] >= 2 * 64 * 64 * 4  # fits L1: loaded once
    assert feature(x, "main.log_bytes_per_iter_l1") == pytest.approx(np.log2(1 + 8.0))


def test_fast_enough():
    func = lower(gemm_schedule(512, 512, 512)[0])
    extract(func)
    start = time.perf_counter()
    for _ in range(5):
        extract(func)
    assert (time.perf_counter() - start) / 5 < 0.05  # measured ~5 ms on a loaded machine
