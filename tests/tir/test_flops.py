"""dlc.tir.flops: floating-point operations of a loop nest (counted per lane, times the
loop extents; integer arithmetic, casts and shared subexpressions not counted twice)."""

from __future__ import annotations

import pytest

import dlc
from dlc import te
from dlc.expr import nodes as n
from dlc.tir import stmt as s
from dlc.tir.flops import count_flops, expr_flops


def matmul(m, k, nn):
    A = te.placeholder((m, k), name="A")
    B = te.placeholder((k, nn), name="B")
    r = te.reduce_axis(k, "k")
    C = te.compute((m, nn), lambda i, j: te.sum(A[i, r] * B[r, j], axis=r), name="C")
    return A, B, C


def elementwise(fn, dtype="float32", size=10):
    A = te.placeholder((size,), dtype, name="A")
    B = te.compute((size,), lambda i: fn(A[i]), name="B")
    return count_flops(dlc.lower(dlc.Schedule([A, B])))


def test_docstring_matmul():
    assert count_flops(dlc.lower(dlc.Schedule(list(matmul(4, 16, 8))))) == 4 * 8 * 16 * 2


def test_schedule_that_divides_evenly_keeps_the_count():
    A, B, C = matmul(16, 12, 32)
    sch = dlc.Schedule([A, B, C])
    i, j = sch.get_loops(C)[:2]
    io, ii = sch.split(i, factor=4)
    jo, ji = sch.split(j, factor=8)
    sch.vectorize(ji)
    sch.unroll(ii)
    assert count_flops(dlc.lower(sch)) == 2 * 16 * 12 * 32


def test_ragged_split_counts_no_less_than_the_algorithm():
    """A split that does not divide leaves a tail (or a guard counted by its larger side):
    never fewer operations than the unscheduled nest."""
    A, B, C = matmul(10, 6, 7)
    sch = dlc.Schedule([A, B, C])
    i = sch.get_loops(C)[0]
    sch.split(i, factor=4)
    assert count_flops(dlc.lower(sch)) >= 2 * 10 * 6 * 7


@pytest.mark.parametrize("fn, per_element", [
    (lambda a: a + 1.0, 1),
    (lambda a: a * a - a / 3.0, 3),
    (lambda a: te.exp(a), 1),  # a math intrinsic counts one
    (lambda a: te.maximum(a, 0.0), 1),  # relu
    (lambda a: te.if_then_else(a > 0.0, a, a * 0.1), 2),  # a float comparison counts
    (lambda a: a.astype("float64"), 0),  # casts do not
])
def test_operations_per_element(fn, per_element):
    assert elementwise(fn) == 10 * per_element


def test_integer_arithmetic_is_not_counted():
    assert elementwise(lambda a: a * 3 + 1, dtype="int32") == 0


def test_shared_subexpression_counts_once():
    a = n.BufferLoad(n.Buffer("A", (4,), "float32"), (n.const(0),))
    twice = a * 2.0
    assert expr_flops(twice + twice) == 2


def _loop(var, extent, body):
    return s.For(var, n.const(0), extent, s.ForKind.SERIAL, body)


def _func(body):
    return s.PrimFunc("f", (), body)


def _store(value):
    return s.BufferStore(n.Buffer("C", (8,), "float32"), value, (n.const(0),))


def test_loop_with_variable_extent_counts_its_largest():
    """``for j in range(i + 1)`` under ``for i in range(4)``: bounded by 4 iterations."""
    i, j = n.Var("i"), n.Var("j")
    body = _store(n.const(1.0, "float32") + n.const(2.0, "float32"))
    assert count_flops(_func(_loop(i, n.const(4), _loop(j, i + 1, body)))) == 4 * 4


def test_loop_without_a_bound_gives_none():
    j = n.Var("j")
    body = _store(n.const(1.0, "float32") + n.const(2.0, "float32"))
    assert count_flops(_func(_loop(j, n.Var("size"), body))) is None


def test_branch_counts_its_larger_side():
    i = n.Var("i")
    one = n.const(1.0, "float32")
    cheap, dear = _store(one + one), _store(one * one + one)
    branch = s.IfThenElse(i < 2, cheap, dear)
    assert count_flops(_func(_loop(i, n.const(4), branch))) == 4 * 2
    assert count_flops(_func(s.IfThenElse(n.const(True), cheap, dear))) == 1
