"""compute_at: compute a producer inside a loop of its consumer, only the region that one
iteration needs (clipped at the borders of the producer)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import check, rand

import dlc
from dlc import te


def allocs(sch) -> dict:
    """Shapes of the buffers allocated in the lowered function, by name."""
    text = str(dlc.lower(sch))
    return {m[0]: [int(x) for x in m[1].split(", ")]
            for m in re.findall(r"alloc ([\w.]+): \w+\[([\d, ]+)\]", text)}


def chain(m, n):
    A = te.placeholder((m, n), name="A")
    B = te.compute((m, n), lambda i, j: A[i, j] * 2.0, name="B")
    C = te.compute((m, n), lambda i, j: B[i, j] + 1.0, name="C")
    a = rand((m, n), seed=1)
    return A, B, C, [a], a * 2 + 1


@pytest.mark.parametrize("fi, fj, level", [(None, None, level) for level in range(2)] + [
    (fi, fj, level) for fi, fj in [(2, 4), (3, 5), (1, 7), (8, 16)] for level in range(4)])
def test_elementwise_producer_at_every_level(fi, fj, level):
    A, B, C, inputs, ref = chain(7, 9)
    sch = dlc.Schedule([A, C])
    i, j = sch.get_loops(C)
    if fi is not None:
        io, ii = sch.split(i, factor=fi)
        jo, ji = sch.split(j, factor=fj)
        sch.reorder(io, jo, ii, ji)
    sch.compute_at(B, sch.get_loops(C)[level])
    check(sch, inputs, ref)


def test_region_shrinks_to_what_one_iteration_needs():
    A, B, C, inputs, ref = chain(8, 12)
    sch = dlc.Schedule([A, C])
    i, j = sch.get_loops(C)
    io, jo, ii, ji = sch.tile(i, j, 4, 6)
    sch.compute_at(B, jo)
    assert allocs(sch) == {"B": [4, 6]}
    sch.compute_at(B, io)
    assert allocs(sch) == {"B": [4, 12]}
    sch.compute_at(B, ji)
    assert allocs(sch) == {"B": [1, 1]}
    check(sch, inputs, ref)


def stencil_1d(n):
    """C[i] = B[i] + 2 B[i + 1] + B[i + 2] with B = A * A: C reads a window of 3."""
    A = te.placeholder((n,), name="A")
    B = te.compute((n,), lambda i: A[i] * A[i], name="B")
    C = te.compute((n - 2,), lambda i: B[i] + 2.0 * B[i + 1] + B[i + 2], name="C")
    a = rand((n,), seed=2)
    b = a * a
    return A, B, C, [a], b[:-2] + 2 * b[1:-1] + b[2:]


@pytest.mark.parametrize("n, factor", [(10, 1), (10, 3), (10, 4), (10, 8), (10, 9), (13, 5)])
@pytest.mark.parametrize("at_inner", [False, True])
def test_stencil_window(n, factor, at_inner):
    A, B, C, inputs, ref = stencil_1d(n)
    sch = dlc.Schedule([A, C])
    (i,) = sch.get_loops(C)
    io, ii = sch.split(i, factor=factor)
    sch.compute_at(B, ii if at_inner else io)
    assert allocs(sch)["B"] == [3 if at_inner else min(factor, n - 2) + 2]
    check(sch, inputs, ref)


def padded_conv(h, w):
    """A 3x3 convolution of A zero-padded by Pad: Pad's region must be clipped at the
    borders when it is computed inside a tile of C."""
    A = te.placeholder((h, w), name="A")
    W = te.placeholder((3, 3), name="W")
    Pad = te.compute((h + 2, w + 2), lambda i, j: te.if_then_else(
        te.all(i >= 1, i <= h, j >= 1, j <= w), A[i - 1, j - 1], 0.0), name="Pad")
    ri, rj = te.reduce_axis(3, "ri"), te.reduce_axis(3, "rj")
    C = te.compute((h, w), lambda i, j: te.sum(Pad[i + ri, j + rj] * W[ri, rj], axis=[ri, rj]),
                   name="C")
    a, wt = rand((h, w), seed=3), rand((3, 3), seed=4)
    p = np.pad(a, 1)
    ref = sum(p[di:di + h, dj:dj + w] * wt[di, dj] for di in range(3) for dj in range(3))
    return A, W, Pad, C, [a, wt], ref


@pytest.mark.parametrize("fi, fj", [(2, 4), (3, 5), (7, 9), (4, 1)])
@pytest.mark.parametrize("level", range(6))
def test_padded_convolution_at_every_level(fi, fj, level):
    A, W, Pad, C, inputs, ref = padded_conv(7, 9)
    sch = dlc.Schedule([A, W, C])
    i, j, ri, rj = sch.get_loops(C)
    io, ii = sch.split(i, factor=fi)
    jo, ji = sch.split(j, factor=fj)
    sch.reorder(io, jo, ri, ii, ji, rj)
    sch.compute_at(Pad, sch.get_loops(C)[level])
    check(sch, inputs, ref, rtol=1e-4, native=level in (1, 3, 5))


def test_padded_convolution_tile_region():
    A, W, Pad, C, inputs, ref = padded_conv(8, 8)
    sch = dlc.Schedule([A, W, C])
    i, j, ri, rj = sch.get_loops(C)
    io, jo, ii, ji = sch.tile(i, j, 4, 4)
    sch.compute_at(Pad, jo)
    assert allocs(sch) == {"Pad": [6, 6]}  # a 4x4 tile needs a 6x6 window
    check(sch, inputs, ref, rtol=1e-4)


def test_reduction_producer_at_consumer_loops():
    A = te.placeholder((6, 5, 4), name="A")
    k = te.reduce_axis(4, "k")
    S = te.compute((6, 5), lambda i, j: te.sum(A[i, j, k], axis=k), name="S")
    C = te.compute((6, 5), lambda i, j: S[i, j] * S[i, 4 - j], name="C")
    a = rand((6, 5, 4), seed=5)
    s = a.sum(2)
    for level in range(2):
        sch = dlc.Schedule([A, C])
        i, j = sch.get_loops(C)
        sk = sch.get_loops(S)[-1]
        sch.unroll(sk)
        sch.compute_at(S, [i, j][level])
        check(sch, [a], s * s[:, ::-1])


def test_producer_at_a_reduction_loop_of_the_consumer():
    A = te.placeholder((5, 7), name="A")
    Bt = te.placeholder((7, 6), name="B")
    P = te.compute((5, 7), lambda i, k: te.exp(A[i, k]), name="P")
    r = te.reduce_axis(7, "r")
    C = te.compute((5, 6), lambda i, j: te.sum(P[i, r] * Bt[r, j], axis=r), name="C")
    a, b = rand((5, 7), seed=6), rand((7, 6), seed=7)
    sch = dlc.Schedule([A, Bt, C])
    i, j, k = sch.get_loops(C)
    ko, ki = sch.split(k, factor=3)
    sch.reorder(i, ko, j, ki)
    sch.compute_at(P, ko)
    assert allocs(sch) == {"P": [1, 3]}
    check(sch, [a, b], np.exp(a) @ b, rtol=1e-4)


@pytest.mark.parametrize("index, ref, size", [
    (lambda B, i: B[2 * i] + B[2 * i + 1], lambda b: b[0::2] + b[1::2], 6),
    (lambda B, i: B[i // 2], lambda b: np.repeat(b, 2)[:13], 13),
    (lambda B, i: B[11 - i], lambda b: b[::-1], 12),
    (lambda B, i: B[i % 4] * B[i], lambda b: b[np.arange(12) % 4] * b, 12),
])
@pytest.mark.parametrize("factor", [1, 3, 4])
def test_producer_read_through_index_arithmetic(index, ref, size, factor):
    A = te.placeholder((12,), name="A")
    B = te.compute((12,), lambda i: A[i] + 1.0, name="B")
    C = te.compute((size,), lambda i: index(B, i), name="C")
    sch = dlc.Schedule([A, C])
    (i,) = sch.get_loops(C)
    io, ii = sch.split(i, factor=factor)
    sch.compute_at(B, io)
    a = rand((12,), seed=8)
    check(sch, [a], ref(a + 1))


def test_transposed_read():
    A = te.placeholder((5, 7), name="A")
    B = te.compute((5, 7), lambda i, j: A[i, j] - 1.0, name="B")
    C = te.compute((7, 5), lambda i, j: B[j, i], name="C")
    a = rand((5, 7), seed=9)
    for level in range(2):
        sch = dlc.Schedule([A, C])
        sch.compute_at(B, sch.get_loops(C)[level])
        check(sch, [a], (a - 1).T)


def test_two_producers_at_one_loop_and_a_chain():
    A = te.placeholder((6, 8), name="A")
    X = te.compute((6, 8), lambda i, j: A[i, j] + 1.0, name="X")
    Y = te.compute((6, 8), lambda i, j: X[i, j] * 2.0, name="Y")
    Z = te.compute((6, 8), lambda i, j: A[i, j] - 3.0, name="Z")
    C = te.compute((6, 8), lambda i, j: Y[i, j] + Z[i, 7 - j], name="C")
    a = rand((6, 8), seed=10)
    ref = (a + 1) * 2 + (a - 3)[:, ::-1]
    sch = dlc.Schedule([A, C])
    i, j = sch.get_loops(C)
    sch.compute_at(Y, i)
    sch.compute_at(Z, i)
    yi, yj = sch.get_loops(Y)
    sch.compute_at(X, yj)  # X inside Y inside C
    assert allocs(sch) == {"Y": [1, 8], "X": [1, 1], "Z": [1, 8]}
    check(sch, [a], ref)


def test_attach_point_follows_split_and_fuse_of_the_target_loop():
    A, B, C, inputs, ref = chain(6, 10)
    sch = dlc.Schedule([A, C])
    i, j = sch.get_loops(C)
    sch.compute_at(B, j)
    jo, ji = sch.split(j, factor=4)  # B moves to the inner loop
    assert sch[B].attach.loop == ji.name
    assert allocs(sch) == {"B": [1, 1]}
    check(sch, inputs, ref)
    sch = dlc.Schedule([A, C])
    i, j = sch.get_loops(C)
    sch.compute_at(B, j)
    f = sch.fuse(i, j)  # B moves to the fused loop
    assert sch[B].attach.loop == f.name
    check(sch, inputs, ref)


def test_compute_at_a_fused_loop():
    A, B, C, inputs, ref = chain(5, 6)
    sch = dlc.Schedule([A, C])
    i, j = sch.get_loops(C)
    f = sch.fuse(i, j)
    fo, fi = sch.split(f, factor=4)
    sch.compute_at(B, fo)
    check(sch, inputs, ref)


def test_producer_inside_a_parallel_loop_is_private_to_each_thread():
    A, B, C, inputs, ref = chain(64, 40)
    sch = dlc.Schedule([A, C])
    i, j = sch.get_loops(C)
    sch.parallel(i)
    sch.compute_at(B, i)
    _, bj = sch.get_loops(B)
    sch.vectorize(bj)
    check(sch, inputs, ref, interp=False)
    for _ in range(3):  # races between threads would show as wrong elements
        check(sch, inputs, ref, interp=False)


def test_compute_at_is_recorded_and_replayed():
    A, B, C, inputs, ref = chain(4, 4)
    sch = dlc.Schedule([A, C])
    i, _ = sch.get_loops(C)
    sch.compute_at(B, i)
    assert sch.trace.records[-1] == {"primitive": "compute_at", "stage": "B", "target": "C",
                                     "loop": "i"}
    again = dlc.Schedule.from_trace([A, C], sch.trace.to_json())
    assert str(dlc.lower(again)) == str(dlc.lower(sch))
