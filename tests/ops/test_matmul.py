"""MatMul, Gemm, MatMulInteger, QLinearMatMul, Einsum: compiled results against NumPy
expectations, the opset 1-6 Gemm converter, and must-fail cases."""

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper
from op_util import run_consts as run

import dlc
from dlc.errors import ModelError


def rand(shape, dtype="float32", seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind in "iu":
        return rng.integers(0 if np.dtype(dtype).kind == "u" else -5, 6, size=shape).astype(dtype)
    return rng.uniform(-1, 1, size=shape).astype(dtype)


# -- MatMul ----------------------------------------------------------------------------------
@pytest.mark.parametrize("a,b", [
    ((3, 4), (4, 5)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,)),
    ((2, 3, 4), (4, 5)), ((4,), (2, 4, 3)), ((2, 1, 3, 4), (5, 4, 2)),
    ((1, 3, 4), (2, 1, 4, 1)), ((6, 1, 1), (1, 7)),
])
def test_matmul_shapes(a, b):
    x, y = rand(a, seed=1), rand(b, seed=2)
    got = run("MatMul", [x, y])
    want = np.matmul(x.astype(np.float64), y.astype(np.float64))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint32", "uint64", "float64", "float16",
                                   "bfloat16"])
def test_matmul_dtypes(dtype):
    npdt = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    x, y = rand((2, 3, 16), npdt, 3), rand((16, 4), npdt, 4)
    got = run("MatMul", [x, y])
    assert got.dtype == npdt
    if dtype.startswith(("int", "uint")):
        np.testing.assert_array_equal(got, np.matmul(x, y))
    else:
        tol = {"float64": 1e-12, "float16": 3e-3, "bfloat16": 2e-2}[dtype]
        want = np.matmul(x.astype(np.float64), y.astype(np.float64))
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol, atol=tol)


def test_matmul_int32_wraps():
    x = np.full((1, 2), 2**30, np.int32)
    got = run("MatMul", [x, np.array([[2], [2]], np.int32)])
    np.testing.assert_array_equal(got, np.matmul(x, np.array([[2], [2]], np.int32)))


@pytest.mark.parametrize("a,b", [((3, 4), (5, 2)), ((2, 3, 4), (3, 4, 5)), ((), (3,))])
def test_matmul_must_fail(a, b):
    with pytest.raises(ModelError):
        run("MatMul", [rand(a), rand(b)])


def test_matmul_must_fail_on_dtypes():
    with pytest.raises(ModelError, match="B is"):
        run("MatMul", [rand((2, 2)), rand((2, 2), "float64")])
    with pytest.raises(ModelError, match="dtype"):
        run("MatMul", [rand((2, 2), "int8"), rand((2, 2), "int8")])


# -- Gemm ------------------------------------------------------------------------------------
@pytest.mark.parametrize("ta,tb", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("c_shape", [None, (), (1,), (5,), (3, 1), (1, 5), (3, 5)])
def test_gemm(ta, tb, c_shape):
    a = rand((4, 3) if ta else (3, 4), seed=5)
    b = rand((5, 4) if tb else (4, 5), seed=6)
    c = rand(c_shape, seed=7) if c_shape is not None else None
    got = run("Gemm", [a, b, c], transA=ta, transB=tb, alpha=0.5, beta=-2.0)
    want = 0.5 * (a.T if ta else a).astype(np.float64) @ (b.T if tb else b)
    if c is not None:
        want = want - 2.0 * c
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_gemm_beta_zero_ignores_c():
    a, b = rand((2, 3), seed=8), rand((3, 2), seed=9)
    c = np.full((2, 2), np.nan, np.float32)
    np.testing.assert_allclose(run("Gemm", [a, b, c], beta=0.0), a @ b, rtol=1e-6)


def test_gemm_integers():
    a, b, c = rand((3, 4), "int64", 10), rand((4, 2), "int64", 11), rand((2,), "int64", 12)
    np.testing.assert_array_equal(run("Gemm", [a, b, c]), a @ b + c)
    got = run("Gemm", [a, b, c], alpha=1.5, beta=0.5)
    np.testing.assert_array_equal(got, (1.5 * (a @ b) + 0.5 * c).astype(np.int64))


def _gemm_model(opset, c_shape, **attrs):
    node = helper.make_node("Gemm", ["a", "b", "c"], ["y"], **attrs)
    vi = helper.make_tensor_value_info
    graph = helper.make_graph([node], "g", [vi("a", TensorProto.FLOAT, [2, 3]),
                                            vi("b", TensorProto.FLOAT, [3, 4]),
                                            vi("c", TensorProto.FLOAT, list(c_shape))],
                              [vi("y", TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_gemm_opset_6_broadcast_attribute():
    a, b, c = rand((2, 3), seed=13), rand((3, 4), seed=14), rand((4,), seed=15)
    (y,) = dlc.compile(_gemm_model(6, (4,), broadcast=1)).run(a, b, c)
    np.testing.assert_allclose(y, a @ b + c, rtol=1e-5)
    with pytest.raises(ModelError, match="broadcast=0"):
        dlc.compile(_gemm_model(6, (4,)))
    c2 = rand((2, 4), seed=16)
    (y,) = dlc.compile(_gemm_model(6, (2, 4))).run(a, b, c2)
    np.testing.assert_allclose(y, a @ b + c2, rtol=1e-5)


@pytest.mark.parametrize("a,b,c,attrs", [
    ((2, 3), (4, 5), None, {}), ((2, 3), (2, 5), None, {"transA": 0}),
    ((2, 3), (3, 5), (3, 5), {}), ((2, 3), (3, 5), (2, 2, 5), {}), ((3,), (3, 5), None, {}),
])
def test_gemm_must_fail(a, b, c, attrs):
    with pytest.raises(ModelError):
        run("Gemm", [rand(a), rand(b), rand(c) if c else None], **attrs)


# -- MatMulInteger and QLinearMatMul ---------------------------------------------------------
@pytest.mark.parametrize("ad,bd", [("uint8", "uint8"), ("int8", "int8"), ("uint8", "int8")])
@pytest.mark.parametrize("zp", ["none", "scalar", "vector"])
def test_matmul_integer(ad, bd, zp):
    a = np.random.default_rng(17).integers(0 if ad == "uint8" else -128, 128, (2, 3, 5))
    b = np.random.default_rng(18).integers(0 if bd == "uint8" else -128, 128, (5, 4))
    a, b = a.astype(ad), b.astype(bd)
    azp = bzp = None
    if zp == "scalar":
        azp, bzp = np.array(12, ad), np.array(3, bd)
    elif zp == "vector":
        azp, bzp = np.arange(3).astype(ad).reshape(3, 1), np.arange(4).astype(bd)
    got = run("MatMulInteger", [a, b, azp, bzp])
    want = (a.astype(np.int64) - (0 if azp is None else azp.astype(np.int64))) @ \
        (b.astype(np.int64) - (0 if bzp is None else bzp.astype(np.int64)))
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)


def test_matmul_integer_per_row_vector_and_1d():
    a, b = np.arange(12, dtype=np.uint8).reshape(3, 4), np.arange(4, dtype=np.uint8)
    azp = np.array([1, 2, 3], np.uint8)
    got = run("MatMulInteger", [a, b, azp])
    np.testing.assert_array_equal(got, (a.astype(np.int64) - azp[:, None]) @ b)
    with pytest.raises(ModelError, match="a_zero_point"):
        run("MatMulInteger", [a, b.reshape(4, 1), np.array([1, 2], np.uint8)])


@pytest.mark.parametrize("sd", ["float32", "float16"])
@pytest.mark.parametrize("per_col", [False, True])
def test_qlinear_matmul(sd, per_col):
    rng = np.random.default_rng(19)
    a = rng.integers(0, 256, (2, 3, 4)).astype(np.uint8)
    b = rng.integers(-128, 128, (4, 5)).astype(np.int8)
    a_s, azp = np.array(0.02, sd), np.array(120, np.uint8)
    b_s = (np.linspace(0.01, 0.05, 5) if per_col else np.array(0.03)).astype(sd)
    bzp = (np.arange(5) - 2).astype(np.int8) if per_col else np.array(-1, np.int8)
    y_s, yzp = np.array(0.5, sd), np.array(-3, np.int8)
    got = run("QLinearMatMul", [a, a_s, azp, b, b_s, bzp, y_s, yzp])
    acc = (a.astype(np.int64) - 120) @ (b.astype(np.int64) - bzp)
    mult = (a_s * b_s / y_s).astype(sd).astype(np.float64)
    want = np.clip(np.round(acc * mult) - 3, -128, 127).astype(np.int8)
    np.testing.assert_array_equal(got, want)


def test_qlinear_matmul_must_fail():
    a, b = np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8)
    s, z = np.array(1.0, np.float32), np.array(0, np.uint8)
    with pytest.raises(ModelError, match="y_scale"):
        run("QLinearMatMul", [a, s, z, b, s, z, np.ones(2, np.float32), z])
    with pytest.raises(ModelError, match="b_zero_point"):
        run("QLinearMatMul", [a, s, z, b, s, np.array(0, np.int8), s, z])


# -- Einsum ----------------------------------------------------------------------------------
@pytest.mark.parametrize("eq,shapes", [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk", [(3, 4), (4, 5)]),
    ("ij->ji", [(3, 4)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("i,i", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (3, 4, 2)]),
    ("...ii->...i", [(2, 3, 3)]),
    ("b i d, b j d -> b i j", [(2, 3, 4), (2, 5, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("iij->j", [(3, 3, 2)]),
    ("ij->", [(3, 4)]),
    ("Ab,bA->A", [(3, 4), (4, 3)]),
    ("...j->...", [(2, 3, 4)]),
    ("i...->...", [(3, 2, 1)]),
])
def test_einsum(eq, shapes):
    arrays = [rand(s, seed=20 + k) for k, s in enumerate(shapes)]
    got = run("Einsum", arrays, equation=eq)
    want = np.einsum(eq.replace(" ", ""), *[a.astype(np.float64) for a in arrays])
    assert got.shape == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "float16", "float64"])
def test_einsum_dtypes(dtype):
    x, y = rand((2, 3), dtype, 30), rand((3,), dtype, 31)
    got = run("Einsum", [x, y], equation="ij,j->i")
    assert got.dtype == np.dtype(dtype)
    want = np.einsum("ij,j->i", x.astype(np.float64), y.astype(np.float64))
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.dtype(dtype)),
                               rtol=2e-3)


@pytest.mark.parametrize("eq,shapes,match", [
    ("ij,jk->ik", [(3, 4), (5, 6)], "sizes"),
    ("ij->ik", [(3, 4)], "names one"),
    ("ij->ii", [(3, 4)], "repeats"),
    ("ij,j", [(3, 4)], "terms"),
    ("ijk->i", [(3, 4)], "does not match"),
    ("i1->i", [(3, 4)], "bad term"),
    ("...i,...i->...", [(2, 3), (4, 3)], "broadcast"),
])
def test_einsum_must_fail(eq, shapes, match):
    with pytest.raises(ModelError, match=match):
        run("Einsum", [rand(s) for s in shapes], equation=eq)
