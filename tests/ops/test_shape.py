"""Shape operators (dlc/ops/shape.py) against NumPy expectations written here: Reshape,
Flatten, Transpose, Squeeze, Unsqueeze, Expand, Shape, Size, ConstantOfShape, Range,
EyeLike; must-fail cases for bad attributes, shapes and values."""

import ml_dtypes
import numpy as np
import pytest
from op_util import C, onnx_vs_ort, run, same

import dlc
from dlc.errors import DlcError, ModelError
from dlc.graph import GraphBuilder


def data(shape, dtype="float32"):
    size = int(np.prod(shape))
    if dtype == "bool":
        return (np.arange(size) % 3 == 0).reshape(shape)
    return (np.arange(size) % 97 - 20).astype(dtype).reshape(shape)


# -- Reshape ------------------------------------------------------------------------------
@pytest.mark.parametrize("shape, spec, want", [
    ((2, 3, 4), [4, 0, -1], (4, 3, 2)),
    ((2, 3, 4), [-1], (24,)),
    ((2, 3, 4), [0, 0, 2, 2], (2, 3, 2, 2)),
    ((6, 1, 4), [2, 3, 4, 1], (2, 3, 4, 1)),
    ((2, 6, 5), [4, 3, 5], (4, 3, 5)),
    ((3, 10), [5, 2, 3], (5, 2, 3)),
    ((1, 1), [], ()),
    ((7,), [1, 7, 1], (1, 7, 1)),
])
def test_reshape(shape, spec, want):
    x = data(shape)
    same(run("Reshape", x, C(spec)), x.reshape(want))


@pytest.mark.parametrize("dtype", ["int8", "bool", "float16", "uint64"])
def test_reshape_dtypes(dtype):
    x = data((4, 6), dtype)
    same(run("Reshape", x, C([3, 2, 4])), x.reshape(3, 2, 4))


def test_reshape_allowzero_and_int32_shape():
    x = data((0, 3))
    same(run("Reshape", x, C([3, 0]), allowzero=1), x.reshape(3, 0))
    y = data((2, 3, 2))
    same(run("Reshape", y, C([0, -1], np.int32)), y.reshape(2, 6))


def test_reshape_shape_known_only_at_run_time():
    x = data((2, 3, 4))
    same(run("Reshape", x, np.array([4, -1], np.int64)), x.reshape(4, 6))


@pytest.mark.parametrize("spec, attrs, message", [
    ([-1, -1], {}, "more than one -1"),
    ([5, 5], {}, "cannot reshape"),
    ([-1, 7], {}, "cannot be inferred"),
    ([0, 0, 0, 0], {}, "rank 3"),
    ([0, -1], {"allowzero": 1}, "allowzero"),
    ([2, -3, 4], {}, "negative"),
])
def test_reshape_errors(spec, attrs, message):
    g = GraphBuilder()
    x = g.input("x", (2, 3, 4))
    with pytest.raises(ModelError, match=message):
        g.op("Reshape", x, g.constant(np.array(spec, np.int64)), **attrs)


def test_reshape_float_shape_fails():
    g = GraphBuilder()
    with pytest.raises(ModelError, match="integer"):
        g.op("Reshape", g.input("x", (2, 3)), g.constant(np.array([6.0], np.float32)))


# -- Flatten, Transpose, Squeeze, Unsqueeze -----------------------------------------------
@pytest.mark.parametrize("axis, want", [(0, (1, 60)), (1, (3, 20)), (2, (12, 5)),
                                        (-1, (12, 5)), (3, (60, 1)), (-3, (1, 60))])
def test_flatten(axis, want):
    x = data((3, 4, 5))
    same(run("Flatten", x, axis=axis), x.reshape(want))


def test_flatten_bad_axis():
    g = GraphBuilder()
    with pytest.raises(ModelError, match="axis=4"):
        g.op("Flatten", g.input("x", (3, 4, 5)), axis=4)


@pytest.mark.parametrize("shape, perm", [((2, 3), None), ((2, 3, 4), None),
                                         ((2, 3, 4), [1, 0, 2]), ((2, 3, 4, 5), [0, 2, 3, 1]),
                                         ((1, 5, 1, 2), [3, 1, 0, 2]), ((7,), [0])])
def test_transpose(shape, perm):
    x = data(shape, "int16")
    kwargs = {} if perm is None else {"perm": perm}
    same(run("Transpose", x, **kwargs), np.transpose(x, perm))


@pytest.mark.parametrize("perm", [[0, 0, 1], [0, 1], [0, 1, 3]])
def test_transpose_bad_perm(perm):
    g = GraphBuilder()
    with pytest.raises(ModelError, match="perm"):
        g.op("Transpose", g.input("x", (2, 3, 4)), perm=perm)


def test_squeeze():
    x = data((1, 3, 1, 2, 1), "uint8")
    same(run("Squeeze", x, C([0, -1])), x.reshape(3, 1, 2))
    same(run("Squeeze", x), x.reshape(3, 2))
    same(run("Squeeze", x, C([], np.int64)), x)


def test_squeeze_errors():
    g = GraphBuilder()
    x = g.input("x", (1, 3))
    with pytest.raises(ModelError, match="size is not 1"):
        g.op("Squeeze", x, g.constant(np.array([1], np.int64)))
    with pytest.raises(ModelError, match="out of range"):
        g.op("Squeeze", x, g.constant(np.array([2], np.int64)))


@pytest.mark.parametrize("axes, want", [([0], (1, 3, 4)), ([-1], (3, 4, 1)),
                                        ([3, 1], (3, 1, 4, 1)), ([0, 1, 4], (1, 1, 3, 4, 1)),
                                        ([-4, 2], (1, 3, 1, 4))])
def test_unsqueeze(axes, want):
    x = data((3, 4), "bool")
    same(run("Unsqueeze", x, C(axes)), x.reshape(want))


def test_unsqueeze_errors():
    g = GraphBuilder()
    x = g.input("x", (3, 4))
    with pytest.raises(ModelError, match="repeats"):
        g.op("Unsqueeze", x, g.constant(np.array([1, 1], np.int64)))
    with pytest.raises(ModelError, match="out of range"):
        g.op("Unsqueeze", x, g.constant(np.array([3], np.int64)))


# -- Expand -------------------------------------------------------------------------------
@pytest.mark.parametrize("shape, spec, want", [
    ((3, 1), [2, 1, 4], (2, 3, 4)),
    ((2, 3), [1], (2, 3)),
    ((1,), [5], (5,)),
    ((), [2, 2], (2, 2)),
    ((4, 1, 2), [3, 1], (4, 3, 2)),
])
def test_expand(shape, spec, want):
    x = data(shape, "float64")
    same(run("Expand", x, C(spec)), np.broadcast_to(x, want))


def test_expand_errors():
    g = GraphBuilder()
    x = g.input("x", (2, 3))
    with pytest.raises(ModelError, match="cannot be broadcast"):
        g.op("Expand", x, g.constant(np.array([4, 4], np.int64)))
    with pytest.raises(ModelError, match="negative"):
        g.op("Expand", x, g.constant(np.array([-1, 3], np.int64)))


# -- Shape, Size, ConstantOfShape -------------------------------------------------------
@pytest.mark.parametrize("attrs, want", [({}, [2, 3, 4, 5]), ({"start": 1}, [3, 4, 5]),
                                         ({"end": -1}, [2, 3, 4]),
                                         ({"start": -2, "end": 10}, [4, 5]),
                                         ({"start": -10, "end": 1}, [2]),
                                         ({"start": 1, "end": 2}, [3])])
def test_shape(attrs, want):
    same(run("Shape", data((2, 3, 4, 5)), **attrs), np.array(want, np.int64))


def test_shape_empty_slice_and_size():
    same(run("Shape", data((2, 3)), start=2), np.zeros(0, np.int64))
    same(run("Size", data((2, 3, 4), "int8")), np.array(24, np.int64))
    same(run("Size", data(())), np.array(1, np.int64))


@pytest.mark.parametrize("value", [None, np.array([7], np.int32), np.array([True]),
                                   np.array([1.5], ml_dtypes.bfloat16),
                                   np.array([-3], np.int64)])
def test_constant_of_shape(value):
    attrs = {} if value is None else {"value": value}
    fill = np.float32(0) if value is None else value[0]
    dtype = np.float32 if value is None else value.dtype
    same(run("ConstantOfShape", C([2, 3]), **attrs), np.full((2, 3), fill, dtype))
    same(run("ConstantOfShape", C([], np.int64), **attrs), np.full((), fill, dtype))


def test_constant_of_shape_from_a_run_time_shape():
    g = GraphBuilder()
    x = g.input("x", (3, 2))
    g.output(g.op("ConstantOfShape", g.op("Shape", x), value=np.array([5], np.int32)))
    same(dlc.compile(g.build()).run(data((3, 2)))[0], np.full((3, 2), 5, np.int32))


def test_constant_of_shape_errors():
    g = GraphBuilder()
    with pytest.raises(ModelError, match="negative"):
        g.op("ConstantOfShape", g.constant(np.array([2, -1], np.int64)))
    with pytest.raises(ModelError, match="one element"):
        g.op("ConstantOfShape", g.constant(np.array([2], np.int64)),
             value=np.array([1, 2], np.int32))


# -- Range --------------------------------------------------------------------------------
@pytest.mark.parametrize("start, limit, delta, dtype", [
    (3, 9, 3, "int32"), (10, 4, -2, "int64"), (0, 0, 1, "int16"), (5, 1, 1, "int64"),
    (1.0, 2.0, 0.25, "float32"), (0.5, -1.0, -0.3, "float64"),
])
def test_range(start, limit, delta, dtype):
    got = run("Range", C(start, dtype), C(limit, dtype), C(delta, dtype))
    same(got, np.arange(start, limit, delta).astype(dtype))


def test_range_float16_accumulates_in_float32():
    got = run("Range", C(2048, np.float16), C(2060, np.float16), C(1, np.float16))
    same(got, np.arange(2048, 2060, 1, dtype=np.float32).astype(np.float16))
    assert len(got) == 12


def test_range_errors():
    g = GraphBuilder()
    one, zero = g.constant(np.array(1, np.int64)), g.constant(np.array(0, np.int64))
    with pytest.raises(ModelError, match="delta must not be zero"):
        g.op("Range", zero, one, zero)
    with pytest.raises(ModelError, match="dtype"):
        g.op("Range", zero, g.constant(np.array(1, np.int32)), one)
    with pytest.raises(ModelError, match="scalar"):
        g.op("Range", zero, g.constant(np.array([1, 2], np.int64)), one)


# -- EyeLike ------------------------------------------------------------------------------
@pytest.mark.parametrize("shape, k, dtype", [((3, 3), 0, None), ((3, 5), 2, "int32"),
                                             ((4, 2), -1, "bool"), ((2, 3), 5, None),
                                             ((3, 4), -3, "float16")])
def test_eye_like(shape, k, dtype):
    attrs = {"k": k} | ({"dtype": dtype} if dtype else {})
    want = np.eye(*shape, k=k, dtype=dtype or np.float64)
    same(run("EyeLike", data(shape, "float64"), **attrs), want)


def test_eye_like_errors():
    g = GraphBuilder()
    with pytest.raises(ModelError, match="rank 2"):
        g.op("EyeLike", g.input("x", (3,)))
    with pytest.raises(ModelError, match="dtype"):
        g.op("EyeLike", g.input("y", (3, 3)), dtype="complex64")


def test_unknown_attribute_fails():
    g = GraphBuilder()
    with pytest.raises(DlcError, match="unknown attribute"):
        g.op("Flatten", g.input("x", (2, 3)), axes=1)


# -- ONNX converters of older opsets, against onnxruntime ---------------------------------
def test_squeeze_unsqueeze_reshape_converters():
    x = {"x": data((1, 3, 1, 2))}
    onnx_vs_ort("Squeeze", x, 11, axes=[0, -2])
    onnx_vs_ort("Squeeze", x, 7)
    onnx_vs_ort("Unsqueeze", x, 11, axes=[0, 5])
    onnx_vs_ort("Reshape", x, 7, initializers={"s": np.array([3, -1, 1], np.int64)})
    onnx_vs_ort("Shape", x, 15, start=1, end=-1)


def test_eye_like_dtype_converter():
    onnx_vs_ort("EyeLike", {"x": data((3, 4))}, 9, dtype=6, k=1)
