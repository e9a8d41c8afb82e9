"""Elementwise arithmetic, math functions and activations (dlc/ops/elementwise.py) against
NumPy expectations written here; must-fail cases for bad dtypes, shapes and attributes."""

import math

import ml_dtypes
import numpy as np
import pytest
from op_util import run_fold as run

import dlc
from dlc.graph import GraphBuilder

BF16 = ml_dtypes.bfloat16
TOL = {"float16": 2e-3, "bfloat16": 1.6e-2, "float32": 2e-6, "float64": 1e-12}


def run_many(x, specs):
    """One model applying each (op, attrs) of ``specs`` to ``x``: one compile for many ops."""
    g = GraphBuilder("many")
    s = g.input("x", x.shape, x.dtype)
    g.output(*[g.op(op, s, **attrs) for op, attrs in specs])
    return dlc.compile(g.build()).run(x)


def close(got, want, dtype=None):
    dtype = dtype or got.dtype.name
    assert got.dtype == np.dtype(want.dtype if dtype is None else _np(dtype)), got.dtype
    tol = TOL.get(dtype)
    if tol is None:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64),
                                   rtol=tol, atol=tol)


def _np(dtype):
    return BF16 if dtype == "bfloat16" else np.dtype(dtype)


def rand(shape, dtype, lo=-3, hi=3, seed=0):
    rng = np.random.default_rng(seed)
    if dtype in TOL:
        return rng.uniform(lo, hi, size=shape).astype(_np(dtype))
    info = np.iinfo(dtype)
    return rng.integers(max(lo, info.min), min(hi, info.max) + 1, size=shape).astype(dtype)


# -- binary arithmetic --------------------------------------------------------------------
ARITH_DTYPES = ["float32", "float64", "float16", "bfloat16", "int8", "uint8", "int32",
                "int64", "uint64"]


@pytest.mark.parametrize("dtype", ARITH_DTYPES)
def test_add_sub_mul_broadcast(dtype):
    a = rand((3, 1, 5), dtype, 0, 100)
    b = rand((4, 1), dtype, 0, 100, seed=1)
    for op, fn in (("Add", np.add), ("Sub", np.subtract), ("Mul", np.multiply)):
        want = fn(a.astype(np.float64), b.astype(np.float64)) if dtype in TOL else fn(a, b)
        close(run(op, a, b), want.astype(_np(dtype)), dtype)


def test_integer_arithmetic_wraps():
    a = np.array([120, -128, 127], np.int8)
    b = np.array([10, -1, 2], np.int8)
    np.testing.assert_array_equal(run("Add", a, b), np.array([-126, 127, -127], np.int8))
    np.testing.assert_array_equal(run("Mul", a, b), np.array([-80, -128, -2], np.int8))


def test_scalar_and_size_one_dims():
    a = np.array(2.5, np.float32)
    b = rand((1, 3, 1), "float32")
    close(run("Mul", a, b), a * b)
    assert run("Add", a, np.array(1.0, np.float32)).shape == ()


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint16"])
def test_div_integers_truncate(dtype):
    signed = dtype[0] == "i"
    a = np.array([7, -7, 7, -7, 0, 6, 5] if signed else [7, 9, 0, 255, 6, 5, 1], dtype)
    b = np.array([2, 2, -2, -2, 3, 3, 0] if signed else [2, 3, 5, 16, 3, 7, 0], dtype)
    q = [3, -3, -3, 3, 0, 2, 0] if signed else [3, 3, 0, 15, 2, 0, 0]  # x / 0 gives 0
    np.testing.assert_array_equal(run("Div", a, b), np.array(q, dtype))
    np.testing.assert_array_equal(run("Div", a, b, fold=True), np.array(q, dtype))


def test_div_int_min_by_minus_one_wraps():
    a = np.array([-128, -128], np.int8)
    np.testing.assert_array_equal(run("Div", a, np.array([-1, 1], np.int8)), [-128, -128])


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_div_floats(dtype):
    a = rand((2, 3), dtype)
    b = rand((3,), dtype, 0.5, 2)
    close(run("Div", a, b), (a.astype(np.float64) / b.astype(np.float64)).astype(_np(dtype)),
          dtype)
    z = run("Div", np.array([1, -1, 0], dtype=_np(dtype)), np.zeros(3, _np(dtype)))
    assert z[0] == np.inf and z[1] == -np.inf and np.isnan(z[2])


def test_mod_integers():
    a = np.array([5, -5, 5, -5, 0, 7], np.int32)
    b = np.array([3, 3, -3, -3, 3, 0], np.int32)
    np.testing.assert_array_equal(run("Mod", a, b), [2, 1, -1, -2, 0, 0])        # sign of b
    np.testing.assert_array_equal(run("Mod", a, b, fmod=1), [2, -2, 2, -2, 0, 0])  # sign of a
    u = np.array([250, 7], np.uint8)
    np.testing.assert_array_equal(run("Mod", u, np.array([7, 250], np.uint8)), [5, 7])


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_mod_floats(dtype):
    inf = np.inf
    a = np.array([5.5, -5.5, 5.5, -5.5, 0.0, -0.0, 3.0, -3.0, inf, 1.0], dtype)
    b = np.array([2.0, 2.0, -2.0, -2.0, -2.0, 2.0, inf, inf, 2.0, 0.0], dtype)
    floor = run("Mod", a, b)
    np.testing.assert_array_equal(floor[:4], np.array([1.5, 0.5, -0.5, -1.5], dtype))
    assert np.signbit(floor[4]) and not np.signbit(floor[5])  # zero takes b's sign
    assert floor[6] == 3.0 and floor[7] == inf                 # y = inf: x, or y if signs differ
    assert np.isnan(floor[8]) and np.isnan(floor[9])
    trunc = run("Mod", a, b, fmod=1)
    np.testing.assert_array_equal(trunc[:4], np.array([1.5, -1.5, 1.5, -1.5], dtype))
    assert trunc[6] == 3.0 and trunc[7] == -3.0 and np.isnan(trunc[8]) and np.isnan(trunc[9])
    np.testing.assert_array_equal(run("Mod", a, b, fold=True), floor)


def test_pow_floats():
    x = rand((2, 5), "float32", 0.1, 3)
    y = rand((5,), "float32", -2, 2, seed=3)
    close(run("Pow", x, y), np.power(x.astype(np.float64), y).astype(np.float32))
    neg = run("Pow", np.array([-2.0, -2.0, 0.0], np.float32), np.array([3, 0.5, -1], np.float32))
    assert neg[0] == -8 and np.isnan(neg[1]) and neg[2] == np.inf


@pytest.mark.parametrize("xd,yd", [("float32", "int64"), ("float16", "float32"),
                                   ("float64", "int8"), ("bfloat16", "float32"),
                                   ("float32", "uint8")])
def test_pow_mixed_dtypes(xd, yd):
    x = rand((6,), xd, 0.5, 2)
    y = np.array([0, 1, 2, 3, 4, 5], dtype=_np(yd))
    want = np.power(x.astype(np.float64), y.astype(np.float64)).astype(_np(xd))
    close(run("Pow", x, y), want, xd)


def test_pow_int_base_float_exponent():
    x = np.array([2, 9, -8, 10], np.int32)
    y = np.array([0.5, 0.5, 2.0, 1.5], np.float32)
    np.testing.assert_array_equal(run("Pow", x, y), [1, 3, 64, 31])  # truncated


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_pow_integers(dtype):
    x = np.array([2, -3, 7, 0, 1, -1, -1, 2, 5, 0, -1], dtype)
    y = np.array([10, 3, 0, 0, 99, 1001, 1000, -1, -2, 5, -3], np.int64)
    want = [1024, -27, 1, 1, 1, -1, 1, 0, 0, 0, -1]
    np.testing.assert_array_equal(run("Pow", x, y), np.array(want, dtype))
    np.testing.assert_array_equal(run("Pow", x, y, fold=True), np.array(want, dtype))
    big = run("Pow", np.array([3, -2], dtype), np.array([19, 31], np.int64))
    np.testing.assert_array_equal(big, np.array([3**19, (-2)**31], dtype=np.int64).astype(dtype))


def test_pow_constant_exponent():
    g = GraphBuilder("p")
    x = g.input("x", (7,), "float32")
    g.output(g.op("Pow", x, g.constant(np.array(2.0, np.float32))),
             g.op("Pow", x, g.constant(np.array(3, np.int32))))
    xs = np.array([-1.5, 0, -0.0, 3, np.inf, np.nan, 1e20], np.float32)
    sq, cube = dlc.compile(g.build()).run(xs)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(sq, xs * xs)
        np.testing.assert_allclose(cube, (xs.astype(np.float64) ** 3).astype(np.float32),
                                   rtol=1e-6)
    gi = GraphBuilder("pi")
    xi = gi.input("x", (3,), "int64")
    gi.output(gi.op("Pow", xi, gi.constant(np.array([3], np.int64))))
    (r,) = dlc.compile(gi.build()).run(np.array([-4, 5, 1 << 20], np.int64))
    np.testing.assert_array_equal(r, [-64, 125, 1 << 60])


def test_arith_must_fail():
    f32, i32 = np.zeros((2, 3), np.float32), np.zeros((2, 3), np.int32)
    with pytest.raises(dlc.ModelError, match="one dtype"):
        run("Add", f32, i32)
    with pytest.raises(dlc.ModelError, match="cannot be broadcast"):
        run("Mul", f32, np.zeros((4,), np.float32))
    with pytest.raises(dlc.ModelError, match="dtype bool"):
        run("Add", np.zeros(2, bool), np.zeros(2, bool))
    with pytest.raises(dlc.ModelError, match="fmod must be 0 or 1"):
        run("Mod", i32, i32, fmod=2)
    with pytest.raises(dlc.ModelError, match="dtype int8"):
        run("Pow", np.zeros(2, np.int8), np.zeros(2, np.int8))
    with pytest.raises(dlc.ModelError, match="takes 2 inputs"):
        run("Sub", f32)


# -- variadic -------------------------------------------------------------------------------
def test_max_min_variadic_broadcast():
    a, b, c = rand((2, 1, 3), "float32"), rand((4, 1), "float32", seed=1), \
        rand((3,), "float32", seed=2)
    close(run("Max", a, b, c), np.maximum(np.maximum(a, b), c))
    close(run("Min", a, b, c), np.minimum(np.minimum(a, b), c))
    close(run("Max", a), a)
    nan = np.array([np.nan, 1.0], np.float32)
    assert np.isnan(run("Max", nan, np.array([5.0, 0.0], np.float32))[0])
    assert np.isnan(run("Min", np.array([5.0, 0.0], np.float32), nan)[0])
    u = np.array([0, 255, 7], np.uint8)
    np.testing.assert_array_equal(run("Max", u, np.array([3, 1, 9], np.uint8)), [3, 255, 9])
    i = np.array([-5, 3], np.int32)
    np.testing.assert_array_equal(run("Min", i, np.array(0, np.int32)), [-5, 0])


def test_int64_scalar_input():
    np.testing.assert_array_equal(run("Add", np.array([1, 5], np.int64), np.array(3, np.int64)),
                                  [4, 8])


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
def test_sum_mean(dtype):
    a, b, c = rand((3, 4), dtype), rand((4,), dtype, seed=1), rand((3, 1), dtype, seed=2)
    s = a.astype(np.float64) + b + c
    close(run("Sum", a, b, c), s.astype(dtype), dtype)
    close(run("Mean", a, b, c), (s / 3).astype(dtype), dtype)
    close(run("Mean", a), a, dtype)
    with pytest.raises(dlc.ModelError, match="dtype int32"):
        run("Sum", np.zeros(2, np.int32), np.zeros(2, np.int32))


# -- Clip -----------------------------------------------------------------------------------
def test_clip():
    x = np.array([-3.0, -0.5, 0.25, 4.0, np.nan], np.float32)
    lo, hi = np.array(-1.0, np.float32), np.array([1.0], np.float32)  # [1] is accepted
    np.testing.assert_array_equal(run("Clip", x, lo, hi), [-1, -0.5, 0.25, 1, np.nan])
    np.testing.assert_array_equal(run("Clip", x, None, hi), [-3, -0.5, 0.25, 1, np.nan])
    np.testing.assert_array_equal(run("Clip", x, lo), [-1, -0.5, 0.25, 4, np.nan])
    np.testing.assert_array_equal(run("Clip", x), x)
    np.testing.assert_array_equal(run("Clip", x, np.array(2.0, np.float32), lo)[:4], [-1] * 4)
    i = np.array([-100, 5, 100], np.int8)
    np.testing.assert_array_equal(run("Clip", i, np.array(-7, np.int8), np.array(7, np.int8)),
                                  [-7, 5, 7])
    np.testing.assert_array_equal(run("Clip", x, lo, hi, fold=True), run("Clip", x, lo, hi))
    with pytest.raises(dlc.ModelError, match="min must be a scalar"):
        run("Clip", x, np.zeros(2, np.float32))
    with pytest.raises(dlc.ModelError, match="one dtype"):
        run("Clip", x, np.array(0, np.float64))


# -- unary math -------------------------------------------------------------------------------
UNARY = {
    "Exp": np.exp, "Log": np.log, "Sqrt": np.sqrt, "Floor": np.floor, "Ceil": np.ceil,
    "Round": np.round, "Erf": np.vectorize(math.erf), "Sin": np.sin, "Cos": np.cos,
    "Tan": np.tan, "Asin": np.arcsin, "Acos": np.arccos, "Atan": np.arctan,
    "Sinh": np.sinh, "Cosh": np.cosh, "Asinh": np.arcsinh, "Acosh": np.arccosh,
    "Atanh": np.arctanh, "Tanh": np.tanh, "Sigmoid": lambda v: 1 / (1 + np.exp(-v)),
    "Reciprocal": lambda v: 1 / v, "Abs": np.abs, "Neg": np.negative,
}


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_unary_math(dtype):
    x = np.concatenate([rand((3, 5), dtype, -2.5, 2.5).ravel(),
                        np.array([0.5, -0.5, 1.5, 2.5, -2.5, 0.0], _np(dtype))]).reshape(3, 7)
    outs = run_many(x, [(op, {}) for op in UNARY])
    x64 = x.astype(np.float64)
    for (op, fn), got in zip(UNARY.items(), outs):
        with np.errstate(all="ignore"):
            want = fn(x64).astype(_np(dtype))
        assert got.dtype == _np(dtype), op
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64),
                                   rtol=TOL[dtype] * 4, atol=TOL[dtype], err_msg=op)


def test_round_half_to_even_and_specials():
    x = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 2.3, -0.0, np.inf, np.nan], np.float32)
    got = run("Round", x)
    np.testing.assert_array_equal(got, [0, 2, 2, -0.0, -2, 2, -0.0, np.inf, np.nan])
    assert np.signbit(got[3]) and np.signbit(got[6])


def test_neg_flips_sign_of_zero_and_wraps_ints():
    got = run("Neg", np.array([0.0, -0.0, np.inf], np.float32))
    assert np.signbit(got[0]) and not np.signbit(got[1]) and got[2] == -np.inf
    np.testing.assert_array_equal(run("Neg", np.array([-128, 5], np.int8)), [-128, -5])
    with pytest.raises(dlc.ModelError, match="dtype uint8"):
        run("Neg", np.zeros(2, np.uint8))


def test_abs_and_sign_integers():
    i = np.array([-128, -3, 0, 9], np.int8)
    np.testing.assert_array_equal(run("Abs", i), [-128, 3, 0, 9])
    np.testing.assert_array_equal(run("Sign", i), [-1, -1, 0, 1])
    u = np.array([0, 7, 255], np.uint8)
    np.testing.assert_array_equal(run("Abs", u), u)
    np.testing.assert_array_equal(run("Sign", u), [0, 1, 1])


def test_sign_floats():
    x = np.array([-2.5, -0.0, 0.0, 3.0, np.nan, -np.inf], np.float32)
    got = run("Sign", x)
    np.testing.assert_array_equal(got, [-1, 0, 0, 1, np.nan, -1])
    assert not np.signbit(got[1])
    np.testing.assert_array_equal(run("Sign", x, fold=True), got)


def test_log_sqrt_specials():
    x = np.array([0.0, -1.0, np.inf, 1.0], np.float32)
    log, sqrt = run_many(x, [("Log", {}), ("Sqrt", {})])
    assert log[0] == -np.inf and np.isnan(log[1]) and log[2] == np.inf and log[3] == 0
    assert sqrt[0] == 0 and np.isnan(sqrt[1]) and sqrt[2] == np.inf


def test_unary_must_fail():
    with pytest.raises(dlc.ModelError, match="dtype int32"):
        run("Sqrt", np.zeros(2, np.int32))
    with pytest.raises(dlc.ModelError, match="dtype uint8"):
        run("Relu", np.zeros(2, np.uint8))
    with pytest.raises(dlc.ModelError, match="takes 1 inputs"):
        run("Exp", np.zeros(2, np.float32), np.zeros(2, np.float32))


def test_identity_any_dtype():
    for a in (np.array([True, False]), np.arange(6, dtype=np.uint16).reshape(2, 3),
              np.array(1.5, np.float64)):
        got = run("Identity", a)
        assert got.dtype == a.dtype
        np.testing.assert_array_equal(got, a)


# -- activations ------------------------------------------------------------------------------
def _softplus(v):
    return np.logaddexp(0, v)


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


ACTIVATIONS = [
    ("Relu", {}, lambda v: np.maximum(v, 0)),
    ("LeakyRelu", {}, lambda v: np.where(v < 0, np.float32(0.01) * v, v)),
    ("LeakyRelu", {"alpha": 0.3}, lambda v: np.where(v < 0, 0.3 * v, v)),
    ("Elu", {"alpha": 0.7}, lambda v: np.where(v > 0, v, 0.7 * (np.exp(v) - 1))),
    ("Selu", {}, lambda v: np.float32(1.0507009873554805) * np.where(
        v > 0, v, np.float32(1.6732632423543772) * (np.exp(v) - 1))),
    ("Selu", {"alpha": 2.0, "gamma": 3.0}, lambda v: 3 * np.where(v > 0, v,
                                                                    2 * (np.exp(v) - 1))),
    ("Celu", {"alpha": 2.0}, lambda v: np.maximum(0, v) + np.minimum(0, 2 * (np.exp(v / 2)
                                                                             - 1))),
    ("HardSigmoid", {}, lambda v: np.clip(np.float32(0.2) * v + 0.5, 0, 1)),
    ("HardSigmoid", {"alpha": 0.5, "beta": 0.1}, lambda v: np.clip(0.5 * v + 0.1, 0, 1)),
    ("HardSwish", {}, lambda v: v * np.clip(v / 6 + 0.5, 0, 1)),
    ("Softplus", {}, _softplus),
    ("Softsign", {}, lambda v: v / (1 + np.abs(v))),
    ("Mish", {}, lambda v: v * np.tanh(_softplus(v))),
    ("Gelu", {}, lambda v: 0.5 * v * (1 + np.vectorize(math.erf)(v / math.sqrt(2)))),
    ("Gelu", {"approximate": "tanh"}, lambda v: 0.5 * v * (1 + np.tanh(
        math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))),
    ("ThresholdedRelu", {}, lambda v: np.where(v > 1, v, 0)),
    ("ThresholdedRelu", {"alpha": -0.5}, lambda v: np.where(v > -0.5, v, 0)),
    ("Shrink", {}, lambda v: np.where(v < -0.5, v, np.where(v > 0.5, v, 0))),
    ("Shrink", {"bias": 1.5, "lambd": 1.0}, lambda v: np.where(
        v < -1, v + 1.5, np.where(v > 1, v - 1.5, 0))),
    ("Swish", {}, lambda v: v * _sigmoid(v)),
    ("Swish", {"alpha": 1.702}, lambda v: v * _sigmoid(1.702 * v)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_activations(dtype):
    x = np.concatenate([rand((30,), dtype, -6, 6),
                        np.array([0.0, -0.0, 1.0, -1.0, 0.5, -0.5], _np(dtype))]).reshape(4, 9)
    cases = [c for c in ACTIVATIONS if dtype != "bfloat16" or c[0] != "Shrink"]  # spec
    outs = run_many(x, [(op, attrs) for op, attrs, _ in cases])
    x64 = x.astype(np.float64)
    for (op, attrs, fn), got in zip(cases, outs):
        assert got.dtype == _np(dtype), op
        want = fn(x64)
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=TOL[dtype] * 4,
                                   atol=TOL[dtype] * 2, err_msg=f"{op} {attrs}")


def test_activations_at_extremes():
    x = np.array([-np.inf, -100.0, 100.0, np.inf, np.nan], np.float32)
    specs = [("Softplus", {}), ("Mish", {}), ("Sigmoid", {}), ("Elu", {}), ("Gelu", {}),
             ("Swish", {}), ("Relu", {})]
    softplus, mish, sigmoid, elu, gelu, swish, relu = run_many(x, specs)
    np.testing.assert_allclose(softplus, [0, 3.72e-44, 100, np.inf, np.nan], rtol=0.02,
                               atol=0)  # no overflow, subnormal result kept
    np.testing.assert_allclose(mish[1:3], [-3.72e-42, 100], rtol=0.02)
    np.testing.assert_allclose(sigmoid, [0, 3.72e-44, 1, 1, np.nan], rtol=0.02, atol=0)
    np.testing.assert_array_equal(elu, [-1, -1, 100, np.inf, np.nan])
    np.testing.assert_array_equal(gelu[1:4], [0, 100, np.inf])
    np.testing.assert_allclose(swish[1:3], [-3.72e-42, 100], rtol=0.02)
    np.testing.assert_array_equal(relu, [0, 0, 100, np.inf, np.nan])


def test_shrink_and_relu_integers():
    x = np.array([-5, -1, 0, 1, 5], np.int32)
    np.testing.assert_array_equal(run("Shrink", x, bias=1.5, lambd=1.0), [-3, 0, 0, 0, 3])
    np.testing.assert_array_equal(run("Shrink", x, fold=True, bias=1.5, lambd=1.0),
                                  [-3, 0, 0, 0, 3])
    np.testing.assert_array_equal(run("Relu", np.array([-3, 4], np.int8)), [0, 4])


def test_prelu_broadcasts_slope():
    x = rand((2, 3, 2, 2), "float32")
    slope = np.array([0.1, 0.2, 0.3], np.float32).reshape(3, 1, 1)
    close(run("PRelu", x, slope), np.where(x < 0, slope * x, x))
    xi = np.array([[-4, 4], [-2, 2]], np.int32)
    np.testing.assert_array_equal(run("PRelu", xi, np.array([3, 5], np.int32)),
                                  [[-12, 4], [-6, 2]])
    with pytest.raises(dlc.ModelError, match="does not broadcast to X's shape"):
        run("PRelu", np.zeros((3,), np.float32), np.zeros((2, 3), np.float32))


def test_swiglu():
    a, b = rand((2, 6), "float32"), rand((2, 6), "float32", seed=4)
    close(run("SwiGLU", a, b), a * _sigmoid(a) * b)
    close(run("SwiGLU", a, b, alpha=2.0), a * _sigmoid(2 * a) * b)
    with pytest.raises(dlc.ModelError, match="same shape"):
        run("SwiGLU", a, np.zeros((6,), np.float32))


def test_reference_matches_compiled_for_activations():
    x = rand((3, 4), "float32", -4, 4)
    for op, attrs, _ in ACTIVATIONS[::3]:
        np.testing.assert_allclose(run(op, x, fold=True, **attrs), run(op, x, **attrs),
                                   rtol=1e-5, atol=1e-6, err_msg=op)


def test_activation_must_fail():
    x = np.zeros(3, np.float32)
    with pytest.raises(dlc.ModelError, match="approximate must be one of"):
        run("Gelu", x, approximate="fast")
    with pytest.raises(dlc.ModelError, match="alpha must not be 0"):
        run("Celu", x, alpha=0.0)
    with pytest.raises(dlc.ModelError, match="unknown attribute 'beta'"):
        run("Elu", x, beta=1.0)
    with pytest.raises(dlc.ModelError, match="alpha' must be a float"):
        run("LeakyRelu", x, alpha="big")
    with pytest.raises(dlc.ModelError, match="dtype int32"):
        run("Gelu", np.zeros(3, np.int32))


# -- ONNX converters --------------------------------------------------------------------------
def onnx_model(node, inputs, outputs, opset):
    from onnx import helper

    graph = helper.make_graph([node], "g", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("elem,dtype", [(1, "float32"), (11, "float64"), (10, "float16")])
def test_onnx_clip_v6_attributes(elem, dtype):
    from onnx import helper

    x = np.array([-5.0, -0.5, 0.5, 5.0, 6e4], dtype)
    for attrs, want in (({"min": -1.0, "max": 1.0}, [-1, -0.5, 0.5, 1, 1]),
                        ({"min": 0.0}, [0, 0, 0.5, 5, 6e4]), ({}, x)):
        node = helper.make_node("Clip", ["x"], ["y"], **attrs)
        m = onnx_model(node, [helper.make_tensor_value_info("x", elem, [5])],
                       [helper.make_tensor_value_info("y", elem, [5])], opset=10)
        (y,) = dlc.compile(m).run(x)
        np.testing.assert_array_equal(y, np.array(want, dtype))


def test_onnx_clip_v11_optional_inputs():
    from onnx import helper

    node = helper.make_node("Clip", ["x", "", "hi"], ["y"])
    m = onnx_model(node, [helper.make_tensor_value_info("x", 6, [3]),
                          helper.make_tensor_value_info("hi", 6, [])],
                   [helper.make_tensor_value_info("y", 6, [3])], opset=13)
    (y,) = dlc.compile(m).run(np.array([-9, 2, 9], np.int32), np.array(3, np.int32))
    np.testing.assert_array_equal(y, [-9, 2, 3])


def test_onnx_activation_defaults_from_spec():
    from onnx import helper

    x = np.array([-2.0, 3.0], np.float32)
    for op, opset, want in (("LeakyRelu", 16, [-0.02, 3]), ("Celu", 12, [np.expm1(-2), 3]),
                            ("HardSigmoid", 22, [0.1, 1]), ("Gelu", 20, None)):
        node = helper.make_node(op, ["x"], ["y"])
        m = onnx_model(node, [helper.make_tensor_value_info("x", 1, [2])],
                       [helper.make_tensor_value_info("y", 1, [2])], opset)
        (y,) = dlc.compile(m).run(x)
        if want is not None:
            np.testing.assert_allclose(y, want, rtol=1e-6, err_msg=op)


def test_converters_cover_every_opset():
    from dlc.frontends.onnx import registry
    from dlc.frontends.onnx.converters.math import _SINCE

    for op, since in dict(_SINCE, Clip=6).items():
        for opset in range(max(since, 7), 29):
            assert registry.find(op, opset) is not None, (op, opset)
        older = registry.find(op, since - 1)
        if older is not None:  # only a dedicated converter for the old semantics
            assert older is not registry.find(op, since), op
            assert registry.find(op, 1) is not None, op


# -- ONNX opsets before 7: consumed_inputs, broadcast/axis, per-channel PRelu ---------------
def _onnx(op, shapes, opset, dtype=None, out_dtype=None, **attrs):
    """A one-node ONNX model over inputs a, b, ... of ``shapes`` (float32 by default)."""
    from onnx import TensorProto, helper

    dtype = dtype or TensorProto.FLOAT
    names = "abcd"[:len(shapes)]
    node = helper.make_node(op, list(names), ["y"], **attrs)
    graph = helper.make_graph(
        [node], "legacy", [helper.make_tensor_value_info(n, dtype, s)
                           for n, s in zip(names, shapes)],
        [helper.make_tensor_value_info("y", out_dtype or dtype, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("op, fn", [("Add", np.add), ("Sub", np.subtract),
                                    ("Mul", np.multiply), ("Div", np.divide)])
def test_onnx_v6_broadcast_along_axis(op, fn):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4) + 1
    b = np.array([1.0, 2.0, 4.0], np.float32)
    model = _onnx(op, [a.shape, b.shape], 6, broadcast=1, axis=1)
    np.testing.assert_allclose(dlc.compile(model).run(a, b)[0], fn(a, b[:, None]))


def test_onnx_v1_suffix_broadcast_and_consumed_inputs():
    a = np.ones((2, 3), np.float32)
    b = np.array([1.0, 2.0, 3.0], np.float32)
    model = _onnx("Add", [a.shape, b.shape], 1, broadcast=1, consumed_inputs=[0, 0])
    np.testing.assert_allclose(dlc.compile(model).run(a, b)[0], a + b)
    relu = _onnx("Relu", [(3,)], 1, consumed_inputs=[0])
    np.testing.assert_allclose(dlc.compile(relu).run(b - 2)[0], np.maximum(b - 2, 0))


def test_onnx_v6_comparison_broadcast_and_pow():
    from onnx import TensorProto

    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([1.0, 4.0], np.float32)
    model = _onnx("Less", [a.shape, b.shape], 1, out_dtype=TensorProto.BOOL, broadcast=1,
                  axis=0)
    np.testing.assert_array_equal(dlc.compile(model).run(a, b)[0], a < b[:, None])
    pw = _onnx("Pow", [a.shape, a.shape], 6)
    np.testing.assert_allclose(dlc.compile(pw).run(a, a)[0], a ** a, rtol=1e-6)


def test_onnx_v6_prelu_slope_per_channel():
    x = np.linspace(-2, 2, 24, dtype=np.float32).reshape(2, 3, 4)
    slope = np.array([0.1, 0.2, 0.3], np.float32)
    got = dlc.compile(_onnx("PRelu", [x.shape, slope.shape], 6)).run(x, slope)[0]
    np.testing.assert_allclose(got, np.where(x < 0, x * slope[:, None], x))


def test_onnx_v1_clip_without_bounds_and_with_one():
    x = np.array([-np.inf, -3, 0, 5, np.inf], np.float32)
    np.testing.assert_array_equal(dlc.compile(_onnx("Clip", [x.shape], 1)).run(x)[0], x)
    got = dlc.compile(_onnx("Clip", [x.shape], 1, min=-1.0)).run(x)[0]
    np.testing.assert_array_equal(got, np.maximum(x, -1))


def test_onnx_legacy_broadcast_must_fail():
    with pytest.raises(dlc.ModelError, match="broadcast=0"):
        dlc.compile(_onnx("Add", [(2, 3), (3,)], 6))
    with pytest.raises(dlc.ModelError, match="axis=2"):
        dlc.compile(_onnx("Add", [(2, 3), (3,)], 6, broadcast=1, axis=2))
