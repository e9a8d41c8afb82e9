"""compute_inline: substitute an elementwise producer into its consumers."""

from __future__ import annotations

import numpy as np
from helpers import check, rand

import dlc
from dlc import te


def test_inline_a_chain_into_a_reduction():
    A = te.placeholder((4, 6), name="A")
    X = te.compute((4, 6), lambda i, j: A[i, j] + 1.0, name="X")
    Y = te.compute((4, 6), lambda i, j: X[i, j] * X[i, 5 - j], name="Y")
    k = te.reduce_axis(6, "k")
    S = te.compute((4,), lambda i: te.sum(Y[i, k], axis=k), name="S")
    sch = dlc.Schedule([A, S])
    sch.compute_inline(X)
    sch.compute_inline(Y)
    text = str(dlc.lower(sch))
    assert "alloc" not in text
    assert "S[i] = S[i] + (A[i, k] + 1.0) * (A[i, 0 - k + 5] + 1.0)" in text
    a = rand((4, 6), seed=1)
    x = a + 1
    check(sch, [a], (x * x[:, ::-1]).sum(1))


def test_inline_with_broadcasting_and_shifted_reads():
    A = te.placeholder((5,), name="A")
    B = te.compute((5, 3), lambda i, j: A[i] * 2.0, name="B")
    C = te.compute((4, 3), lambda i, j: B[i + 1, j] - B[i, 2 - j], name="C")
    sch = dlc.Schedule([A, C])
    sch.compute_inline(B)
    a = rand((5,), seed=2)
    b = np.repeat(a[:, None] * 2, 3, 1)
    check(sch, [a], b[1:] - b[:-1, ::-1])


def test_inline_into_several_consumers_and_outputs():
    A = te.placeholder((6,), name="A")
    X = te.compute((6,), lambda i: te.exp(A[i]), name="X")
    Y = te.compute((6,), lambda i: X[i] + 1.0, name="Y")
    Z = te.compute((6,), lambda i: X[5 - i] * 2.0, name="Z")
    sch = dlc.Schedule([A, Y, Z])
    sch.compute_inline(X)
    a = rand((6,), seed=3)
    check(sch, [a], [np.exp(a) + 1, np.exp(a)[::-1] * 2], rtol=1e-6)


def test_inline_a_padding_stage_into_a_scheduled_convolution():
    A = te.placeholder((6, 6), name="A")
    Pad = te.compute((8, 8), lambda i, j: te.if_then_else(
        te.all(i >= 1, i <= 6, j >= 1, j <= 6), A[i - 1, j - 1], 0.0), name="Pad")
    ri, rj = te.reduce_axis(3, "ri"), te.reduce_axis(3, "rj")
    C = te.compute((6, 6), lambda i, j: te.sum(Pad[i + ri, j + rj], axis=[ri, rj]), name="C")
    sch = dlc.Schedule([A, C])
    sch.compute_inline(Pad)
    i, j, _, _ = sch.get_loops(C)
    jo, ji = sch.split(j, factor=4)
    sch.vectorize(ji)
    a = rand((6, 6), seed=4)
    p = np.pad(a, 1)
    check(sch, [a], sum(p[x:x + 6, y:y + 6] for x in range(3) for y in range(3)), rtol=1e-5)


def test_inline_a_cache_read_copy_reads_the_source_again():
    A = te.placeholder((4,), name="A")
    B = te.compute((4,), lambda i: A[i] + 1.0, name="B")
    sch = dlc.Schedule([A, B])
    AA = sch.cache_read(A, "local", [B])
    sch.compute_inline(AA)
    assert "B[i] = A[i] + 1.0" in str(dlc.lower(sch))
    check(sch, [np.arange(4, dtype="float32")], np.arange(4) + 1.0)


def test_inline_then_compute_root_stores_the_stage_again():
    A = te.placeholder((4,), name="A")
    X = te.compute((4,), lambda i: A[i] * 3.0, name="X")
    Y = te.compute((4,), lambda i: X[i] + 1.0, name="Y")
    sch = dlc.Schedule([A, Y])
    sch.compute_inline(X)
    sch.compute_root(X)
    assert "alloc X: float32[4]" in str(dlc.lower(sch))
    check(sch, [np.arange(4, dtype="float32")], np.arange(4) * 3.0 + 1.0)
