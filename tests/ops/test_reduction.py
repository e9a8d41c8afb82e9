"""Reductions (ReduceSum ... ReduceLogSumExp), ArgMax/ArgMin, CumSum/CumProd: compiled
results against NumPy, the ONNX converters of older opsets, and must-fail cases."""

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper

import dlc
from dlc.graph.builder import GraphBuilder


class Const:
    """An input given to the node as a graph constant (not a graph input)."""

    def __init__(self, value):
        self.value = np.asarray(value)


def run(op, *args, outputs=None, **attrs):
    """Compile one ``op`` node; arrays are graph inputs, Const are constants, None is an
    omitted input. Returns the list of outputs."""
    g = GraphBuilder("t")
    syms, feeds = [], []
    for k, a in enumerate(args):
        if a is None:
            syms.append(None)
        elif isinstance(a, Const):
            syms.append(g.constant(a.value))
        else:
            a = np.asarray(a)
            syms.append(g.input(f"in{k}", a.shape, a.dtype))
            feeds.append(a)
    out = g.op(op, *syms, **attrs)
    out = out if isinstance(out, tuple) else (out,)
    g.output(*out[:outputs])
    return dlc.compile(g.build()).run(*feeds)


def rand(shape, dtype="float32", seed=0, positive=False):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.1 if positive else -1, 1, size=shape)
    return x.astype(dtype)


def onnx_model(node, inputs, outputs, opset, initializers=()):
    graph = helper.make_graph([node], "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


# -- ReduceXxx ----------------------------------------------------------------------------
EXPECT = {
    "ReduceSum": lambda x, a, k: np.sum(x, axis=a, keepdims=k),
    "ReduceMean": lambda x, a, k: np.mean(x, axis=a, keepdims=k),
    "ReduceMax": lambda x, a, k: np.max(x, axis=a, keepdims=k),
    "ReduceMin": lambda x, a, k: np.min(x, axis=a, keepdims=k),
    "ReduceProd": lambda x, a, k: np.prod(x, axis=a, keepdims=k),
    "ReduceL1": lambda x, a, k: np.sum(np.abs(x), axis=a, keepdims=k),
    "ReduceL2": lambda x, a, k: np.sqrt(np.sum(x * x, axis=a, keepdims=k)),
    "ReduceLogSum": lambda x, a, k: np.log(np.sum(x, axis=a, keepdims=k)),
    "ReduceLogSumExp": lambda x, a, k: np.log(np.sum(np.exp(x), axis=a, keepdims=k)),
    "ReduceSumSquare": lambda x, a, k: np.sum(x * x, axis=a, keepdims=k),
}

# (axes input, keepdims, noop_with_empty_axes, NumPy axes)
AXES_CASES = [
    ([1], 1, 0, (1,)),
    ([-1, 0], 0, 0, (0, 2)),
    (None, 1, 0, None),
    ([], 0, 0, None),
    ([], 1, 1, ()),
]


@pytest.mark.parametrize("axes,keepdims,noop,np_axes", AXES_CASES)
def test_reduce_matches_numpy(axes, keepdims, noop, np_axes):
    """Every ReduceXxx op, as the outputs of one graph."""
    x = rand((2, 3, 4), positive=True) * 2  # positive for ReduceLogSum
    g = GraphBuilder("t")
    xs = g.input("x", x.shape)
    axes_in = g.constant(np.array(axes, np.int64)) if axes is not None else None
    ops = sorted(EXPECT)
    g.output(*[g.op(op, xs, axes_in, keepdims=keepdims, noop_with_empty_axes=noop)
               for op in ops])
    got = dlc.compile(g.build()).run(x)
    for op, y in zip(ops, got):
        want = EXPECT[op](x.astype(np.float64), np_axes, bool(keepdims))
        assert y.dtype == np.float32 and y.shape == want.shape, op
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6, err_msg=op)


def test_reduce_negative_values():
    x = rand((3, 4), seed=1)
    for op in ("ReduceL1", "ReduceL2", "ReduceMin", "ReduceProd", "ReduceLogSumExp"):
        (y,) = run(op, x, Const([1]), keepdims=0)
        np.testing.assert_allclose(y, EXPECT[op](x.astype(np.float64), 1, False), rtol=1e-5,
                                   err_msg=op)


def test_reduce_axes_known_only_at_run_time():
    x = rand((3, 4, 5))
    g = GraphBuilder("t")
    y = g.op("ReduceSum", g.input("x", x.shape), g.input("axes", (2,), "int64"), keepdims=0)
    g.output(y)
    m = dlc.compile(g.build())
    for axes in ([0, 2], [1, -1]):
        (got,) = m.run(x, np.array(axes, np.int64))
        np.testing.assert_allclose(got, np.sum(x, axis=tuple(axes)), rtol=1e-5)


def test_reduce_scalar_input():
    (y,) = run("ReduceSum", np.array(3.5, np.float32))
    assert y.shape == () and y == 3.5
    (y,) = run("ReduceL2", np.array(-2.0, np.float32), keepdims=0)
    assert y == 2.0


def test_reduce_sum_of_a_large_axis_is_accurate():
    x = np.full((1, 100_000), 0.1, np.float32)
    (y,) = run("ReduceSum", x, Const(np.array([1])))
    np.testing.assert_allclose(y, [[10_000.0]], rtol=1e-4)


def test_reduce_sum_integers_wrap_like_numpy():
    x = np.array([[2**30, 2**30, 2**30], [1, -2, 3]], np.int32)
    (y,) = run("ReduceSum", x, Const([1]), keepdims=0)
    np.testing.assert_array_equal(y, np.sum(x, axis=1, dtype=np.int32))
    assert y.dtype == np.int32


def test_reduce_mean_integers_truncate_toward_zero():
    x = np.array([[-7, 0], [7, 0], [-8, 1]], np.int64)
    (y,) = run("ReduceMean", x, Const([1]), keepdims=0)
    np.testing.assert_array_equal(y, [-3, 3, -3])
    x = np.full((2, 300), 3, np.int8)  # more elements than int8 can count
    (y,) = run("ReduceMean", x, Const([1]), keepdims=0)
    np.testing.assert_array_equal(y, np.mean(x, axis=1, dtype=np.int8))


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint32", "int64"])
def test_reduce_max_min_integers(dtype):
    info = np.iinfo(dtype)
    x = np.array([[info.min, 3, info.max], [5, 5, 4]], dtype)
    (hi,) = run("ReduceMax", x, Const([-1]), keepdims=0)
    (lo,) = run("ReduceMin", x, Const([-1]), keepdims=0)
    np.testing.assert_array_equal(hi, [info.max, 5])
    np.testing.assert_array_equal(lo, [info.min, 4])
    assert hi.dtype == dtype


def test_reduce_max_min_bool():
    x = np.array([[True, False], [False, False], [True, True]])
    (hi,) = run("ReduceMax", x, Const([1]), keepdims=0)
    (lo,) = run("ReduceMin", x, Const([1]), keepdims=0)
    np.testing.assert_array_equal(hi, [True, False, True])
    np.testing.assert_array_equal(lo, [False, False, True])
    assert hi.dtype == np.bool_


def test_reduce_max_min_propagate_nan():
    x = np.array([[1.0, np.nan, 3.0], [-np.inf, 2.0, 0.0]], np.float32)
    (hi,) = run("ReduceMax", x, Const([1]), keepdims=0)
    (lo,) = run("ReduceMin", x, Const([1]), keepdims=0)
    np.testing.assert_array_equal(hi, [np.nan, 2.0])
    np.testing.assert_array_equal(lo, [np.nan, -np.inf])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_reduce_half_precision_accumulates_in_float32(dtype):
    npdt = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.float16
    x = np.full((4, 3000), 0.1, npdt)
    for op, want in (("ReduceSum", 300.0), ("ReduceMean", 0.1), ("ReduceL2", np.sqrt(30.0))):
        (y,) = run(op, x, Const([1]), keepdims=0)
        assert y.dtype == npdt
        np.testing.assert_allclose(y.astype(np.float32), want, rtol=1e-2)


def test_reduce_float64():
    x = rand((3, 5), "float64")
    (y,) = run("ReduceLogSumExp", x, Const([0]))
    np.testing.assert_allclose(y, np.log(np.sum(np.exp(x), axis=0, keepdims=True)),
                               rtol=1e-12)


def test_reduce_log_sum_exp_is_stable():
    x = np.array([[1000.0, 1000.0], [-1000.0, -1000.0], [-np.inf, -np.inf], [np.inf, 1.0],
                  [np.nan, 1.0]], np.float32)
    (y,) = run("ReduceLogSumExp", x, Const([1]), keepdims=0)
    want = [1000 + np.log(2), -1000 + np.log(2), -np.inf, np.inf, np.nan]
    np.testing.assert_allclose(y, np.array(want, np.float32), rtol=1e-6)


def test_reduce_integer_l2_and_log_sum_exp():
    x = np.array([[3, 4], [-6, 8]], np.int32)
    (y,) = run("ReduceL2", x, Const([1]), keepdims=0)
    np.testing.assert_array_equal(y, [5, 10])
    (y,) = run("ReduceLogSumExp", np.array([[1, 2]], np.int64), Const([1]), keepdims=0)
    np.testing.assert_array_equal(y, [int(np.log(np.exp(1) + np.exp(2)))])


def test_reduce_empty_set_of_constants_folds_to_the_identity():
    g = GraphBuilder("t")
    x = g.input("x", (2, 1, 4))
    empty = g.constant(np.zeros((2, 0, 4), np.float32))
    outs = [g.op(op, empty, g.constant(np.array([1]))) for op in
            ("ReduceSum", "ReduceProd", "ReduceMax", "ReduceMin", "ReduceLogSumExp",
             "ReduceL2")]
    g.output(*[g.op("Add", o, x) for o in outs])
    got = dlc.compile(g.build()).run(np.zeros((2, 1, 4), np.float32))
    for y, want in zip(got, (0, 1, -np.inf, np.inf, -np.inf, 0)):
        np.testing.assert_array_equal(y, np.full((2, 1, 4), want, np.float32))


@pytest.mark.parametrize("op,want", [("ReduceSum", 0), ("ReduceProd", 1),
                                     ("ReduceMax", -np.inf), ("ReduceLogSum", -np.inf),
                                     ("ReduceMean", np.nan)])
def test_reduce_empty_set_of_a_graph_input(op, want):
    (y,) = run(op, np.zeros((2, 0, 4), np.float32), Const([1]))
    np.testing.assert_array_equal(y, np.full((2, 1, 4), want, np.float32))


def test_reduce_over_a_non_reduced_empty_axis_is_empty():
    (y,) = run("ReduceMax", np.zeros((2, 0, 4), np.float32), Const([2]), keepdims=0)
    assert y.shape == (2, 0)


# -- ArgMax / ArgMin -----------------------------------------------------------------------
@pytest.mark.parametrize("op,fn", [("ArgMax", np.argmax), ("ArgMin", np.argmin)])
@pytest.mark.parametrize("axis,keepdims", [(0, 1), (-1, 0), (1, 1)])
def test_arg_reduce(op, fn, axis, keepdims):
    x = rand((3, 4, 5), seed=2)
    (y,) = run(op, x, axis=axis, keepdims=keepdims)
    want = fn(x, axis=axis)
    want = np.expand_dims(want, axis) if keepdims else want
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg_reduce_ties_and_select_last_index(op):
    x = np.array([[2, 7, 7, 1, 1], [5, 5, 5, 5, 5]], np.int32)
    (first,) = run(op, x, axis=1, keepdims=0)
    (last,) = run(op, x, axis=1, keepdims=0, select_last_index=1)
    np.testing.assert_array_equal(first, [1, 0] if op == "ArgMax" else [3, 0])
    np.testing.assert_array_equal(last, [2, 4] if op == "ArgMax" else [4, 4])


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg_reduce_picks_nan_like_numpy(op):
    x = np.array([[1.0, np.nan, 3.0, np.nan], [0.0, 5.0, -1.0, 2.0]], np.float16)
    (y,) = run(op, x, axis=1, keepdims=0)
    (last,) = run(op, x, axis=1, keepdims=0, select_last_index=1)
    np.testing.assert_array_equal(y, [1, 1] if op == "ArgMax" else [1, 2])
    np.testing.assert_array_equal(last, [3, 1] if op == "ArgMax" else [3, 2])


# -- CumSum / CumProd ----------------------------------------------------------------------
def np_cumulative(fn, identity, x, axis, exclusive, reverse):
    v = np.flip(x, axis) if reverse else x
    y = fn(v, axis=axis)
    if exclusive:
        y = np.concatenate([np.full_like(np.take(y, [0], axis), identity),
                            np.take(y, range(v.shape[axis] - 1), axis)], axis)
    return np.flip(y, axis) if reverse else y


@pytest.mark.parametrize("op,fn,identity", [("CumSum", np.cumsum, 0),
                                            ("CumProd", np.cumprod, 1)])
@pytest.mark.parametrize("n", [5, 150])  # 150: scanned in blocks
def test_cumulative(op, fn, identity, n):
    """Every (exclusive, reverse) combination, as the outputs of one graph."""
    x = rand((3, n, 2), seed=3) * (1 if op == "CumSum" else 0.01) + 1
    flags = [(0, 0), (1, 0), (0, 1), (1, 1)]
    g = GraphBuilder("t")
    xs, axis = g.input("x", x.shape), g.constant(np.array(-2))
    g.output(*[g.op(op, xs, axis, exclusive=e, reverse=r) for e, r in flags])
    for (e, r), y in zip(flags, dlc.compile(g.build()).run(x)):
        np.testing.assert_allclose(y, np_cumulative(fn, identity, x, 1, e, r), rtol=1e-5,
                                   err_msg=f"exclusive={e} reverse={r}")


def test_cumsum_integers_and_half():
    x = np.arange(12, dtype=np.int32).reshape(3, 4) - 5
    (y,) = run("CumSum", x, Const(np.array(0, np.int32)))
    np.testing.assert_array_equal(y, np.cumsum(x, axis=0, dtype=np.int32))
    h = np.full(2000, 0.1, np.float16)
    (y,) = run("CumSum", h, Const(np.array(0)))
    assert y.dtype == np.float16
    np.testing.assert_allclose(y[-1].astype(np.float32), 200.0, rtol=1e-3)


def test_cumsum_axis_known_only_at_run_time():
    x = rand((2, 3))
    g = GraphBuilder("t")
    y = g.op("CumSum", g.input("x", x.shape), g.input("axis", (), "int64"))
    g.output(y)
    m = dlc.compile(g.build())
    for axis in (0, 1, -1):
        (got,) = m.run(x, np.array(axis))
        np.testing.assert_allclose(got, np.cumsum(x, axis=axis), rtol=1e-6)


# -- ONNX converters -----------------------------------------------------------------------
@pytest.mark.parametrize("op,opset", [("ReduceSum", 11), ("ReduceMean", 13),
                                      ("ReduceL2", 1), ("ReduceMax", 12)])
def test_onnx_axes_attribute_versions(op, opset):
    x = rand((2, 3, 4), seed=4)
    node = helper.make_node(op, ["x"], ["y"], axes=[0, -1], keepdims=0)
    (y,) = dlc.compile(onnx_model(node, [vi("x", [2, 3, 4])], [vi("y", None)], opset)).run(x)
    np.testing.assert_allclose(y, EXPECT[op](x, (0, 2), False), rtol=1e-5)
    node = helper.make_node(op, ["x"], ["y"])  # no axes: every axis, kept
    (y,) = dlc.compile(onnx_model(node, [vi("x", [2, 3, 4])], [vi("y", None)], opset)).run(x)
    np.testing.assert_allclose(y, EXPECT[op](x, None, True), rtol=1e-5)


def test_onnx_axes_input_version_with_noop():
    x = rand((2, 3), seed=5)
    node = helper.make_node("ReduceSumSquare", ["x", "axes"], ["y"], noop_with_empty_axes=1)
    axes = helper.make_tensor("axes", TensorProto.INT64, [0], [])
    model = onnx_model(node, [vi("x", [2, 3])], [vi("y", None)], 18, [axes])
    (y,) = dlc.compile(model).run(x)
    np.testing.assert_allclose(y, x * x, rtol=1e-6)


def test_onnx_argmax_opset_11_and_cumsum():
    x = rand((4, 3), seed=6)
    node = helper.make_node("ArgMax", ["x"], ["y"], axis=1, keepdims=0)
    model = onnx_model(node, [vi("x", [4, 3])], [vi("y", None, TensorProto.INT64)], 11)
    np.testing.assert_array_equal(dlc.compile(model).run(x)[0], np.argmax(x, axis=1))
    node = helper.make_node("CumSum", ["x", "a"], ["y"], reverse=1)
    a = helper.make_tensor("a", TensorProto.INT32, [], [1])
    model = onnx_model(node, [vi("x", [4, 3])], [vi("y", None)], 14, [a])
    np.testing.assert_allclose(dlc.compile(model).run(x)[0],
                               np.flip(np.cumsum(np.flip(x, 1), 1), 1), rtol=1e-6)


# -- must-fail ----------------------------------------------------------------------------
@pytest.mark.parametrize("op,args,attrs,match", [
    ("ReduceSum", [Const([3])], {}, "out of range"),
    ("ReduceMean", [Const([0, -2])], {}, "repeats an axis"),
    ("ReduceMax", [Const(np.array([0.0]))], {}, "axes must be a 1-D integer"),
    ("ReduceL1", [Const(np.array([[0]]))], {}, "axes must be a 1-D integer"),
    ("ReduceSum", [], {"keepdims": "yes"}, "keepdims"),
    ("ReduceSum", [], {"axis": 1}, "unknown attribute 'axis'"),
    ("ArgMax", [], {"axis": 3}, "out of range"),
    ("CumSum", [Const(np.array([0, 1]))], {}, "0-D integer"),
    ("CumSum", [Const(np.array(2))], {}, "out of range"),
])
def test_reduction_errors(op, args, attrs, match):
    with pytest.raises(dlc.ModelError, match=match):
        run(op, rand((2, 3, 4))[0], *args, **attrs)


def test_reduction_dtype_errors():
    with pytest.raises(dlc.ModelError, match="dtype bool"):
        run("ReduceSum", np.ones((2, 2), bool))
    with pytest.raises(dlc.ModelError, match="dtype bool"):
        run("ArgMax", np.ones((2, 2), bool))
    with pytest.raises(dlc.ModelError, match="empty axis"):
        run("ArgMin", Const(np.zeros((2, 0))), axis=1)


def test_onnx_unknown_attribute_is_reported():
    node = helper.make_node("ReduceSum", ["x"], ["y"], axes=[0], bogus=1)
    model = onnx_model(node, [vi("x", [2])], [vi("y", None)], 11)
    with pytest.raises(dlc.DlcError, match="bogus"):
        dlc.compile(model)
