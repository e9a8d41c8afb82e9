"""pack_dense_weights (dlc/graph/passes/pack_dense_weights.py): golden before/after text,
MatMul and Gemm (transB, alpha, beta, constant or run-time C) with constant float32 weights
become Dense on panels packed once, the cases that stay, and results against the original
graph, interpreted and compiled."""

import numpy as np
import pytest
from graph_util import assert_same, check_well_formed, docstring_example, rand
from helpers import AVX512

import dlc
from dlc.graph import GraphBuilder, run_graph
from dlc.graph.passes import pack_dense_weights as module
from dlc.graph.passes.pack_dense_weights import pack_dense_weights
from dlc.ops.dense import np_pack_panels, panel_width
from dlc.target import Target

F = np.float32


def packed(graph, ops):
    out = pack_dense_weights(graph, AVX512)
    assert [n.op for n in out.nodes] == ops, str(out)
    check_well_formed(out)
    assert_same(graph, out, rtol=1e-5, atol=1e-5)
    feeds = {x: rand(graph.types[x].shape, seed=k) for k, x in enumerate(graph.inputs)}
    for want, got in zip(run_graph(graph, feeds), dlc.compile(graph).run(feeds)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    return out


def test_docstring_example():
    before, after = docstring_example(module)
    g = GraphBuilder("g")
    x = g.input("x", (2, 3))
    w = g.constant(rand((3, 20), seed=1), "w")
    b = g.constant(rand((20,), seed=2), "b")
    g.output(g.op("Gemm", x, w, b, name="y", outputs=["y"]))
    graph = g.build()
    assert str(graph) == before
    out = packed(graph, ["Dense", "Add"])
    assert str(out) == after


@pytest.mark.parametrize("units", [1, 16, 20, 64, 100, 96])
def test_matmul_weights_become_panels(units):
    g = GraphBuilder("g")
    x = g.input("x", (2, 5, 7))  # batched rows
    w = rand((7, units), seed=units)
    g.output(g.op("MatMul", x, g.constant(w, "w")))
    out = packed(g.build(), ["Dense"])
    dense = out.nodes[0]
    assert dense.attrs == {"units": units} and "w" not in out.constants
    panels = out.constants[dense.inputs[1]]
    nr = panel_width(units, Target.parse(AVX512).hardware)
    assert panels.shape == (-(-units // nr), 7, nr)
    np.testing.assert_array_equal(panels, np_pack_panels(w, nr))


@pytest.mark.parametrize("trans_b, alpha, beta, c_kind", [
    (1, 1.0, 1.0, "constant"), (0, 0.5, 2.0, "constant"), (1, 2.0, 0.25, "input"),
    (0, 1.0, 0.0, "constant"), (0, 1.0, 1.0, "none")])
def test_gemm_variants(trans_b, alpha, beta, c_kind):
    g = GraphBuilder("g")
    x = g.input("x", (3, 6))
    w = g.constant(rand((10, 6) if trans_b else (6, 10), seed=1))
    c = {"constant": lambda: g.constant(rand((10,), seed=2)),
         "input": lambda: g.input("c", (3, 10)), "none": lambda: None}[c_kind]()
    g.output(g.op("Gemm", x, w, c, transB=trans_b, alpha=alpha, beta=beta))
    ops = ["Dense"]
    if c_kind != "none" and beta != 0.0:
        ops += ["Mul", "Add"] if c_kind == "input" and beta != 1.0 else ["Add"]
    packed(g.build(), ops)


def test_weights_read_elsewhere_are_kept():
    g = GraphBuilder("g")
    x = g.input("x", (4, 4))
    w = g.constant(rand((4, 4), seed=1), "w")
    g.output(g.op("MatMul", x, w), g.op("Add", x, w))
    out = packed(g.build(), ["Dense", "Add"])
    assert "w" in out.constants


def test_what_stays():
    g = GraphBuilder("g")
    x = g.input("x", (2, 4))
    w_in = g.input("w", (4, 3))  # run-time weights
    a = g.op("MatMul", x, w_in)
    b = g.op("Gemm", g.input("xt", (4, 2)), g.constant(rand((4, 3), seed=1)), transA=1)
    x64 = g.input("x64", (2, 4), "float64")
    c = g.op("MatMul", x64, g.constant(rand((4, 3), "float64", seed=2)))
    v = g.op("MatMul", g.input("v", (4,)), g.constant(rand((4, 3), seed=3)))  # 1-D rows
    g.output(a, b, c, v)
    graph = g.build()
    assert pack_dense_weights(graph) is graph
