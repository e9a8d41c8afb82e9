"""The hand-written CPU GEMM schedule of benchmarks/gemm_cpu.py stays correct and fast.

``dlc.schedules.cpu.gemm.gemm_schedule`` is checked against NumPy at sizes that its block
sizes do not divide (padded panels, partitioned edges, a partial reduction slice), and its
micro-kernel is checked to keep the tile of C in vector registers."""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import check, rand

import dlc
from dlc.schedules.cpu.gemm import gemm_schedule, gemm_tensors, naive_schedule

# Small blocks so that a small problem still has several blocks, slices and edges.
SMALL_BLOCKS = dict(mr=4, nr=16, kc=16, mc=8, nc=32)


def _inputs(m, n, k):
    return [rand((m, k), seed=1), rand((k, n), seed=2)]


def _reference(a, b):
    return a.astype("float64") @ b.astype("float64")


@pytest.mark.parametrize("m, n, k", [(37, 70, 45), (8, 32, 16), (1, 1, 1), (5, 100, 3)])
def test_awkward_sizes_match_numpy(m, n, k):
    sch, _ = gemm_schedule(m, n, k, **SMALL_BLOCKS)
    a, b = _inputs(m, n, k)
    check(sch, [a, b], _reference(a, b), rtol=1e-5, atol=1e-5, interp=False)


def test_interpreter_agrees():
    """The loop IR itself (not only LLVM's reading of it) computes the product."""
    sch, _ = gemm_schedule(11, 20, 9, **SMALL_BLOCKS)
    a, b = _inputs(11, 20, 9)
    check(sch, [a, b], _reference(a, b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("m, n, k", [(100, 200, 300), (150, 40, 700)])
def test_default_blocks_any_thread_count(m, n, k, threads):
    """Threads share the blocks of columns, or (one block of columns) the blocks of rows."""
    sch, _ = gemm_schedule(m, n, k)
    mod = dlc.build(sch)
    mod.set_num_threads(threads)
    a, b = _inputs(m, n, k)
    c = np.full((m, n), np.nan, np.float32)
    mod(a, b, c)
    np.testing.assert_allclose(c, _reference(a, b), rtol=1e-4, atol=1e-4)


def test_naive_schedule_matches_numpy():
    sch, _ = naive_schedule(13, 7, 5)
    a, b = _inputs(13, 7, 5)
    check(sch, [a, b], _reference(a, b), rtol=1e-5, atol=1e-5)


def test_micro_kernel_keeps_the_tile_in_registers():
    """The innermost loop is FMAs on zmm registers with no store: LLVM promoted the tile
    of C to registers."""
    sch, _ = gemm_schedule(256, 256, 256)
    _check_register_tile(dlc.build(sch, target="llvm -mcpu=znver4"))


def test_tile_in_registers_with_shared_packed_b():
    """The threads share one packed B, allocated outside the parallel loop: its pointer
    reaches the parallel body through the closure, and only because the body's buffers
    are noalias may LLVM keep the tile of C in registers across the loads of B."""
    A, B, Ap, Bp, C = gemm_tensors(512, 512, 512, "float32", mr=8, nr=32)
    sch = dlc.Schedule([A, B, C])
    i, j, k = sch.get_loops(C)
    ic, i = sch.split(i, factor=128)
    ko, ki = sch.split(k, factor=256)
    ir, ii = sch.split(i, factor=8)
    jr, ji = sch.split(j, factor=32)
    sch.reorder(ko, ic, jr, ir, ki, ii, ji)
    sch.unroll(ii)
    sch.vectorize(ji)
    sch.compute_at(Bp, ko)
    sch.compute_at(Ap, ic)
    sch.parallel(ic)
    _check_register_tile(dlc.build(sch, target="llvm -mcpu=znver4"))


def _check_register_tile(mod):
    kernel = max(_loops(mod.get_source("asm")), key=lambda body: body.count("vfmadd231ps"))
    assert kernel.count("vfmadd231ps") >= 16, kernel
    assert "%zmm" in kernel
    stores = [line for line in kernel.splitlines()
              if re.match(r"\s*vmov\w*\s+%[xyz]mm\d+, .*\(", line)]
    assert not stores, "the micro-kernel stores to memory:\n" + "\n".join(stores)


def _loops(asm: str) -> list[str]:
    """The bodies of the innermost assembly loops: from a label to the jump back to it,
    with no label in between."""
    bodies = []
    for match in re.finditer(r"^(\.LBB\w+):", asm, re.M):
        label = match.group(1)
        back = re.search(rf"^\s*j\w+\s+{re.escape(label)}$", asm[match.end():], re.M)
        if back:
            body = asm[match.end():match.end() + back.start()]
            if not re.search(r"^\.LBB", body, re.M):
                bodies.append(body)
    return bodies
