"""fold_batchnorm (dlc/graph/passes/fold_batchnorm.py): golden before/after text, folding
into Conv, ConvTranspose, MatMul and Gemm, the standalone Mul + Add form, the cases that
must not fold, and results against the original graph."""

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
from dlc.graph.passes import fold_batchnorm as module
from dlc.graph.passes.fold_batchnorm import fold_batchnorm

F = np.float32


def bn_params(g, channels, shape=None, dtype=F):
    """gamma, beta, mean, var (all in [0.5, 2))."""
    shape = shape or (channels,)
    return [g.constant(rand(shape, dtype, seed=10 + k, low=0.5, high=2.0)) for k in range(4)]


def folded(graph, ops, rtol=1e-5, atol=1e-5):
    out = fold_batchnorm(graph)
    assert [n.op for n in out.nodes] == ops, str(out)
    check_well_formed(out)
    assert_same(graph, out, rtol=rtol, atol=atol)
    return out


def test_docstring_example():
    before, after = docstring_example(module)
    g = GraphBuilder("g")
    x = g.input("x", (1, 2, 4, 4))
    w = g.constant(np.array([1, 2, 3, 4], F).reshape(2, 2, 1, 1), "w")
    params = [g.constant(np.array(v, F), name) for name, v in [
        ("gamma", [2, 3]), ("beta", [0.5, 0]), ("mean", [1, 0]), ("var", [4, 1])]]
    c = g.op("Conv", x, w, name="c")
    g.output(g.op("BatchNormalization", c, *params, epsilon=0.0, name="y"))
    graph = g.build()
    assert str(graph) == before
    out = fold_batchnorm(graph)
    assert str(out) == after
    check_well_formed(out)
    assert_same(graph, out)


@pytest.mark.parametrize("group, bias", [(1, True), (1, False), (2, True), (4, False)])
def test_conv(group, bias):
    g = GraphBuilder("g")
    x = g.input("x", (2, 4, 7, 7))
    w = g.constant(rand((8, 4 // group, 3, 3), seed=1), "w")
    b = g.constant(rand((8,), seed=2), "b") if bias else None
    c = g.op("Conv", x, w, b, group=group, pads=[1, 0, 1, 0], strides=[2, 1], name="c")
    g.output(g.op("BatchNormalization", c, *bn_params(g, 8), epsilon=1e-3, name="y"))
    folded(g.build(), ["Conv"])


@pytest.mark.parametrize("group", [1, 2])
def test_conv_transpose(group):
    g = GraphBuilder("g")
    x = g.input("x", (1, 4, 5, 5))
    w = g.constant(rand((4, 3, 3, 3), seed=1), "w")
    c = g.op("ConvTranspose", x, w, g.constant(rand((3 * group,), seed=2)), group=group,
             strides=[2, 2], name="c")
    g.output(g.op("BatchNormalization", c, *bn_params(g, 3 * group), name="y"))
    folded(g.build(), ["ConvTranspose"])


def test_matmul_becomes_gemm():
    g = GraphBuilder("g")
    x = g.input("x", (3, 4))
    m = g.op("MatMul", x, g.constant(rand((4, 5), seed=1), "w"), name="m")
    g.output(g.op("BatchNormalization", m, *bn_params(g, 5), name="y"))
    graph = g.build()
    out = folded(graph, ["Gemm"])
    assert out.nodes[0].outputs == ("y",)
    assert_compiled_same(graph, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("trans_b, c_shape", [(0, None), (1, (3, 1)), (1, (5,)), (0, ())])
def test_gemm(trans_b, c_shape):
    g = GraphBuilder("g")
    x = g.input("x", (3, 4))
    w = g.constant(rand((5, 4) if trans_b else (4, 5), seed=1), "w")
    c = g.constant(rand(c_shape, seed=2), "c") if c_shape is not None else None
    m = g.op("Gemm", x, w, c, transB=trans_b, alpha=0.5, beta=2.0, name="m")
    g.output(g.op("BatchNormalization", m, *bn_params(g, 5), name="y"))
    folded(g.build(), ["Gemm"])


def conv_bn(extra_use=False, output_conv=False, weights_input=False, params_input=False,
            dtype="float32"):
    g = GraphBuilder("g")
    x = g.input("x", (1, 3, 5, 5), dtype)
    w = g.input("w", (4, 3, 3, 3), dtype) if weights_input else \
        g.constant(rand((4, 3, 3, 3), dtype, seed=1), "w")
    c = g.op("Conv", x, w, name="c")
    params = bn_params(g, 4, dtype=dtype)
    if params_input:
        params[3] = g.input("var", (4,), dtype)
    y = g.op("BatchNormalization", c, *params, name="y")
    g.output(y)
    if extra_use:
        g.output(g.op("Relu", c, name="r"))
    if output_conv:
        g.output(c)
    return g.build()


@pytest.mark.parametrize("case", ["extra_use", "output_conv", "weights_input"])
def test_standalone_mul_add_when_the_producer_cannot_absorb_it(case):
    graph = conv_bn(**{case: True})
    out = folded(graph, ["Conv", "Mul", "Add"] + (["Relu"] if case == "extra_use" else []))
    text = str(out)
    assert "y_scale = constant float32[4, 1, 1]" in text
    assert "y_scaled = Mul(c, y_scale)" in text and "y = Add(y_scaled, y_shift)" in text


@pytest.mark.parametrize("case", [{"params_input": True},
                                  {"weights_input": True, "dtype": "float16"}])
def test_parameters_that_are_not_constant_or_half_precision_stay(case):
    graph = conv_bn(**case)
    assert fold_batchnorm(graph) is graph


def test_infinite_factors_do_not_fold():
    g = GraphBuilder("g")
    x = g.input("x", (2, 3))
    params = [g.constant(np.array(v, F)) for v in ([1] * 3, [0] * 3, [0] * 3, [0] * 3)]
    g.output(g.op("BatchNormalization", x, *params, epsilon=0.0))
    graph = g.build()
    assert fold_batchnorm(graph) is graph


def test_matmul_with_a_batched_output_uses_the_standalone_form():
    g = GraphBuilder("g")
    x = g.input("x", (2, 3, 4))
    m = g.op("MatMul", x, g.constant(rand((4, 5), seed=1), "w"), name="m")
    g.output(g.op("BatchNormalization", m, *bn_params(g, 3), name="y"))  # channel = 3
    folded(g.build(), ["MatMul", "Mul", "Add"])


def test_per_activation_parameters_and_rank_one_inputs():
    g = GraphBuilder("g")
    x = g.input("x", (2, 3, 4))
    c = g.op("Conv", x, g.constant(rand((3, 3, 1), seed=1)), name="c")
    g.output(g.op("BatchNormalization", c, *bn_params(g, 3, shape=(3, 4)), name="y"))
    v = g.input("v", (6,))
    g.output(g.op("BatchNormalization", v, *bn_params(g, 1), name="z"))
    out = folded(g.build(), ["Conv", "Mul", "Add", "Mul", "Add"])
    assert out.types[out.nodes[1].inputs[1]].shape == (3, 4)
    assert out.types[out.nodes[3].inputs[1]].shape == (1,)


def test_float64():
    graph = conv_bn(dtype="float64")
    folded(graph, ["Conv"], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("outputs", [1, 3])
def test_training_mode_does_not_fold(outputs):
    # the statistics depend on the data: neither into the Conv nor as Mul + Add
    g = GraphBuilder("g")
    x = g.input("x", (2, 3, 5, 5))
    c = g.op("Conv", x, g.constant(rand((4, 3, 3, 3), seed=1), "w"), name="c")
    out = g.op("BatchNormalization", c, *bn_params(g, 4), training_mode=1, name="y")
    g.output(*out[:outputs])
    graph = g.build()
    assert fold_batchnorm(graph) is graph
    assert_compiled_same(graph, rtol=1e-4, atol=1e-5)
