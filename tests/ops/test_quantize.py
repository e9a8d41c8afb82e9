"""QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear (dlc/ops/quantize.py) and their
ONNX converters, against NumPy expectations written here."""

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper

import dlc
from dlc.graph import GraphBuilder

RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767),
          "uint16": (0, 65535)}


def run(op, *arrays, outputs=1, **attrs):
    """Compile a one-node graph; ``None`` arrays are omitted inputs."""
    g = GraphBuilder(op.lower())
    syms, feeds = [], []
    for k, a in enumerate(arrays):
        if a is None:
            syms.append(None)
            continue
        syms.append(g.input(f"in{k}", a.shape, a.dtype))
        feeds.append(a)
    out = g.op(op, *syms, **attrs)
    g.output(*(out if isinstance(out, tuple) else (out,)))
    res = dlc.compile(g.build()).run(*feeds)
    return res if outputs > 1 else res[0]


def expand(p, shape, axis=None, block=0):
    """Scale / zero point broadcast to ``shape`` (the three granularities)."""
    p = np.asarray(p)
    if p.ndim == 0:
        return p
    if not block:
        dims = [1] * len(shape)
        dims[axis] = p.size
        return p.reshape(dims)
    return np.repeat(p, block, axis=axis).take(range(shape[axis]), axis=axis)


def quantize(x, scale, zp, dtype, axis=1, block=0, prec=np.float32):
    s = expand(scale, x.shape, axis, block).astype(prec)
    q = np.rint(x.astype(prec) / s).astype(np.float64)
    if zp is not None:
        q += expand(zp, x.shape, axis, block)
    lo, hi = RANGES[dtype]
    return np.where(np.isnan(q), lo, np.clip(q, lo, hi)).astype(dtype)


@pytest.mark.parametrize("dtype", list(RANGES))
def test_quantize_per_tensor_rounds_half_even_and_saturates(dtype):
    x = np.array([[0.0, 0.5, 1.5, 2.5, -2.5, -0.5], [1e9, -1e9, 3.49, 255.5, 127.5, -128.5]],
                 np.float32)
    scale, zp = np.float32(0.5), np.array(RANGES[dtype][0] // 2 + 1, dtype)
    got = run("QuantizeLinear", x, np.array(scale), zp)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, quantize(x, scale, zp, dtype))


def test_quantize_nan_inf_and_default_uint8():
    x = np.array([np.nan, np.inf, -np.inf, 1.0], np.float32)
    got = run("QuantizeLinear", x, np.array(1.0, np.float32))
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, [0, 255, 0, 1])


@pytest.mark.parametrize("axis", [1, -1, 0])
def test_quantize_per_axis(axis):
    rng = np.random.default_rng(0)
    x = rng.uniform(-50, 50, (3, 4)).astype(np.float32)
    n = x.shape[axis]
    scale = rng.uniform(0.1, 2, n).astype(np.float32)
    zp = rng.integers(-10, 10, n).astype(np.int8)
    got = run("QuantizeLinear", x, scale, zp, axis=axis)
    np.testing.assert_array_equal(got, quantize(x, scale, zp, "int8", axis % 2))


def test_quantize_blocked_with_ragged_last_block():
    rng = np.random.default_rng(1)
    x = rng.uniform(-100, 100, (2, 7, 3)).astype(np.float32)
    scale = rng.uniform(0.5, 3, (2, 3, 3)).astype(np.float32)   # ceil(7 / 3) = 3 blocks
    zp = rng.integers(0, 50, (2, 3, 3)).astype(np.uint16)
    got = run("QuantizeLinear", x, scale, zp, axis=1, block_size=3)
    np.testing.assert_array_equal(got, quantize(x, scale, zp, "uint16", 1, 3))


def test_quantize_int32_input_and_output_dtype_without_zero_point():
    x = np.array([-300, -3, 0, 5, 7, 70000], np.int32)
    got = run("QuantizeLinear", x, np.array(2.0, np.float32), output_dtype="int16")
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, [-150, -2, 0, 2, 4, 32767])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_quantize_half_precision_divides_in_the_scale_dtype(dtype):
    npdt = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.float16
    x = np.linspace(-20, 20, 12).astype(npdt)
    scale = np.array(0.3, npdt)
    got = run("QuantizeLinear", x, scale, np.array(3, np.int8))
    want = np.clip(np.rint((x / scale).astype(npdt).astype(np.float64)) + 3, -128, 127)
    np.testing.assert_array_equal(got, want.astype(np.int8))


def test_quantize_precision_attribute():
    x = np.array([1000.3, 2049.0, -77.7], np.float32)
    scale = np.array(1.0, np.float32)
    got = run("QuantizeLinear", x, scale, np.array(0, np.int16), precision="float16")
    want = quantize(x, scale, np.int16(0), "int16", prec=np.float16)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", list(RANGES) + ["int32"])
def test_dequantize_per_tensor(dtype):
    info = np.iinfo(dtype)
    x = np.array([info.min, info.max, 0, 1, 7], dtype)
    zp = np.array(3, dtype)
    got = run("DequantizeLinear", x, np.array(0.25, np.float32), zp)
    work = np.float64 if dtype == "int32" else np.float32
    want = ((x.astype(np.int64) - 3).astype(work) * np.float32(0.25)).astype(np.float32)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)


def test_dequantize_per_axis_and_blocked():
    rng = np.random.default_rng(2)
    x = rng.integers(-128, 128, (2, 5, 4)).astype(np.int8)
    scale = rng.uniform(0.1, 1, 5).astype(np.float32)
    zp = rng.integers(-5, 5, 5).astype(np.int8)
    got = run("DequantizeLinear", x, scale, zp, axis=-2)
    want = (x.astype(np.float32) - zp.reshape(5, 1)) * scale.reshape(5, 1)
    np.testing.assert_allclose(got, want, rtol=1e-7)
    bscale = rng.uniform(0.1, 1, (2, 5, 2)).astype(np.float32)
    got = run("DequantizeLinear", x, bscale, axis=2, block_size=2)
    np.testing.assert_allclose(got, x * np.repeat(bscale, 2, axis=2), rtol=1e-7)


def test_dequantize_output_dtype_and_half_scale():
    x = np.array([0, 100, 255, 17], np.uint8)
    got = run("DequantizeLinear", x, np.array(0.1, np.float16), np.array(128, np.uint8))
    assert got.dtype == np.float16
    want = ((x.astype(np.float32) - 128) * np.float32(np.float16(0.1))).astype(np.float16)
    np.testing.assert_array_equal(got, want)
    got = run("DequantizeLinear", x, np.array(0.5, np.float32), output_dtype="bfloat16")
    assert got.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(got.astype(np.float32), x * 0.5)


def dynamic_expect(x):
    hi = np.maximum(np.float32(0), x.max(initial=0))
    lo = np.minimum(np.float32(0), x.min(initial=0))
    scale = np.float32(1.0 if hi == lo else hi - lo) / np.float32(255)
    zp = np.rint(np.clip(np.float32(0) - lo / scale, 0, 255))
    y = np.clip(np.rint(x / scale) + zp, 0, 255)
    return y.astype(np.uint8), np.float32(scale), np.uint8(zp)


@pytest.mark.parametrize("values", [
    np.random.default_rng(3).uniform(-3, 7, (3, 5)),
    np.array([[1.0, 2.5, 6.0]]), np.array([-4.0, -0.5, -2.0]), np.zeros((2, 2)),
    np.array(2.0), np.zeros((0, 3))])
def test_dynamic_quantize(values):
    x = values.astype(np.float32)
    y, scale, zp = run("DynamicQuantizeLinear", x, outputs=3)
    wy, wscale, wzp = dynamic_expect(x)
    assert scale.shape == () and zp.shape == () and zp.dtype == np.uint8
    np.testing.assert_array_equal(y, wy)
    assert scale == wscale and zp == wzp


@pytest.mark.parametrize("op, arrays, attrs, message", [
    ("QuantizeLinear", [(3, 4), (3,), (4,)], {}, "zero point has shape"),
    ("QuantizeLinear", [(3, 4), (5,)], {}, "has 5 elements but x has 4"),
    ("QuantizeLinear", [(3, 4), (3, 4)], {}, "must be a scalar"),
    ("QuantizeLinear", [(3, 4), (3, 3)], {"block_size": 2}, "needs [3, 2]"),
    ("QuantizeLinear", [(3, 4), (4,)], {"axis": 2}, "out of range"),
    ("QuantizeLinear", [(3, 4), ()], {"block_size": -1}, "block_size must be"),
    ("QuantizeLinear", [(3, 4), ()], {"output_dtype": "float32"}, "not supported"),
    ("DequantizeLinear", [(3, 4), ()], {"output_dtype": "int8"}, "not supported"),
])
def test_bad_shapes_and_attributes(op, arrays, attrs, message):
    g = GraphBuilder("bad")
    dtypes = ["int8" if op == "DequantizeLinear" else "float32", "float32", "int8"]
    syms = [g.input(f"in{k}", s, dtypes[k]) for k, s in enumerate(arrays)]
    with pytest.raises(dlc.ModelError, match=message.replace("[", r"\[")):
        g.op(op, *syms, **attrs)


def test_bad_dtypes():
    g = GraphBuilder("bad")
    x, s = g.input("x", (3,)), g.input("s", ())
    with pytest.raises(dlc.ModelError, match="zero point"):
        g.op("QuantizeLinear", x, s, g.input("zp", (), "int32"))
    with pytest.raises(dlc.ModelError, match="output_dtype is int8"):
        g.op("QuantizeLinear", x, s, g.input("zp2", (), "uint8"), output_dtype="int8")
    with pytest.raises(dlc.ModelError, match="must match"):
        g.op("DequantizeLinear", g.input("q", (3,), "int8"), s, g.input("zq", (), "uint8"))
    with pytest.raises(dlc.ModelError, match="dtype"):
        g.op("DynamicQuantizeLinear", g.input("d", (3,), "float64"))


# -- ONNX -------------------------------------------------------------------------------
def onnx_model(node, inputs, outputs, opset, inits=()):
    graph = helper.make_graph([node], "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_onnx_quantize_versions():
    x = np.array([[-1.0, 0.26, 3.0], [100.0, -300.0, 0.74]], np.float32)
    for opset in (10, 13, 19, 21, 23, 25):
        node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])
        model = onnx_model(node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                           [helper.make_tensor_value_info("y", TensorProto.INT8, [2, 3])], opset,
                           [helper.make_tensor("s", TensorProto.FLOAT, [], [0.5]),
                            helper.make_tensor("z", TensorProto.INT8, [], [1])])
        got = dlc.compile(model).run(x)[0]
        np.testing.assert_array_equal(got, quantize(x, 0.5, 1, "int8"), err_msg=str(opset))


def test_onnx_output_dtype_attributes():
    x = np.array([1.0, 600.0, -3.0], np.float32)
    node = helper.make_node("QuantizeLinear", ["x", "s"], ["y"], output_dtype=TensorProto.UINT16)
    model = onnx_model(node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                       [helper.make_tensor_value_info("y", TensorProto.UINT16, [3])], 21,
                       [helper.make_tensor("s", TensorProto.FLOAT, [], [2.0])])
    np.testing.assert_array_equal(dlc.compile(model).run(x)[0], [0, 300, 0])
    q = np.array([1, 2, 250], np.uint8)
    node = helper.make_node("DequantizeLinear", ["q", "s"], ["y"],
                            output_dtype=TensorProto.FLOAT16)
    model = onnx_model(node, [helper.make_tensor_value_info("q", TensorProto.UINT8, [3])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [3])], 23,
                       [helper.make_tensor("s", TensorProto.FLOAT, [], [0.5])])
    got = dlc.compile(model).run(q)[0]
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, q * 0.5)


def test_onnx_float8_target_is_unsupported():
    node = helper.make_node("QuantizeLinear", ["x", "s"], ["y"],
                            output_dtype=TensorProto.FLOAT8E4M3FN)
    model = onnx_model(node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT8E4M3FN, [3])], 21,
                       [helper.make_tensor("s", TensorProto.FLOAT, [], [2.0])])
    with pytest.raises(dlc.UnsupportedOpError, match="FLOAT8E4M3FN"):
        dlc.compile(model)
