"""Loop partitioning (dlc.tir.passes.partition_loops) and golden texts of lowered functions.

A non-divisible split is lowered with ``if likely(...)`` guards; partitioning cuts the loop
so that the main part runs without them and keeps the full vector width."""

from __future__ import annotations

import re
import textwrap

import pytest
from helpers import check, matmul

import dlc
from dlc import te
from dlc.build import prepare
from dlc.tir.schedule.to_loops import schedule_to_loops


def golden(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def main_loop_nest(text: str) -> str:
    """The first top-level loop nest of printed loop IR (up to the next top-level line)."""
    lines = text.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("  for "))
    end = next((k for k in range(start + 1, len(lines)) if lines[k].startswith("  ")
                and not lines[k].startswith("   ")), len(lines))
    return "\n".join(lines[start:end])


def vector_add(n, factor):
    A = te.placeholder((n,), name="A")
    B = te.compute((n,), lambda i: A[i] * 2.0, name="B")
    sch = dlc.Schedule([A, B])
    (i,) = sch.get_loops(B)
    _, ii = sch.split(i, factor=factor)
    sch.vectorize(ii)
    return sch


def test_guards_before_and_after_partitioning():
    sch = vector_add(10, 4)
    assert str(schedule_to_loops(sch)) == golden("""
        func main(A: float32[10], B: float32[10]):
          for i.outer in range(3):
            for i.inner in vectorized(4):
              if likely(i.outer * 4 + i.inner < 10):
                B[i.outer * 4 + i.inner] = A[i.outer * 4 + i.inner] * 2.0
        """)
    assert str(dlc.lower(sch)) == golden("""
        func main(A: float32[10], B: float32[10]):
          for i.outer in range(2):
            for i.inner in vectorized(4):
              B[i.outer * 4 + i.inner] = A[i.outer * 4 + i.inner] * 2.0
          for i.inner in vectorized(2):
            B[i.inner + 8] = A[i.inner + 8] * 2.0
        """)


def test_vectorized_main_loop_keeps_its_full_width():
    A = te.placeholder((7, 18), name="A")
    B = te.compute((7, 18), lambda i, j: A[i, j] + 1.0, name="B")
    sch = dlc.Schedule([A, B])
    i, j = sch.get_loops(B)
    _, ji = sch.split(j, factor=8)
    sch.vectorize(ji)
    sch.parallel(i)
    assert str(prepare(dlc.lower(sch))) == golden("""
        func main(A: float32[126], B: float32[126]):
          for i in parallel(7):
            for j.outer in range(2):
              B[ramp(i * 18 + j.outer * 8, 1, 8)] = A[ramp(i * 18 + j.outer * 8, 1, 8)] + x8(1.0)
            B[ramp(i * 18 + 16, 1, 2)] = A[ramp(i * 18 + 16, 1, 2)] + x2(1.0)
        """)


@pytest.mark.parametrize("m, n, k", [(19, 37, 5), (33, 50, 9), (64, 64, 64)])
def test_tiled_matmul_main_loop_has_no_guard(m, n, k):
    A, B, C, inputs, ref = matmul(m, n, k)
    sch = dlc.Schedule([A, B, C])
    i, j, r = sch.get_loops(C)
    io, ii = sch.split(i, factor=8)
    jo, ji = sch.split(j, factor=16)
    ro, ri = sch.split(r, factor=4)
    sch.reorder(io, jo, ro, ii, ri, ji)
    sch.vectorize(ji)
    sch.parallel(io)
    text = str(dlc.lower(sch))
    assert "likely" not in text
    # the parallel loop is not cut (that would run the edge on one thread): its body
    # branches between the full blocks of rows and the last, partial one
    main = main_loop_nest(text)
    assert main.startswith(f"  for i.outer in parallel({-(-m // 8)}):")
    if m % 8:
        assert f"    if i.outer < {m // 8}:" in main
    assert "for j.inner in vectorized(16):" in main
    widths = {int(w) for w in re.findall(r"ramp\([^()]*(?:\([^()]*\))*[^()]*, 1, (\d+)\)",
                                         str(prepare(dlc.lower(sch))))}
    assert 16 in widths and widths <= {16, n % 16}
    check(sch, inputs, ref, rtol=1e-4, interp=m * n * k < 5000)


def test_split_reduction_is_partitioned_without_guards():
    A = te.placeholder((3, 10), name="A")
    k = te.reduce_axis(10, "k")
    S = te.compute((3,), lambda i: te.sum(A[i, k], axis=k), name="S")
    sch = dlc.Schedule([A, S])
    _, r = sch.get_loops(S)
    sch.split(r, factor=4)
    assert str(dlc.lower(sch)) == golden("""
        func main(A: float32[3, 10], S: float32[3]):
          for i in range(3):
            S[i] = 0.0
            for k.outer in range(2):
              for k.inner in range(4):
                S[i] = S[i] + A[i, k.outer * 4 + k.inner]
            for k.inner in range(2):
              S[i] = S[i] + A[i, k.inner + 8]
        """)


def test_tile_with_two_guards_gives_four_pieces():
    A = te.placeholder((7, 18), name="A")
    B = te.compute((7, 18), lambda i, j: A[i, j] + 1.0, name="B")
    sch = dlc.Schedule([A, B])
    i, j = sch.get_loops(B)
    sch.tile(i, j, 4, 8)
    assert str(dlc.lower(sch)) == golden("""
        func main(A: float32[7, 18], B: float32[7, 18]):
          for j.outer in range(2):
            for i.inner in range(4):
              for j.inner in range(8):
                B[i.inner, j.outer * 8 + j.inner] = A[i.inner, j.outer * 8 + j.inner] + 1.0
          for i.inner in range(4):
            for j.inner in range(2):
              B[i.inner, j.inner + 16] = A[i.inner, j.inner + 16] + 1.0
          for j.outer in range(2):
            for i.inner in range(3):
              for j.inner in range(8):
                B[i.inner + 4, j.outer * 8 + j.inner] = A[i.inner + 4, j.outer * 8 + j.inner] + 1.0
          for i.inner in range(3):
            for j.inner in range(2):
              B[i.inner + 4, j.inner + 16] = A[i.inner + 4, j.inner + 16] + 1.0
        """)


def test_clipped_producer_region_is_partitioned_too():
    A = te.placeholder((10,), name="A")
    B = te.compute((10,), lambda i: A[i] * A[i], name="B")
    C = te.compute((8,), lambda i: B[i] + B[i + 1] + B[i + 2], name="C")
    sch = dlc.Schedule([A, C])
    (i,) = sch.get_loops(C)
    io, _ = sch.split(i, factor=3)
    sch.compute_at(B, io)
    assert str(dlc.lower(sch)) == golden("""
        func main(A: float32[10], C: float32[8]):
          for i.outer in range(2):
            alloc B: float32[5]  # global
            for i in range(5):
              B[i] = A[i.outer * 3 + i] * A[i.outer * 3 + i]
            for i.inner in range(3):
              C[i.outer * 3 + i.inner] = B[i.inner] + B[i.inner + 1] + B[i.inner + 2]
          alloc B: float32[5]  # global
          for i in range(4):
            B[i] = A[i + 6] * A[i + 6]
          for i.inner in range(2):
            C[i.inner + 6] = B[i.inner] + B[i.inner + 1] + B[i.inner + 2]
        """)


def test_default_schedules_golden():
    A = te.placeholder((2, 3), name="A")
    k = te.reduce_axis(3, "k")
    M = te.compute((2,), lambda i: te.max(A[i, k], axis=k, where=k != i), name="M")
    E = te.compute((2, 3), lambda i, j: te.exp(A[i, j] - M[i]), name="E")
    assert str(dlc.lower(dlc.Schedule([A, E]), name="softmax_num")) == golden("""
        func softmax_num(A: float32[2, 3], E: float32[2, 3]):
          alloc M: float32[2]  # global
          for i in range(2):
            M[i] = -inf
            for k in range(3):
              if k - i != 0:
                M[i] = max(M[i], A[i, k])
          for i in range(2):
            for j in range(3):
              E[i, j] = exp(A[i, j] - M[i])
        """)


def test_rfactor_golden():
    A = te.placeholder((7,), name="A")
    k = te.reduce_axis(7, "k")
    S = te.compute((), lambda: te.sum(A[k], axis=k), name="S")
    sch = dlc.Schedule([A, S])
    (r,) = sch.get_loops(S)
    _, ri = sch.split(r, factor=3)
    sch.rfactor(S, ri)
    assert str(dlc.lower(sch)) == golden("""
        func main(A: float32[7], S: float32[]):
          alloc S.rf: float32[3]  # global
          for k.inner in range(3):
            S.rf[k.inner] = 0.0
            for k.outer in range(3):
              if k.outer * 3 + k.inner < 7:
                S.rf[k.inner] = S.rf[k.inner] + A[k.outer * 3 + k.inner]
          S[] = 0.0
          for k.inner in range(3):
            S[] = S[] + S.rf[k.inner]
        """)
