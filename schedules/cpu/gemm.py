"""Matrix multiplication on the CPU: ``C[M, N] = A[M, K] @ B[K, N]``.

``gemm_schedule`` is a GotoBLAS/BLIS-style schedule written with dlc's primitives:

* the algorithm packs both operands into panels (``Ap[i // mr, k, i % mr]`` and
  ``Bp[j // nr, k, j % nr]``) so the micro-kernel reads them contiguously;
* the loops follow BLIS: blocks of ``nc`` columns (one per thread), slices of ``kc`` of
  the reduction, blocks of ``mc`` rows, then micro-panels of ``nr`` columns and ``mr`` rows;
  the packed blocks are computed inside those loops (``compute_at``): ``kc x nc`` of B per
  slice, ``mc x kc`` of A (which stays in L2) per block of rows;
* the micro-kernel updates an ``mr x nr`` tile of C for every k of the slice, with ``mr``
  rows unrolled and ``nr`` columns vectorized: LLVM keeps the tile in vector registers
  (``vfmadd231ps`` with broadcast operands of A) and writes it back once per slice;
* the loop over the blocks of columns runs on the thread pool (one parallel region).

The loop nest for ``M = N = K = 2048`` (default parameters; edges left out)::

    for j.outer in parallel(2):                           # columns, nc = 1024
      C[:, block] = 0
      for k.outer in range(4):                            # reduction slices, kc = 512
        Bp[...] = B[slice, block]                         # packed, kc x nc
        for i.outer in range(17):                         # rows, mc = 120
          Ap[...] = A[rows, slice]                        # packed, mc x kc
          for j.inner.outer in range(16):                 # micro-panels of Bp, nr = 64
            for i.inner.outer in range(20):               # micro-panels of Ap, mr = 6
              for k.inner in range(512):                  # the micro-kernel
                for i.inner.inner in unrolled(6):
                  for j.inner.inner in vectorized(64):
                    C[...] = C[...] + Ap[...] * Bp[...]

Shapes that the block sizes do not divide are padded with zeros in the packed panels,
and the loops over the edges of C are partitioned off with guards.
"""

from __future__ import annotations

from dlc import te
from dlc.tir.schedule import Schedule


def gemm_tensors(M: int, N: int, K: int, dtype: str = "float32", mr: int = 6, nr: int = 64,
                 kp: int | None = None):
    """``A``, ``B`` and ``C = A @ B`` computed through the packed panels ``Ap`` and ``Bp``,
    zero-padded to whole panels and to ``kp >= K`` along the reduction (so that slices of
    the reduction need no bound checks); returns (A, B, Ap, Bp, C)."""
    kp = K if kp is None else kp
    A = te.placeholder((M, K), dtype, name="A")
    B = te.placeholder((K, N), dtype, name="B")
    zero = te.const(0, dtype)

    def b_panel(jo, k, ji):
        j = jo * nr + ji
        return _padded(B[k, j], [j < N] if N % nr else [], k, K, kp, zero)

    def a_panel(io, k, ii):
        i = io * mr + ii
        return _padded(A[i, k], [i < M] if M % mr else [], k, K, kp, zero)

    Bp = te.compute((-(-N // nr), kp, nr), b_panel, name="Bp")
    Ap = te.compute((-(-M // mr), kp, mr), a_panel, name="Ap")
    k = te.reduce_axis(kp, name="k")
    C = te.compute((M, N), lambda i, j: te.sum(
        Ap[i // mr, k, i % mr] * Bp[j // nr, k, j % nr], axis=k), name="C")
    return A, B, Ap, Bp, C


def gemm_schedule(M: int, N: int, K: int, dtype: str = "float32", *, mr: int = 6,
                  nr: int = 64, kc: int = 512, mc: int = 120, nc: int = 1024,
                  parallel: bool = True):
    """The fast CPU schedule of ``C = A @ B`` (see the module docstring); returns
    (schedule, [A, B, C]).

    ``mr x nr`` is the register tile: ``mr * nr / lanes`` accumulators plus ``nr / lanes``
    values of B must fit in the vector registers (6 x 64 floats: 24 + 4 of the 32 zmm
    registers of AVX-512). ``kc`` is the reduction slice, ``mc x kc`` the packed block of A
    (kept in L2) and ``kc x nc`` the packed block of B. The defaults were tuned on a Zen 4
    core (1 MiB L2); ``nc`` is lowered so that there are at least two blocks of columns,
    which the threads share.
    """
    slices = -(-K // kc)
    kc = -(-K // slices)  # equal slices; the packed panels are padded to kp = slices * kc
    A, B, Ap, Bp, C = gemm_tensors(M, N, K, dtype, mr, nr, kp=slices * kc)
    mc = _fit(mc, M, mr)
    nc = _fit(min(nc, -(-N // (2 * nr)) * nr), N, nr)  # at least two blocks of columns
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
    if parallel and nc < N:
        sch.parallel(jc)  # one region; every thread packs its own blocks
    elif parallel:  # a single block of columns: share its rows (and the packing of B)
        sch.parallel(ic)
        sch.parallel(bo)
    return sch, [A, B, C]


def naive_schedule(M: int, N: int, K: int, dtype: str = "float32"):
    """``C = A @ B`` with the default schedule (three plain loops); returns
    (schedule, [A, B, C])."""
    A = te.placeholder((M, K), dtype, name="A")
    B = te.placeholder((K, N), dtype, name="B")
    k = te.reduce_axis(K, name="k")
    C = te.compute((M, N), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")
    return Schedule([A, B, C], name="gemm_naive"), [A, B, C]


def _padded(value, inside: list, k, K: int, kp: int, zero):
    """``value`` where the conditions hold (and ``k < K`` if the reduction is padded)."""
    if kp > K:
        inside = inside + [k < K]
    return te.if_then_else(te.all(*inside), value, zero) if inside else value


def _fit(block: int, extent: int, tile: int) -> int:
    """A block size that is a multiple of ``tile`` and no larger than needed for
    ``extent``."""
    block = max(tile, block // tile * tile)
    return min(block, -(-extent // tile) * tile)
