"""vectorize: run the iterations of a spatial loop as SIMD lanes."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from helpers import add2d, check, matmul, rand

import dlc
from dlc import te
from dlc.build import prepare


def vector_statements(sch) -> str:
    """The loop IR just before LLVM code generation (vector statements use ramp/x<n>)."""
    return str(prepare(dlc.lower(sch)))


@pytest.mark.parametrize("n, factor", [(16, 16), (16, 4), (19, 8), (5, 8), (1, 1), (33, 32)])
def test_vectorize_inner_part_of_a_split(n, factor):
    A, B, C, inputs, ref = add2d(3, n)
    sch = dlc.Schedule([A, B, C])
    _, j = sch.get_loops(C)
    _, ji = sch.split(j, factor=factor)
    sch.vectorize(ji)
    check(sch, inputs, ref)


def test_vectorized_loop_becomes_ramps():
    A, B, C, inputs, ref = add2d(2, 16)
    sch = dlc.Schedule([A, B, C])
    _, j = sch.get_loops(C)
    sch.vectorize(j)
    text = vector_statements(sch)
    assert "for j" not in text
    assert "C[ramp(i * 16, 1, 16)] = A[ramp(i * 16, 1, 16)] + B[ramp(0, 1, 16)]" in text
    check(sch, inputs, ref)


def test_vectorize_an_outer_loop_with_a_reduction_inside():
    A, B, C, inputs, ref = matmul(4, 8, 5)
    sch = dlc.Schedule([A, B, C])
    i, j, k = sch.get_loops(C)
    sch.vectorize(j)  # for j (vector): C = 0; for k: C += ...
    check(sch, inputs, ref, rtol=1e-4)


def test_vectorize_spatial_loop_inside_the_reduction():
    A, B, C, inputs, ref = matmul(5, 13, 6)
    sch = dlc.Schedule([A, B, C])
    i, j, k = sch.get_loops(C)
    jo, ji = sch.split(j, factor=8)
    sch.reorder(i, jo, k, ji)
    sch.vectorize(ji)
    check(sch, inputs, ref, rtol=1e-4)


def test_vectorize_with_strided_and_transposed_reads():
    A = te.placeholder((9, 16), name="A")
    B = te.compute((16, 4), lambda i, j: A[2 * j, i] * A[j, 15 - i], name="B")
    sch = dlc.Schedule([A, B])
    i, j = sch.get_loops(B)
    sch.reorder(j, i)
    sch.vectorize(i)
    a = rand((9, 16), seed=1)
    check(sch, [a], (a[0:8:2, :] * a[0:4, ::-1]).T)


def test_vectorize_with_masks_from_if_then_else():
    A = te.placeholder((10,), name="A")
    P = te.compute((12,), lambda i: te.if_then_else(te.all(i >= 1, i <= 10), A[i - 1], 0.5),
                   name="P")
    sch = dlc.Schedule([A, P])
    (i,) = sch.get_loops(P)
    sch.vectorize(i)
    a = rand((10,), seed=2)
    check(sch, [a], np.pad(a, 1, constant_values=0.5))


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "int64", "float64",
                                   "float16"])
def test_vectorize_other_dtypes(dtype):
    A = te.placeholder((21,), dtype, name="A")
    B = te.compute((21,), lambda i: te.maximum(A[i], A[20 - i]) * 2 + A[i], name="B")
    sch = dlc.Schedule([A, B])
    (i,) = sch.get_loops(B)
    _, ii = sch.split(i, factor=8)
    sch.vectorize(ii)
    a = rand((21,), dtype, seed=3, low=0, high=40)
    with np.errstate(over="ignore"):
        ref = (np.maximum(a, a[::-1]) * 2 + a).astype(dtype)
    check(sch, [a], ref, rtol=1e-3)


def test_vectorize_casts_and_intrinsics():
    A = te.placeholder((12,), name="A")
    B = te.compute((12,), lambda i: te.cast(te.exp(A[i]) * 10.0, "int32"), name="B")
    C = te.compute((12,), lambda i: te.sqrt(te.cast(B[i], "float32")) + te.cast(A[i] > 0,
                                                                                 "float32"),
                   name="C")
    sch = dlc.Schedule([A, B, C])
    sch.vectorize(sch.get_loops(B)[0])
    sch.vectorize(sch.get_loops(C)[0])
    a = rand((12,), seed=4)
    b = (np.exp(a) * 10).astype("int32")
    check(sch, [a], [b, np.sqrt(b.astype("float32")) + (a > 0)], rtol=1e-5)


def test_vectorize_a_fused_loop():
    A, B, C, inputs, ref = add2d(3, 5)
    sch = dlc.Schedule([A, B, C])
    f = sch.fuse(*sch.get_loops(C))
    sch.vectorize(f)
    check(sch, inputs, ref)


def test_vectorize_loop_of_extent_one_is_a_plain_statement():
    A, B, C, inputs, ref = add2d(3, 1)
    sch = dlc.Schedule([A, B, C])
    sch.vectorize(sch.get_loops(C)[1])
    assert "ramp" not in vector_statements(sch)
    check(sch, inputs, ref)


def test_vectorize_the_maximum_width():
    A = te.placeholder((512,), name="A")
    B = te.compute((512,), lambda i: A[i] + 1.0, name="B")
    sch = dlc.Schedule([A, B])
    sch.vectorize(sch.get_loops(B)[0])
    a = rand((512,), seed=5)
    check(sch, [a], a + 1, interp=False)


def test_vectorize_twice_is_a_no_op_and_kind_is_visible():
    A, B, C, _, _ = add2d(2, 4)
    sch = dlc.Schedule([A, B, C])
    _, j = sch.get_loops(C)
    sch.vectorize(j)
    sch.vectorize(j)
    assert j.kind is dlc.ForKind.VECTORIZED


# -- lanes of a stage computed at a consumer's loop ------------------------------------------
def tutorial_gemm(m, n, k, vectorize_first=False):
    """The blocked GEMM of TVM's "How to optimize GEMM on CPU": C accumulated in a local
    32 x 32 tile computed at C's tile loop, its column loop vectorized. That loop of C.local
    is n long until bound inference shrinks it to the tile; with ``vectorize_first`` the
    annotations come before compute_at. Returns (schedule, tensors, inputs, reference)."""
    A, B, C, inputs, ref = matmul(m, n, k)
    sch = dlc.Schedule([A, B, C])
    CC = sch.cache_write(C, "local")
    ci, cj, ck = sch.get_loops(CC)
    ko, ki = sch.split(ck, factor=4)
    sch.reorder(ko, ci, ki, cj)
    if vectorize_first:
        sch.vectorize(cj)
        sch.unroll(ki)
    i, j = sch.get_loops(C)
    io, jo, ii, ji = sch.tile(i, j, 32, 32)
    sch.compute_at(CC, jo)
    if not vectorize_first:
        sch.vectorize(cj)
        sch.unroll(ki)
    return sch, [A, B, C], inputs, ref


def test_vectorize_a_cache_write_stage_of_a_1024_gemm_in_tutorial_order():
    """C.local's column loop is nominally 1024 lanes, but 32 once computed at C.j.outer."""
    sch, *_ = tutorial_gemm(1024, 1024, 1024)
    assert sch.get_loops("C.local")[-1].extent == 1024
    assert str(dlc.lower(sch)) == textwrap.dedent("""
        func main(A: float32[1024, 1024], B: float32[1024, 1024], C: float32[1024, 1024]):
          for i.outer in range(32):
            for j.outer in range(32):
              alloc C.local: float32[32, 32]  # local
              for i in range(32):
                for j in vectorized(32):
                  C.local[i, j] = 0.0
              for k.outer in range(256):
                for i in range(32):
                  for k.inner in unrolled(4):
                    for j in vectorized(32):
                      C.local[i, j] = C.local[i, j] + A[i.outer * 32 + i, k.outer * 4 + k.inner] * B[k.outer * 4 + k.inner, j.outer * 32 + j]
              for i.inner in range(32):
                for j.inner in range(32):
                  C[i.outer * 32 + i.inner, j.outer * 32 + j.inner] = C.local[i.inner, j.inner]
        """).strip("\n")  # noqa: E501


@pytest.mark.parametrize("m, n, k", [(256, 256, 256), (100, 70, 37), (20, 1030, 9), (33, 45, 7)])
def test_tutorial_gemm_builds_and_matches_numpy(m, n, k):
    sch, _, inputs, ref = tutorial_gemm(m, n, k)
    check(sch, inputs, ref, rtol=1e-4, atol=1e-4, interp=m * n * k <= 20_000)


def test_vectorize_and_unroll_before_compute_at_give_the_same_loop_nest():
    after, _, inputs, ref = tutorial_gemm(20, 1030, 9)
    before, tensors, _, _ = tutorial_gemm(20, 1030, 9, vectorize_first=True)
    assert str(dlc.lower(before)) == str(dlc.lower(after))
    check(before, inputs, ref, rtol=1e-4, interp=False)
    replayed = dlc.Schedule.from_trace(tensors, before.trace.to_json())
    assert str(dlc.lower(replayed)) == str(dlc.lower(before))
