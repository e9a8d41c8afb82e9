"""Cast, CastLike, BitCast (dlc/ops/cast.py) and their ONNX converters, with the Constant
and Identity converters, against NumPy expectations written here."""

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from op_util import run_fold as run

import dlc
from dlc.graph import GraphBuilder
from dlc.ops import small_floats as sf

BF16 = ml_dtypes.bfloat16
DTYPES = ["float32", "float64", "float16", "bfloat16", "int8", "uint8", "int16", "uint16",
          "int32", "uint32", "int64", "uint64", "bool"]


def np_dt(dtype):
    return getattr(ml_dtypes, dtype) if hasattr(ml_dtypes, dtype) else np.dtype(dtype)


def is_float(dtype):
    return dtype.startswith(("float", "bfloat"))


def source_values(src):
    """Values every destination dtype holds (after truncation), so astype is defined."""
    if src == "bool":
        return np.array([True, False, True, True, False, False])
    if is_float(src):
        return np.array([0.0, 1.0, 2.5, 7.75, 126.5, -0.0], np_dt(src))
    return np.array([0, 1, 2, 7, 126, 3], src)


@pytest.mark.parametrize("src", DTYPES)
def test_cast_every_pair(src):
    x = source_values(src).reshape(2, 3)
    g = GraphBuilder("casts")
    s = g.input("x", x.shape, src)
    g.output(*[g.op("Cast", s, to=dst) for dst in DTYPES])
    outs = dlc.compile(g.build()).run(x)
    for dst, got in zip(DTYPES, outs):
        assert got.dtype == np_dt(dst), (src, dst)
        np.testing.assert_array_equal(got.astype(np.float64),
                                      x.astype(np_dt(dst)).astype(np.float64),
                                      err_msg=f"{src} -> {dst}")


def test_cast_integers_wrap_and_to_bool():
    x = np.array([200, -1, 256, 0, 511], np.int32)
    np.testing.assert_array_equal(run("Cast", x, to="int8"), [-56, -1, 0, 0, -1])
    np.testing.assert_array_equal(run("Cast", x, to="uint8"), [200, 255, 0, 0, 255])
    np.testing.assert_array_equal(run("Cast", x, to="bool"), [True, True, True, False, True])
    u = np.array([2**64 - 1], np.uint64)
    np.testing.assert_array_equal(run("Cast", u, to="int64"), [-1])
    np.testing.assert_array_equal(run("Cast", u, to="float32"), [np.float32(2**64)])


def test_cast_floats_special_values():
    x = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-30, 70000.0, 3.4e38], np.float32)
    b = run("Cast", x, to="bool")
    np.testing.assert_array_equal(b, [True, True, True, False, False, True, True, True])
    h = run("Cast", x, to="float16")
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(h, x.astype(np.float16))  # overflow to inf, tiny to 0
    assert np.signbit(h[3])
    bf = run("Cast", x, to="bfloat16")
    np.testing.assert_array_equal(bf.astype(np.float32), x.astype(BF16).astype(np.float32))
    d = run("Cast", x, to="float64")
    np.testing.assert_array_equal(d, x.astype(np.float64))


def test_cast_to_bfloat16_rounds_to_nearest_even():
    bits = np.array([0x3F808000, 0x3F818000, 0x3F80C000, 0x3F807FFF], np.uint32)
    x = bits.view(np.float32)  # exact ties (two), above and below a tie
    got = run("Cast", x, to="bfloat16").view(np.uint16)
    np.testing.assert_array_equal(got, [0x3F80, 0x3F82, 0x3F81, 0x3F80])


def test_cast_float_to_int_truncates_and_saturates():
    x = np.array([2.9, -2.9, 1e10, -1e10, np.nan, np.inf, -np.inf, -0.5], np.float32)
    want8 = [2, -2, 127, -128, 0, 127, -128, 0]
    np.testing.assert_array_equal(run("Cast", x, to="int8"), want8)
    np.testing.assert_array_equal(run("Cast", x, fold=True, to="int8"), want8)
    wantu = [2, 0, 255, 0, 0, 255, 0, 0]
    np.testing.assert_array_equal(run("Cast", x, to="uint8"), wantu)
    np.testing.assert_array_equal(run("Cast", x, fold=True, to="uint8"), wantu)
    big = np.array([9.3e18, -9.3e18, 2**63], np.float64)
    want64 = [2**63 - 1, -(2**63), 2**63 - 1]
    np.testing.assert_array_equal(run("Cast", big, to="int64"), want64)
    np.testing.assert_array_equal(run("Cast", big, fold=True, to="int64"), want64)


def test_cast_attributes_and_must_fail():
    x = np.zeros(3, np.float32)
    np.testing.assert_array_equal(run("Cast", x, to="int32", saturate=0, round_mode="nearest"),
                                  [0, 0, 0])
    with pytest.raises(dlc.ModelError, match="attribute 'to' is required"):
        run("Cast", x)
    with pytest.raises(dlc.ModelError, match="is not a dtype"):
        run("Cast", x, to="float8e4m3fn")
    with pytest.raises(dlc.ModelError, match="round_mode must be one of"):
        run("Cast", x, to="int8", round_mode="zero")
    with pytest.raises(dlc.ModelError, match="saturate must be 0 or 1"):
        run("Cast", x, to="int8", saturate=3)


def test_castlike():
    x = np.array([1.7, -2.2, 300.0], np.float32)
    like = np.zeros((5, 5), np.int16)
    got = run("CastLike", x, like)
    assert got.dtype == np.int16 and got.shape == (3,)
    np.testing.assert_array_equal(got, [1, -2, 300])
    np.testing.assert_array_equal(run("CastLike", x, like, fold=True), [1, -2, 300])
    np.testing.assert_array_equal(run("CastLike", x, np.zeros((0,), np.int8)), [1, -2, 127])
    with pytest.raises(dlc.ModelError, match="takes 2 inputs"):
        run("CastLike", x)


@pytest.mark.parametrize("src,dst", [("float32", "int32"), ("int32", "float32"),
                                     ("float64", "uint64"), ("float16", "int16"),
                                     ("bfloat16", "uint16"), ("uint16", "bfloat16"),
                                     ("int8", "uint8"), ("bool", "uint8"), ("uint8", "bool"),
                                     ("bfloat16", "float16")])
def test_bitcast(src, dst):
    raw = np.array([0, 1, 0x3F, 0x80, 0x7F, 0xFF, 0x12, 0xC1], np.uint8)
    if src == "bool":
        x = raw.astype(bool)
    else:
        size = np.dtype(np_dt(src)).itemsize
        x = np.tile(raw, size).view(np_dt(src))[:8]
    got = run("BitCast", x, to=dst)
    assert got.dtype == np_dt(dst) and got.shape == x.shape
    want = (x.view(np.uint8) != 0) if dst == "bool" else x.view(np_dt(dst))
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    np.testing.assert_array_equal(run("BitCast", x, fold=True, to=dst).view(np.uint8),
                                  want.view(np.uint8))


def test_bitcast_must_fail():
    with pytest.raises(dlc.ModelError, match="sizes must match"):
        run("BitCast", np.zeros(2, np.float32), to="int64")
    with pytest.raises(dlc.ModelError, match="is not a dtype"):
        run("BitCast", np.zeros(2, np.float32), to="complex")


SMALL = ["float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu",
         "float4_e2m1fn", "float6_e2m3fn", "float6_e3m2fn", "int4", "uint4", "int2", "uint2"]


def small(dtype, values):
    return np.asarray(values, np.float32).astype(getattr(ml_dtypes, dtype))


def test_cast_small_types_compiled_and_folded():
    """Compiled code and constant folding (the NumPy twin) agree; conversions as ONNX's
    tables give them (details and exhaustive checks in test_small_floats.py)."""
    x = np.array([0.3, -2.6, 500.0, -0.0, np.inf, np.nan, 1e-9], np.float32)
    want = {
        ("float8_e4m3fn", 1): [0.3125, -2.5, 448, -0.0, 448, np.nan, 0.0],
        ("float8_e4m3fn", 0): [0.3125, -2.5, np.nan, -0.0, np.nan, np.nan, 0.0],
        ("float8_e5m2", 0): [0.3125, -2.5, 512, -0.0, np.inf, np.nan, 0.0],
        ("float8_e4m3fnuz", 1): [0.3125, -2.5, 240, 0.0, 240, np.nan, 0.0],
        ("float4_e2m1fn", 0): [0.5, -3.0, 6.0, -0.0, 6.0, 0.0, 0.0],
    }
    for (dst, sat), w in want.items():
        for fold in (False, True):
            got = run("Cast", x, fold=fold, to=dst, saturate=sat)
            assert got.dtype == getattr(ml_dtypes, dst)
            got = got.astype(np.float32)
            np.testing.assert_array_equal(got, np.array(w, np.float32), err_msg=f"{dst} {sat}")
            real = ~np.isnan(got)
            np.testing.assert_array_equal(np.signbit(got[real]),
                                          np.signbit(np.array(w, np.float32)[real]))


def test_cast_from_small_types_to_integers_saturates():
    x = small("float8_e5m2", [57344, -57344, 2.5, -2.5, np.nan, np.inf])
    for fold in (False, True):
        np.testing.assert_array_equal(run("Cast", x, fold=fold, to="int8"),
                                      [127, -128, 2, -2, 0, 127])
        np.testing.assert_array_equal(run("Cast", x, fold=fold, to="uint16"),
                                      [57344, 0, 2, 0, 0, 65535])


def test_cast_e8m0_round_modes():
    x = np.array([3.0, 5.0, 6.0, 0.2, -3.0], np.float32)
    want = {"up": [4, 8, 8, 0.25, 4], "down": [2, 4, 4, 0.125, 2],
            "nearest": [4, 4, 8, 0.25, 4]}
    for mode, w in want.items():
        for fold in (False, True):
            got = run("Cast", x, fold=fold, to="float8_e8m0fnu", round_mode=mode)
            np.testing.assert_array_equal(got.astype(np.float32), w, err_msg=mode)


@pytest.mark.parametrize("dtype", SMALL)
def test_castlike_small_types(dtype):
    x = np.array([1.0, -1.0, 3.0, 0.0], np.float32)
    like = np.zeros((2,), getattr(ml_dtypes, dtype))
    got = run("CastLike", x, like)
    assert got.dtype == like.dtype
    want = sf.convert_array(x, dtype)
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    back = run("CastLike", got, np.zeros(1, np.float32))
    np.testing.assert_array_equal(back, want.astype(np.float32))


@pytest.mark.parametrize("src,dst", [("float8_e4m3fn", "uint8"), ("int8", "float8_e5m2"),
                                     ("float8_e5m2fnuz", "float8_e4m3fn"),
                                     ("bool", "float8_e8m0fnu"),
                                     ("float8_e4m3fnuz", "bool"), ("int4", "uint4"),
                                     ("uint4", "float4_e2m1fn"), ("float4_e2m1fn", "int4"),
                                     ("int2", "uint2"), ("float6_e2m3fn", "float6_e3m2fn")])
def test_bitcast_small_types(src, dst):
    """Same width only; bits beyond a narrow type's width are cleared."""
    raw = np.array([0, 1, 0x3F, 0x80, 0x7F, 0xFF, 0x12, 0xC1], np.uint8)
    x = raw.astype(bool) if src == "bool" else raw.view(np_dt(src))
    width = 8 if src == "bool" else sf.width(dst)
    byte = x.astype(np.uint8) if src == "bool" else raw
    want = (byte != 0) if dst == "bool" else (byte & ((1 << width) - 1)).view(np_dt(dst))
    for fold in (False, True):
        got = run("BitCast", x, fold=fold, to=dst)
        assert got.dtype == np.dtype(np_dt(dst))
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


@pytest.mark.parametrize("src,dst", [("int4", "uint8"), ("float8_e4m3fn", "int4"),
                                     ("float6_e2m3fn", "float4_e2m1fn"), ("int2", "int4"),
                                     ("float16", "float8_e5m2")])
def test_bitcast_small_types_must_match_widths(src, dst):
    with pytest.raises(dlc.ModelError, match="sizes must match"):
        run("BitCast", np.zeros(2, np.uint8).view(np_dt(src)) if src != "float16"
            else np.zeros(2, np.float16), to=dst)


# -- ONNX converters --------------------------------------------------------------------------
def onnx_model(nodes, inputs, outputs, opset=21):
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


@pytest.mark.parametrize("opset", [9, 13, 19, 21, 25])
def test_onnx_cast_maps_element_types(opset):
    node = helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT16)
    m = onnx_model([node], [vi("x", TensorProto.INT64, [3])], [vi("y", TensorProto.FLOAT16,
                                                                     [3])], opset)
    (y,) = dlc.compile(m).run(np.array([1, -7, 70000], np.int64))
    np.testing.assert_array_equal(y, np.array([1, -7, np.inf], np.float16))


def test_onnx_cast_saturate_attribute_is_accepted():
    node = helper.make_node("Cast", ["x"], ["y"], to=TensorProto.INT32, saturate=0)
    m = onnx_model([node], [vi("x", TensorProto.FLOAT, [2])], [vi("y", TensorProto.INT32, [2])])
    np.testing.assert_array_equal(dlc.compile(m).run(np.array([1.5, -2.5], np.float32))[0],
                                  [1, -2])


def test_onnx_cast_to_unsupported_type():
    node = helper.make_node("Cast", ["x"], ["y"], to=TensorProto.STRING)
    m = onnx_model([node], [vi("x", TensorProto.FLOAT, [2])], [vi("y", TensorProto.STRING, [2])])
    with pytest.raises(dlc.UnsupportedOpError, match="element type"):
        dlc.compile(m)


@pytest.mark.parametrize("elem,opset,attrs,want", [
    (TensorProto.FLOAT8E4M3FN, 19, {}, [1.0, 448.0, -448.0, 0.5]),           # saturates
    (TensorProto.FLOAT8E4M3FN, 19, {"saturate": 0}, [1.0, np.nan, np.nan, 0.5]),
    (TensorProto.FLOAT8E5M2, 21, {"saturate": 0}, [1.0, np.inf, -np.inf, 0.5]),
    (TensorProto.FLOAT8E5M2FNUZ, 23, {}, [1.0, 57344.0, -57344.0, 0.5]),
    (TensorProto.INT4, 21, {}, [1, 7, -8, 0]),                    # out of range: saturates
    (TensorProto.UINT2, 25, {}, [1, 3, 0, 0]),
    (TensorProto.FLOAT4E2M1, 23, {}, [1.0, 6.0, -6.0, 0.5]),
    (TensorProto.FLOAT8E8M0, 24, {"round_mode": "down"}, [1.0, 2.0**19, 2.0**19, 0.5]),
])
def test_onnx_cast_to_small_types(elem, opset, attrs, want):
    node = helper.make_node("Cast", ["x"], ["y"], to=elem, **attrs)
    m = onnx_model([node], [vi("x", TensorProto.FLOAT, [4])], [vi("y", elem, [4])], opset)
    x = np.array([1.0, 1e6, -1e6, 0.5], np.float32)
    if elem in (TensorProto.INT4, TensorProto.UINT2):
        x[1] = 8.0
    (y,) = dlc.compile(m).run(x)
    assert y.dtype == helper.tensor_dtype_to_np_dtype(elem)
    np.testing.assert_array_equal(y.astype(np.float32), np.array(want, np.float32))


@pytest.mark.parametrize("opset,attrs", [(15, {}), (19, {}), (19, {"saturate": 0}), (25, {})])
def test_onnx_castlike_saturate_across_versions(opset, attrs):
    """CastLike-15 has no saturate attribute and saturates, like the default of 19+."""
    node = helper.make_node("CastLike", ["x", "like"], ["y"], **attrs)
    elem = TensorProto.FLOAT8E4M3FN
    m = onnx_model([node], [vi("x", TensorProto.FLOAT, [2]), vi("like", elem, [1])],
                   [vi("y", elem, [2])], opset)
    like = np.zeros(1, ml_dtypes.float8_e4m3fn)
    (y,) = dlc.compile(m).run(np.array([1000.0, -3.0], np.float32), like)
    assert y.dtype == ml_dtypes.float8_e4m3fn
    got = y.astype(np.float32)
    assert got[1] == -3.0
    assert np.isnan(got[0]) if attrs.get("saturate") == 0 else got[0] == 448.0


@pytest.mark.parametrize("src,dst", [(TensorProto.FLOAT8E4M3FN, TensorProto.UINT8),
                                     (TensorProto.INT4, TensorProto.FLOAT4E2M1),
                                     (TensorProto.INT2, TensorProto.UINT2)])
def test_onnx_bitcast_small_types(src, dst):
    node = helper.make_node("BitCast", ["x"], ["y"], to=dst)
    m = onnx_model([node], [vi("x", src, [3])], [vi("y", dst, [3])], opset=26)
    src_np, dst_np = (helper.tensor_dtype_to_np_dtype(t) for t in (src, dst))
    x = np.array([1, 2, 3], np.uint8).view(src_np)
    (y,) = dlc.compile(m).run(x)
    assert y.dtype == dst_np
    np.testing.assert_array_equal(y.view(np.uint8), [1, 2, 3])


def test_onnx_castlike_with_empty_target():
    nodes = [helper.make_node("CastLike", ["x", "like"], ["y"])]
    m = onnx_model(nodes, [vi("x", TensorProto.FLOAT, [3]), vi("like", TensorProto.DOUBLE, [0])],
                   [vi("y", TensorProto.DOUBLE, [3])])
    x = np.array([0.1, 2, 3], np.float32)
    (y,) = dlc.compile(m).run(x, np.zeros(0, np.float64))
    np.testing.assert_array_equal(y, x.astype(np.float64))


def test_onnx_bitcast():
    node = helper.make_node("BitCast", ["x"], ["y"], to=TensorProto.INT32)
    m = onnx_model([node], [vi("x", TensorProto.FLOAT, [2])], [vi("y", TensorProto.INT32, [2])],
                   opset=26)
    x = np.array([1.0, -2.0], np.float32)
    np.testing.assert_array_equal(dlc.compile(m).run(x)[0], x.view(np.int32))


CONSTANTS = [
    ({"value": numpy_helper.from_array(np.arange(6, dtype=np.int32).reshape(2, 3))},
     np.arange(6, dtype=np.int32).reshape(2, 3)),
    ({"value_float": 2.5}, np.array(2.5, np.float32)),
    ({"value_floats": [1.0, -2.0]}, np.array([1.0, -2.0], np.float32)),
    ({"value_int": -7}, np.array(-7, np.int64)),
    ({"value_ints": [3, 4, 5]}, np.array([3, 4, 5], np.int64)),
    ({"sparse_value": helper.make_sparse_tensor(
        numpy_helper.from_array(np.array([5.0, 6.0], np.float32), "v"),
        numpy_helper.from_array(np.array([1, 4], np.int64), "i"), [2, 3])},
     np.array([[0, 5, 0], [0, 6, 0]], np.float32)),
]


@pytest.mark.parametrize("attrs,want", CONSTANTS)
def test_onnx_constant(attrs, want):
    elem = helper.np_dtype_to_tensor_dtype(want.dtype)
    nodes = [helper.make_node("Constant", [], ["c"], **attrs),
             helper.make_node("Add", ["x", "c"], ["y"])]
    m = onnx_model(nodes, [vi("x", elem, list(want.shape))], [vi("y", elem, list(want.shape))],
                   opset=13)
    (y,) = dlc.compile(m).run(np.ones(want.shape, want.dtype))
    np.testing.assert_array_equal(y, want + 1)


def test_onnx_constant_as_graph_output():
    node = helper.make_node("Constant", [], ["c"], value_ints=[1, 2])
    m = onnx_model([node], [], [vi("c", TensorProto.INT64, [2])])
    np.testing.assert_array_equal(dlc.compile(m).run()[0], [1, 2])


def test_onnx_constant_must_fail():
    two = helper.make_node("Constant", [], ["c"], value_int=1, value_float=2.0)
    m = onnx_model([two], [], [vi("c", TensorProto.INT64, [])])
    with pytest.raises(dlc.ModelError, match="exactly one value attribute"):
        dlc.compile(m)
    s = helper.make_node("Constant", [], ["c"], value_string="hello")
    m = onnx_model([s], [], [vi("c", TensorProto.STRING, [])])
    with pytest.raises(dlc.UnsupportedOpError, match="string"):
        dlc.compile(m)


def test_onnx_identity():
    node = helper.make_node("Identity", ["x"], ["y"])
    m = onnx_model([node], [vi("x", TensorProto.BOOL, [2, 2])], [vi("y", TensorProto.BOOL,
                                                                     [2, 2])])
    x = np.array([[True, False], [False, True]])
    np.testing.assert_array_equal(dlc.compile(m).run(x)[0], x)


def test_onnx_model_checks():
    node = helper.make_node("Cast", ["x"], ["y"], to=TensorProto.INT8)
    m = onnx_model([node], [vi("x", TensorProto.FLOAT, [2])], [vi("y", TensorProto.INT8, [2])])
    onnx.checker.check_model(m)
