"""Shared helpers for tests of tensor expressions and schedules.

``check(sch, inputs, expected)`` runs a schedule twice, through the loop-IR interpreter
(``dlc.tir.interpreter.run(dlc.lower(sch), ...)``) and through native code
(``dlc.build(sch)``), and compares every output with its NumPy reference. Outputs start
filled with garbage (NaN for floats) so an element the code forgets to write fails.
"""

from __future__ import annotations

import numpy as np

import dlc
from dlc import dtypes
from dlc.tir import interpreter

#: A target with AVX-512 (16 float32 lanes, 32 vector registers) for tests that check the
#: structure of loop nests or layouts written for it: they lower and build for it, never
#: run its code (the host may lack AVX-512).
AVX512 = "llvm -mcpu=sapphirerapids"


def rand(shape, dtype="float32", seed=0, low=-2, high=3):
    """Random data of a dtype: uniform floats in [-1, 1), integers in [low, high)."""
    rng = np.random.default_rng(seed)
    if dtypes.is_float(dtype):
        return rng.uniform(-1, 1, size=shape).astype(dtype)
    if dtype == "bool":
        return rng.integers(0, 2, size=shape).astype(bool)
    return rng.integers(low, high, size=shape).astype(dtype)


def output_names(sch) -> list[str]:
    return [name for name in sch.args if name not in sch.placeholders]


def garbage_outputs(sch) -> list[np.ndarray]:
    outs = []
    for name in output_names(sch):
        op = sch.stages[name].op
        dt = dtypes.to_numpy(op.dtype)
        fill = np.nan if dtypes.is_float(op.dtype) else 0x5A
        outs.append(np.full(op.shape, fill).astype(dt))
    return outs


def _assert_close(got, want, what, rtol, atol):
    want = np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if np.issubdtype(got.dtype, np.floating):
        np.testing.assert_allclose(got, want.astype(got.dtype), rtol=rtol, atol=atol,
                                   err_msg=what)
    else:
        np.testing.assert_array_equal(got, want.astype(got.dtype), err_msg=what)


def run_interpreter(sch_or_func, inputs) -> list[np.ndarray]:
    func = sch_or_func if isinstance(sch_or_func, dlc.tir.stmt.PrimFunc) \
        else dlc.lower(sch_or_func)
    outs = garbage_outputs(sch_or_func) if isinstance(sch_or_func, dlc.Schedule) else None
    interpreter.run(func, *inputs, *outs)
    return outs


def run_native(sch, inputs) -> list[np.ndarray]:
    mod = dlc.build(sch)
    outs = garbage_outputs(sch)
    mod(*inputs, *outs)
    return outs


def check(sch, inputs, expected, rtol=1e-5, atol=1e-5, native=True, interp=True):
    """Run ``sch`` on ``inputs`` (the placeholder arrays, in argument order) through the
    interpreter and native code; compare outputs with ``expected`` (an array or a list)."""
    if not isinstance(expected, (list, tuple)):
        expected = [expected]
    inputs = [np.asarray(x, order="C") for x in inputs]
    names = output_names(sch)
    assert len(expected) == len(names), f"{len(names)} outputs but {len(expected)} references"
    if interp:
        for name, got, want in zip(names, run_interpreter(sch, inputs), expected):
            _assert_close(got, want, f"interpreter, output {name}\n{dlc.lower(sch)}", rtol, atol)
    if native:
        for name, got, want in zip(names, run_native(sch, inputs), expected):
            _assert_close(got, want, f"native, output {name}\n{dlc.lower(sch)}", rtol, atol)


def loop_lines(text: str) -> list[str]:
    """The ``for`` lines of printed loop IR, stripped."""
    return [line.strip() for line in text.splitlines() if line.strip().startswith("for ")]


# -- workloads: (tensors..., NumPy reference) -----------------------------------------------
def matmul(m, n, k, dtype="float32"):
    """``C[i, j] = sum_k A[i, k] * B[k, j]``; returns (A, B, C, inputs, reference)."""
    from dlc import te

    A = te.placeholder((m, k), dtype, name="A")
    B = te.placeholder((k, n), dtype, name="B")
    r = te.reduce_axis(k, "k")
    C = te.compute((m, n), lambda i, j: te.sum(A[i, r] * B[r, j], axis=r), name="C")
    a, b = rand((m, k), dtype, seed=1), rand((k, n), dtype, seed=2)
    return A, B, C, [a, b], a.astype("float64") @ b.astype("float64")


def add2d(m, n, dtype="float32"):
    """``C[i, j] = A[i, j] + B[j]`` (B broadcast over rows)."""
    from dlc import te

    A = te.placeholder((m, n), dtype, name="A")
    B = te.placeholder((n,), dtype, name="B")
    C = te.compute((m, n), lambda i, j: A[i, j] + B[j], name="C")
    a, b = rand((m, n), dtype, seed=3), rand((n,), dtype, seed=4)
    return A, B, C, [a, b], a + b


def race(work, threads: int, switch_interval: float = 1e-6) -> None:
    """Run ``work(k)`` for k in range(threads), each in its own thread, all released at
    once and with the interpreter switching threads every ``switch_interval`` seconds, so
    that unguarded shared state shows its races."""
    import sys
    import threading

    start = threading.Barrier(threads)

    def run(k):
        start.wait()
        work(k)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(switch_interval)
    try:
        workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
    finally:
        sys.setswitchinterval(interval)
