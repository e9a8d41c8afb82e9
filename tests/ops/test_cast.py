"""Cast, CastLike, BitCast (dlc/ops/cast.py) and their ONNX converters, with the Constant
and Identity converters, against NumPy expectations written here."""

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import dlc
from dlc.graph import GraphBuilder

BF16 = ml_dtypes.bfloat16
DTYPES = ["float32", "float64", "float16", "bfloat16", "int8", "uint8", "int16", "uint16",
          "int32", "uint32", "int64", "uint64", "bool"]


def np_dt(dtype):
    return BF16 if dtype == "bfloat16" else np.dtype(dtype)


def is_float(dtype):
    return dtype.startswith(("float", "bfloat"))


def run(op, *arrays, fold=False, **attrs):
    g = GraphBuilder(op.lower())
    syms, feeds = [], []
    for k, a in enumerate(arrays):
        if fold:
            syms.append(g.constant(a))
        else:
            syms.append(g.input(f"in{k}", a.shape, a.dtype))
            feeds.append(a)
    g.output(g.op(op, *syms, **attrs))
    return dlc.compile(g.build()).run(*feeds)[0]


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


@pytest.mark.parametrize("elem", [TensorProto.FLOAT8E4M3FN, TensorProto.FLOAT8E5M2,
                                  TensorProto.INT4, TensorProto.STRING])
def test_onnx_cast_to_unsupported_type(elem):
    node = helper.make_node("Cast", ["x"], ["y"], to=elem)
    m = onnx_model([node], [vi("x", TensorProto.FLOAT, [2])], [vi("y", elem, [2])])
    with pytest.raises(dlc.UnsupportedOpError, match="element type"):
        dlc.compile(m)


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
