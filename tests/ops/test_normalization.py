"""Normalization ops: compiled results against NumPy, dtypes and stash types, the ONNX
converters of older opsets, and must-fail cases."""

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper

import dlc
from dlc.graph import run_graph
from dlc.graph.builder import GraphBuilder


def run(op, *inputs, outputs=None, **attrs):
    """Compile one ``op`` node whose inputs are graph inputs (None: omitted)."""
    g = GraphBuilder("t")
    syms = [None if a is None else g.input(f"in{k}", a.shape, a.dtype)
            for k, a in enumerate(inputs)]
    out = g.op(op, *syms, **attrs)
    out = out if isinstance(out, tuple) else (out,)
    g.output(*out[:outputs])
    return dlc.compile(g.build()).run(*[a for a in inputs if a is not None])


def rand(shape, dtype="float32", seed=0, low=-1.0, high=1.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape).astype(dtype)


def onnx_model(nodes, inputs, outputs, opset, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def standardize(x, axes, eps):
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps), mean, 1 / np.sqrt(var + eps)


# -- BatchNormalization -----------------------------------------------------------------------
def np_batchnorm(x, s, b, m, v, eps=1e-5):
    shape = (-1,) + (1,) * (x.ndim - 2) if s.ndim == 1 else s.shape
    s, b, m, v = (p.astype(np.float64).reshape(shape) for p in (s, b, m, v))
    return (x.astype(np.float64) - m) / np.sqrt(v + eps) * s + b


def bn_params(c, dtype="float32", seed=1):
    return [rand(c, dtype, seed), rand(c, dtype, seed + 1), rand(c, dtype, seed + 2),
            rand(c, dtype, seed + 3, 0.5, 2.0)]


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (4, 3), (2, 3, 7)])
def test_batchnorm(shape):
    x = rand(shape)
    params = bn_params(shape[1])
    (y,) = run("BatchNormalization", x, *params, epsilon=1e-3)
    np.testing.assert_allclose(y, np_batchnorm(x, *params, eps=1e-3), rtol=1e-5, atol=1e-6)


def test_batchnorm_rank_1_input_has_one_channel():
    x = rand((6,))
    params = bn_params((1,))
    (y,) = run("BatchNormalization", x, *params)
    s, b, m, v = (p[0] for p in params)
    np.testing.assert_allclose(y, (x - m) / np.sqrt(v + 1e-5) * s + b, rtol=1e-5)


def test_batchnorm_per_activation_parameters():
    x = rand((2, 3, 4))
    params = bn_params((3, 4))
    (y,) = run("BatchNormalization", x, *params)
    np.testing.assert_allclose(y, np_batchnorm(x, *params), rtol=1e-5, atol=1e-6)


def test_batchnorm_mixed_dtypes():
    x = rand((2, 3, 4), "float16")
    scale_bias = bn_params(3, "float32")[:2]
    mean_var = bn_params(3, "float64")[2:]
    (y,) = run("BatchNormalization", x, *scale_bias, *mean_var)
    assert y.dtype == np.float16
    want = np_batchnorm(x, *scale_bias, *mean_var)
    np.testing.assert_allclose(y.astype(np.float64), want, rtol=2e-3, atol=2e-3)


def test_batchnorm_onnx_versions():
    x = rand((2, 3, 4, 4))
    params = bn_params(3)
    inits = [helper.make_tensor(n, TensorProto.FLOAT, [3], p)
             for n, p in zip("sbmv", params)]
    want = np_batchnorm(x, *params, eps=1e-2)
    for opset, attrs in ((6, {"is_test": 1}), (7, {}), (9, {}), (15, {"training_mode": 0})):
        node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"],
                                epsilon=1e-2, **attrs)
        model = onnx_model([node], [vi("x", [2, 3, 4, 4])], [vi("y", None)], opset, inits)
        np.testing.assert_allclose(dlc.compile(model).run(x)[0], want, rtol=1e-5, atol=1e-6)


# Training mode: batch statistics over every axis but 1 (population variance), running
# statistics ``old * momentum + batch * (1 - momentum)``.
def test_batchnorm_training_hand_checked():
    # channel 0 sees 1 and 3: mean 2, variance 1; channel 1 sees 2 and 6: mean 4, var 4
    x = np.array([[1, 2], [3, 6]], np.float32)
    scale, bias = np.array([1, 0.5], np.float32), np.array([0, 1], np.float32)
    mean, var = np.array([0, 10], np.float32), np.array([1, 2], np.float32)
    g = GraphBuilder("t")
    syms = [g.input(n, a.shape, a.dtype) for n, a in zip("xsbmv", (x, scale, bias, mean, var))]
    g.output(*g.op("BatchNormalization", *syms, training_mode=1, momentum=0.5, epsilon=0.0))
    graph = g.build()
    want = [[[-1, 0.5], [1, 1.5]], [1, 7], [1, 3]]
    feeds = dict(zip("xsbmv", (x, scale, bias, mean, var)))
    for got in (dlc.compile(graph).run(feeds), run_graph(graph, feeds)):
        for k in range(3):
            np.testing.assert_allclose(got[k], want[k], rtol=1e-6)
            assert got[k].dtype == np.float32


def test_batchnorm_training_uses_the_population_variance():
    # 1, 3, 5, 7: mean 4, population variance 5 (the sample variance would be 20 / 3);
    # epsilon 4 makes the divisor sqrt(9) = 3
    x = np.array([[[1, 3, 5, 7]]], np.float32)
    one, zero = np.ones(1, np.float32), np.zeros(1, np.float32)
    y, rm, rv = run("BatchNormalization", x, one, zero, zero, one, training_mode=1,
                    epsilon=4.0)
    np.testing.assert_allclose(y, [[[-1, -1 / 3, 1 / 3, 1]]], rtol=1e-6)
    np.testing.assert_allclose(rm, [0.4], rtol=1e-6)       # 0 * 0.9 + 4 * 0.1
    np.testing.assert_allclose(rv, [0.9 + 0.5], rtol=1e-6)  # 1 * 0.9 + 5 * 0.1


def bn_training_model(shape, x_elem, p_elem, s_elem, opset=15, outputs=("y", "rm", "rv"),
                      **attrs):
    """A one-node training BatchNormalization model and random inputs (``*_elem``: the
    NumPy dtypes of X, of scale and B, of the running statistics)."""
    channels = shape[1] if len(shape) > 1 else 1
    feeds = {"x": rand(shape, x_elem, seed=1, low=-3, high=5),
             "s": rand(channels, p_elem, seed=2), "b": rand(channels, p_elem, seed=3),
             "m": rand(channels, s_elem, seed=4), "v": rand(channels, s_elem, seed=5, low=0.5)}
    node = helper.make_node("BatchNormalization", list(feeds), list(outputs), **attrs)
    ins = [vi(n, list(a.shape), helper.np_dtype_to_tensor_dtype(a.dtype))
           for n, a in feeds.items()]
    model = onnx_model([node], ins, [helper.make_empty_tensor_value_info(o) for o in outputs
                                     if o], opset)
    model.ir_version = 8
    return model, feeds


@pytest.mark.parametrize("shape,dtypes,tol", [
    ((2, 3, 4, 5), ("float32",) * 3, 1e-5),
    ((6, 4), ("float32",) * 3, 1e-5),           # rank 2
    ((3, 2, 7), ("float32",) * 3, 1e-5),        # rank 3
    ((2, 3, 2, 3, 2), ("float32",) * 3, 1e-5),  # rank 5
    ((5, 1, 3), ("float32",) * 3, 1e-5),        # one channel
    ((1, 3, 4, 4), ("float32",) * 3, 1e-5),     # batch of one
    ((9,), ("float32",) * 3, 1e-5),             # rank 1: one channel
    ((2, 3, 5), ("float64",) * 3, 1e-12),
    ((2, 3, 5), ("float16",) * 3, 2e-3),
    ((2, 3, 5), ("float16", "float16", "float32"), 2e-3),
])
def test_batchnorm_training_against_onnxruntime(shape, dtypes, tol):
    import onnxruntime

    model, feeds = bn_training_model(shape, *dtypes, training_mode=1, momentum=0.7,
                                     epsilon=1e-3)
    got = dlc.compile(model).run(*feeds.values())
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    want = session.run(None, feeds)
    assert [a.dtype for a in got] == [a.dtype for a in want] == \
        [np.dtype(dtypes[0]), np.dtype(dtypes[2]), np.dtype(dtypes[2])]
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=tol,
                                   atol=tol)


def np_bn_training(x, s, b, m, v, momentum=0.9, eps=1e-5):
    axes = tuple(d for d in range(x.ndim) if d != 1)
    x = x.astype(np.float64)
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    y = np_batchnorm(x, s, b, mean, var, eps)
    return [y, m * momentum + mean * (1 - momentum), v * momentum + var * (1 - momentum)]


@pytest.mark.parametrize("opset,attrs,outputs", [
    (6, {}, ["y", "rm", "rv"]),                 # is_test defaults to 0: training
    (6, {"is_test": 0}, ["y"]),
    (7, {}, ["y", "rm", "rv"]),                 # more outputs than Y: training
    (9, {}, ["y", "", "rv"]),
    (13, {}, ["y", "rm"]),
    (14, {"training_mode": 1}, ["y", "rm", "rv"]),
    (15, {"training_mode": 1}, ["y"]),
])
def test_batchnorm_training_onnx_versions(opset, attrs, outputs):
    model, feeds = bn_training_model((2, 3, 4), "float32", "float32", "float32", opset,
                                     outputs, **attrs)
    got = dlc.compile(model).run(*feeds.values())
    want = np_bn_training(*feeds.values())
    want = [w for w, o in zip(want, ["y", "rm", "rv"]) if o in outputs]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("opset,attrs,outputs,error,match", [
    (9, {}, ["y", "rm", "rv", "sm"], dlc.UnsupportedOpError, "saved_mean and saved_var"),
    (6, {}, ["y", "", "", "", "sv"], dlc.UnsupportedOpError, "saved_mean and saved_var"),
    (7, {"spatial": 0}, ["y", "rm", "rv"], dlc.UnsupportedOpError, "spatial=0"),
    (15, {}, ["y", "rm", "rv"], dlc.ModelError, "output 1 in inference mode"),
    (6, {"is_test": 1}, ["y", "", "rv"], dlc.ModelError, "output 2 in inference mode"),
])
def test_batchnorm_training_onnx_must_fail(opset, attrs, outputs, error, match):
    model, _ = bn_training_model((2, 3, 4), "float32", "float32", "float32", opset,
                                 outputs, **attrs)
    with pytest.raises(error, match=match):
        dlc.compile(model)


def test_batchnorm_training_must_fail():
    x = rand((2, 3, 4))
    with pytest.raises(dlc.ModelError, match=r"shape \[3\] \(one value per channel\) in "
                                             "training mode"):
        run("BatchNormalization", x, *bn_params((3, 4)), training_mode=1)
    with pytest.raises(dlc.ModelError, match="rank 1 or more"):
        run("BatchNormalization", rand(()), *bn_params(1), training_mode=1)
    with pytest.raises(dlc.ModelError, match="dtype int32"):
        run("BatchNormalization", x, *bn_params(3)[:3], np.ones(3, np.int32),
            training_mode=1)


def test_batchnorm_errors():
    x = rand((2, 3, 4))
    with pytest.raises(dlc.ModelError, match=r"shape \[3\]"):
        run("BatchNormalization", x, *bn_params(4))
    with pytest.raises(dlc.ModelError, match="dtype int32"):
        run("BatchNormalization", x.astype(np.int32), *bn_params(3))


# -- InstanceNormalization / GroupNormalization ---------------------------------------------
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 2, 7)])
def test_instancenorm(shape):
    x, s, b = rand(shape), rand(shape[1], seed=1), rand(shape[1], seed=2)
    (y,) = run("InstanceNormalization", x, s, b, epsilon=1e-2)
    ones = (1,) * (len(shape) - 2)
    want = standardize(x.astype(np.float64), tuple(range(2, len(shape))), 1e-2)[0]
    want = want * s.reshape(-1, *ones) + b.reshape(-1, *ones)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_instancenorm_float16_and_opset_1():
    x = rand((2, 3, 50), "float16", low=100, high=101)  # large mean, small spread
    s, b = np.ones(3, np.float16), np.zeros(3, np.float16)
    node = helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"],
                            consumed_inputs=[0, 0, 0])
    model = onnx_model([node], [vi("x", [2, 3, 50], TensorProto.FLOAT16),
                                vi("s", [3], TensorProto.FLOAT16),
                                vi("b", [3], TensorProto.FLOAT16)], [vi("y", None)], 1)
    (y,) = dlc.compile(model).run(x, s, b)
    assert y.dtype == np.float16
    want = standardize(x.astype(np.float64), (2,), 1e-5)[0]
    np.testing.assert_allclose(y.astype(np.float64), want, rtol=1e-2, atol=1e-2)


def np_groupnorm(x, scale, bias, groups, eps=1e-5):
    n = x.shape[0]
    g = x.astype(np.float64).reshape(n, groups, -1)
    norm = standardize(g, (2,), eps)[0].reshape(x.shape)
    ones = (1,) * (x.ndim - 2)
    return norm * scale.reshape(-1, *ones) + bias.reshape(-1, *ones)


@pytest.mark.parametrize("shape,groups", [((2, 6, 3, 2), 3), ((2, 4, 5), 1), ((1, 4, 3), 4)])
def test_groupnorm(shape, groups):
    x, s, b = rand(shape), rand(shape[1], seed=1), rand(shape[1], seed=2)
    (y,) = run("GroupNormalization", x, s, b, num_groups=groups, epsilon=1e-3)
    np.testing.assert_allclose(y, np_groupnorm(x, s, b, groups, 1e-3), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("constant_scale", [True, False])
def test_groupnorm_opset_18_scale_per_group(constant_scale):
    x = rand((2, 6, 4))
    s, b = rand(3, seed=1), rand(3, seed=2)
    node = helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=3)
    inits = [helper.make_tensor(n, TensorProto.FLOAT, [3], p) for n, p in zip("sb", (s, b))]
    inputs = [vi("x", [2, 6, 4])] + ([] if constant_scale else [vi("s", [3]), vi("b", [3])])
    model = onnx_model([node], inputs, [vi("y", None)], 18, inits if constant_scale else [])
    (y,) = dlc.compile(model).run(x, *([] if constant_scale else [s, b]))
    want = np_groupnorm(x, np.repeat(s, 2), np.repeat(b, 2), 3)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_groupnorm_opset_18_needs_one_scale_per_group():
    node = helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=3)
    model = onnx_model([node], [vi("x", [2, 6, 4]), vi("s", [6]), vi("b", [6])],
                       [vi("y", None)], 18)
    with pytest.raises(dlc.ModelError, match=r"one value per group"):
        dlc.compile(model)


def test_groupnorm_errors():
    x, s = rand((2, 6, 4)), rand(6)
    with pytest.raises(dlc.ModelError, match="divide the number of channels"):
        run("GroupNormalization", x, s, s, num_groups=4)
    with pytest.raises(dlc.ModelError, match="'num_groups' is required"):
        run("GroupNormalization", x, s, s)
    with pytest.raises(dlc.ModelError, match=r"shape \[6\]"):
        run("GroupNormalization", x, s[:3], s[:3], num_groups=3)
    with pytest.raises(dlc.ModelError, match="stash_type=7"):
        run("GroupNormalization", x, s, s, num_groups=3, stash_type=7)


# -- LayerNormalization / RMSNormalization --------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("with_bias", [True, False])
def test_layernorm(axis, with_bias):
    x = rand((2, 3, 5))
    norm_shape = x.shape[axis % 3:]
    scale, bias = rand(norm_shape, seed=1), rand(norm_shape, seed=2)
    y, mean, inv = run("LayerNormalization", x, scale, bias if with_bias else None,
                       axis=axis, epsilon=1e-3)
    want, want_mean, want_inv = standardize(x.astype(np.float64),
                                            tuple(range(axis % 3, 3)), 1e-3)
    want = want * scale + (bias if with_bias else 0)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(inv, want_inv, rtol=1e-5)
    assert mean.shape == x.shape[:axis % 3] + (1,) * (3 - axis % 3)


def test_layernorm_broadcast_scale_and_one_output():
    x = rand((4, 6))
    scale, bias = rand((1, 6), seed=1), rand((1,), seed=2)
    (y,) = run("LayerNormalization", x, scale, bias, outputs=1)
    want = standardize(x.astype(np.float64), (1,), 1e-5)[0] * scale + bias
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype,stash,stats_dtype", [
    ("float16", 1, np.float32), ("bfloat16", 1, np.float32), ("float64", 11, np.float64),
    ("float64", 1, np.float32)])
def test_layernorm_dtypes_and_stash_type(dtype, stash, stats_dtype):
    npdt = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    x = rand((3, 64), npdt, low=50, high=51)
    scale, bias = np.ones(64, npdt), np.zeros(64, npdt)
    y, mean, inv = run("LayerNormalization", x, scale, bias, stash_type=stash)
    assert y.dtype == npdt and mean.dtype == stats_dtype and inv.dtype == stats_dtype
    want, want_mean, _ = standardize(x.astype(np.float64), (1,), 1e-5)
    tol = 1e-12 if stats_dtype == np.float64 else {"float16": 2e-3, "bfloat16": 1e-2}.get(
        dtype, 1e-5)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-6 if tol < 1e-5 else 1e-5)
    np.testing.assert_allclose(y.astype(np.float64), want, rtol=tol, atol=max(tol, 1e-3)
                               if stats_dtype != np.float64 else tol)


def test_layernorm_errors():
    x = rand((2, 3))
    with pytest.raises(dlc.ModelError, match="does not broadcast"):
        run("LayerNormalization", x, rand((2,)))
    with pytest.raises(dlc.ModelError, match="stash_type=6"):
        run("LayerNormalization", x, rand((3,)), stash_type=6)
    with pytest.raises(dlc.ModelError, match="out of range"):
        run("LayerNormalization", x, rand((3,)), axis=2)
    with pytest.raises(dlc.ModelError, match="dtype float64"):
        run("LayerNormalization", x, rand((3,), "float64"))


@pytest.mark.parametrize("axis", [0, -1, -2])
def test_rmsnorm(axis):
    x, scale = rand((2, 3, 4)), rand((3, 4)[axis % 3 - 1:] if axis % 3 else (2, 3, 4), seed=1)
    (y,) = run("RMSNormalization", x, scale, axis=axis, epsilon=1e-3)
    v = x.astype(np.float64)
    ms = np.mean(v * v, axis=tuple(range(axis % 3, 3)), keepdims=True)
    np.testing.assert_allclose(y, v / np.sqrt(ms + 1e-3) * scale, rtol=1e-5, atol=1e-6)


def test_rmsnorm_output_has_the_scale_dtype():
    x, scale = rand((3, 8), "float16"), rand((8,), "float32", seed=1)
    (y,) = run("RMSNormalization", x, scale)
    assert y.dtype == np.float32
    v = x.astype(np.float64)
    norm = (v / np.sqrt(np.mean(v * v, axis=1, keepdims=True) + 1e-5)).astype(np.float16)
    np.testing.assert_allclose(y, norm.astype(np.float64) * scale, rtol=1e-5)


# -- LRN, LpNormalization, MeanVarianceNormalization ----------------------------------------
def np_lrn(x, size, alpha=1e-4, beta=0.75, bias=1.0):
    c = x.shape[1]
    sq = np.zeros_like(x, dtype=np.float64)
    for i in range(c):
        lo, hi = max(0, i - (size - 1) // 2), min(c, i + int(np.ceil((size - 1) / 2)) + 1)
        sq[:, i] = np.sum(x[:, lo:hi].astype(np.float64) ** 2, axis=1)
    return x / (bias + alpha / size * sq) ** beta


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_lrn(size):
    x = rand((2, 5, 3, 2), low=-3, high=3)
    (y,) = run("LRN", x, size=size, alpha=0.1, beta=0.6, bias=1.5)
    np.testing.assert_allclose(y, np_lrn(x, size, 0.1, 0.6, 1.5), rtol=1e-5, atol=1e-6)


def test_lrn_errors():
    with pytest.raises(dlc.ModelError, match="'size' is required"):
        run("LRN", rand((1, 2, 3)))
    with pytest.raises(dlc.ModelError, match="size=0"):
        run("LRN", rand((1, 2, 3)), size=0)


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("axis", [0, -1])
def test_lp_normalization(p, axis):
    x = rand((3, 4))
    x[1] = 0  # a zero row (axis -1) and one zero in each column (axis 0)
    (y,) = run("LpNormalization", x, p=p, axis=axis)
    norm = np.sum(np.abs(x.astype(np.float64)) ** p, axis=axis, keepdims=True) ** (1 / p)
    want = np.where(norm == 0, 0, x / np.where(norm == 0, 1, norm))
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-7)
    (y,) = run("LpNormalization", np.zeros((2, 3), np.float32), p=p, axis=axis)
    np.testing.assert_array_equal(y, 0)


def test_lp_normalization_errors():
    with pytest.raises(dlc.ModelError, match="p=3"):
        run("LpNormalization", rand((2, 3)), p=3)


@pytest.mark.parametrize("axes", [None, [1], [0, 1, 2, 3]])
def test_mean_variance_normalization(axes):
    x = rand((2, 3, 4, 2), low=0, high=5)
    attrs = {} if axes is None else {"axes": axes}
    (y,) = run("MeanVarianceNormalization", x, **attrs)
    ax = (0, 2, 3) if axes is None else tuple(axes)
    v = x.astype(np.float64)
    mean = v.mean(axis=ax, keepdims=True)
    want = (v - mean) / (np.sqrt(((v - mean) ** 2).mean(axis=ax, keepdims=True)) + 1e-9)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


def test_mean_variance_normalization_of_a_constant_is_zero():
    (y,) = run("MeanVarianceNormalization", np.full((1, 2, 3, 3), 0.1, np.float32))
    np.testing.assert_array_equal(y, 0)  # E[x^2] - E[x]^2 would round below 0: NaN


def test_mean_variance_normalization_onnx():
    x = rand((3, 3, 3, 1), seed=3)
    node = helper.make_node("MeanVarianceNormalization", ["x"], ["y"], axes=[0, 1])
    model = onnx_model([node], [vi("x", [3, 3, 3, 1])], [vi("y", None)], 9)
    v = x.astype(np.float64)
    want = (v - v.mean(axis=(0, 1), keepdims=True)) / (v.std(axis=(0, 1), keepdims=True)
                                                      + 1e-9)
    np.testing.assert_allclose(dlc.compile(model).run(x)[0], want, rtol=1e-4, atol=1e-5)


def test_mean_variance_normalization_errors():
    with pytest.raises(dlc.ModelError, match="out of range"):
        run("MeanVarianceNormalization", rand((2, 3)))  # default axes need rank 4
