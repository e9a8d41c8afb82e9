"""QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear (dlc/ops/quantize.py) and their
ONNX converters, against NumPy expectations written here."""

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import dlc
from dlc.graph import GraphBuilder
from dlc.ops import small_floats as sf

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


# -- small quantized types ----------------------------------------------------------------
QUANT_FLOATS = ["float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz",
                "float4_e2m1fn", "float6_e2m3fn", "float6_e3m2fn"]
RANGES.update({"int4": (-8, 7), "uint4": (0, 15), "int2": (-2, 1), "uint2": (0, 3)})


def mld(dtype):
    return getattr(ml_dtypes, dtype)


@pytest.mark.parametrize("dtype", ["int4", "uint4", "int2", "uint2"])
def test_quantize_small_ints_saturate(dtype):
    lo, hi = RANGES[dtype]
    x = np.array([[-40.0, -2.5, -1.5, -0.5, 0.5], [1.5, 2.5, 5.0, 40.0, np.nan]], np.float32)
    zp = np.array(1, np.int8).astype(mld(dtype))
    got = run("QuantizeLinear", x, np.array(0.5, np.float32), zp)
    assert got.dtype == mld(dtype)
    want = np.clip(np.rint(x / 0.5) + 1, lo, hi)
    want[1, 4] = lo  # NaN
    np.testing.assert_array_equal(got.astype(np.int32), want)
    back = run("DequantizeLinear", got, np.array(0.5, np.float32), zp)
    np.testing.assert_array_equal(back, (want - 1) * np.float32(0.5))


def test_quantize_small_ints_per_axis_and_blocked():
    rng = np.random.default_rng(4)
    x = rng.uniform(-10, 10, (2, 5, 3)).astype(np.float32)
    scale = rng.uniform(0.5, 2, 5).astype(np.float32)
    zp = rng.integers(-2, 2, 5).astype(np.int8).astype(mld("int4"))
    got = run("QuantizeLinear", x, scale, zp, axis=1)
    want = np.clip(np.rint(x / scale.reshape(5, 1)) + zp.astype(np.int32).reshape(5, 1), -8, 7)
    np.testing.assert_array_equal(got.astype(np.int32), want)
    bscale = rng.uniform(0.5, 2, (2, 5, 2)).astype(np.float32)
    bzp = rng.integers(0, 3, (2, 5, 2)).astype(np.uint8).astype(mld("uint2"))
    got = run("QuantizeLinear", x, bscale, bzp, axis=2, block_size=2)
    s = np.repeat(bscale, 2, axis=2)[:, :, :3]
    z = np.repeat(bzp.astype(np.int32), 2, axis=2)[:, :, :3]
    np.testing.assert_array_equal(got.astype(np.int32), np.clip(np.rint(x / s) + z, 0, 3))
    back = run("DequantizeLinear", got, bscale, bzp, axis=2, block_size=2)
    np.testing.assert_array_equal(back, ((got.astype(np.int32) - z) * s).astype(np.float32))


@pytest.mark.parametrize("dtype", QUANT_FLOATS)
@pytest.mark.parametrize("saturate", [1, 0])
def test_quantize_small_floats(dtype, saturate):
    """x / scale rounded once to the small float; saturate for float8 (float4/float6
    always saturate); as ONNX's reference (ml_dtypes) computes it."""
    x = np.array([0.0, 1.0, 2.0, 3.3, -7.7, 1e5, -1e5, np.inf, np.nan, 2.0**-12],
                 np.float32)
    scale = np.array(2.0, np.float32)
    got = run("QuantizeLinear", x, scale, output_dtype=dtype, saturate=saturate)
    assert got.dtype == mld(dtype)
    with np.errstate(all="ignore"):
        q = x / scale
        if saturate and dtype.startswith("float8"):
            want = numpy_helper.saturate_cast(q, mld(dtype))
        else:
            want = q.astype(mld(dtype))
    real = ~np.isnan(x)
    np.testing.assert_array_equal(got.view(np.uint8)[real], want.view(np.uint8)[real])
    assert np.isnan(got.astype(np.float32)[8]) == (dtype.startswith("float8"))


def test_quantize_small_float_zero_point_is_added():
    x = np.array([0.0, 1.0, 3.0, -5.0], np.float32)
    zp = np.array(1.0, np.float32).astype(mld("float4_e2m1fn"))
    got = run("QuantizeLinear", x, np.array(1.0, np.float32), zp)
    np.testing.assert_array_equal(got.astype(np.float32), [1.0, 2.0, 4.0, -4.0])
    back = run("DequantizeLinear", got, np.array(2.0, np.float32), zp)
    np.testing.assert_array_equal(back, [0.0, 2.0, 6.0, -10.0])


@pytest.mark.parametrize("dtype", QUANT_FLOATS)
def test_dequantize_small_floats(dtype):
    codes = np.arange(1 << sf.width(dtype), dtype=np.uint8).view(mld(dtype))
    scale = np.array([0.5, 4.0], np.float16)
    x = np.stack([codes, codes])
    got = run("DequantizeLinear", x, scale, axis=0)
    assert got.dtype == np.float16
    with np.errstate(over="ignore"):
        want = codes.astype(np.float32) * scale.astype(np.float32).reshape(2, 1)
        want = want.astype(np.float16)
    np.testing.assert_array_equal(got, want)


def test_e8m0_scales():
    scale = np.array([0.25, 8.0], np.float32).astype(mld("float8_e8m0fnu"))
    x = np.array([[1.0, -3.0, 100.0], [1.0, -3.0, 100.0]], np.float32)
    got = run("QuantizeLinear", x, scale, np.zeros(2, np.int8), axis=0)
    np.testing.assert_array_equal(got, [[4, -12, 127], [0, 0, 12]])
    back = run("DequantizeLinear", got, scale, axis=0, output_dtype="float32")
    np.testing.assert_array_equal(back, [[1.0, -3.0, 31.75], [0.0, 0.0, 96.0]])
    g = GraphBuilder("bad")
    with pytest.raises(dlc.ModelError, match="set output_dtype"):
        g.op("DequantizeLinear", g.input("q", (3,), "int8"), g.input("s", (), "float8_e8m0fnu"))


def test_small_types_folded_like_compiled():
    """Constant inputs: the NumPy reference gives the compiled bits."""
    x = np.linspace(-30, 30, 17).astype(np.float32)
    scale = np.array(0.7, np.float32)
    for zp in (np.array(0.5, np.float32).astype(mld("float8_e5m2")),
               np.array(-3, np.int8).astype(mld("int4"))):
        g = GraphBuilder("fold")
        q = g.op("QuantizeLinear", g.constant(x), g.constant(scale), g.constant(zp))
        g.output(q, g.op("DequantizeLinear", q, g.constant(scale), g.constant(zp)))
        folded = dlc.compile(g.build()).run()
        compiled = [run("QuantizeLinear", x, scale, zp)]
        compiled.append(run("DequantizeLinear", compiled[0], scale, zp))
        for a, b in zip(folded, compiled):
            np.testing.assert_array_equal(np.asarray(a).view(np.uint8),
                                          np.asarray(b).view(np.uint8))


@pytest.mark.parametrize("op, arrays, attrs, message", [
    ("QuantizeLinear", [(3, 4), (3,), (4,)], {}, "zero point has shape"),
    ("QuantizeLinear", [(3, 4), (), (2,)], {}, "zero point has shape"),
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


@pytest.mark.parametrize("elem,opset", [(TensorProto.FLOAT8E4M3FN, 19),
                                         (TensorProto.FLOAT8E5M2FNUZ, 21),
                                         (TensorProto.INT4, 21), (TensorProto.UINT2, 25),
                                         (TensorProto.FLOAT4E2M1, 23),
                                         (TensorProto.FLOAT6E3M2, 28)])
def test_onnx_small_types_round_trip(elem, opset):
    """QuantizeLinear then DequantizeLinear with a small type (zero point of shape [1],
    scale a scalar: both per tensor)."""
    np_dt = helper.tensor_dtype_to_np_dtype(elem)
    x = np.array([0.0, 1.0, -3.0, 7.0, 1000.0], np.float32)
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5])],
        [helper.make_tensor_value_info("q", elem, [5]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [5])],
        initializer=[helper.make_tensor("s", TensorProto.FLOAT, [], [0.5]),
                     helper.make_tensor("z", elem, [1], [0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    q, y = dlc.compile(model).run(x)
    assert q.dtype == np_dt
    want_q = sf.convert_array(x / np.float32(0.5), np_dt.name) \
        if np_dt.name in QUANT_FLOATS else np.clip(np.rint(x / 0.5), *RANGES[np_dt.name])
    np.testing.assert_array_equal(q.astype(np.float32), np.asarray(want_q, np.float32))
    np.testing.assert_array_equal(y, q.astype(np.float32) * np.float32(0.5))
