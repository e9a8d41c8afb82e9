"""cache_read: copy a tensor into a buffer of another scope that chosen readers use."""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import check, matmul, rand

import dlc
from dlc import te


def test_cache_read_of_an_input_at_root():
    A, B, C, inputs, ref = matmul(5, 6, 7)
    sch = dlc.Schedule([A, B, C])
    AA = sch.cache_read(A, "local", [C])
    assert AA.name == "A.local" and AA.shape == A.shape
    assert sch.tensor("A.local").name == "A.local"
    text = str(dlc.lower(sch))
    assert "alloc A.local: float32[5, 7]  # local" in text
    assert "A.local[ax0, ax1] = A[ax0, ax1]" in text
    assert "A.local[i, k] * B[k, j]" in text
    check(sch, inputs, ref, rtol=1e-4)


@pytest.mark.parametrize("m, n, k, tile, kf", [(9, 10, 11, 4, 3), (8, 8, 8, 4, 4),
                                               (5, 7, 3, 8, 2)])
def test_cache_read_both_operands_at_the_reduction_loop(m, n, k, tile, kf):
    A, B, C, inputs, ref = matmul(m, n, k)
    sch = dlc.Schedule([A, B, C])
    AA = sch.cache_read(A, "shared", [C])
    BB = sch.cache_read(B, "shared", [C])
    i, j, r = sch.get_loops(C)
    io, jo, ii, ji = sch.tile(i, j, tile, tile)
    ko, ki = sch.split(r, factor=kf)
    sch.reorder(io, jo, ko, ii, ki, ji)
    sch.compute_at(AA, ko)
    sch.compute_at(BB, ko)
    shapes = dict(re.findall(r"alloc (\w\.shared): float32(\[[\d, ]+\])", str(dlc.lower(sch))))
    assert shapes == {"A.shared": f"[{min(tile, m)}, {min(kf, k)}]",
                      "B.shared": f"[{min(kf, k)}, {min(tile, n)}]"}
    check(sch, inputs, ref, rtol=1e-4)


def test_cache_read_of_an_intermediate_for_some_readers():
    A = te.placeholder((6,), name="A")
    X = te.compute((6,), lambda i: A[i] + 1.0, name="X")
    Y = te.compute((6,), lambda i: X[i] * 2.0, name="Y")
    Z = te.compute((6,), lambda i: X[5 - i] + Y[i], name="Z")
    a = rand((6,), seed=1)
    x = a + 1
    for readers in ([Y], [Y, Z], [Z]):
        sch = dlc.Schedule([A, Z])
        XX = sch.cache_read(X, "local", readers)
        if readers == [Y]:
            sch.compute_at(XX, sch.get_loops(Y)[0])
        check(sch, [a], x[::-1] + 2 * x)


def test_cache_read_is_vectorizable_and_replays():
    A, B, C, inputs, ref = matmul(4, 16, 3)
    sch = dlc.Schedule([A, B, C])
    BB = sch.cache_read(B, "local", [C])
    sch.vectorize(sch.get_loops(BB)[1])
    sch.vectorize(sch.get_loops(C)[1])
    check(sch, inputs, ref, rtol=1e-4)
    again = dlc.Schedule.from_trace([A, B, C], sch.trace.to_json())
    assert str(dlc.lower(again)) == str(dlc.lower(sch))


def test_cache_read_names_are_made_unique():
    A = te.placeholder((3,), name="A")
    B = te.compute((3,), lambda i: A[i] + 1.0, name="B")
    C = te.compute((3,), lambda i: A[i] * B[i], name="C")
    sch = dlc.Schedule([A, C])
    first = sch.cache_read(A, "local", [B])
    second = sch.cache_read(A, "local", [C])
    assert (first.name, second.name) == ("A.local", "A.local_1")
    a = np.arange(3, dtype="float32")
    check(sch, [a], a * (a + 1))
