"""Measurement no candidate can kill: real kernels that segfault, hang, compute a wrong result
or fail to build are recorded with their error class, and the next candidate is measured."""

import os
import statistics
import time

import numpy as np
import pytest
from helpers import rand

import dlc
from dlc import te
from dlc.autotune.measure import ERROR_CLASSES, Builder, Built, MeasureResult, Runner, measure
from dlc.autotune.verify import compare_outputs
from dlc.errors import ArgumentError, DlcError
from dlc.expr import nodes as n
from dlc.tir import stmt as s

N = 64


# Candidates -------------------------------------------------------------------------------
def scaled(factor: int, name: str = "scale", parallel: bool = False):
    """B = A * factor over a 64 x 64 float32 array (rows in parallel if asked)."""
    A = te.placeholder((N, N), "float32", name="A")
    B = te.compute((N, N), lambda i, j: A[i, j] * factor, name="B")
    sch = dlc.Schedule([A, B], name=name)
    if parallel:
        sch.parallel(sch.get_loops(B)[0])
    return dlc.lower(sch)


def _buffers():
    return n.Buffer("A", (N, N), "float32"), n.Buffer("B", (N, N), "float32")


def segfault():
    """Writes B[2**34, 0], 2**42 bytes past B: far past any mapping, so the process dies
    with SIGSEGV."""
    A, B = _buffers()
    store = s.BufferStore(B, n.BufferLoad(A, (n.const(0), n.const(0))),
                          (n.const(2**34), n.const(0)))
    return s.PrimFunc("segfault", (A, B), store)


def hang():
    """A loop of 2**40 iterations that LLVM cannot fold (each reads the last store)."""
    A, B = _buffers()
    i = n.Var("i")
    row, col = n.FloorMod(n.FloorDiv(i, n.const(N)), n.const(N)), n.FloorMod(i, n.const(N))
    value = n.Add(n.BufferLoad(B, (row, col)), n.BufferLoad(A, (row, col)))
    loop = s.For(i, n.const(0), n.const(2**40), s.ForKind.SERIAL,
                 s.BufferStore(B, value, (row, col)))
    return s.PrimFunc("hang", (A, B), loop)


def half_written():
    """Writes only the first half of the rows of B."""
    A, B = _buffers()
    i, j = n.Var("i"), n.Var("j")
    store = s.BufferStore(B, n.BufferLoad(A, (i, j)), (i, j))
    loops = s.For(i, n.const(0), n.const(N // 2), s.ForKind.SERIAL,
                  s.For(j, n.const(0), n.const(N), s.ForKind.SERIAL, store))
    return s.PrimFunc("half", (A, B), loops)


def thread_bound():
    """A GPU-bound loop, which the llvm (CPU) target refuses to build."""
    A, B = _buffers()
    i = n.Var("i")
    store = s.BufferStore(B, n.BufferLoad(A, (i, n.const(0))), (i, n.const(0)))
    loop = s.For(i, n.const(0), n.const(N), s.ForKind.THREAD_BINDING, store,
                 thread_tag="threadIdx.x")
    return s.PrimFunc("bound", (A, B), loop)


class KillsBuildProcess:
    """Unpickled in a build process, exits it at once, like a crash inside LLVM."""

    def __reduce__(self):
        return os._exit, (3,)


class SlowBuild:
    """Unpickled in a build process, sleeps for a minute, like a build that never ends."""

    def __reduce__(self):
        return time.sleep, (60,)


@pytest.fixture(scope="module")
def builder():
    with Builder("llvm", workers=2) as b:
        yield b


@pytest.fixture(scope="module")
def runner():
    with Runner(threads=2, timeout=1.0) as r:
        yield r


@pytest.fixture(scope="module")
def data():
    a = rand((N, N), seed=5)
    return [a], [a * 2]


def build_one(builder, func):
    (built,) = builder.build([func])
    assert isinstance(built, Built), built
    return built


def assert_measured(result: MeasureResult):
    assert result.error is None, result
    assert len(result.seconds) >= 5
    assert all(t > 0 for t in result.seconds)
    assert result.median == statistics.median(result.seconds)
    assert result.build_seconds > 0


# Tests ------------------------------------------------------------------------------------
def test_correct_kernel_is_checked_and_timed(builder, runner, data):
    built = build_one(builder, scaled(2, parallel=True))  # libgomp in a spawned process
    assert built.metadata["functions"][0]["name"] == built.name == "scale"
    assert_measured(runner.run(built, *data))


def test_default_schedule_outputs_serve_as_reference(builder, runner, data):
    default, wrong = builder.build([scaled(2), scaled(3)])
    result = runner.run(default, data[0], None, keep_outputs=True)
    assert_measured(result)
    np.testing.assert_array_equal(result.outputs[0], data[1][0])
    assert runner.run(wrong, data[0], result.outputs).error == "wrong_result"
    assert runner.run(default, *data).outputs is None


def test_measuring_process_runs_parallel_loops_on_the_threads_asked(builder, runner, data):
    built = build_one(builder, scaled(2, parallel=True))
    with Runner(threads=1) as alone:
        for r, threads in ((alone, 1), (runner, 2)):
            assert r.run(built, *data).error is None
            # the main thread and libgomp's workers (NumPy's BLAS is kept to the main one)
            assert len(os.listdir(f"/proc/{r.pid}/task")) == threads


def test_segfault_is_a_runtime_crash_and_the_next_candidate_runs(builder, runner, data):
    crash, good = builder.build([segfault(), scaled(2)])
    runner.run(good, *data)  # the process is up
    started = runner.processes_started
    result = runner.run(crash, *data)
    assert result.error == "runtime_crash" and result.seconds == []
    assert "SIGSEGV" in result.message
    assert_measured(runner.run(good, *data))
    assert runner.processes_started == started + 1


def test_hang_times_out_and_the_next_candidate_runs(builder, runner, data):
    stuck, good = builder.build([hang(), scaled(2)])
    runner.run(good, *data)  # the process is up
    started = runner.processes_started
    result = runner.run(stuck, *data)
    assert result.error == "timeout" and result.seconds == []
    assert "no answer within 1 s" in result.message
    assert_measured(runner.run(good, *data))
    assert runner.processes_started == started + 1


def test_wrong_result_names_worst_element_and_the_process_is_kept(builder, runner, data):
    wrong, good = builder.build([scaled(3), scaled(2)])
    runner.run(good, *data)  # the process is up
    started = runner.processes_started
    a = data[0][0]
    result = runner.run(wrong, [a], [a * 2])
    assert result.error == "wrong_result" and result.seconds == []
    worst = tuple(int(i) for i in np.unravel_index(np.argmax(np.abs(a)), a.shape))  # 3a - 2a
    assert result.message.startswith(f"output B{list(worst)} = {a[worst] * 3:.6g}, expected "
                                     f"{a[worst] * 2:.6g};")
    assert f"of {N * N} elements differ" in result.message
    assert_measured(runner.run(good, *data))
    assert runner.processes_started == started  # a wrong result kills nothing


def test_unwritten_output_is_a_wrong_result(builder, runner, data):
    result = runner.run(build_one(builder, half_written()), data[0], [data[0][0].copy()])
    assert result.error == "wrong_result"
    assert f"output B[{N // 2}, 0] = nan" in result.message
    assert "never written" in result.message


def test_build_error_is_recorded_not_raised(builder, runner, data):
    bad, good = builder.build([thread_bound(), scaled(2)])
    assert bad.error == "build_error" and bad.seconds == []
    assert bad.message.startswith("TargetError: loop i is bound to threadIdx.x")
    assert "\n" not in bad.message
    assert runner.run(bad, *data) is bad
    assert isinstance(good, Built)


def test_dying_build_process_is_replaced_and_blamed_alone(builder):
    first, killer, last = builder.build([scaled(2, "k1"), KillsBuildProcess(),
                                         scaled(2, "k2")])
    assert killer.error == "build_error" and "died" in killer.message
    assert isinstance(first, Built) and isinstance(last, Built)
    assert isinstance(build_one(builder, scaled(2)), Built)


@pytest.mark.tune
def test_build_that_takes_too_long_is_stopped(builder, data):
    build_one(builder, scaled(2))  # the pool is up
    builder.timeout = 2.0
    try:
        slow, good = builder.build([SlowBuild(), scaled(2)])
    finally:
        builder.timeout = 120.0
    assert slow.error == "build_error" and "longer than 2 s" in slow.message
    assert isinstance(good, Built)


def test_slow_candidate_stops_early(builder, runner, data):
    A = te.placeholder((N, N), "float32", name="A")
    r = te.reduce_axis(1024, "r")  # B = A * 2 too, summed in 1024 steps of A * 2**-9
    B = te.compute((N, N), lambda i, j: te.sum(A[i, j] * (2 / 1024), axis=r), name="B")
    slow = dlc.lower(dlc.Schedule([A, B], name="slow"))
    results = measure([scaled(2), slow], *data, builder, runner, slow_factor=3.0)
    fast, stopped = results
    assert fast.error is None, fast
    assert stopped.error == "stopped_early", (fast, stopped)
    assert len(stopped.seconds) == 1 and stopped.seconds[0] > 3 * fast.median
    assert "over the limit" in stopped.message
    # checked before it was stopped: a wrong slow kernel is a wrong result
    wrong = measure([slow], data[0], [data[0][0] * 3], builder, runner, slow_after=1e-9)
    assert wrong[0].error == "wrong_result"


def test_measure_goes_on_after_every_kind_of_fault(builder, runner, data):
    funcs = [scaled(2), segfault(), scaled(3), thread_bound(), scaled(2, "again")]
    results = measure(funcs, *data, builder, runner)
    assert [r.error for r in results] == [None, "runtime_crash", "wrong_result", "build_error",
                                          None]
    assert {r.error for r in results} <= set(ERROR_CLASSES) | {None}
    assert all(r.build_seconds > 0 for r in results)
    assert results[4].median > 0


def test_caller_mistakes_raise(builder, runner, data):
    built = build_one(builder, scaled(2))
    with pytest.raises(ArgumentError, match="takes 1 input arrays, got 2"):
        runner.run(built, data[0] * 2, None)
    with pytest.raises(ArgumentError, match="must have dtype float32"):
        runner.run(built, [data[0][0].astype("float64")], None)
    assert runner.run(built, data[0], None).error is None  # unchecked, same process
    with pytest.raises(DlcError, match="warmup must be at least 1"):
        Runner(threads=1, warmup=0)
    with pytest.raises(DlcError, match="unknown measurement error class"):
        MeasureResult(error="segfault")


# Output comparison ------------------------------------------------------------------------
def test_float_comparison_tolerates_rounding_relative_to_magnitude():
    ref = np.array([1000.0, 1.0, -5.0, 0.0], "float32")
    close = ref + np.array([0.5, 0.5, -0.5, 0.5], "float32")  # atol = 1e-3 * 1000 = 1
    assert compare_outputs([close], [ref], ["Y"]) is None
    far = ref.copy()
    far[2] = -7.0
    assert compare_outputs([far], [ref], ["Y"]).startswith("output Y[2] = -7, expected -5; 1 of")


def test_float_comparison_wants_nan_exactly_where_the_reference_has_it():
    ref = np.array([np.nan, 1.0, np.inf], "float32")
    assert compare_outputs([ref.copy()], [ref], ["Y"]) is None
    assert "Y[0] = 1, expected nan" in compare_outputs([np.array([1, 1, np.inf], "float32")],
                                                       [ref], ["Y"])
    assert "Y[1] = nan" in compare_outputs([np.array([np.nan, np.nan, np.inf], "float32")],
                                           [ref], ["Y"])


def test_low_precision_floats_compare_looser():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    ref = np.array([1.0, 2.0, 4.0], "float32")
    off = ref * 1.008  # 0.8 %: too far for float32, fine for float16 and bfloat16
    assert compare_outputs([off], [ref], ["Y"]) is not None
    assert compare_outputs([off.astype("float16")], [ref], ["Y"]) is None
    bf16 = ml_dtypes.bfloat16
    assert compare_outputs([off.astype(bf16)], [ref.astype(bf16)], ["Y"]) is None
    assert compare_outputs([(ref * 1.1).astype(bf16)], [ref.astype(bf16)], ["Y"]) is not None


def test_integers_and_bools_compare_exactly_and_unwritten_ones_are_caught():
    ref = np.arange(6, dtype="int32").reshape(2, 3)
    out = ref.copy()
    out[1, 2] += 1
    assert compare_outputs([ref.copy()], [ref], ["Y"]) is None
    assert compare_outputs([out], [ref], ["Y"]).startswith("output Y[1, 2] = 6, expected 5")
    flags = np.array([True, False])
    unset = flags.copy()
    unset.view(np.uint8)[1] = 0xA5
    assert "Y[1] = 165, expected False (never written?)" in compare_outputs([unset], [flags],
                                                                            ["Y"])
