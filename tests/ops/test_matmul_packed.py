"""float32 MatMul with a B known only at run time: the packed, blocked path
(``dlc.ops.matmul.packed_matmul`` scheduled by ``dlc.schedules.cpu.matmul``).

Compiled graphs are checked against NumPy at shapes that the blocks do not divide (rows,
columns, reduction), with size-1 and broadcast batch dimensions, M = 1, K = 1, with and
without a fused epilogue, with B read in place and packed, and with small blocks so that a
small product still has several blocks, slices, panels and edges. The default blocks are
checked to give the big products their micro-kernel, and other dtypes the plain path."""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import AVX512

import dlc
import dlc.schedules.cpu.matmul as matmul_schedule
from dlc.compile import inspect_stage
from dlc.graph.builder import GraphBuilder
from dlc.ops.matmul import packs_b

SHAPES = [
    ((1, 1), (1, 1)),
    ((1, 7), (7, 33)),                     # M = 1
    ((5, 1), (1, 20)),                     # K = 1
    ((3, 9), (9, 1)),                      # N = 1
    ((37, 45), (45, 70)),                  # nothing divides
    ((200, 70), (70, 130)),
    ((2, 3, 4, 5), (5, 6)),                # B broadcast over A's batch
    ((4, 5), (3, 1, 5, 6)),                # A broadcast over B's batch
    ((2, 1, 13, 9), (1, 3, 9, 20)),        # both broadcast
    ((1, 3, 20, 16), (1, 3, 16, 20)),      # attention-like, small
    ((1030, 17), (17, 33)),                # two row blocks
]

# Small blocks so that a small product still has several blocks, slices and edges.
SMALL_BLOCKS = dict(K_SLICE=16, COL_BLOCK=32, ROW_BLOCK=24, A_BLOCK_BYTES=4 * 16 * 12)


def _rand(shape, seed):
    return np.random.default_rng(seed).uniform(-1, 1, size=shape).astype(np.float32)


def _compile(a_shape, b_shape, epilogue: bool, multi_output: bool = False,
             dtype: str = "float32"):
    """MatMul(a, b), with ``* 0.5 + m`` (m: one value per column) as epilogue; with
    ``multi_output`` the scaled product is an output too."""
    g = GraphBuilder("t")
    out = g.op("MatMul", g.input("a", a_shape, dtype), g.input("b", b_shape, dtype))
    n = np.matmul(np.zeros(a_shape), np.zeros(b_shape)).shape[-1]
    if epilogue:
        scaled = g.op("Mul", out, g.constant(np.array(0.5, dtype)))
        out = g.op("Add", scaled, g.input("m", (n,), dtype))
        if multi_output:
            g.output(scaled)
    g.output(out)
    return dlc.compile(g.build())


def _check(a_shape, b_shape, epilogue: bool, threads: int = 2, multi_output: bool = False):
    a, b = _rand(a_shape, 1), _rand(b_shape, 2)
    want = np.matmul(a.astype(np.float64), b.astype(np.float64))
    feeds = [a, b]
    wants = [want]
    if epilogue:
        m = _rand(want.shape[-1:], 3)
        feeds.append(m)
        wants = [want * 0.5, want * 0.5 + m] if multi_output else [want * 0.5 + m]
    compiled = _compile(a_shape, b_shape, epilogue, multi_output)
    compiled.module.set_num_threads(threads)
    got = compiled.run(*feeds)
    assert len(got) == len(wants)
    for g, w in zip(got, wants):
        assert g.shape == w.shape and g.dtype == np.float32
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("a_shape, b_shape", SHAPES)
@pytest.mark.parametrize("epilogue", [False, True])
def test_matches_numpy(a_shape, b_shape, epilogue):
    _check(a_shape, b_shape, epilogue)


@pytest.mark.parametrize("a_shape, b_shape", SHAPES)
@pytest.mark.parametrize("epilogue", [False, True])
def test_small_blocks_packed_match_numpy(monkeypatch, a_shape, b_shape, epilogue):
    """Every block size smaller than the product, B packed whatever the rows, and the
    blocks in parallel however little the work."""
    for name, value in dict(SMALL_BLOCKS, PACK_ROWS=1, PARALLEL_MIN_WORK=0).items():
        monkeypatch.setattr(matmul_schedule, name, value)
    _check(a_shape, b_shape, epilogue, threads=3)


@pytest.mark.parametrize("pack_rows", [1, 10**9])
def test_epilogue_result_is_also_an_output(monkeypatch, pack_rows):
    """A kernel with two outputs (the scaled product and the final sum): the product is
    accumulated in place, the outputs read it."""
    monkeypatch.setattr(matmul_schedule, "PACK_ROWS", pack_rows)
    _check((2, 30, 20), (2, 20, 40), epilogue=True, multi_output=True)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_default_blocks_any_thread_count(threads):
    _check((300, 600), (600, 100), epilogue=True, threads=threads)


def _loops(a_shape, b_shape, epilogue=True, dtype="float32", target=AVX512) -> str:
    """The loop IR for ``target`` (default: AVX-512, the nests these tests describe)."""
    g = GraphBuilder("t")
    out = g.op("MatMul", g.input("a", a_shape, dtype), g.input("b", b_shape, dtype))
    if epilogue:
        out = g.op("Mul", out, g.constant(np.array(0.125, dtype)))
    g.output(out)
    return inspect_stage(g.build(), "loops", target=target)


def test_big_product_gets_the_packed_micro_kernel():
    text = _loops((512, 256), (256, 512))
    assert text.count("func ") == 1  # the scale is fused
    assert re.search(r"alloc matmul_1_packed_b: float32\[\d+, 256, 64\]", text)  # B's panels
    assert "in parallel(2)" in text
    assert "in unrolled(6)" in text and "in vectorized(64)" in text  # the 6 x 64 tile


def test_attention_product_runs_heads_in_parallel():
    """BERT's Q @ K^T: one block per head, B read in place, a 6 x 64 register tile."""
    text = _loops((1, 12, 128, 64), (1, 12, 64, 128))
    assert "in parallel(12)" in text
    assert "packed_b" not in text  # 128 rows: B read in place
    assert "in unrolled(6)" in text and "in vectorized(64)" in text


@pytest.mark.parametrize("a_shape, b_shape, dtype, packed", [
    ((8, 8), (8, 8), "float32", True),
    ((8, 8), (8, 8), "float64", False),
    ((8, 8), (8, 8), "int32", False),
    ((8,), (8, 8), "float32", False),
    ((8, 8), (8,), "float32", False),
    ((8, 0), (0, 8), "float32", False),
])
def test_which_products_are_packed(a_shape, b_shape, dtype, packed):
    assert packs_b(a_shape, b_shape, dtype) is packed
    if dtype == "float32" and not packed and 0 not in a_shape:
        assert "vectorized(64)" not in _loops(a_shape, b_shape, epilogue=False, dtype=dtype)


def test_empty_reduction_gives_zeros():
    compiled = _compile((3, 0), (0, 4), epilogue=False)
    got = compiled.run(np.ones((3, 0), np.float32), np.ones((0, 4), np.float32))[0]
    np.testing.assert_array_equal(got, np.zeros((3, 4), np.float32))
