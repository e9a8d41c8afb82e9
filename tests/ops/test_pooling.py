"""MaxPool (with Indices), AveragePool, LpPool, global pools, MaxUnpool, MaxRoiPool:
compiled results against naive NumPy window loops written here, converters, must-fail
cases."""

import itertools

import numpy as np
import pytest
from onnx import TensorProto, helper

import dlc
from dlc.errors import ModelError
from dlc.graph.builder import GraphBuilder


def run(op, inputs, consts=(), outputs=1, **attrs):
    g = GraphBuilder("t")
    syms, feeds = [], []
    for k, x in enumerate(inputs):
        if k in consts:
            syms.append(g.constant(x))
        else:
            syms.append(g.input(f"in{k}", x.shape, x.dtype))
            feeds.append(x)
    names = [f"out{k}" for k in range(outputs)] if outputs > 1 else None
    out = g.op(op, *syms, outputs=names, **attrs)
    g.output(*(out if isinstance(out, tuple) else (out,)))
    return dlc.compile(g.build()).run(*feeds)


def rand(shape, dtype="float32", seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=shape).astype(dtype)


def windows(x, kernel, strides, pads, dilations, ceil_mode=False):
    """Yields (output index, list of (flat input index, value) inside the input) for every
    window, by the spec's formulas (a ceil_mode window starting in the end padding is
    dropped)."""
    r = len(kernel)
    out = []
    for d in range(r):
        span = x.shape[2 + d] + pads[d] + pads[r + d] - (kernel[d] - 1) * dilations[d] - 1
        size = (-(-span // strides[d]) if ceil_mode else span // strides[d]) + 1
        if ceil_mode and (size - 1) * strides[d] >= x.shape[2 + d] + pads[d]:
            size -= 1
        out.append(size)
    flat = np.arange(x.size).reshape(x.shape)
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for o in itertools.product(*[range(s) for s in out]):
            items, positions = [], 0
            for k in itertools.product(*[range(s) for s in kernel]):
                pos = [o[d] * strides[d] + k[d] * dilations[d] - pads[d] for d in range(r)]
                if all(0 <= p < x.shape[2 + d] for d, p in enumerate(pos)):
                    items.append((flat[(n, c, *pos)], x[(n, c, *pos)]))
                if all(p < x.shape[2 + d] + pads[r + d] for d, p in enumerate(pos)):
                    positions += 1
            yield (n, c, *o), items, positions, out


def naive_pool(kind, x, kernel, strides=None, pads=None, dilations=None, ceil_mode=False,
               count_include_pad=0, p=2):
    r = len(kernel)
    strides, dilations = strides or [1] * r, dilations or [1] * r
    pads = pads or [0] * (2 * r)
    results, indices = {}, {}
    shape = None
    for idx, items, positions, out in windows(x, kernel, strides, pads, dilations, ceil_mode):
        shape = x.shape[:2] + tuple(out)
        vals = np.array([v for _, v in items], np.float64)
        if kind == "max":
            best = int(np.argmax(vals))
            results[idx], indices[idx] = vals[best], items[best][0]
        elif kind == "avg":
            results[idx] = vals.sum() / (positions if count_include_pad else len(vals))
        else:
            results[idx] = np.sum(np.abs(vals) ** p) ** (1.0 / p)
    y = np.zeros(shape)
    i = np.zeros(shape, np.int64)
    for idx, v in results.items():
        y[idx] = v
        i[idx] = indices.get(idx, 0)
    return y, i


CASES = [
    ((1, 2, 9), [3], {}),
    ((2, 1, 7), [2], {"strides": [2], "pads": [1, 1], "ceil_mode": 1}),
    ((1, 2, 6, 7), [3, 2], {"strides": [2, 2], "pads": [1, 0, 1, 1]}),
    ((1, 1, 8, 8), [3, 3], {"strides": [3, 2], "dilations": [2, 1], "ceil_mode": 1}),
    ((1, 1, 5, 5), [2, 2], {"strides": [2, 2], "ceil_mode": 1}),
    ((1, 2, 4, 5, 6), [2, 3, 2], {"strides": [2, 1, 2], "pads": [0, 1, 1, 1, 1, 0]}),
]


@pytest.mark.parametrize("shape,kernel,attrs", CASES)
def test_max_pool_and_indices(shape, kernel, attrs):
    x = rand(shape, seed=1)
    y, i = run("MaxPool", [x], outputs=2, kernel_shape=kernel, **attrs)
    want, want_i = naive_pool("max", x, kernel, attrs.get("strides"), attrs.get("pads"),
                              attrs.get("dilations"), attrs.get("ceil_mode", 0))
    assert y.shape == want.shape and i.dtype == np.int64
    np.testing.assert_array_equal(y, want.astype(np.float32))
    np.testing.assert_array_equal(i, want_i)


@pytest.mark.parametrize("shape,kernel,attrs", CASES)
@pytest.mark.parametrize("include", [0, 1])
def test_average_pool(shape, kernel, attrs, include):
    x = rand(shape, seed=2)
    (y,) = run("AveragePool", [x], kernel_shape=kernel, count_include_pad=include, **attrs)
    want, _ = naive_pool("avg", x, kernel, attrs.get("strides"), attrs.get("pads"),
                         attrs.get("dilations"), attrs.get("ceil_mode", 0), include)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape,kernel,attrs", CASES[:4])
@pytest.mark.parametrize("p", [1, 2, 3])
def test_lp_pool(shape, kernel, attrs, p):
    x = rand(shape, seed=3)
    (y,) = run("LpPool", [x], kernel_shape=kernel, p=p, **attrs)
    want, _ = naive_pool("lp", x, kernel, attrs.get("strides"), attrs.get("pads"),
                         attrs.get("dilations"), attrs.get("ceil_mode", 0), p=p)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


def test_max_pool_ties_nan_storage_order_and_int8():
    x = np.array([[[[1, 5, 5], [5, 2, 0], [3, 3, 4]]]], np.float32)
    y, i = run("MaxPool", [x], outputs=2, kernel_shape=[2, 2])
    np.testing.assert_array_equal(y[0, 0], [[5, 5], [5, 4]])
    np.testing.assert_array_equal(i[0, 0], [[1, 1], [3, 8]])  # the first maximum
    _, i = run("MaxPool", [x], outputs=2, kernel_shape=[2, 2], storage_order=1)
    np.testing.assert_array_equal(i[0, 0], [[3, 3], [1, 8]])  # h + w * H
    xn = x.copy()
    xn[0, 0, 1, 1] = np.nan
    y, i = run("MaxPool", [xn], outputs=2, kernel_shape=[2, 2])
    assert np.isnan(y[0, 0]).all() and (i[0, 0] == 4).all()
    xi = np.array([[[[-128, 7], [3, -2]]]], np.int8)
    y = run("MaxPool", [xi], kernel_shape=[2, 2], pads=[1, 1, 0, 0])[0]
    np.testing.assert_array_equal(y[0, 0], [[-128, 7], [3, 7]])


@pytest.mark.parametrize("ceil_mode", [0, 1])
@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pool_auto_pad(op, auto_pad, ceil_mode):
    # auto_pad is explicit pads (0 for VALID); ceil_mode then applies as with pads (VALID:
    # 8 - 3 and 7 - 2 are odd, so it adds a row and a column of windows)
    x = rand((1, 1, 8, 7), seed=4)
    y = run(op, [x], kernel_shape=[3, 2], strides=[2, 2], auto_pad=auto_pad,
            ceil_mode=ceil_mode)[0]
    if auto_pad == "VALID":
        pads = [0, 0, 0, 0]
    else:
        total = [max(0, (-(-s // 2) - 1) * 2 + k - s) for s, k in ((8, 3), (7, 2))]
        small, large = [t // 2 for t in total], [t - t // 2 for t in total]
        pads = small + large if auto_pad == "SAME_UPPER" else large + small
    want, _ = naive_pool("max" if op == "MaxPool" else "avg", x, [3, 2], [2, 2], pads,
                         ceil_mode=ceil_mode)
    assert y.shape == want.shape
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


# auto_pad with ceil_mode, 1-D windows over x = 1, 2, ..., L: (L, attributes,
# count_include_pad, expected AveragePool output), values worked out by hand. VALID is
# explicit pads of 0, as in ONNX's shape inference and onnxruntime: ceil_mode adds a last
# window overhanging the end of the input (the spec text's VALID formula, ceil((L - k + 1)
# / s), equals the floor size and would drop it). SAME_* output ceil(L / s) windows with or
# without ceil_mode. count_include_pad=1 counts SAME padding, never an overhang.
K2S2 = {"kernel_shape": [2], "strides": [2]}
AUTO_PAD_CEIL = [
    (5, {**K2S2, "auto_pad": "VALID"}, 0, [1.5, 3.5]),
    (5, {**K2S2, "auto_pad": "VALID", "ceil_mode": 1}, 0, [1.5, 3.5, 5]),  # [5] overhangs
    (5, {**K2S2, "auto_pad": "VALID", "ceil_mode": 1}, 1, [1.5, 3.5, 5]),  # not counted
    # a third window would start at 6, past the input: dropped
    (5, {"kernel_shape": [1], "strides": [3], "auto_pad": "VALID", "ceil_mode": 1}, 0,
     [1, 4]),
    (6, {**K2S2, "dilations": [2], "auto_pad": "VALID", "ceil_mode": 1}, 0, [2, 4, 5]),
    # SAME_UPPER: total padding (3 - 1) * 2 + 2 - 5 = 1, at the end: [1 2] [3 4] [5 pad]
    (5, {**K2S2, "auto_pad": "SAME_UPPER"}, 0, [1.5, 3.5, 5]),
    (5, {**K2S2, "auto_pad": "SAME_UPPER", "ceil_mode": 1}, 0, [1.5, 3.5, 5]),
    (5, {**K2S2, "auto_pad": "SAME_UPPER", "ceil_mode": 1}, 1, [1.5, 3.5, 2.5]),
    # SAME_LOWER: the padding first: [pad 1] [2 3] [4 5]
    (5, {**K2S2, "auto_pad": "SAME_LOWER", "ceil_mode": 1}, 0, [1, 2.5, 4.5]),
    (5, {**K2S2, "auto_pad": "SAME_LOWER", "ceil_mode": 1}, 1, [0.5, 2.5, 4.5]),
    # kernel 3, L 6: total padding 1: [1 2 3] [3 4 5] [5 6 pad]
    (6, {"kernel_shape": [3], "strides": [2], "auto_pad": "SAME_UPPER", "ceil_mode": 1}, 1,
     [2, 4, 11 / 3]),
    # explicit pads with ceil_mode: [pad 1 2] [2 3 4] [4 5 6] [6 pad | overhang]
    (6, {"kernel_shape": [3], "strides": [2], "pads": [1, 1], "ceil_mode": 1}, 0,
     [1.5, 3, 5, 6]),
    (6, {"kernel_shape": [3], "strides": [2], "pads": [1, 1], "ceil_mode": 1}, 1,
     [1, 3, 5, 3]),
]


@pytest.mark.parametrize("length,attrs,include,want", AUTO_PAD_CEIL)
def test_average_pool_auto_pad_and_ceil_mode_by_hand(length, attrs, include, want):
    x = np.arange(1, length + 1, dtype=np.float32).reshape(1, 1, length)
    (y,) = run("AveragePool", [x], count_include_pad=include, **attrs)
    np.testing.assert_allclose(y[0, 0], want, rtol=1e-6)


def test_pool_valid_ceil_mode_2d_by_hand():
    # 3 x 3, 2 x 2 windows, strides 2: the second row and column of windows overhang
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)
    attrs = {"kernel_shape": [2, 2], "strides": [2, 2], "auto_pad": "VALID", "ceil_mode": 1}
    for include in (0, 1):
        (y,) = run("AveragePool", [x], count_include_pad=include, **attrs)
        np.testing.assert_allclose(y[0, 0], [[3, 4.5], [7.5, 9]], rtol=1e-6)
    y, i = run("MaxPool", [x], outputs=2, **attrs)
    np.testing.assert_array_equal(y[0, 0], [[5, 6], [8, 9]])
    np.testing.assert_array_equal(i[0, 0], [[4, 5], [7, 8]])
    y, i = run("MaxPool", [x], outputs=2, **{**attrs, "ceil_mode": 0})
    np.testing.assert_array_equal(y[0, 0], [[5]])


@pytest.mark.parametrize("dtype,tol", [("float16", 2e-3), ("float64", 1e-12)])
def test_pool_dtypes(dtype, tol):
    x = rand((1, 3, 5, 5), dtype, seed=5)
    (y,) = run("AveragePool", [x], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    assert y.dtype == np.dtype(dtype)
    want, _ = naive_pool("avg", x, [3, 3], pads=[1, 1, 1, 1])
    np.testing.assert_allclose(y.astype(np.float64), want, rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", [(2, 3, 5), (1, 2, 4, 3), (1, 1, 2, 3, 4)])
def test_global_pools(shape):
    x = rand(shape, seed=6)
    axes = tuple(range(2, len(shape)))
    (y,) = run("GlobalAveragePool", [x])
    np.testing.assert_allclose(y, x.mean(axis=axes, keepdims=True), rtol=1e-5, atol=1e-6)
    (y,) = run("GlobalMaxPool", [x])
    np.testing.assert_array_equal(y, x.max(axis=axes, keepdims=True))
    (y,) = run("GlobalLpPool", [x], p=3)
    want = np.sum(np.abs(x.astype(np.float64)) ** 3, axis=axes, keepdims=True) ** (1 / 3)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


def test_lp_pool_opset_1_float_p():
    x = rand((1, 1, 4, 4), seed=7)
    node = helper.make_node("LpPool", ["x"], ["y"], kernel_shape=[2, 2], p=3.0)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 1, 4, 4])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 1)])
    (y,) = dlc.compile(model).run(x)
    want, _ = naive_pool("lp", x, [2, 2], p=3)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op,attrs,match", [
    ("MaxPool", {"kernel_shape": [2]}, "kernel_shape"),
    ("MaxPool", {"kernel_shape": [2, 0]}, "positive"),
    ("MaxPool", {"kernel_shape": [2, 2], "storage_order": 2}, "storage_order"),
    ("AveragePool", {"kernel_shape": [2, 2], "ceil_mode": 3}, "ceil_mode"),
    ("AveragePool", {"kernel_shape": [9, 2]}, "larger"),
    ("MaxPool", {"kernel_shape": [5, 2], "auto_pad": "VALID", "ceil_mode": 1}, "VALID"),
    ("LpPool", {"kernel_shape": [2, 2], "p": 0}, "p must"),
    ("AveragePool", {}, "required"),
    ("MaxPool", {"kernel_shape": [2, 2], "pads": [1, 1]}, "pads"),
])
def test_pool_must_fail(op, attrs, match):
    with pytest.raises(ModelError, match=match):
        run(op, [rand((1, 1, 4, 4))], **attrs)


def test_pool_must_fail_on_dtype():
    with pytest.raises(ModelError, match="dtype"):
        run("AveragePool", [np.zeros((1, 1, 4, 4), np.int8)], kernel_shape=[2, 2])
    with pytest.raises(ModelError, match="rank 3"):
        run("GlobalAveragePool", [rand((2, 3))])


# -- MaxUnpool -------------------------------------------------------------------------------
def test_max_unpool_inverts_max_pool():
    x = rand((2, 2, 4, 6), seed=8)
    y, i = run("MaxPool", [x], outputs=2, kernel_shape=[2, 2], strides=[2, 2])
    (u,) = run("MaxUnpool", [y, i], kernel_shape=[2, 2], strides=[2, 2])
    want = np.zeros(x.size, np.float32)
    want[i.reshape(-1)] = y.reshape(-1)
    np.testing.assert_array_equal(u, want.reshape(x.shape))


def test_max_unpool_output_shape_and_duplicates():
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]], np.float32)
    i = np.array([[[[0, 0], [10, 99]]]], np.int64)  # a duplicate and an out-of-range index
    (u,) = run("MaxUnpool", [x, i, np.array([1, 1, 5, 5], np.int64)], consts=(2,),
               kernel_shape=[2, 2], strides=[2, 2])
    assert u.shape == (1, 1, 5, 5)
    want = np.zeros((1, 1, 5, 5), np.float32)
    want[0, 0, 0, 0] = 2.0  # the last writer wins; index 10 is row 2 of the 4x4 unpooled
    want[0, 0, 2, 2] = 3.0
    np.testing.assert_array_equal(u, want)


def test_max_unpool_must_fail():
    x, i = rand((1, 1, 2, 2)), np.zeros((1, 1, 2, 2), np.int64)
    with pytest.raises(ModelError, match="output_shape"):
        run("MaxUnpool", [x, i, np.array([1, 1, 2, 2], np.int64)], consts=(2,),
            kernel_shape=[2, 2], strides=[2, 2])
    with pytest.raises(ModelError, match="indices"):
        run("MaxUnpool", [x, i[..., :1]], kernel_shape=[2, 2])


# -- MaxRoiPool ------------------------------------------------------------------------------
def naive_max_roi_pool(x, rois, pooled, scale):
    def rnd(v):
        return np.sign(v) * np.floor(abs(v) + 0.5)

    ph, pw = pooled
    H, W = x.shape[2:]
    out = np.zeros((len(rois), x.shape[1], ph, pw), np.float32)
    for r, (b, x1, y1, x2, y2) in enumerate(rois):
        x1, y1, x2, y2 = (rnd(v * scale) for v in (x1, y1, x2, y2))
        bh, bw = max(y2 - y1 + 1, 1) / ph, max(x2 - x1 + 1, 1) / pw
        for i, j in itertools.product(range(ph), range(pw)):
            hs = int(min(max(np.floor(i * bh) + y1, 0), H))
            he = int(min(max(np.ceil((i + 1) * bh) + y1, 0), H))
            ws = int(min(max(np.floor(j * bw) + x1, 0), W))
            we = int(min(max(np.ceil((j + 1) * bw) + x1, 0), W))
            if he > hs and we > ws:
                out[r, :, i, j] = x[int(b), :, hs:he, ws:we].max(axis=(1, 2))
    return out


def test_max_roi_pool():
    x = rand((2, 3, 8, 9), seed=9)
    rois = np.array([[0, 1, 1, 6, 5], [1, 0, 0, 8, 7], [1, 7, 6, 20, 20], [0, 2.4, 1.5, 2.6, 3]],
                    np.float32)
    (y,) = run("MaxRoiPool", [x, rois], pooled_shape=[2, 3], spatial_scale=1.0)
    np.testing.assert_array_equal(y, naive_max_roi_pool(x, rois, (2, 3), 1.0))
    rois2 = rois * np.array([1, 2, 2, 2, 2], np.float32)
    (y,) = run("MaxRoiPool", [x, rois2], pooled_shape=[3, 2], spatial_scale=0.5)
    np.testing.assert_array_equal(y, naive_max_roi_pool(x, rois2, (3, 2), 0.5))


def test_max_roi_pool_must_fail():
    with pytest.raises(ModelError, match="rois"):
        run("MaxRoiPool", [rand((1, 1, 4, 4)), rand((2, 4))], pooled_shape=[2, 2])
