"""Must-fail tests: every illegal schedule request raises a typed error (ScheduleError, or
TargetError/LoweringError when it is found later) whose message names the stage, the loop
or the tensor, and says why."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import add2d, matmul

import dlc
from dlc import te


def mm():
    """A, B -> P = A * 2 -> C = P @ B; returns (schedule, A, B, P, C, loops of C)."""
    A = te.placeholder((8, 6), name="A")
    B = te.placeholder((6, 10), name="B")
    P = te.compute((8, 6), lambda i, j: A[i, j] * 2.0, name="P")
    k = te.reduce_axis(6, "k")
    C = te.compute((8, 10), lambda i, j: te.sum(P[i, k] * B[k, j], axis=k), name="C")
    sch = dlc.Schedule([A, B, C])
    return sch, A, B, P, C, sch.get_loops(C)


def chain3():
    """A -> X -> Y -> Z (output); also Q (output) reads A."""
    A = te.placeholder((8,), name="A")
    X = te.compute((8,), lambda i: A[i] + 1.0, name="X")
    Y = te.compute((8,), lambda i: X[i] * 2.0, name="Y")
    Z = te.compute((8,), lambda i: Y[i] + X[7 - i], name="Z")
    Q = te.compute((8,), lambda i: A[i] - 1.0, name="Q")
    return A, X, Y, Z, Q


# -- split, tile -----------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    ({"factor": 0}, "split C.i: factor=0 must be at least 1"),
    ({"factor": -3}, "split C.i: factor=-3 must be at least 1"),
    ({"nparts": 0}, "split C.i: nparts=0 must be at least 1"),
    ({"factor": 2, "nparts": 2}, "split C.i: give exactly one of factor= or nparts="),
    ({}, "split C.i: give exactly one of factor= or nparts="),
    ({"factor": 2.0}, "split C.i: factor/nparts must be an integer, got 2.0"),
    ({"factor": "4"}, "split C.i: factor/nparts must be an integer, got '4'"),
    ({"nparts": True}, "split C.i: factor/nparts must be an integer, got True"),
])
def test_split_bad_amount(kwargs, message):
    sch, *_, (i, _, _) = mm()
    with pytest.raises(dlc.ScheduleError, match=message):
        sch.split(i, **kwargs)
    assert len(sch.trace) == 0  # nothing was recorded or changed
    assert [lp.name for lp in sch.get_loops("C")] == ["i", "j", "k"]


def test_split_accepts_numpy_integers():
    sch, *_, (i, j, _) = mm()
    sch.split(i, factor=np.int64(4))
    sch.tile(sch.get_loops("C")[0], j, np.int32(2), np.int16(5))
    assert dlc.Trace.from_json(sch.trace.to_json()) == sch.trace


def test_split_an_annotated_loop():
    sch, *_, (i, _, _) = mm()
    sch.parallel(i)
    with pytest.raises(dlc.ScheduleError, match="split C.i: the loop is already parallel; "
                       "apply split before annotating loops"):
        sch.split(i, factor=2)


def test_tile_loops_of_different_stages():
    sch, A, B, P, C, (i, j, k) = mm()
    (pi, _) = sch.get_loops(P)
    with pytest.raises(dlc.ScheduleError, match="tile: loops .*C.i.* and .*P.i.* belong to "
                       "different stages"):
        sch.tile(i, pi, 2, 2)


# -- fuse ------------------------------------------------------------------------------------
def test_fuse_non_adjacent_loops():
    sch, *_, (i, j, k) = mm()
    with pytest.raises(dlc.ScheduleError, match="fuse C: loops i, k are not adjacent and in order "
                       "\\(current order: i, j, k\\); reorder them first"):
        sch.fuse(i, k)


def test_fuse_loops_out_of_order():
    sch, *_, (i, j, k) = mm()
    with pytest.raises(dlc.ScheduleError, match="fuse C: loops j, i are not adjacent and in order"):
        sch.fuse(j, i)


def test_fuse_loops_of_different_stages():
    sch, A, B, P, C, (i, j, k) = mm()
    with pytest.raises(dlc.ScheduleError, match="fuse: all loops must belong to the same stage"):
        sch.fuse(sch.get_loops(P)[1], i)


def test_fuse_spatial_with_reduction_loop():
    sch, *_, (i, j, k) = mm()
    with pytest.raises(dlc.ScheduleError, match="fuse C: cannot fuse a reduction loop with a "
                       "spatial loop"):
        sch.fuse(j, k)


def test_fuse_an_annotated_loop():
    sch, *_, (i, j, k) = mm()
    sch.unroll(j)
    with pytest.raises(dlc.ScheduleError, match="fuse C.j: the loop is already unrolled"):
        sch.fuse(i, j)


def test_fuse_across_a_compute_at_attach_point():
    sch, A, B, P, C, (i, j, k) = mm()
    sch.compute_at(P, i)
    with pytest.raises(dlc.ScheduleError, match="fuse C: P is computed at loop i, between the "
                       "loops to fuse; fuse before compute_at"):
        sch.fuse(i, j)


def test_fuse_nothing():
    sch, *_ = mm()
    with pytest.raises(dlc.ScheduleError, match="fuse needs at least one loop"):
        sch.fuse()


# -- reorder ---------------------------------------------------------------------------------
def test_reorder_a_loop_listed_twice():
    sch, *_, (i, j, k) = mm()
    with pytest.raises(dlc.ScheduleError, match="reorder C: a loop is listed twice"):
        sch.reorder(j, i, j)


def test_reorder_loops_of_different_stages():
    sch, A, B, P, C, (i, j, k) = mm()
    with pytest.raises(dlc.ScheduleError, match="reorder: all loops must belong to the same"):
        sch.reorder(i, sch.get_loops(P)[0])


def test_reorder_across_a_compute_at_attach_point():
    sch, A, B, P, C, (i, j, k) = mm()
    sch.compute_at(P, j)
    with pytest.raises(dlc.ScheduleError, match="reorder C: P is computed at loop j, so the loops "
                       "around it are not perfectly nested; this reorder would move loops across "
                       "it"):
        sch.reorder(k, j)
    with pytest.raises(dlc.ScheduleError, match="reorder C: P is computed at loop j"):
        sch.reorder(j, i)  # j would no longer be inside i
    sch.compute_at(P, k)
    sch.reorder(j, i)  # the loops around k stay the same set: legal
    assert [lp.name for lp in sch.get_loops(C)] == ["j", "i", "k"]


# -- stale and foreign handles ------------------------------------------------------------------
def test_loop_handle_after_split():
    sch, *_, (i, j, k) = mm()
    sch.split(i, factor=4)
    with pytest.raises(dlc.ScheduleError, match="loop C.i no longer exists: it was split into "
                       "i.outer and i.inner; use the loops returned by the last primitive"):
        sch.vectorize(i)


def test_loop_handle_after_fuse():
    sch, *_, (i, j, k) = mm()
    sch.fuse(i, j)
    with pytest.raises(dlc.ScheduleError, match="loop C.j no longer exists: it was fused into "
                       "i.j.fused"):
        sch.split(j, factor=2)


def test_loop_handle_after_cache_write_reset():
    A, B, C, _, _ = add2d(4, 4)
    sch = dlc.Schedule([A, B, C])
    i, j = sch.get_loops(C)
    sch.cache_write(C, "local")
    sch.split(sch.get_loops(C)[0], factor=2)
    with pytest.raises(dlc.ScheduleError, match="loop C.i no longer exists"):
        sch.parallel(i)


def test_loop_of_another_schedule():
    sch, *_, (i, j, k) = mm()
    other, *_ = mm()
    with pytest.raises(dlc.ScheduleError, match="loop C.i belongs to another schedule"):
        other.split(i, factor=2)


def test_not_a_loop():
    sch, *_ = mm()
    with pytest.raises(dlc.ScheduleError, match="expected a Loop \\(from get_loops/split/...\\), "
                       "got 'i'"):
        sch.split("i", factor=2)


# -- vectorize, unroll, parallel --------------------------------------------------------------
@pytest.mark.parametrize("primitive, message", [
    ("vectorize", "vectorize C.k: it is a reduction loop, so each iteration depends on the "
                  "previous one through C \\(a loop-carried dependency\\)"),
    ("parallel", "parallel C.k: it is a reduction loop; threads would race on C \\(a "
                 "loop-carried dependency\\)"),
])
def test_vectorize_or_parallelize_a_reduction_loop(primitive, message):
    sch, *_, (i, j, k) = mm()
    with pytest.raises(dlc.ScheduleError, match=message):
        getattr(sch, primitive)(k)


def test_vectorize_or_parallelize_a_split_reduction_loop():
    sch, *_, (i, j, k) = mm()
    ko, ki = sch.split(k, factor=2)
    with pytest.raises(dlc.ScheduleError, match="vectorize C.k.inner: it is a reduction loop"):
        sch.vectorize(ki)
    with pytest.raises(dlc.ScheduleError, match="parallel C.k.outer: it is a reduction loop"):
        sch.parallel(ko)


@pytest.mark.parametrize("primitive, message", [
    ("vectorize", "vectorize B.i: 1024 lanes is more than 512; split the loop and vectorize the "
                  "inner part"),
    ("unroll", "unroll B.i: 1024 iterations is more than 512; split the loop and unroll the "
               "inner part"),
])
def test_too_many_lanes_or_copies(primitive, message):
    A = te.placeholder((1024,), name="A")
    B = te.compute((1024,), lambda i: A[i] + 1.0, name="B")
    sch = dlc.Schedule([A, B])
    with pytest.raises(dlc.ScheduleError, match=message):
        getattr(sch, primitive)(sch.get_loops(B)[0])


def gemm_with_local_tile(tile):
    """A 1024-wide GEMM whose local accumulator is computed at C.j.outer, a block of
    ``tile`` columns; returns (schedule, C.local's column loop)."""
    A, B, C, *_ = matmul(8, 1024, 8)
    sch = dlc.Schedule([A, B, C])
    CC = sch.cache_write(C, "local")
    ci, cj, ck = sch.get_loops(CC)
    ko, ki = sch.split(ck, factor=4)
    sch.reorder(ko, ci, ki, cj)
    i, j = sch.get_loops(C)
    jo, _ = sch.split(j, factor=tile)
    sch.compute_at(CC, jo)
    return sch, cj


@pytest.mark.parametrize("primitive, message", [
    ("vectorize", r"vectorize C.local.j: 600 lanes \(its extent with C.local computed at "
                  r"C.j.outer\) is more than 512; split the loop and vectorize the inner part"),
    ("unroll", r"unroll C.local.j: 600 iterations \(its extent with C.local computed at "
               r"C.j.outer\) is more than 512; split the loop and unroll the inner part"),
])
def test_too_many_lanes_or_copies_found_when_bounds_are_inferred(primitive, message):
    """C.local's loops shrink to the region one iteration of C.j.outer needs, so their
    extent is checked when lowering: here that region is still too wide."""
    sch, cj = gemm_with_local_tile(600)
    getattr(sch, primitive)(cj)  # 1024 nominal lanes: not final, accepted for now
    with pytest.raises(dlc.ScheduleError, match=message):
        dlc.lower(sch)


def test_too_many_lanes_once_compute_root_undoes_compute_at():
    sch, cj = gemm_with_local_tile(32)
    sch.vectorize(cj)
    dlc.lower(sch)  # 32 lanes at C.j.outer
    sch.compute_root("C.local")
    with pytest.raises(dlc.ScheduleError, match=r"vectorize C.local.j: 1024 lanes \(its extent "
                       r"with C.local computed at root\) is more than 512; split the loop"):
        dlc.lower(sch)


def test_too_many_lanes_of_an_intermediate_stage_left_at_root():
    A = te.placeholder((1024,), name="A")
    P = te.compute((1024,), lambda i: A[i] * 2.0, name="P")
    C = te.compute((1024,), lambda i: P[i] + 1.0, name="C")
    sch = dlc.Schedule([A, C])
    sch.vectorize(sch.get_loops(P)[0])  # P could still be computed at a loop of C
    with pytest.raises(dlc.ScheduleError, match=r"vectorize P.i: 1024 lanes \(its extent with P "
                       r"computed at root\) is more than 512"):
        dlc.lower(sch)


def test_too_many_lanes_when_the_region_read_is_unknown():
    """C reads P at data-dependent columns, so one iteration of C.j may need any column:
    at C.j the region of P is one row of all its 1024 columns."""
    A = te.placeholder((4, 1024), name="A")
    Idx = te.placeholder((4, 1024), "int32", name="Idx")
    P = te.compute((4, 1024), lambda i, j: A[i, j] * 2.0, name="P")
    C = te.compute((4, 1024), lambda i, j: P[i, Idx[i, j]], name="C")
    sch = dlc.Schedule([A, Idx, C])
    i, j = sch.get_loops(C)
    sch.compute_at(P, j)
    sch.vectorize(sch.get_loops(P)[1])
    with pytest.raises(dlc.ScheduleError, match=r"vectorize P.j: 1024 lanes \(its extent with P "
                       r"computed at C.j\) is more than 512"):
        dlc.lower(sch)


def test_nested_parallel_loops_of_one_stage():
    sch, *_, (i, j, k) = mm()
    sch.parallel(i)
    with pytest.raises(dlc.ScheduleError, match="parallel C.j: loop i of the same stage is already "
                       "parallel; nested parallel loops are not supported"):
        sch.parallel(j)


def test_nested_parallel_loops_across_stages_found_when_lowering():
    sch, A, B, P, C, (i, j, k) = mm()
    sch.parallel(i)
    sch.compute_at(P, i)
    sch.parallel(sch.get_loops(P)[0])  # legal on its own; illegal inside C's parallel loop
    with pytest.raises(dlc.ScheduleError, match="parallel loop i is nested inside parallel loop "
                       "i; nested parallelism is not supported"):
        dlc.lower(sch)


def test_annotate_a_loop_twice_with_different_kinds():
    sch, *_, (i, j, k) = mm()
    sch.parallel(i)
    with pytest.raises(dlc.ScheduleError, match="vectorize C.i: the loop is already parallel"):
        sch.vectorize(i)
    with pytest.raises(dlc.ScheduleError, match="unroll C.i: the loop is already parallel"):
        sch.unroll(i)


def test_two_vectorized_loops_in_one_stage():
    A, B, C, _, _ = add2d(4, 8)
    sch = dlc.Schedule([A, B, C])
    i, j = sch.get_loops(C)
    sch.vectorize(j)
    with pytest.raises(dlc.ScheduleError, match="vectorize C.i: loop j of the same stage is "
                       "already vectorized; nested vectorized loops are not supported"):
        sch.vectorize(i)


def test_parallel_loop_inside_a_vectorized_loop():
    A, B, C, _, _ = add2d(4, 8)
    sch = dlc.Schedule([A, B, C])
    i, j = sch.get_loops(C)
    sch.vectorize(i)
    with pytest.raises(dlc.ScheduleError, match="parallel C.j: it is inside the vectorized loop "
                       "i"):
        sch.parallel(j)
    sch = dlc.Schedule([A, B, C])
    i, j = sch.get_loops(C)
    sch.parallel(j)
    with pytest.raises(dlc.ScheduleError, match="vectorize C.i: it contains the parallel loop j"):
        sch.vectorize(i)


def test_vectorized_loop_made_outer_by_reorder_is_a_lowering_error():
    A, B, C, _, _ = add2d(4, 8)
    sch = dlc.Schedule([A, B, C])
    i, j = sch.get_loops(C)
    sch.vectorize(j)
    sch.parallel(i)
    sch.reorder(j, i)
    with pytest.raises(dlc.LoweringError, match="cannot vectorize loop j: it contains the "
                       "parallel loop i"):
        dlc.build(sch)


def test_vectorize_a_loop_that_contains_a_compute_at_stage():
    sch, A, B, P, C, (i, j, k) = mm()
    jo, ji = sch.split(j, factor=4)
    sch.vectorize(ji)
    sch.compute_at(P, ji)
    dlc.lower(sch)  # the loop nest is fine to read ...
    with pytest.raises(dlc.LoweringError, match="cannot vectorize loop j.inner: stage P is "
                       "computed inside it; compute it at an outer loop"):
        dlc.build(sch)  # ... but cannot become vector code


# -- bind ------------------------------------------------------------------------------------
def test_bind_unknown_thread_tag():
    sch, *_, (i, j, k) = mm()
    with pytest.raises(dlc.ScheduleError, match="bind C.i: unknown thread index 'threadIdx.w'; "
                       "expected one of blockIdx.x"):
        sch.bind(i, "threadIdx.w")


def test_bind_a_tag_twice_and_a_reduction_loop():
    sch, *_, (i, j, k) = mm()
    sch.bind(i, "blockIdx.x")
    with pytest.raises(dlc.ScheduleError, match="bind C.j: blockIdx.x is already bound to loop i"):
        sch.bind(j, "blockIdx.x")
    with pytest.raises(dlc.ScheduleError, match="bind C.k: binding a reduction loop to threads "
                       "needs a cross-thread reduction"):
        sch.bind(k, "threadIdx.x")
    with pytest.raises(dlc.ScheduleError, match="bind C.i: the loop is already thread_binding"):
        sch.bind(i, "blockIdx.y")


def test_build_a_bound_schedule_for_llvm():
    sch, *_, (i, j, k) = mm()
    sch.bind(i, "threadIdx.x")
    with pytest.raises(dlc.TargetError, match="loop i is bound to threadIdx.x, which only GPU "
                       "targets have; the llvm \\(CPU\\) target cannot run it"):
        dlc.build(sch, target="llvm")


# -- compute_at, compute_inline, compute_root ---------------------------------------------------
def test_compute_at_of_an_output():
    sch, *_, (i, j, k) = mm()
    with pytest.raises(dlc.ScheduleError, match="compute_at C: it is an output of the function, "
                       "so its whole buffer must be computed at root"):
        sch.compute_at("C", i)


def test_compute_at_its_own_loop():
    sch, A, B, P, C, _ = mm()
    with pytest.raises(dlc.ScheduleError, match="compute_at P: cannot compute a stage inside its "
                       "own loop"):
        sch.compute_at(P, sch.get_loops(P)[0])


def test_compute_at_a_stage_that_does_not_read_it():
    A, X, Y, Z, Q = chain3()
    sch = dlc.Schedule([A, Z, Q])
    with pytest.raises(dlc.ScheduleError, match="compute_at X at Q.i: Q does not read X; compute a "
                       "tensor at a loop of one of its consumers"):
        sch.compute_at(X, sch.get_loops(Q)[0])


def test_compute_at_creating_a_cycle():
    A, X, Y, Z, Q = chain3()
    sch = dlc.Schedule([A, Z])
    sch.compute_at(X, sch.get_loops(Y)[0])
    # Y inside X would put X inside itself; X does not read Y
    with pytest.raises(dlc.ScheduleError, match="compute_at Y at X.i: X does not read Y"):
        sch.compute_at(Y, sch.get_loops(X)[0])


def test_compute_at_a_placeholder():
    sch, A, *_, (i, j, k) = mm()
    with pytest.raises(dlc.ScheduleError, match="A is a placeholder \\(an input\\): it has no "
                       "loops to schedule"):
        sch.compute_at(A, i)


def test_compute_at_a_loop_that_does_not_enclose_every_reader():
    A, X, Y, Z, Q = chain3()
    sch = dlc.Schedule([A, Z])
    sch.compute_at(X, sch.get_loops(Y)[0])  # Z reads X too
    with pytest.raises(dlc.ScheduleError, match="X is computed at Y.i but is also read by Z, "
                       "which is not computed inside that loop"):
        dlc.lower(sch)


def test_compute_at_an_inlined_stage():
    A, X, Y, Z, Q = chain3()
    sch = dlc.Schedule([A, Z])
    sch.compute_inline(Y)
    sch.compute_at(X, sch.get_loops(Y)[0])
    with pytest.raises(dlc.ScheduleError, match="X is computed at Y.i, but Y is inlined"):
        dlc.lower(sch)


def test_compute_inline_of_an_output():
    sch, *_ = mm()
    with pytest.raises(dlc.ScheduleError, match="compute_inline C: it is an output of the "
                       "function and must be stored"):
        sch.compute_inline("C")


def test_compute_inline_of_a_reduction():
    A = te.placeholder((4, 5), name="A")
    k = te.reduce_axis(5, "k")
    R = te.compute((4,), lambda i: te.sum(A[i, k], axis=k), name="R")
    O = te.compute((4,), lambda i: R[i] * 2.0, name="O")
    sch = dlc.Schedule([A, O])
    with pytest.raises(dlc.ScheduleError, match="compute_inline R: it is a reduction; only "
                       "elementwise computes can be inlined"):
        sch.compute_inline(R)


def test_compute_inline_of_a_stage_with_others_attached():
    A, X, Y, Z, Q = chain3()
    sch = dlc.Schedule([A, Z])
    sch.compute_at(X, sch.get_loops(Y)[0])
    with pytest.raises(dlc.ScheduleError, match="compute_inline Y: X is computed at one of its "
                       "loops; compute_root\\(X\\) first"):
        sch.compute_inline(Y)


def test_compute_inline_or_root_of_a_placeholder():
    sch, A, *_ = mm()
    for primitive in ("compute_inline", "compute_root"):
        with pytest.raises(dlc.ScheduleError, match="A is a placeholder"):
            getattr(sch, primitive)(A)


# -- cache_read, cache_write --------------------------------------------------------------------
def test_cache_write_after_other_primitives():
    sch, A, B, P, C, (i, j, k) = mm()
    sch.split(i, factor=2)
    with pytest.raises(dlc.ScheduleError, match="cache_write C: apply cache_write before any other "
                       "primitive on C"):
        sch.cache_write(C, "local")
    sch, A, B, P, C, (i, j, k) = mm()
    sch.unroll(k)
    with pytest.raises(dlc.ScheduleError, match="cache_write C: apply cache_write before"):
        sch.cache_write(C, "local")
    sch, A, B, P, C, (i, j, k) = mm()
    sch.compute_at(P, i)
    with pytest.raises(dlc.ScheduleError, match="cache_write C: apply cache_write before"):
        sch.cache_write(C, "local")


def test_cache_write_of_an_inlined_stage():
    sch, A, B, P, C, _ = mm()
    sch.compute_inline(P)
    with pytest.raises(dlc.ScheduleError, match="cache_write P: the stage is inlined"):
        sch.cache_write(P, "local")


@pytest.mark.parametrize("primitive", ["cache_read", "cache_write"])
def test_cache_unknown_scope(primitive):
    sch, A, B, P, C, _ = mm()
    args = (A, "texture", [P]) if primitive == "cache_read" else (C, "texture")
    with pytest.raises(dlc.ScheduleError, match=f"{primitive} [AC]: unknown memory scope "
                       "'texture'; expected one of global, shared, local"):
        getattr(sch, primitive)(*args)


def test_cache_read_for_a_stage_that_does_not_read_it():
    sch, A, B, P, C, _ = mm()
    with pytest.raises(dlc.ScheduleError, match="cache_read A: C does not read A"):
        sch.cache_read(A, "local", [C])
    with pytest.raises(dlc.ScheduleError, match="cache_read A: give at least one reader"):
        sch.cache_read(A, "local", [])
    assert "A.local" not in sch.stages  # nothing was added


# -- rfactor ---------------------------------------------------------------------------------
def test_rfactor_a_spatial_loop():
    sch, A, B, P, C, (i, j, k) = mm()
    with pytest.raises(dlc.ScheduleError, match="rfactor: loop C.j is not a reduction loop"):
        sch.rfactor(C, j)


def test_rfactor_a_stage_that_is_not_a_reduction():
    sch, A, B, P, C, _ = mm()
    with pytest.raises(dlc.ScheduleError, match="rfactor: P is not a reduction"):
        sch.rfactor(P, sch.get_loops(P)[1])


def test_rfactor_a_loop_of_another_stage():
    sch, A, B, P, C, (i, j, k) = mm()
    with pytest.raises(dlc.ScheduleError, match="rfactor P: loop Loop\\(C.k\\) belongs to C"):
        sch.rfactor(P, k)


def test_rfactor_a_fused_loop():
    A = te.placeholder((3, 4, 5), name="A")
    k1, k2 = te.reduce_axis(4, "k1"), te.reduce_axis(5, "k2")
    B = te.compute((3,), lambda i: te.sum(A[i, k1, k2], axis=[k1, k2]), name="B")
    sch = dlc.Schedule([A, B])
    _, a1, a2 = sch.get_loops(B)
    f = sch.fuse(a1, a2)
    with pytest.raises(dlc.ScheduleError, match="rfactor: loop B.k1.k2.fused is a fused loop"):
        sch.rfactor(B, f)


@pytest.mark.parametrize("factor_axis, message", [
    (3, "rfactor: factor_axis=3 is out of range 0..2"),
    (-1, "rfactor: factor_axis=-1 is out of range 0..2"),
    (1.5, "rfactor C: factor_axis must be an integer, got 1.5"),
])
def test_rfactor_bad_factor_axis(factor_axis, message):
    sch, A, B, P, C, (i, j, k) = mm()
    _, ki = sch.split(k, factor=2)
    with pytest.raises(dlc.ScheduleError, match=message):
        sch.rfactor(C, ki, factor_axis)
    assert "C.rf" not in sch.stages


def test_rfactor_with_stages_attached():
    sch, A, B, P, C, (i, j, k) = mm()
    sch.compute_at(P, i)
    with pytest.raises(dlc.ScheduleError, match="rfactor C: stages are computed at its loops; "
                       "compute_root them first"):
        sch.rfactor(C, k)


# -- the schedule itself --------------------------------------------------------------------------
def test_placeholder_missing_from_the_arguments():
    A, B, C, _, _ = matmul(2, 3, 4)
    with pytest.raises(dlc.ScheduleError, match="placeholder B is read by the computation but is "
                       "not in the argument list; pass it to Schedule"):
        dlc.Schedule([A, C])


@pytest.mark.parametrize("args, message", [
    ([], "Schedule takes the list of the function's argument tensors"),
    (["A"], "Schedule takes the list of the function's argument tensors"),
])
def test_bad_argument_lists(args, message):
    with pytest.raises(dlc.ScheduleError, match=message):
        dlc.Schedule(args)


def test_tensor_listed_twice():
    A, B, C, _, _ = matmul(2, 3, 4)
    with pytest.raises(dlc.ScheduleError, match="a tensor appears twice in the argument list"):
        dlc.Schedule([A, B, C, C])


def test_unknown_tensors_and_loops():
    sch, A, B, P, C, _ = mm()
    stranger = te.compute((2,), lambda i: te.const(1.0), name="S")
    with pytest.raises(dlc.ScheduleError, match="tensor S is not part of this schedule"):
        sch.get_loops(stranger)
    with pytest.raises(dlc.ScheduleError, match="no tensor named 'nope' in this schedule; "
                       "tensors: A, B, P, C"):
        sch.get_loops("nope")
    with pytest.raises(dlc.ScheduleError, match="loop C.q does not exist: no such loop; loops "
                       "are i, j, k"):
        sch.loop("C", "q")
    with pytest.raises(dlc.ScheduleError, match="A is a placeholder"):
        sch.get_loops(A)
    with pytest.raises(dlc.ScheduleError, match="expected a tensor or tensor name, got 3"):
        sch.get_loops(3)


@pytest.mark.parametrize("error", [dlc.ScheduleError, dlc.TargetError, dlc.LoweringError])
def test_schedule_errors_are_dlc_errors(error):
    assert issubclass(error, dlc.DlcError)
