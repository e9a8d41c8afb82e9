"""rfactor: turn part of a reduction into a spatial axis of partial results."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check, matmul, rand
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dlc
from dlc import te


@pytest.mark.parametrize("k, amount, how", [(12, 4, "factor"), (13, 4, "factor"),
                                            (13, 5, "nparts"), (7, 3, "factor"),
                                            (5, 8, "factor")])
@pytest.mark.parametrize("use_inner", [False, True])
@pytest.mark.parametrize("factor_axis", [0, 1, 2])
def test_rfactor_matmul(k, amount, how, use_inner, factor_axis):
    A, B, C, inputs, ref = matmul(3, 4, k)
    sch = dlc.Schedule([A, B, C])
    _, _, r = sch.get_loops(C)
    ro, ri = sch.split(r, **{how: amount})
    chosen = ri if use_inner else ro
    RF = sch.rfactor(C, chosen, factor_axis=factor_axis)
    shape = [3, 4]
    shape.insert(factor_axis, chosen.extent)
    assert RF.name == "C.rf" and list(RF.shape) == shape
    assert [lp.name for lp in sch.get_loops(C)] == ["i", "j", chosen.name]
    check(sch, inputs, ref, rtol=1e-4)


def test_rfactor_a_full_sum_then_vectorize_the_partial_sums():
    A = te.placeholder((1000,), name="A")
    k = te.reduce_axis(1000, "k")
    S = te.compute((), lambda: te.sum(A[k], axis=k), name="S")
    sch = dlc.Schedule([A, S])
    (r,) = sch.get_loops(S)
    ro, ri = sch.split(r, factor=16)
    RF = sch.rfactor(S, ri)
    x, y = sch.get_loops(RF)
    assert (x.name, y.name) == ("k.inner", "k.outer")
    sch.reorder(y, x)
    sch.vectorize(x)
    a = rand((1000,), seed=1)
    check(sch, [a], a.astype("float64").sum(), rtol=1e-4)


def test_rfactor_then_parallelize_the_partial_results():
    A = te.placeholder((8, 300), name="A")
    k = te.reduce_axis(300, "k")
    M = te.compute((8,), lambda i: te.max(A[i, k], axis=k), name="M")
    sch = dlc.Schedule([A, M])
    _, r = sch.get_loops(M)
    ro, ri = sch.split(r, nparts=4)
    RF = sch.rfactor(M, ro)
    part, i, inner = sch.get_loops(RF)
    sch.parallel(part)
    a = rand((8, 300), seed=2)
    check(sch, [a], a.max(1))


def test_rfactor_an_unsplit_axis_of_a_two_axis_reduction():
    A = te.placeholder((3, 4, 5), name="A")
    k1, k2 = te.reduce_axis(4, "k1"), te.reduce_axis(5, "k2")
    B = te.compute((3,), lambda i: te.sum(A[i, k1, k2], axis=[k1, k2]), name="B")
    sch = dlc.Schedule([A, B])
    _, _, a2 = sch.get_loops(B)
    RF = sch.rfactor(B, a2)
    assert RF.shape == (5, 3)
    a = rand((3, 4, 5), seed=3)
    check(sch, [a], a.sum((1, 2)))


@pytest.mark.parametrize("factor_axis", [0, 1])
def test_rfactor_keeps_the_where_condition(factor_axis):
    A = te.placeholder((3, 4, 5), name="A")
    k1, k2 = te.reduce_axis(4, "k1"), te.reduce_axis(5, "k2")
    B = te.compute((3,), lambda i: te.min(A[i, k1, k2], axis=[k1, k2], where=k1 < k2), name="B")
    sch = dlc.Schedule([A, B])
    _, a1, _ = sch.get_loops(B)
    _, inner = sch.split(a1, factor=3)
    sch.rfactor(B, inner, factor_axis)
    a = rand((3, 4, 5), seed=4)
    mask = np.arange(4)[:, None] < np.arange(5)[None, :]
    check(sch, [a], np.where(mask, a, np.inf).min((1, 2)))


def test_rfactor_of_a_product_with_a_size_one_split():
    A = te.placeholder((2, 6), name="A")
    k = te.reduce_axis(6, "k")
    P = te.compute((2,), lambda i: te.prod(A[i, k] + 1.5, axis=k), name="P")
    sch = dlc.Schedule([A, P])
    _, r = sch.get_loops(P)
    ro, ri = sch.split(r, factor=1)
    sch.rfactor(P, ro)
    a = rand((2, 6), seed=5)
    check(sch, [a], (a + 1.5).prod(1), rtol=1e-5)


def test_rfactor_is_recorded_and_replays():
    A, B, C, inputs, ref = matmul(3, 4, 10)
    sch = dlc.Schedule([A, B, C])
    _, _, r = sch.get_loops(C)
    _, ri = sch.split(r, factor=4)
    sch.rfactor(C, ri, factor_axis=1)
    assert sch.trace.records[-1] == {"primitive": "rfactor", "stage": "C", "loop": "k.inner",
                                     "factor_axis": 1}
    again = dlc.Schedule.from_trace([A, B, C], sch.trace.to_json())
    assert str(dlc.lower(again)) == str(dlc.lower(sch))


def test_rfactor_a_loop_of_a_nested_non_divisible_split():
    """Each split that overshoots its parent needs its own bound (here k.inner < 4 as well
    as k < 11), not only the bound of the reduction axis."""
    for pick in range(3):
        A, B, C, inputs, ref = matmul(3, 4, 11)
        sch = dlc.Schedule([A, B, C])
        _, _, r = sch.get_loops(C)
        ro, ri = sch.split(r, factor=4)
        rio, rii = sch.split(ri, nparts=3)  # 3 * 2 = 6 > 4
        sch.rfactor(C, [ro, rio, rii][pick], factor_axis=pick)
        check(sch, inputs, ref, rtol=1e-4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_rfactor_random_splits(data):
    draw = data.draw
    m, k1, k2 = draw(st.integers(1, 4)), draw(st.integers(1, 13)), draw(st.integers(1, 4))
    A = te.placeholder((m, k1, k2), name="A")
    r1, r2 = te.reduce_axis(k1, "r1"), te.reduce_axis(k2, "r2")
    combiner = draw(st.sampled_from(["sum", "max"]))
    B = te.compute((m,), lambda i: getattr(te, combiner)(A[i, r1, r2], axis=[r1, r2]), name="B")
    sch = dlc.Schedule([A, B])
    for _ in range(draw(st.integers(0, 3))):
        reduce_loops = [lp for lp, lv in zip(sch.get_loops(B), sch[B].leaves) if lv.is_reduce]
        loop = draw(st.sampled_from(reduce_loops))
        amount = draw(st.integers(1, loop.extent + 1))
        sch.split(loop, **{draw(st.sampled_from(["factor", "nparts"])): amount})
    reduce_loops = [lp for lp, lv in zip(sch.get_loops(B), sch[B].leaves) if lv.is_reduce]
    RF = sch.rfactor(B, draw(st.sampled_from(reduce_loops)), draw(st.integers(0, 1)))
    loops = sch.get_loops(RF)
    sch.reorder(*draw(st.permutations(loops)))
    a = rand((m, k1, k2), seed=6)
    ref = a.sum((1, 2)) if combiner == "sum" else a.max((1, 2))
    check(sch, [a], ref, rtol=1e-5, native=draw(st.booleans()))
