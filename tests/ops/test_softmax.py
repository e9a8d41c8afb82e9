"""Softmax, LogSoftmax, Hardmax: compiled results against NumPy, numerical stability,
the "coerce to 2-D" semantics of opsets < 13, and must-fail cases."""

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper

import dlc
from dlc.graph.builder import GraphBuilder


def run(op, x, **attrs):
    g = GraphBuilder("t")
    g.output(g.op(op, g.input("x", x.shape, x.dtype), **attrs))
    return dlc.compile(g.build()).run(x)[0]


def rand(shape, dtype="float32", seed=0, scale=3.0):
    return (np.random.default_rng(seed).uniform(-scale, scale, size=shape)).astype(dtype)


def np_softmax(x, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def np_log_softmax(x, axis):
    s = x - np.max(x, axis=axis, keepdims=True)
    return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))


def np_hardmax(x, axis):
    y = np.zeros_like(x)
    np.put_along_axis(y, np.expand_dims(np.argmax(x, axis=axis), axis), 1, axis=axis)
    return y


EXPECT = {"Softmax": np_softmax, "LogSoftmax": np_log_softmax, "Hardmax": np_hardmax}


@pytest.mark.parametrize("op", sorted(EXPECT))
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_matches_numpy(op, axis):
    x = rand((2, 3, 17), seed=1)
    y = run(op, x, axis=axis)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, EXPECT[op](x.astype(np.float64), axis), rtol=1e-5,
                               atol=1e-6)


def test_default_axis_is_last():
    x = rand((4, 5), seed=2)
    np.testing.assert_allclose(run("Softmax", x), np_softmax(x, -1), rtol=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_dtypes(op, dtype):
    npdt = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    x = rand((3, 40), npdt, seed=3)
    y = run(op, x, axis=1)
    assert y.dtype == npdt
    want = EXPECT[op](x.astype(np.float64), 1)
    tol = {"float16": 2e-3, "bfloat16": 1e-2, "float64": 1e-12}[dtype]
    np.testing.assert_allclose(y.astype(np.float64), want, rtol=tol, atol=tol)


def test_large_and_infinite_values_are_stable():
    x = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1001.0, -1e30],
                  [0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf]], np.float32)
    with np.errstate(invalid="ignore"):
        for op in ("Softmax", "LogSoftmax"):
            y = run(op, x, axis=1)
            want = EXPECT[op](x.astype(np.float64), 1)
            np.testing.assert_allclose(y[:3], want[:3], rtol=1e-6, atol=1e-7)
            assert np.isnan(y[3]).all()  # every logit -inf: 0/0, like the ONNX reference


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_probabilities_below_2_to_the_minus_125_are_zero(dtype):
    """dlc's documented choice (dlc.te.intrinsics.np_exp_nonpositive): exp(x - max) below
    2^-125 (x - max < -86.64) is 0, so such probabilities are exactly 0 rather than
    subnormal float32 numbers (NumPy gives 3.7e-44 for x - max = -100). LogSoftmax keeps
    x - max - log(sum) exact; its sum loses only terms below 2^-125."""
    x = np.array([[0.0, -86.6, -86.7, -100.0, -np.inf, -5.0]], dtype)
    y = run("Softmax", x, axis=1)
    with np.errstate(under="ignore"):
        want = np_softmax(x.astype(np.float64), 1)
    np.testing.assert_allclose(y[0, [0, 1, 5]], want[0, [0, 1, 5]], rtol=1e-6)
    assert y[0, 1] > 0
    np.testing.assert_array_equal(y[0, 2:5], 0.0)
    log_y = run("LogSoftmax", x, axis=1)
    np.testing.assert_allclose(log_y[0, :4], np_log_softmax(x.astype(np.float64), 1)[0, :4],
                               rtol=1e-6)


def test_softmax_of_a_long_row_sums_to_one():
    x = rand((1, 50_000), seed=4, scale=0.01)
    y = run("Softmax", x, axis=1)
    np.testing.assert_allclose(np.sum(y.astype(np.float64)), 1.0, rtol=1e-6)


def test_hardmax_ties_and_nan():
    x = np.array([[1.0, 3.0, 3.0], [np.nan, 5.0, np.nan], [2.0, 2.0, 2.0]], np.float32)
    np.testing.assert_array_equal(run("Hardmax", x, axis=1),
                                  [[0, 1, 0], [1, 0, 0], [1, 0, 0]])
    np.testing.assert_array_equal(run("Hardmax", x.T.copy(), axis=0),
                                  [[0, 1, 1], [1, 0, 0], [0, 0, 0]])


# -- ONNX converters -------------------------------------------------------------------------
def onnx_model(nodes, inputs, outputs, opset, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def coerced(fn, x, axis):
    """The opset < 13 semantics: ``fn`` along dimension 1 of x coerced to 2-D."""
    rows = int(np.prod(x.shape[:axis]))
    return fn(x.reshape(rows, -1), 1).reshape(x.shape)


@pytest.mark.parametrize("op", sorted(EXPECT))
@pytest.mark.parametrize("shape,axis", [((2, 3, 4), 1), ((2, 3, 4), 0), ((2, 3, 1), 1),
                                        ((2, 1, 4), -2), ((3, 5), None)])
def test_opset_11_coerces_to_2d(op, shape, axis):
    x = rand(shape, seed=5)
    attrs = {} if axis is None else {"axis": axis}
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    model = onnx_model([node], [vi("x", list(shape))], [vi("y", None)], 11)
    (y,) = dlc.compile(model).run(x)
    axis = 1 if axis is None else axis % len(shape)
    np.testing.assert_allclose(y, coerced(EXPECT[op], x.astype(np.float64), axis),
                               rtol=1e-5, atol=1e-6)


def test_opset_13_default_axis_is_last():
    x = rand((2, 3, 4), seed=6)
    node = helper.make_node("LogSoftmax", ["x"], ["y"])
    model = onnx_model([node], [vi("x", [2, 3, 4])], [vi("y", None)], 13)
    np.testing.assert_allclose(dlc.compile(model).run(x)[0], np_log_softmax(x, -1),
                               rtol=1e-5, atol=1e-6)


def test_opset_11_with_a_shape_known_only_at_run_time():
    x = rand((2, 3, 4), seed=7)
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"]),
             helper.make_node("Softmax", ["r"], ["y"], axis=1)]
    model = onnx_model(nodes, [vi("x", [2, 3, 4]), vi("shape", [3], TensorProto.INT64)],
                       [vi("y", None)], 11)
    m = dlc.compile(model)
    for shape in ([2, 3, 4], [4, 3, 2]):
        (y,) = m.run(x, np.array(shape, np.int64))
        np.testing.assert_allclose(y, coerced(np_softmax, x.reshape(shape), 1), rtol=1e-5)


# -- must-fail ----------------------------------------------------------------------------
@pytest.mark.parametrize("op", sorted(EXPECT))
def test_errors(op):
    with pytest.raises(dlc.ModelError, match="out of range"):
        run(op, rand((2, 3)), axis=2)
    with pytest.raises(dlc.ModelError, match="dtype int32"):
        run(op, np.ones((2, 3), np.int32))
    with pytest.raises(dlc.ModelError, match="rank 1 or more"):
        run(op, np.array(1.0, np.float32))


def test_onnx_old_opset_axis_out_of_range():
    node = helper.make_node("Softmax", ["x"], ["y"], axis=3)
    model = onnx_model([node], [vi("x", [2, 3])], [vi("y", None)], 11)
    with pytest.raises(dlc.ModelError, match="axis=3 is out of range"):
        dlc.compile(model)
