"""Det (dlc/ops/misc.py) and its ONNX converter, against NumPy's determinant."""

import importlib

import numpy as np
import pytest
from onnx import TensorProto, helper

import dlc
from dlc.graph import GraphBuilder

for _module in ("dlc.ops.misc", "dlc.frontends.onnx.converters.misc"):
    importlib.import_module(_module)  # registers Det until the packages import these


def det(x):
    g = GraphBuilder("det")
    g.output(g.op("Det", g.input("x", x.shape, x.dtype)))
    return dlc.compile(g.build()).run(x)[0]


@pytest.mark.parametrize("shape, dtype", [((3, 3), "float32"), ((2, 4, 4), "float64"),
                                          ((2, 1, 5, 5), "float32"), ((1, 1), "float32"),
                                          ((3, 2, 2), "float16")])
def test_det_random(shape, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    got = det(x)
    assert got.shape == shape[:-2] and got.dtype == dtype
    tol = 5e-3 if dtype == "float16" else 1e-5
    np.testing.assert_allclose(got, np.linalg.det(x.astype(np.float64)), rtol=tol, atol=tol)


def test_det_pivoting_singular_and_permutations():
    mats = np.array([[[0, 1, 0], [1, 0, 0], [0, 0, 1]],      # one swap: -1
                     [[1, 2, 3], [2, 4, 6], [0, 0, 1]],      # singular: 0
                     [[0, 0, 2], [0, 3, 0], [4, 0, 0]],      # zero leading pivots
                     [[1e-8, 1, 0], [1, 1, 0], [0, 0, 1]]], np.float64)
    np.testing.assert_allclose(det(mats), np.linalg.det(mats), atol=1e-12)


def test_det_empty_matrices_are_one():
    assert det(np.zeros((2, 0, 0), np.float32)).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("shape, dtype, message", [((3, 4), "float32", "square"),
                                                   ((3,), "float32", "square"),
                                                   ((2, 2), "int32", "dtype")])
def test_det_must_fail(shape, dtype, message):
    g = GraphBuilder("bad")
    with pytest.raises(dlc.ModelError, match=message):
        g.op("Det", g.input("x", shape, dtype))


def test_onnx_det():
    node = helper.make_node("Det", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [2, 3, 3])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    x = np.random.default_rng(1).standard_normal((2, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(dlc.compile(model).run(x)[0], np.linalg.det(x), rtol=1e-5)


# -- Dropout (inference) ------------------------------------------------------------------
def _dropout_model(opset, outputs=("y", "mask"), mask_type=TensorProto.BOOL, inputs=("x",),
                   extra=(), **attrs):
    node = helper.make_node("Dropout", list(inputs), list(outputs), **attrs)
    out_types = [TensorProto.FLOAT, mask_type]
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info(o, t, [2, 3]) for o, t in zip(outputs, out_types)],
        initializer=list(extra))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


_X = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5


@pytest.mark.parametrize("opset, mask_type, mask", [
    (22, TensorProto.BOOL, np.ones((2, 3), bool)),
    (10, TensorProto.BOOL, np.ones((2, 3), bool)),
    (7, TensorProto.FLOAT, np.ones((2, 3), np.float32)),   # before 10 the mask has X's type
])
def test_dropout_is_identity_with_a_full_mask(opset, mask_type, mask):
    y, m = dlc.compile(_dropout_model(opset, mask_type=mask_type, ratio=0.3)
                       if opset < 12 else _dropout_model(opset)).run(_X)
    np.testing.assert_array_equal(y, _X)
    assert m.dtype == mask.dtype
    np.testing.assert_array_equal(m, mask)


def test_dropout_training_mode_inputs():
    ratio = helper.make_tensor("r", TensorProto.FLOAT, [], [0.0])
    on = helper.make_tensor("t", TensorProto.BOOL, [], [True])
    off = helper.make_tensor("t", TensorProto.BOOL, [], [False])
    for mode in (on, off):  # training with ratio 0 changes nothing
        model = _dropout_model(22, inputs=("x", "r", "t"), extra=(ratio, mode))
        y, m = dlc.compile(model).run(_X)
        np.testing.assert_array_equal(y, _X)
        assert m.all()
    half = helper.make_tensor("r", TensorProto.FLOAT, [], [0.5])
    with pytest.raises(dlc.UnsupportedOpError, match="training_mode is true"):
        dlc.compile(_dropout_model(22, inputs=("x", "r", "t"), extra=(half, on)))


def test_dropout_v6_needs_test_mode_or_ratio_0():
    for attrs in ({"is_test": 1}, {"is_test": 0, "ratio": 0.0}):
        y, = dlc.compile(_dropout_model(6, outputs=("y",), **attrs)).run(_X)
        np.testing.assert_array_equal(y, _X)
    with pytest.raises(dlc.UnsupportedOpError, match="is_test=0"):
        dlc.compile(_dropout_model(6, outputs=("y",)))


def test_dropout_must_fail():
    g = GraphBuilder("bad")
    with pytest.raises(dlc.ModelError, match="dtype"):
        g.op("Dropout", g.input("x", (2,), "int32"))
    with pytest.raises(dlc.ModelError, match="scalar"):
        g.op("Dropout", g.input("y", (2,), "float32"), g.constant(np.zeros(2, np.float32)))
