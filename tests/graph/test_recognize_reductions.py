"""recognize_reductions (dlc/graph/passes/recognize_reductions.py): golden before/after
text, the decomposed forms exporters write, near misses that must stay, and results
against the original graph and onnxruntime."""

import math

import numpy as np
import pytest
from graph_util import (
    assert_compiled_same,
    assert_same,
    check_well_formed,
    docstring_example,
    rand,
)
from onnx import TensorProto, helper, numpy_helper

import dlc
from dlc.compile import import_model, run_graph_passes
from dlc.graph import GraphBuilder
from dlc.graph.passes import recognize_reductions as module
from dlc.graph.passes.infer_types import infer_types
from dlc.graph.passes.recognize_reductions import recognize_reductions

F = np.float32


def recognized(graph, ops, rtol=1e-5, atol=1e-6):
    out = recognize_reductions(graph)
    assert [n.op for n in out.nodes] == ops, str(out)
    check_well_formed(out)
    assert_same(graph, out, rtol=rtol, atol=atol)
    return out


def softmax(g, x, axis=1, sum_axis=None, keepdims=1, log=False):
    axes = g.constant(np.array([axis]))
    m = g.op("ReduceMax", x, axes, keepdims=keepdims)
    s = g.op("Sub", x, m)
    e = g.op("Exp", s)
    t = g.op("ReduceSum", e, g.constant(np.array([sum_axis if sum_axis is not None
                                                  else axis])), keepdims=keepdims)
    if log:
        return g.op("Sub", s, g.op("Log", t)), (m, s, e, t)
    return g.op("Div", e, t), (m, s, e, t)


def test_docstring_example():
    before, after = docstring_example(module)
    g = GraphBuilder("g")
    x = g.input("x", (2, 5))
    axes = g.constant(np.array([1]), "axes")
    s = g.op("Sub", x, g.op("ReduceMax", x, axes, name="m"), name="s")
    e = g.op("Exp", s, name="e")
    g.output(g.op("Div", e, g.op("ReduceSum", e, axes, name="t"), name="y"))
    graph = g.build()
    assert str(graph) == before
    out = recognize_reductions(graph)
    assert str(out) == after
    check_well_formed(out)
    assert_same(graph, out)


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_and_log_softmax(axis, log):
    g = GraphBuilder("g")
    y, _ = softmax(g, g.input("x", (3, 4, 5)), axis=axis, log=log)
    g.output(y)
    out = recognized(g.build(), ["LogSoftmax" if log else "Softmax"])
    assert out.nodes[0].attrs == {"axis": axis % 3}


def test_softmax_of_large_values_stays_finite_like_the_decomposition():
    g = GraphBuilder("g")
    y, _ = softmax(g, g.input("x", (2, 3)))
    g.output(y)
    graph = g.build()
    feeds = {"x": np.array([[1000, 0, -1000], [3, 3, 3]], F)}
    assert_same(graph, recognize_reductions(graph), feeds)
    assert_compiled_same(graph, feeds)


SOFTMAX_MISSES = {
    "other_axis": dict(sum_axis=0),
    "no_keepdims": dict(keepdims=0),
}


@pytest.mark.parametrize("case", sorted(SOFTMAX_MISSES))
def test_softmax_near_misses_stay(case):
    g = GraphBuilder("g")
    kw = SOFTMAX_MISSES[case]
    x = g.input("x", (3, 4))
    if case == "no_keepdims":   # Sub/Div then need explicit Unsqueezes: a different graph
        ax = g.constant(np.array([1]))
        m = g.op("Unsqueeze", g.op("ReduceMax", x, ax, **kw), ax)
        e = g.op("Exp", g.op("Sub", x, m))
        y = g.op("Div", e, g.op("Unsqueeze", g.op("ReduceSum", e, ax, **kw), ax))
    else:
        y, _ = softmax(g, x, axis=1, **kw)
    g.output(y)
    graph = g.build()
    assert recognize_reductions(graph) is graph


def test_unstable_softmax_without_the_max_is_left_alone():
    g = GraphBuilder("g")
    e = g.op("Exp", g.input("x", (3, 4)))
    g.output(g.op("Div", e, g.op("ReduceSum", e, g.constant(np.array([1])))))
    graph = g.build()
    assert recognize_reductions(graph) is graph


@pytest.mark.parametrize("index", range(4))
def test_an_intermediate_read_elsewhere_blocks_the_match(index):
    g = GraphBuilder("g")
    y, parts = softmax(g, g.input("x", (3, 4)))
    g.output(y, parts[index])
    graph = g.build()
    assert recognize_reductions(graph) is graph


def layer_norm(g, x, axes=(-1,), square="pow", divide="div", gamma=True, beta=True,
               eps=1e-5, gamma_first=False):
    """torch's LayerNorm export before opset 17 (and the variants other exporters write)."""
    ax = g.constant(np.array(axes))
    d = g.op("Sub", x, g.op("ReduceMean", x, ax))
    p = g.op("Pow", d, g.constant(F(2))) if square == "pow" else g.op("Mul", d, d)
    sd = g.op("Sqrt", g.op("Add", g.op("ReduceMean", p, ax), g.constant(F(eps))))
    n = g.op("Div", d, sd) if divide == "div" else g.op("Mul", d, g.op("Reciprocal", sd))
    shape = x.shape[len(x.shape) - len(axes):]
    if gamma:
        gm = g.constant(rand(shape, seed=3, low=0.5, high=2))
        n = g.op("Mul", gm, n) if gamma_first else g.op("Mul", n, gm)
    if beta:
        n = g.op("Add", g.constant(rand(shape, seed=4)), n)
    return n


LAYER_NORMS = {
    "torch": {},
    "mul_square": dict(square="mul"),
    "reciprocal": dict(divide="reciprocal"),
    "gamma_only": dict(beta=False, gamma_first=True),
    "beta_only": dict(gamma=False),
    "no_affine": dict(gamma=False, beta=False),
    "two_axes": dict(axes=(1, 2)),
}


@pytest.mark.parametrize("case", sorted(LAYER_NORMS))
def test_layer_normalization(case):
    g = GraphBuilder("g")
    g.output(layer_norm(g, g.input("x", (2, 3, 8)), **LAYER_NORMS[case]))
    out = recognized(g.build(), ["LayerNormalization"], rtol=1e-4, atol=1e-5)
    axes = LAYER_NORMS[case].get("axes", (-1,))
    assert out.nodes[0].attrs["axis"] == axes[0] % 3
    assert out.nodes[0].attrs["epsilon"] == pytest.approx(1e-5)


def test_layer_normalization_float64_keeps_float64_statistics():
    g = GraphBuilder("g")
    x = g.input("x", (2, 8), "float64")
    ax = g.constant(np.array([-1]))
    d = g.op("Sub", x, g.op("ReduceMean", x, ax))
    v = g.op("ReduceMean", g.op("Mul", d, d), ax)
    g.output(g.op("Div", d, g.op("Sqrt", g.op("Add", v, g.constant(1e-9)))))
    out = recognized(g.build(), ["LayerNormalization"], rtol=1e-12, atol=1e-12)
    assert out.nodes[0].attrs["stash_type"] == 11


def test_layer_normalization_over_leading_axes_is_left_alone():
    g = GraphBuilder("g")
    g.output(layer_norm(g, g.input("x", (2, 3, 8)), axes=(0, 1), gamma=False, beta=False))
    graph = g.build()
    assert recognize_reductions(graph) is graph


def test_gamma_that_does_not_broadcast_to_x_blocks_the_affine_part():
    g = GraphBuilder("g")
    x = g.input("x", (2, 8))
    n = layer_norm(g, x, gamma=False, beta=False)
    g.output(g.op("Mul", n, g.constant(rand((3, 2, 8), seed=1))))
    out = recognize_reductions(g.build())
    assert [n.op for n in out.nodes] == ["LayerNormalization", "Mul"]


def gelu(g, x, form):
    half, one = g.constant(F(0.5)), g.constant(F(1.0))
    if form == "mul_reciprocal":
        inner = g.op("Mul", g.constant(F(1 / math.sqrt(2))), x)
    else:
        inner = g.op("Div", x, g.constant(F(math.sqrt(2))))
    a = g.op("Add", g.op("Erf", inner), one)
    if form == "half_first":
        return g.op("Mul", g.op("Mul", x, half), a)
    if form == "half_last":
        return g.op("Mul", x, g.op("Mul", a, half))
    return g.op("Mul", g.op("Mul", x, a), half)    # torch


@pytest.mark.parametrize("form", ["torch", "half_first", "half_last", "mul_reciprocal"])
def test_gelu(form):
    g = GraphBuilder("g")
    g.output(gelu(g, g.input("x", (4, 8)), form))
    recognized(g.build(), ["Gelu"])


def test_gelu_with_other_constants_is_left_alone():
    g = GraphBuilder("g")
    x = g.input("x", (4,))
    a = g.op("Add", g.op("Erf", g.op("Div", x, g.constant(F(1.5)))), g.constant(F(1)))
    g.output(g.op("Mul", g.op("Mul", x, a), g.constant(F(0.5))))
    graph = g.build()
    assert recognize_reductions(graph) is graph


def exported_model():
    """An ONNX model (opset 13) as torch exports softmax over dim 1, LayerNorm and GELU."""
    const = [numpy_helper.from_array(v, n) for n, v in [
        ("two", np.array(2, F)), ("eps", np.array(1e-5, F)), ("gamma", rand((6,), seed=1)),
        ("beta", rand((6,), seed=2)), ("sqrt2", np.array(math.sqrt(2), F)),
        ("one", np.array(1, F)), ("half", np.array(0.5, F)), ("ax1", np.array([1]))]]
    nodes = [
        helper.make_node("ReduceMax", ["x"], ["m"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["x", "m"], ["s"]),
        helper.make_node("Exp", ["s"], ["e"]),
        helper.make_node("ReduceSum", ["e", "ax1"], ["t"], keepdims=1),
        helper.make_node("Div", ["e", "t"], ["sm"]),
        helper.make_node("ReduceMean", ["sm"], ["mu"], axes=[-1]),
        helper.make_node("Sub", ["sm", "mu"], ["d"]),
        helper.make_node("Pow", ["d", "two"], ["p"]),
        helper.make_node("ReduceMean", ["p"], ["v"], axes=[-1]),
        helper.make_node("Add", ["v", "eps"], ["ve"]),
        helper.make_node("Sqrt", ["ve"], ["sd"]),
        helper.make_node("Div", ["d", "sd"], ["n"]),
        helper.make_node("Mul", ["n", "gamma"], ["ng"]),
        helper.make_node("Add", ["ng", "beta"], ["ln"]),
        helper.make_node("Div", ["ln", "sqrt2"], ["q"]),
        helper.make_node("Erf", ["q"], ["r"]),
        helper.make_node("Add", ["r", "one"], ["a"]),
        helper.make_node("Mul", ["ln", "a"], ["b"]),
        helper.make_node("Mul", ["b", "half"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "exported", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4, 6])], const)
    # the IR version opset 13 needs, not onnx's newest (older onnxruntime refuses that)
    return helper.make_model_gen_version(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_exported_patterns_are_recognized_and_agree_with_onnxruntime():
    import onnxruntime

    model = exported_model()
    graph = run_graph_passes(infer_types(import_model(model)), opt_level=1)
    assert [n.op for n in graph.nodes] == ["Softmax", "LayerNormalization", "Gelu"]
    x = rand((2, 4, 6), seed=5, low=-3, high=3)
    want = onnxruntime.InferenceSession(model.SerializeToString(), providers=[
        "CPUExecutionProvider"]).run(None, {"x": x})[0]
    for level in (0, 1):
        got = dlc.compile(model, opt_level=level).run(x)[0]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
