"""Schedules as data: traces serialize to JSON and replay to the identical loop nest; random
legal schedules compute the same result as NumPy, interpreted and compiled."""

from __future__ import annotations

import json

import pytest
from helpers import check, rand
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dlc
from dlc import te
from dlc.tir.schedule.trace import TRACE_VERSION


def matmul(m=5, n=6, k=7):
    A = te.placeholder((m, k), name="A")
    B = te.placeholder((k, n), name="B")
    r = te.reduce_axis(k, "k")
    C = te.compute((m, n), lambda i, j: te.sum(A[i, r] * B[r, j], axis=r), name="C")
    return A, B, C


def tiled_schedule():
    """A schedule that uses every kind of primitive that the CPU target accepts."""
    A, B, C = matmul(9, 10, 11)
    sch = dlc.Schedule([A, B, C])
    CC = sch.cache_write(C, "local")
    AA = sch.cache_read(A, "local", [CC])
    i, j = sch.get_loops(C)
    io, jo, ii, ji = sch.tile(i, j, 4, 4)
    sch.compute_at(CC, jo)
    ci, cj, ck = sch.get_loops(CC)
    ko, ki = sch.split(ck, nparts=3)
    sch.reorder(ko, ci, ki, cj)
    sch.unroll(ki)
    sch.vectorize(cj)
    sch.compute_at(AA, ko)
    f = sch.fuse(io, jo)
    sch.parallel(f)
    sch.vectorize(ji)
    return (A, B, C), sch


def test_trace_records_every_primitive_in_order():
    _, sch = tiled_schedule()
    names = [r["primitive"] for r in sch.trace]
    assert names == ["cache_write", "cache_read", "tile", "compute_at", "split", "reorder",
                     "unroll", "vectorize", "compute_at", "fuse", "parallel", "vectorize"]
    assert sch.trace.records[2] == {"primitive": "tile", "stage": "C", "x": "i", "y": "j",
                                    "x_factor": 4, "y_factor": 4}
    assert "tile(stage='C', x='i', y='j', x_factor=4, y_factor=4)" in repr(sch.trace)


def test_trace_json_round_trip():
    _, sch = tiled_schedule()
    text = sch.trace.to_json()
    data = json.loads(text)
    assert data["version"] == TRACE_VERSION and len(data["primitives"]) == len(sch.trace)
    again = dlc.Trace.from_json(text)
    assert again == sch.trace and again.to_json() == text


def test_replayed_trace_gives_the_identical_loop_nest_and_result():
    args, sch = tiled_schedule()
    replayed = dlc.Schedule.from_trace(args, sch.trace.to_json())
    assert str(dlc.lower(replayed)) == str(dlc.lower(sch))
    printed = dlc.Schedule(args)
    exec(sch.trace.to_python(), {"sch": printed})
    assert printed.trace == sch.trace
    assert replayed.trace == sch.trace
    a, b = rand((9, 11), seed=1), rand((11, 10), seed=2)
    check(replayed, [a, b], a @ b, rtol=1e-4)


def test_replay_from_a_trace_object_and_on_fresh_tensors():
    _, sch = tiled_schedule()
    A, B, C = matmul(9, 10, 11)  # new tensors with the same names and shapes
    replayed = dlc.Schedule.from_trace([A, B, C], dlc.Trace(sch.trace.records))
    assert str(dlc.lower(replayed)) == str(dlc.lower(sch))


def test_trace_printed_as_python_replays_to_the_identical_loop_nest():
    args, sch = tiled_schedule()
    code = sch.trace.to_python()
    lines = code.splitlines()
    assert len(lines) == len(sch.trace)
    assert lines[2] == "sch.tile(sch.loop('C', 'i'), sch.loop('C', 'j'), 4, 4)"
    assert lines[4] == "sch.split(sch.loop('C.local', 'k'), nparts=3)"
    printed = dlc.Schedule(list(matmul(9, 10, 11)))
    exec(code, {"sch": printed})
    assert printed.trace == sch.trace and str(dlc.lower(printed)) == str(dlc.lower(sch))


def test_trace_printed_as_python_gpu_and_unknown_primitives():
    bind = dlc.Trace([{"primitive": "bind", "stage": "C", "loop": "i", "thread": "blockIdx.x"}])
    assert bind.to_python() == "sch.bind(sch.loop('C', 'i'), 'blockIdx.x')"
    with pytest.raises(dlc.ScheduleError, match="primitive 1 \\(swizzle\\): unknown primitive"):
        dlc.Trace(bind.records + [{"primitive": "swizzle", "stage": "C"}]).to_python()


@pytest.mark.parametrize("text, message", [
    ("not json", "trace is not valid JSON"),
    ("[]", "unsupported trace format"),
    ('{"version": 99, "primitives": []}', "unsupported trace format \\(expected version 1\\)"),
    ('{"version": 1}', "trace has no list of primitives"),
    ('{"version": 1, "primitives": [3]}', "trace has no list of primitives"),
])
def test_bad_json_is_a_schedule_error(text, message):
    with pytest.raises(dlc.ScheduleError, match=message):
        dlc.Trace.from_json(text)


@pytest.mark.parametrize("record, message", [
    ({"primitive": "swizzle", "stage": "C"}, "primitive 0 \\(swizzle\\): unknown primitive "
                                             "'swizzle' in trace"),
    ({"primitive": "split", "stage": "C", "loop": "q", "factor": 2},
     "primitive 0 \\(split\\): loop C.q does not exist: no such loop; loops are i, j, k"),
    ({"primitive": "split", "stage": "Z", "loop": "i", "factor": 2},
     "no tensor named 'Z' in this schedule"),
    ({"primitive": "split", "stage": "C", "loop": "i", "factor": 0}, "factor=0 must be at least"),
    ({"primitive": "split", "stage": "C", "loop": "i"}, "give exactly one of factor= or nparts="),
    ({"primitive": "reorder", "stage": "C", "loops": ["i", "i"]}, "a loop is listed twice"),
])
def test_bad_trace_records_raise_schedule_error(record, message):
    text = json.dumps({"version": TRACE_VERSION, "primitives": [record]})
    with pytest.raises(dlc.ScheduleError, match=message):
        dlc.Schedule.from_trace(list(matmul()), text)


def test_replay_reports_which_primitive_failed():
    A, B, C = matmul()
    sch = dlc.Schedule([A, B, C])
    i, _, _ = sch.get_loops(C)
    sch.split(i, factor=2)
    records = sch.trace.records + [{"primitive": "vectorize", "stage": "C", "loop": "i"}]
    text = json.dumps({"version": TRACE_VERSION, "primitives": records})
    with pytest.raises(dlc.ScheduleError, match="replaying primitive 1 \\(vectorize\\): loop C.i "
                       "does not exist: it was split into i.outer and i.inner"):
        dlc.Schedule.from_trace([A, B, C], text)


# -- random legal schedules ----------------------------------------------------------------
def workload(draw):
    """A small compute with a producer stage P; returns (args, inputs, reference, P, out)."""
    kind = draw(st.sampled_from(["elementwise", "matmul", "reduction", "stencil"]))
    dim = st.integers(1, 9)
    if kind == "elementwise":
        m, n = draw(dim), draw(dim)
        A = te.placeholder((m, n), name="A")
        B = te.placeholder((n,), name="B")
        P = te.compute((m, n), lambda i, j: A[i, j] * 2.0, name="P")
        C = te.compute((m, n), lambda i, j: P[i, j] + B[j], name="C")
        a, b = rand((m, n), seed=1), rand((n,), seed=2)
        return [A, B, C], [a, b], a * 2 + b, P, C
    if kind == "matmul":
        m, n, k = draw(dim), draw(dim), draw(dim)
        A = te.placeholder((m, k), name="A")
        B = te.placeholder((k, n), name="B")
        P = te.compute((m, k), lambda i, r: A[i, r] + 1.0, name="P")
        r = te.reduce_axis(k, "r")
        C = te.compute((m, n), lambda i, j: te.sum(P[i, r] * B[r, j], axis=r), name="C")
        a, b = rand((m, k), seed=3), rand((k, n), seed=4)
        return [A, B, C], [a, b], (a + 1) @ b, P, C
    if kind == "stencil":  # C reads a 3x2 window of P: P's region depends on the tile
        m, n = draw(dim), draw(dim)
        A = te.placeholder((m + 2, n + 1), name="A")
        P = te.compute((m + 2, n + 1), lambda i, j: A[i, j] * A[i, j], name="P")
        C = te.compute((m, n), lambda i, j: P[i, j] + P[i + 2, j + 1] - P[i + 1, j], name="C")
        a = rand((m + 2, n + 1), seed=6)
        p = a * a
        return [A, C], [a], p[:-2, :-1] + p[2:, 1:] - p[1:-1, :-1], P, C
    m, n = draw(dim), draw(dim)
    A = te.placeholder((m, n), name="A")
    r = te.reduce_axis(n, "r")
    P = te.compute((m,), lambda i: te.max(A[i, r], axis=r), name="P")
    C = te.compute((m, n), lambda i, j: A[i, j] - P[i], name="C")
    a = rand((m, n), seed=5)
    return [A, C], [a], a - a.max(1, keepdims=True), P, C


def shape_loops(draw, sch, t):
    """Random splits, a reorder and fuses of adjacent loops of the same kind."""
    for _ in range(draw(st.integers(0, 3))):
        loops = sch.get_loops(t)
        loop = draw(st.sampled_from(loops))
        amount = draw(st.integers(1, loop.extent + 2))
        if draw(st.booleans()):
            sch.split(loop, factor=amount)
        else:
            sch.split(loop, nparts=amount)
    if draw(st.booleans()):
        loops = sch.get_loops(t)
        sch.reorder(*draw(st.permutations(loops)))
    for _ in range(draw(st.integers(0, 2))):
        loops = sch.get_loops(t)
        stage = sch[t]
        pairs = [k for k in range(len(loops) - 1)
                 if stage.leaves[k].is_reduce == stage.leaves[k + 1].is_reduce]
        if pairs:
            k = draw(st.sampled_from(pairs))
            sch.fuse(loops[k], loops[k + 1])


def annotate(draw, sch, t, allow_parallel, vector_ok):
    stage = sch[t]
    loops = sch.get_loops(t)
    last = stage.leaves[-1]
    if vector_ok and not last.is_reduce and last.extent <= 64 and draw(st.booleans()):
        sch.vectorize(loops[-1])
    for loop, lv in zip(loops[:-1], stage.leaves[:-1]):
        if lv.extent <= 6 and draw(st.integers(0, 3)) == 0:
            sch.unroll(loop)
    first = stage.leaves[0]
    if allow_parallel and not first.is_reduce and first.kind is dlc.ForKind.SERIAL \
            and draw(st.booleans()):
        sch.parallel(loops[0])


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_random_legal_schedule(data):
    draw = data.draw
    args, inputs, ref, P, C = workload(draw)
    sch = dlc.Schedule(args)
    shape_loops(draw, sch, C)
    placement = draw(st.sampled_from(["root", "at", "inline"]))
    if placement == "inline" and P.op.reduce_axes:
        placement = "root"
    consumer_loops = sch.get_loops(C)
    at = draw(st.integers(0, len(consumer_loops) - 1)) if placement == "at" else None
    # a vectorized loop cannot contain a stage computed inside it
    annotate(draw, sch, C, allow_parallel=True, vector_ok=at != len(consumer_loops) - 1)
    if placement == "at":
        sch.compute_at(P, consumer_loops[at])
    elif placement == "inline":
        sch.compute_inline(P)
    if placement != "inline":
        shape_loops(draw, sch, P)
        annotate(draw, sch, P, allow_parallel=placement == "root", vector_ok=True)
    check(sch, inputs, ref, rtol=1e-4, atol=1e-5)
    replayed = dlc.Schedule.from_trace(args, sch.trace.to_json())
    assert str(dlc.lower(replayed)) == str(dlc.lower(sch))
    printed = dlc.Schedule(args)
    exec(sch.trace.to_python(), {"sch": printed})
    assert printed.trace == sch.trace
