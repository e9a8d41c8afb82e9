"""fold_scales (dlc/graph/passes/fold_scales.py): golden before/after text, scales and
biases folded into Conv, ConvTranspose, MatMul and Gemm, chains, the cases that must not
fold, and results against the original graph."""

import numpy as np
import pytest
from graph_util import (
    assert_compiled_same,
    assert_same,
    check_well_formed,
    docstring_example,
    rand,
)

from dlc.graph import GraphBuilder
from dlc.graph.passes import fold_scales as module
from dlc.graph.passes.fold_scales import fold_scales

F = np.float32


def folded(graph, ops):
    out = fold_scales(graph)
    assert [n.op for n in out.nodes] == ops, str(out)
    check_well_formed(out)
    assert_same(graph, out, rtol=1e-5, atol=1e-5)
    return out


def test_docstring_example():
    before, after = docstring_example(module)
    g = GraphBuilder("g")
    x = g.input("x", (3, 4))
    w = g.constant(np.arange(8, dtype=F).reshape(4, 2), "w")
    s = g.constant(np.array([2, 0.5], F), "s")
    b = g.constant(np.array([1, -1], F), "b")
    p = g.op("Mul", g.op("MatMul", x, w, name="m"), s, name="p")
    g.output(g.op("Add", p, b, name="y"))
    graph = g.build()
    assert str(graph) == before
    out = fold_scales(graph)
    assert str(out) == after
    check_well_formed(out)
    assert_same(graph, out)
    assert_compiled_same(graph)


def conv(g, op="Conv", bias=True, weights=None):
    x = g.input("x", (1, 4, 6, 6))
    w = weights if weights is not None else g.constant(rand((4, 2, 3, 3), seed=1), "w")
    b = g.constant(rand((4,), seed=2), "b") if bias else None
    return g.op(op, x, w, b, group=2, name="c")


EPILOGUES = {
    "mul_channel": lambda g, c: c * rand((4, 1, 1), seed=3, low=0.5, high=2),
    "channel_mul": lambda g, c: g.op("Mul", g.constant(rand((1, 4, 1, 1), seed=3)), c),
    "div_scalar": lambda g, c: c / 3.0,
    "add_channel": lambda g, c: c + rand((4, 1, 1), seed=4),
    "sub_scalar": lambda g, c: c - 0.25,
    "chain": lambda g, c: ((c * 2.0) + rand((4, 1, 1), seed=4)) / rand((4, 1, 1), seed=5,
                                                                       low=1, high=2),
}


@pytest.mark.parametrize("op", ["Conv", "ConvTranspose"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("case", sorted(EPILOGUES))
def test_convolutions(op, bias, case):
    g = GraphBuilder("g")
    g.output(EPILOGUES[case](g, conv(g, op, bias)))
    folded(g.build(), [op])


def test_a_bias_folds_even_when_the_weights_are_not_constant():
    g = GraphBuilder("g")
    c = conv(g, weights=g.input("w", (4, 2, 3, 3)))
    g.output(c + rand((4, 1, 1), seed=4))
    folded(g.build(), ["Conv"])
    g = GraphBuilder("g")
    g.output(conv(g, weights=g.input("w", (4, 2, 3, 3))) * 2.0)
    graph = g.build()
    assert fold_scales(graph) is graph


def test_matmul_scales_along_the_last_axis():
    g = GraphBuilder("g")
    x = g.input("x", (2, 3, 4))
    m = g.op("MatMul", x, g.constant(rand((4, 5), seed=1), "w"))
    g.output(m * rand((5,), seed=2))
    out = folded(g.build(), ["MatMul"])
    assert out.nodes[0].outputs == (g.graph.outputs[0],)


@pytest.mark.parametrize("epilogue", ["add_row", "add_matrix", "sub_scalar"])
def test_matmul_plus_a_constant_becomes_gemm(epilogue):
    g = GraphBuilder("g")
    x, w = g.input("x", (3, 4)), g.input("w", (4, 5))
    m = g.op("MatMul", x, w)
    c = {"add_row": lambda: m + rand((5,), seed=2), "add_matrix": lambda: m + rand(
        (3, 5), seed=2), "sub_scalar": lambda: m - 1.5}[epilogue]()
    g.output(c)
    folded(g.build(), ["Gemm"])


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("c_shape", [None, (3, 5), (1,)])
def test_gemm(trans_b, c_shape):
    g = GraphBuilder("g")
    x = g.input("x", (3, 4))
    w = g.constant(rand((5, 4) if trans_b else (4, 5), seed=1), "w")
    c = g.constant(rand(c_shape, seed=2), "c") if c_shape else None
    m = g.op("Gemm", x, w, c, transB=trans_b, alpha=1.5, beta=0.5)
    g.output((m * rand((5,), seed=3)) - rand((3, 1), seed=4))
    folded(g.build(), ["Gemm"])


NOT_FOLDED = {
    "spatial_scale": lambda g, c: c * rand((4, 1), seed=3),
    "input_scale": lambda g, c: c * g.input("s", (4, 1, 1)),
    "zero_scale": lambda g, c: c * rand((4, 1, 1), seed=3) * 0.0,
    "div_by_zero": lambda g, c: c / np.array([1, 2, 0, 1], F).reshape(4, 1, 1),
    "inf_scale": lambda g, c: c * F(np.inf),
    "broadcasting": lambda g, c: c * rand((2, 1, 1, 1), seed=3),
    "two_readers": lambda g, c: g.op("Add", c * 2.0, c),
    "reversed_div": lambda g, c: 2.0 / c,
    "reversed_sub": lambda g, c: 2.0 - c,
}


@pytest.mark.parametrize("case", sorted(NOT_FOLDED))
def test_must_not_fold(case):
    g = GraphBuilder("g")
    y = NOT_FOLDED[case](g, conv(g))
    g.output(y)
    graph = g.build()
    out = fold_scales(graph)
    if case == "zero_scale":   # (c * s) folds; the Mul by 0 does not
        assert [n.op for n in out.nodes] == ["Conv", "Mul"]
    else:
        assert out is graph


def test_a_graph_output_in_between_blocks_folding():
    g = GraphBuilder("g")
    c = conv(g)
    g.output(c, c * 2.0)
    graph = g.build()
    assert fold_scales(graph) is graph


def test_integer_and_batched_matmuls_are_left_alone():
    g = GraphBuilder("g")
    x = g.input("x", (3, 4), "int32")
    m = g.op("MatMul", x, g.constant(np.ones((4, 5), np.int32)))
    g.output(m * np.int32(3))
    y = g.input("y", (2, 3, 4))
    g.output(g.op("MatMul", y, g.input("w", (4, 5))) + rand((5,), seed=1))
    graph = g.build()
    assert fold_scales(graph) is graph
