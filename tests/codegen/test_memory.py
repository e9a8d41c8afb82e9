"""Memory access in generated code: gathers and scatters (vector loads and stores with
non-unit strides), masked lanes, guarded reads that would be out of bounds (padding), and
scratch buffers on the stack and the heap. Each case runs natively and in the interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import dlc
from dlc import te
from dlc.build import prepare
from dlc.codegen.llvm.codegen import STACK_LIMIT
from dlc.tir import interpreter
from dlc.tir.schedule.to_loops import schedule_to_loops

DTYPES = ("float32", "float64", "float16", "bfloat16", "int8", "int64", "uint8", "bool")


def _data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    return rng.integers(-100, 100, shape).astype(dlc.dtypes.to_numpy(dtype)) \
        if dtype != "uint8" else rng.integers(0, 255, shape).astype(np.uint8)


def _run_both(sch, func, inputs, out_shape, out_dtype):
    """Outputs of native code and of the interpreter, starting from garbage."""
    results = []
    for engine in ("native", "interpreter"):
        out = np.full(out_shape, 0x5A).astype(dlc.dtypes.to_numpy(out_dtype))
        if engine == "native":
            dlc.build(func)(*inputs, out)
        else:
            interpreter.run(func, *inputs, out)
        results.append(out)
    return results


@pytest.mark.parametrize("dtype", DTYPES)
def test_gather_transposed_read(dtype):
    """B[i, j] = A[j, i] with j vectorized: A is read with stride 12 (a gather)."""
    A = te.placeholder((5, 12), dtype, name="A")
    B = te.compute((12, 5), lambda i, j: A[j, i], name="B")
    sch = dlc.Schedule([A, B])
    _, j = sch.get_loops(B)
    sch.vectorize(j)
    func = dlc.lower(sch)
    assert "A[ramp(i, 12, 5)]" in str(prepare(func))
    a = _data((5, 12), dtype)
    for got in _run_both(sch, func, [a], (12, 5), dtype):
        np.testing.assert_array_equal(got, a.T)


@pytest.mark.parametrize("dtype", DTYPES)
def test_scatter_strided_write(dtype):
    """B[i, j] = A[j, i] with i vectorized: B is written with stride 5 (a scatter)."""
    A = te.placeholder((5, 12), dtype, name="A")
    B = te.compute((12, 5), lambda i, j: A[j, i] + A[j, i] if dtype != "bool" else A[j, i],
                   name="B")
    sch = dlc.Schedule([A, B])
    i, j = sch.get_loops(B)
    io, ii = sch.split(i, factor=4)
    sch.reorder(io, j, ii)
    sch.vectorize(ii)
    assert "B[ramp(i.outer * 20 + j, 5, 4)]" in str(prepare(dlc.lower(sch)))
    a = _data((5, 12), dtype)
    want = (a.T + a.T) if dtype != "bool" else a.T
    for got in _run_both(sch, dlc.lower(sch), [a], (12, 5), dtype):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", ("float32", "int8", "bfloat16", "bool"))
def test_masked_gather_and_scatter(dtype):
    """As above with 13 rows split by 4 and no loop partitioning: the last vector has one
    live lane, so both the gather and the scatter are masked."""
    A = te.placeholder((5, 13), dtype, name="A")
    B = te.compute((13, 5), lambda i, j: A[j, i], name="B")
    sch = dlc.Schedule([A, B])
    i, j = sch.get_loops(B)
    io, ii = sch.split(i, factor=4)
    sch.reorder(io, j, ii)
    sch.vectorize(ii)
    func = schedule_to_loops(sch)
    a = _data((5, 13), dtype)
    for got in _run_both(sch, func, [a], (13, 5), dtype):
        np.testing.assert_array_equal(got, a.T)


@pytest.mark.parametrize("how", ["scalar", "vector", "masked", "unroll"])
def test_padding_never_reads_out_of_bounds(how):
    """P[i] = A[i - 2] inside, -1 outside: the guarded read must not happen for the border
    (A[-2] and A[30] are outside the array: reading them could fault or give garbage)."""
    A = te.placeholder((30,), "float32", name="A")
    P = te.compute((34,), lambda i: te.if_then_else(te.all(i >= 2, i < 32), A[i - 2],
                                                    te.const(-1.0)), name="P")
    sch = dlc.Schedule([A, P])
    (i,) = sch.get_loops(P)
    if how != "scalar":
        _, ii = sch.split(i, factor=8 if how != "unroll" else 4)
        if how == "unroll":
            sch.unroll(ii)
        else:
            sch.vectorize(ii)
    func = schedule_to_loops(sch) if how == "masked" else dlc.lower(sch)
    a = np.arange(30, dtype=np.float32)
    want = np.concatenate([[-1, -1], a, [-1, -1]]).astype(np.float32)
    for got in _run_both(sch, func, [a], (34,), "float32"):
        np.testing.assert_array_equal(got, want)


_PAGE_EDGE = textwrap.dedent("""
    import ctypes, json, mmap, sys
    import numpy as np
    import dlc
    from dlc import te
    from dlc.tir.schedule.to_loops import schedule_to_loops

    PAGE = mmap.PAGESIZE
    n = PAGE // 4
    memory = mmap.mmap(-1, 3 * PAGE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(memory))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    for page in (0, 2):  # guard pages: touching them is a segmentation fault
        assert libc.mprotect(base + page * PAGE, PAGE, 0) == 0, ctypes.get_errno()
    a = np.frombuffer(memory, np.float32, count=n, offset=PAGE)
    a[:] = np.arange(n, dtype=np.float32)

    results = {}
    for how in ("scalar", "vector", "masked"):
        A = te.placeholder((n,), "float32", name="A")
        P = te.compute((n + 4,), lambda i: te.if_then_else(te.all(i >= 2, i < n + 2),
                                                           A[i - 2], te.const(-1.0)), name="P")
        sch = dlc.Schedule([A, P])
        if how != "scalar":
            (i,) = sch.get_loops(P)
            sch.vectorize(sch.split(i, factor=16)[1])
        mod = dlc.build(schedule_to_loops(sch) if how == "masked" else sch)
        p = np.zeros(n + 4, np.float32)
        mod(a, p)
        results[how] = bool((p[2:n + 2] == a).all() and (p[:2] == -1).all()
                            and (p[n + 2:] == -1).all())
    print(json.dumps(results))
""")


def test_padding_reads_stay_inside_guarded_pages():
    """The padded input fills one page between two inaccessible pages: any read of A[-2] or
    A[n] (a missing guard, an unmasked vector lane) kills the process. In a subprocess, so
    that a crash is a test failure."""
    proc = subprocess.run([sys.executable, "-c", _PAGE_EDGE], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {
        "scalar": True, "vector": True, "masked": True}


@pytest.mark.parametrize("n", [100, STACK_LIMIT // 4 + 16])
def test_top_level_scratch_stack_and_heap(n):
    """A stage computed at the root lives on the stack up to 64 KiB, on the heap above."""
    A = te.placeholder((n,), "float32", name="A")
    T = te.compute((n,), lambda i: A[i] * 3.0, name="T")
    B = te.compute((n,), lambda i: T[n - 1 - i] - A[i], name="B")
    sch = dlc.Schedule([A, B])
    mod = dlc.build(sch)
    assert ("aligned_alloc" in mod.get_source("ll")) == (n * 4 > STACK_LIMIT)
    a = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    b = np.full_like(a, np.nan)
    for _ in range(3):  # and it is freed: calling again reuses nothing stale
        mod(a, b)
        np.testing.assert_array_equal(b, a[::-1] * 3 - a)


@pytest.mark.parametrize("dtype", ("bool", "bfloat16", "float16", "int8"))
def test_narrow_scratch_buffers(dtype):
    """Scratch of 1- and 2-byte dtypes (bool stored as a byte, bfloat16 as its upper half)."""
    A = te.placeholder((37,), dtype, name="A")
    T = te.compute((37,), lambda i: A[i], name="T")
    B = te.compute((37,), lambda i: T[36 - i], name="B")
    sch = dlc.Schedule([A, B])
    (i,) = sch.get_loops(B)
    _, ii = sch.split(i, factor=8)
    sch.vectorize(ii)
    a = _data(37, dtype)
    for got in _run_both(sch, dlc.lower(sch), [a], (37,), dtype):
        np.testing.assert_array_equal(got, a[::-1])
