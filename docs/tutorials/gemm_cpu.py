"""Tutorial: a fast float32 GEMM on the CPU, one schedule primitive at a time.

    python docs/tutorials/gemm_cpu.py [--size 1024] [--threads 2] [--quiet]

We write ``C = A @ B`` once as a tensor expression and then shape its loop nest with
dlc's schedule primitives, from the three naive loops to the schedule of
``dlc.schedules.cpu.gemm`` (about numpy's BLAS speed). Every step prints the loop nest
(``dlc.lower``), checks the result against numpy and prints the speed, so you can see what
each primitive does to the code and what it buys. The test suite runs this file at a small
size (tests/docs/test_tutorials.py); run it at 1024 to see the real speed-ups.

The steps:

1. the naive loop nest;
2. ``tile``: blocks of C that stay in the cache, split loops that do not divide;
3. ``split`` + ``reorder`` the reduction: a register tile of C updated for every k;
4. ``vectorize`` the columns of the tile and ``unroll`` its rows: SIMD FMAs on registers;
5. packing: B copied into contiguous panels (a second ``compute``, placed with
   ``compute_at``), so the inner loop reads memory in order;
6. ``parallel``: blocks of columns on the thread pool;
7. the library schedule ``gemm_schedule`` (A packed too, BLIS's blocking), for comparison.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import dlc
from dlc import te


def matmul(n: int):
    """The tensor expression of ``C[n, n] = A[n, n] @ B[n, n]``: placeholders and C."""
    A = te.placeholder((n, n), "float32", name="A")
    B = te.placeholder((n, n), "float32", name="B")
    k = te.reduce_axis(n, name="k")
    C = te.compute((n, n), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")
    return A, B, C


def show(title: str, sch, n: int, threads: int, quiet: bool) -> float:
    """Print the loop nest of ``sch``, build it, check it against numpy and return its
    GFLOP/s (median of a few runs)."""
    print(f"\n=== {title} ===")
    if not quiet:
        print(dlc.lower(sch))
    mod = dlc.build(sch)
    mod.set_num_threads(threads)
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    c = np.empty((n, n), np.float32)
    mod(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4 * n)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        mod(a, b, c)
        times.append(time.perf_counter() - start)
    gflops = 2 * n**3 / float(np.median(times)) / 1e9
    print(f"--> correct; {gflops:.1f} GFLOP/s")
    return gflops


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=1024, help="n for n x n matrices")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quiet", action="store_true", help="do not print the loop nests")
    args = p.parse_args(argv)
    n, threads, quiet = args.size, args.threads, args.quiet
    results = {}

    # -- 1. The naive loop nest: i, j, k in order. The inner loop walks B down a column
    # (stride n), so every iteration misses the cache once n is large.
    A, B, C = matmul(n)
    sch = dlc.Schedule([A, B, C])
    results["naive"] = show("1. naive", sch, n, threads, quiet) if n <= 256 else None

    # -- 2. tile: 32 x 64 blocks of C. ``tile`` is split + split + reorder; when the
    # factors do not divide n the last block is guarded, and lowering partitions the loops
    # so that the main blocks carry no guard at all.
    A, B, C = matmul(n)
    sch = dlc.Schedule([A, B, C])
    i, j, k = sch.get_loops(C)
    io, jo, ii, ji = sch.tile(i, j, 32, 64)
    results["tile"] = show("2. tile(i, j, 32, 64)", sch, n, threads, quiet)

    # -- 3. split the reduction into slices and move it outside the tile rows: for every k
    # the loops update a 4 x 64 tile of C (4 rows, the register tile), reading one row of B.
    ko, ki = sch.split(k, factor=256)
    iio, iii = sch.split(ii, factor=4)
    sch.reorder(io, jo, ko, iio, ki, iii, ji)
    results["reorder"] = show("3. split k, reorder: register tile inside the reduction",
                              sch, n, threads, quiet)

    # -- 4. vectorize the 64 columns (4 AVX-512 or 8 AVX2 vectors) and unroll the 4 rows:
    # LLVM keeps the 4 x 64 accumulators in registers across the k loop and emits one
    # broadcast of A and one FMA per vector.
    sch.vectorize(ji)
    sch.unroll(iii)
    results["vectorize"] = show("4. vectorize(ji), unroll(iii)", sch, n, threads, quiet)

    # -- 5. pack B into panels Bp[j // 64, k, j % 64]: each panel of 64 columns is
    # contiguous along k, so the micro-kernel reads B in order. Packing is one more
    # compute; ``compute_at`` places it inside the reduction slices, so that each slice
    # packs just the part it reads (256 x 64 floats, which stays in L2).
    A = te.placeholder((n, n), "float32", name="A")
    B = te.placeholder((n, n), "float32", name="B")
    nr = 64
    Bp = te.compute((-(-n // nr), n, nr), lambda jo_, k_, ji_: te.if_then_else(
        jo_ * nr + ji_ < n, B[k_, jo_ * nr + ji_], te.const(0, "float32")), name="Bp")
    k = te.reduce_axis(n, name="k")
    C = te.compute((n, n), lambda i_, j_: te.sum(A[i_, k] * Bp[j_ // nr, k, j_ % nr],
                                                   axis=k), name="C")
    sch = dlc.Schedule([A, B, C])
    i, j, k = sch.get_loops(C)
    io, jo, ii, ji = sch.tile(i, j, 32, nr)
    ko, ki = sch.split(k, factor=256)
    iio, iii = sch.split(ii, factor=4)
    sch.reorder(jo, ko, io, iio, ki, iii, ji)
    sch.vectorize(ji)
    sch.unroll(iii)
    sch.compute_at(Bp, ko)
    sch.vectorize(sch.get_loops(Bp)[-1])
    results["pack"] = show("5. pack B into panels (compute_at the reduction slice)",
                           sch, n, threads, quiet)

    # -- 6. parallel: the blocks of columns are independent (each thread packs its own
    # panels of B), so the outer loop runs on the thread pool (DLC_NUM_THREADS or
    # mod.set_num_threads; one OpenMP region per call).
    sch.parallel(jo)
    results["parallel"] = show(f"6. parallel(jo) with {threads} threads", sch, n, threads,
                               quiet)

    # -- 7. The library schedule: A packed too, the loops blocked like BLIS (a block of A
    # in L2, a slice of B in L3), a 6 x 64 register tile. Read its source for the details.
    from dlc.schedules.cpu.gemm import gemm_schedule

    sch, _ = gemm_schedule(n, n, n)
    results["library"] = show("7. dlc.schedules.cpu.gemm.gemm_schedule", sch, n, threads,
                              quiet)

    a = np.ones((n, n), np.float32)
    start = time.perf_counter()
    for _ in range(3):
        a @ a
    numpy_gflops = 2 * n**3 * 3 / (time.perf_counter() - start) / 1e9
    print(f"\nnumpy.matmul: {numpy_gflops:.1f} GFLOP/s (its BLAS may use all cores)")
    return results


if __name__ == "__main__":
    main()
