"""Gather/Scatter family, OneHot and TopK (dlc/ops/indexing.py) against NumPy expectations
written here; out-of-range run-time indices must not crash; must-fail cases for bad
attributes and shapes."""

import numpy as np
import pytest
from op_util import C, data, fails, onnx_vs_ort, run, same

import dlc


# -- Gather -------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("idx_dtype", ["int32", "int64"])
def test_gather(axis, idx_dtype):
    x = data((4, 5, 3), "float16")
    size = x.shape[axis]
    idx = np.array([[0, -1], [size - 1, 1], [-size, 2]], idx_dtype)
    same(run("Gather", x, idx, axis=axis), np.take(x, idx % size, axis=axis))


def test_gather_one_element_indices_and_bool_data():
    x = data((6, 2), "bool")
    idx = np.array([3], np.int64)
    same(run("Gather", x, idx, axis=0), x[[3]])


def test_gather_scalar_index():
    x = data((6, 2))
    same(run("Gather", x, np.array(-2, np.int64)), x[-2])


def test_gather_out_of_range_index_does_not_crash():
    x = data((4, 3))
    got = run("Gather", x, np.array([0, 10**12, -10**12], np.int64))
    assert got.shape == (3, 3)
    same(got[0], x[0])


def test_gather_errors():
    fails("Gather", data((3, 4)), np.array([0], np.float32), match="indices")
    fails("Gather", data((3, 4)), np.array([0], np.int64), axis=2, match="out of range")
    fails("Gather", data(()), np.array([0], np.int64), match="rank 1")


# -- GatherElements -----------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_elements(axis):
    x = data((3, 4), "int32")
    rng = np.random.default_rng(1)
    size = x.shape[axis]
    idx_shape = (2, 4) if axis == 0 else (3, 3)
    idx = rng.integers(-size, size, size=idx_shape).astype(np.int64)
    want = np.take_along_axis(x[:idx_shape[0]] if axis != 0 else x[:, :idx_shape[1]],
                              idx % size, axis=axis)
    same(run("GatherElements", x, idx, axis=axis), want)


def test_gather_elements_errors():
    fails("GatherElements", data((3, 4)), np.zeros((3,), np.int64), match="same rank")
    fails("GatherElements", data((3, 4)), np.zeros((3, 5), np.int64), match="exceeds")


# -- GatherND -----------------------------------------------------------------------------
def gather_nd(x, idx, b):
    out_shape = idx.shape[:-1] + x.shape[b + idx.shape[-1]:]
    out = np.empty(out_shape, x.dtype)
    for pos in np.ndindex(idx.shape[:-1]):
        out[pos] = x[pos[:b] + tuple(idx[pos])]
    return out


@pytest.mark.parametrize("x_shape, idx, b", [
    ((2, 2), [[0, 0], [1, 1]], 0),
    ((2, 2), [[1], [0]], 0),
    ((2, 3, 4), [[[0, 1]], [[1, -1]]], 0),
    ((2, 3, 4), [[1], [0]], 1),
    ((2, 3, 4, 2), [[[2, 1], [0, -4]], [[1, 3], [-1, 0]]], 1),
    ((2, 3, 4), [[[0], [2]], [[1], [1]]], 1),
])
def test_gather_nd(x_shape, idx, b):
    x = data(x_shape, "float64")
    idx = np.array(idx, np.int64)
    shape = np.array(x_shape)
    normalized = np.where(idx < 0, idx + shape[b:b + idx.shape[-1]], idx)
    same(run("GatherND", x, idx, batch_dims=b), gather_nd(x, normalized, b))


def test_gather_nd_errors():
    x = data((2, 3))
    fails("GatherND", x, np.zeros((2, 3), np.int64), match="last dimension")
    fails("GatherND", x, np.zeros((3, 1), np.int64), batch_dims=1, match="batch dimensions")
    fails("GatherND", x, np.zeros((2, 1), np.int32), match="int64")
    fails("GatherND", x, np.zeros((2, 1), np.int64), batch_dims=2, match="batch_dims")


# -- ScatterElements, ScatterND -----------------------------------------------------------
def scatter_elements(x, idx, upd, axis, f):
    out = x.copy()
    for pos in np.ndindex(idx.shape):
        where = list(pos)
        where[axis] = idx[pos] % x.shape[axis]
        out[tuple(where)] = f(out[tuple(where)], upd[pos])
    return out


FUNCS = {"none": lambda a, b: b, "add": lambda a, b: a + b, "mul": lambda a, b: a * b,
         "max": max, "min": min}


@pytest.mark.parametrize("reduction", ["add", "mul", "max", "min"])
@pytest.mark.parametrize("axis", [0, 1])
def test_scatter_elements_reductions(reduction, axis):
    x = data((4, 5), "float32")
    idx = np.array([[1, 0, -1, 1, 3], [1, 2, 3, 0, 1]], np.int64)
    idx = idx if axis == 0 else idx[:, :4] % 5
    upd = data(idx.shape, "float32", seed=3)
    want = scatter_elements(x, idx, upd, axis, FUNCS[reduction])
    got = run("ScatterElements", x, idx, upd, axis=axis, reduction=reduction)
    same(got, want)


@pytest.mark.parametrize("dtype", ["float32", "int8", "bool"])
def test_scatter_elements_none(dtype):
    x = data((3, 4), dtype)
    idx = np.array([[2, -1, 0], [0, 1, 2]], np.int64)
    upd = data((2, 3), dtype, seed=5)
    want = scatter_elements(x, idx, upd, 1, FUNCS["none"])
    same(run("ScatterElements", x, idx, upd, axis=1), want)


def test_scatter_elements_bool_add_is_or():
    x = np.array([False, True, False, False])
    idx = np.array([0, 0, 2, 3], np.int64)
    upd = np.array([True, False, False, True])
    got = run("ScatterElements", x, idx, upd, reduction="add")
    same(got, np.array([True, True, False, True]))
    got = run("ScatterElements", x, idx, upd, reduction="mul")
    same(got, np.array([False, True, False, False]))


def test_scatter_elements_out_of_range_index_does_not_crash():
    x = data((3,))
    got = run("ScatterElements", x, np.array([7], np.int64), np.array([1.0], np.float32))
    same(got, x)


def scatter_nd(x, idx, upd, f):
    out = x.copy()
    for pos in np.ndindex(idx.shape[:-1]):
        where = tuple(int(i) % s for i, s in zip(idx[pos], x.shape))
        out[where] = f(out[where], upd[pos])
    return out


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_nd(reduction):
    x = data((4, 3, 2), "int64")
    idx = np.array([[[0, 1], [3, -1]], [[0, 1], [2, 2]]], np.int64)
    if reduction == "none":
        idx = np.array([[[0, 1], [3, -1]], [[1, 1], [2, 2]]], np.int64)
    upd = data((2, 2, 2), "int64", seed=7)
    want = scatter_nd(x, idx, upd, np.vectorize(FUNCS[reduction]))
    same(run("ScatterND", x, idx, upd, reduction=reduction), want)


def test_scatter_nd_slices_and_full_index():
    x = data((4, 4, 4), "float32")
    idx = np.array([[0], [2]], np.int64)
    upd = data((2, 4, 4), "float32", seed=2)
    want = x.copy()
    want[[0, 2]] = upd
    same(run("ScatterND", x, idx, upd), want)
    y = data((8,), "uint8")
    idx = np.array([[4], [3], [1], [7]], np.int64)
    upd = np.array([9, 10, 11, 12], np.uint8)
    want = y.copy()
    want[[4, 3, 1, 7]] = upd
    same(run("ScatterND", y, idx, upd), want)


def test_scatter_errors():
    x = data((3, 4))
    fails("ScatterElements", x, np.zeros((2, 4), np.int64), data((2, 3)), match="one shape")
    fails("ScatterElements", x, np.zeros((2, 4), np.int64), data((2, 4), "int32"),
          match="dtype")
    fails("ScatterElements", x, np.zeros((2, 4), np.int64), data((2, 4)), reduction="sub",
          match="reduction")
    fails("ScatterND", x, np.zeros((2, 3), np.int64), data((2,)), match="last dimension")
    fails("ScatterND", x, np.zeros((2, 1), np.int64), data((2, 3)), match="expected")


# -- TensorScatter ------------------------------------------------------------------------
def tensor_scatter(past, update, write, axis, circular):
    out = past.copy()
    size = past.shape[axis]
    for prefix in np.ndindex(past.shape[:axis]):
        for s in range(update.shape[axis]):
            pos = (write[prefix[0]] if write is not None else 0) + s
            out[prefix + (pos % size if circular else pos,)] = update[prefix + (s,)]
    return out


@pytest.mark.parametrize("mode", ["linear", "circular"])
@pytest.mark.parametrize("with_indices", [True, False])
def test_tensor_scatter(mode, with_indices):
    past = data((2, 3, 5, 4), "float16")
    update = data((2, 3, 2, 4), "float16", seed=1)
    write = np.array([3, 1], np.int64) if with_indices else None
    if mode == "circular" and with_indices:
        write = np.array([4, 9], np.int64)
    want = tensor_scatter(past, update, write, 2, mode == "circular")
    args = [past, update] + ([write] if with_indices else [])
    same(run("TensorScatter", *args, mode=mode), want)


def test_tensor_scatter_axis_and_errors():
    past, update = data((2, 6, 3), "int32"), data((2, 2, 3), "int32", seed=1)
    write = np.array([0, 4], np.int64)
    want = tensor_scatter(past, update, write, 1, False)
    same(run("TensorScatter", past, update, write, axis=1), want)
    fails("TensorScatter", past, update, axis=0, match="batch")
    fails("TensorScatter", past, data((2, 7, 3), "int32"), axis=1, match="does not fit")
    fails("TensorScatter", past, update, np.array([0], np.int64), axis=1,
          match="write_indices")
    fails("TensorScatter", past, update, axis=1, mode="ring", match="mode")


# -- OneHot -------------------------------------------------------------------------------
def one_hot(idx, depth, axis, values):
    idx = np.asarray(idx, np.float64)
    idx = np.where(idx < 0, idx + depth, idx)
    axis = axis % (idx.ndim + 1)
    targets = np.arange(depth).reshape((depth,) + (1,) * (idx.ndim - axis))
    hit = np.expand_dims(idx, axis) == targets
    return np.where(hit, values[1], values[0]).astype(values.dtype)


@pytest.mark.parametrize("axis", [-1, 0, 1])
@pytest.mark.parametrize("idx_dtype", ["int64", "int8", "uint8", "float32"])
def test_one_hot(axis, idx_dtype):
    raw = [[1, 9, -1], [0, -3, 4]] if idx_dtype != "uint8" else [[1, 9, 255], [0, 3, 4]]
    idx = np.array(raw).astype(idx_dtype)
    values = np.array([-2, 5], np.int32)
    got = run("OneHot", idx, C(5), values, axis=axis)
    same(got, one_hot(idx, 5, axis, values))


def test_one_hot_float_depth_and_fractional_index():
    idx = np.array([0.0, 1.5, -1.0, 2.0], np.float32)
    values = np.array([0.0, 1.0], np.float64)
    same(run("OneHot", idx, C(3.0, np.float32), values), one_hot(idx, 3, -1, values))


def test_one_hot_errors():
    idx = np.array([0, 1], np.int64)
    values = np.array([0, 1], np.float32)
    fails("OneHot", idx, C(2.5, np.float32), values, match="non-negative integer")
    fails("OneHot", idx, C([2, 3]), values, match="one element")
    fails("OneHot", idx, C(3), np.zeros(3, np.float32), match="shape \\[2\\]")
    fails("OneHot", idx, C(3), values, axis=3, match="out of range")


# -- TopK ---------------------------------------------------------------------------------
def topk(x, k, axis, largest):
    pos = np.indices(x.shape)[axis]
    key = x.astype(np.float64) * (-1 if largest else 1)  # NaN counts as largest:
    key = np.where(np.isnan(key), -np.inf if largest else np.inf, key)  # (no infs here)
    order = np.lexsort((pos, key), axis=axis)
    order = np.take(order, np.arange(k), axis=axis)
    return np.take_along_axis(x, order, axis=axis), order.astype(np.int64)


@pytest.mark.parametrize("largest", [1, 0])
@pytest.mark.parametrize("axis, k", [(-1, 3), (0, 2), (1, 4)])
def test_top_k_with_ties(largest, axis, k):
    x = np.array([[3, 1, 3, 2], [1, 1, 5, 5], [0, 7, 7, 0]], np.float32)
    values, indices = run("TopK", x, C([k]), axis=axis, largest=largest, outputs=2)
    want_v, want_i = topk(x, k, axis, largest)
    same(values, want_v)
    same(indices, want_i)


@pytest.mark.parametrize("dtype", ["int32", "uint8", "float64", "float16"])
def test_top_k_dtypes(dtype):
    x = data((2, 3, 6), dtype, seed=4) if dtype != "uint8" else \
        np.random.default_rng(4).integers(0, 255, (2, 3, 6)).astype(np.uint8)
    values, indices = run("TopK", x, C([3]), axis=1, outputs=2)
    want_v, want_i = topk(x, 3, 1, 1)
    same(values, want_v)
    same(indices, want_i)


def test_top_k_nan_is_largest():
    x = np.array([1.0, np.nan, 3.0, np.nan, -1.0], np.float32)
    values, indices = run("TopK", x, C([3]), outputs=2)
    same(indices, np.array([1, 3, 2], np.int64))
    values, indices = run("TopK", x, C([2]), largest=0, outputs=2)
    same(indices, np.array([4, 0], np.int64))


def test_top_k_errors():
    x = data((3, 4))
    fails("TopK", x, C([5]), match="between 0 and 4")
    fails("TopK", x, C([-1]), match="between")
    fails("TopK", x, C([1, 2]), match="one value")
    fails("TopK", x, C([1]), axis=2, match="out of range")
    fails("TopK", data((3,), "bool"), C([1]), match="dtype")


# -- ONNX converters of older opsets, against onnxruntime ---------------------------------
def test_top_k_and_scatter_converters():
    x = {"x": np.array([[3, 1, 3, 2], [1, 1, 5, 5]], np.float32)}
    onnx_vs_ort("TopK", x, 9, outputs=2, k=3)
    onnx_vs_ort("TopK", x, 10, outputs=2, axis=0, initializers={"k": np.array([2], np.int64)})
    onnx_vs_ort("TopK", x, 11, outputs=2, largest=0,
                initializers={"k": np.array([3], np.int64)})
    scatter = {"x": data((3, 3), "float32"), "i": np.array([[1, 0, 2], [0, 2, 1]], np.int64),
               "u": data((2, 3), "float32", seed=1)}
    onnx_vs_ort("Scatter", scatter, 9, axis=0)
    onnx_vs_ort("Scatter", scatter, 10, axis=1)


@pytest.mark.parametrize("dtype", ["int64", "int8", "float32"])
def test_one_hot_before_opset_11_ignores_negative_indices(dtype):
    from onnx import helper, numpy_helper

    idx = np.array([[1, -1], [-3, 2]], dtype)
    values = np.array([0, 1], np.float32)
    node = helper.make_node("OneHot", ["i", "d", "v"], ["y"])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("i", helper.np_dtype_to_tensor_dtype(
            idx.dtype), idx.shape)], [helper.make_empty_tensor_value_info("y")],
        initializer=[numpy_helper.from_array(np.array(3, np.int64), "d"),
                     numpy_helper.from_array(values, "v")])
    for opset, want_idx in ((10, [[1, 9], [9, 2]]), (11, [[1, 2], [0, 2]])):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        got = dlc.compile(model).run(idx)[0]
        same(got, one_hot(np.array(want_idx), 3, -1, values))
