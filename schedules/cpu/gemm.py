"""Matrix multiplication on the CPU: ``C[M, N] = A[M, K] @ B[K, N]``.

``gemm_schedule`` is a GotoBLAS/BLIS-style schedule written with dlc's primitives:

* the algorithm packs both operands into panels (``Ap[i // mr, k, i % mr]`` and
  ``Bp[j // nr, k, j % nr]``) so the micro-kernel reads them contiguously;
* C is tiled into blocks of ``mc x nc`` (cache blocking), the reduction into slices of
  ``kc``; the packed slices of A and B are computed inside the block loops (``compute_at``);
* the micro-kernel updates an ``mr x nr`` tile of C for every k of the slice, with ``mr``
  rows unrolled and ``nr`` columns vectorized: LLVM keeps the tile in vector registers
  (``vfmadd231ps`` with broadcast operands) and writes it back once per slice;
* the loop over the blocks of C runs on the thread pool.

The loop nest (``M = N = K = 1024``, default parameters)::

    for i.outer.j.outer.fused in parallel(16):        # blocks of C, mc x nc
      C[block] = 0
      for k.outer in range(4):                        # slices of the reduction, kc
        Ap[...] = A[block rows, slice]                # packed, mc x kc
        Bp[...] = B[slice, block columns]             # packed, kc x nc
        for j.inner.outer in range(16):               # micro-panels of Bp
          for i.inner.outer in range(32):             # micro-panels of Ap
            for k.inner in range(256):                # the micro-kernel
              for i.inner.inner in unrolled(8):
                for j.inner.inner in vectorized(32):
                  C[...] = C[...] + Ap[...] * Bp[...]

Shapes that the block sizes do not divide are padded with zeros in the packed panels,
and the loops over the edges of C are partitioned off with guards.
"""

from __future__ import annotations

from dlc import te
from dlc.tir.schedule import Schedule


def gemm_tensors(M: int, N: int, K: int, dtype: str = "float32", mr: int = 8, nr: int = 32):
    """``A``, ``B`` and ``C = A @ B`` computed through the packed panels ``Ap`` and ``Bp``;
    returns (A, B, Ap, Bp, C)."""
    A = te.placeholder((M, K), dtype, name="A")
    B = te.placeholder((K, N), dtype, name="B")
    zero = te.const(0, dtype)

    def b_panel(jo, k, ji):
        j = jo * nr + ji
        return B[k, j] if N % nr == 0 else te.if_then_else(j < N, B[k, j], zero)

    def a_panel(io, k, ii):
        i = io * mr + ii
        return A[i, k] if M % mr == 0 else te.if_then_else(i < M, A[i, k], zero)

    Bp = te.compute((-(-N // nr), K, nr), b_panel, name="Bp")
    Ap = te.compute((-(-M // mr), K, mr), a_panel, name="Ap")
    k = te.reduce_axis(K, name="k")
    C = te.compute((M, N), lambda i, j: te.sum(
        Ap[i // mr, k, i % mr] * Bp[j // nr, k, j % nr], axis=k), name="C")
    return A, B, Ap, Bp, C


def gemm_schedule(M: int, N: int, K: int, dtype: str = "float32", *, mr: int = 8,
                  nr: int = 32, kc: int = 256, mc: int = 128, nc: int = 512,
                  parallel: bool = True):
    """The fast CPU schedule of ``C = A @ B`` (see the module docstring); returns
    (schedule, [A, B, C]).

    ``mr x nr`` is the register tile (``mr * nr / lanes`` accumulators must fit in the
    vector registers with room for ``nr / lanes`` values of B), ``kc`` the reduction slice,
    ``mc x nc`` the block of C whose packed operands should stay in the L2 cache.
    """
    A, B, Ap, Bp, C = gemm_tensors(M, N, K, dtype, mr, nr)
    mc, nc, kc = _fit(mc, M, mr), _fit(nc, N, nr), min(kc, K)
    sch = Schedule([A, B, C], name="gemm")
    i, j, k = sch.get_loops(C)
    ic, i = sch.split(i, factor=mc)
    jc, j = sch.split(j, factor=nc)
    ko, ki = sch.split(k, factor=kc)
    ir, ii = sch.split(i, factor=mr)
    jr, ji = sch.split(j, factor=nr)
    sch.reorder(jc, ko, ic, jr, ir, ki, ii, ji)
    sch.unroll(ii)
    sch.vectorize(ji)
    sch.compute_at(Bp, ko)
    sch.compute_at(Ap, ic)
    bo, _, bi = sch.get_loops(Bp)
    sch.vectorize(bi)
    if parallel == "ic":
        sch.parallel(ic)
        sch.parallel(bo)
    elif parallel:
        sch.parallel(jc)
    return sch, [A, B, C]


def naive_schedule(M: int, N: int, K: int, dtype: str = "float32"):
    """``C = A @ B`` with the default schedule (three plain loops); returns
    (schedule, [A, B, C])."""
    A = te.placeholder((M, K), dtype, name="A")
    B = te.placeholder((K, N), dtype, name="B")
    k = te.reduce_axis(K, name="k")
    C = te.compute((M, N), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")
    return Schedule([A, B, C], name="gemm_naive"), [A, B, C]


def _fit(block: int, extent: int, tile: int) -> int:
    """A block size that is a multiple of ``tile`` and no larger than needed for
    ``extent``."""
    block = max(tile, block // tile * tile)
    return min(block, -(-extent // tile) * tile)
