"""Tests of dlc/codegen/llvm/mathlib.py: every math function, dtype and vector width, run as
native code and compared with NumPy (float32 within 1e-6, float64 within 1e-12 relative-or-
absolute, float16/bfloat16 within one unit in the last place)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from llvmlite import ir
from numpy import linspace, logspace

from dlc.codegen.llvm.mathlib import ARITY, emit_math
from dlc.codegen.llvm.mathlib_f32 import KERNELS
from dlc.errors import CodegenError
from dlc.te.intrinsics import EXP_NONPOSITIVE_MIN, np_exp_nonpositive

F32_TOL = 1e-6
F64_TOL = 1e-12
INLINE_F32 = sorted(KERNELS)  # exp, log, tanh, sigmoid, erf, and their relatives
REQUIRED_INLINE = ["exp", "log", "tanh", "sigmoid", "erf"]
TINY32 = float(np.finfo(np.float32).tiny)

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x):
    x = x.astype(np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


_NUMPY = {
    "abs": np.abs, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan,
    "atan2": np.arctan2, "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh,
    "pow": np.power, "round": np.round, "rsqrt": lambda x: 1 / np.sqrt(x),
    "exp_nonpositive": np_exp_nonpositive,
}


def reference(name: str, *args: np.ndarray) -> np.ndarray:
    """NumPy's answer in the dtype of args (erf and sigmoid: float64 math, then rounded)."""
    dtype = args[0].dtype
    with np.errstate(all="ignore"):
        if name == "erf":
            return _erf(args[0].astype(np.float64)).astype(dtype)
        if name == "sigmoid":
            return _sigmoid(args[0]).astype(dtype)
        return (_NUMPY.get(name) or getattr(np, name))(*args).astype(dtype)


def errors(ours, ref, relative=False):
    """Per-element |ours - ref| / max(1, |ref|) (or / |ref| for normal ref when relative),
    after checking that NaN and inf appear in the same places."""
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref), err_msg="NaN mismatch")
    inf = np.isinf(ref)
    np.testing.assert_array_equal(ours[inf], ref[inf], err_msg="inf mismatch")
    finite = np.isfinite(ref)
    ref = np.where(finite, ref, 0.0)
    with np.errstate(invalid="ignore"):
        diff = np.where(finite, np.abs(ours - ref), 0.0)  # inf where ours is inf or NaN
    scale = np.maximum(np.abs(ref), TINY32) if relative else np.maximum(1.0, np.abs(ref))
    return np.where(np.isnan(diff), np.inf, diff / scale)


def assert_close(x, ours, ref, tol, relative=False):
    err = errors(ours, ref, relative)
    worst = int(np.argmax(err))
    assert err[worst] <= tol, (f"error {err[worst]:.3g} > {tol:g} at x={x.ravel()[worst]!r}: "
                               f"got {ours.ravel()[worst]!r}, numpy {ref.ravel()[worst]!r}")


def logspace_both(lo, hi, n):
    pos = np.logspace(lo, hi, n // 2)
    return np.concatenate([pos, -pos])


def subnormals(n):
    return np.linspace(1e-45, 1.17e-38, n)


def sweep(*parts):
    """One array of test inputs from several ranges."""
    return np.concatenate(parts)


# Dense sweeps over each function's useful float32 range (and special neighbourhoods).
SWEEPS = {
    "exp": linspace(-104, 89, 1_000_000),
    "exp2": linspace(-151, 129, 300_000),
    "exp_nonpositive": sweep(linspace(-90, 1, 1_000_000), -logspace(-38, 0, 50_000)),
    "expm1": sweep(linspace(-20, 89, 400_000), logspace_both(-30, 0, 200_000)),
    "log": sweep(logspace(-38, 38.5, 600_000), linspace(0.5, 2, 200_000), subnormals(50_000)),
    "log1p": sweep(linspace(-0.9999, 1, 300_000), logspace(-30, 38, 100_000),
                   -logspace(-30, -0.0001, 100_000)),
    "tanh": sweep(linspace(-20, 20, 1_000_000), logspace_both(-38, 0, 50_000)),
    "sigmoid": linspace(-100, 100, 1_000_000),
    "erf": sweep(linspace(-6, 6, 1_000_000), logspace_both(-38, 0, 50_000)),
    "sinh": sweep(linspace(-89.5, 89.5, 400_000), logspace_both(-38, 0, 50_000)),
    "cosh": linspace(-89.5, 89.5, 400_000),
    "sqrt": sweep(logspace(-38, 38, 100_000), subnormals(1000)),
    "sin": sweep(linspace(-100, 100, 200_000), logspace_both(-30, 6, 20_000)),
    "asin": linspace(-1, 1, 200_000),
    "atan": logspace_both(-30, 30, 200_000),
    "asinh": logspace_both(-30, 38, 200_000),
    "acosh": 1 + logspace(-7, 38, 200_000),
    "atanh": linspace(-0.99999, 0.99999, 200_000),
    "floor": linspace(-100, 100, 100_003),
}
for _alias, _of in [("log2", "log"), ("log10", "log"), ("rsqrt", "sqrt"), ("cos", "sin"),
                    ("tan", "sin"), ("acos", "asin"), ("abs", "floor"), ("ceil", "floor"),
                    ("round", "floor"), ("trunc", "floor")]:
    SWEEPS[_alias] = SWEEPS[_of]


def binary_inputs(name, dtype, n=100_000, seed=0):
    rng = np.random.default_rng(seed)
    if name == "pow":
        x = np.exp(rng.uniform(-10, 10, n))
        y = rng.uniform(-8, 8, n)
    else:
        x, y = rng.standard_normal(n) * 50, rng.standard_normal(n) * 5
    return x.astype(dtype), y.astype(dtype)


def unary_inputs(name, dtype):
    x = SWEEPS[name]
    return x.astype(dtype) if dtype != "float64" else x


SPECIALS = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e-40, TINY32, 1.0,
                     -1.0, 0.5, -0.5, 1.5, 2.5, -2.5, 88.72283, 89.0, -87.4, -103.97, -104.0,
                     3.4e38, -3.4e38, 1e-30, 7.0, -7.0])


# ---------------------------------------------------------------------------- float32

@pytest.mark.parametrize("name", INLINE_F32)
def test_inline_f32_accuracy(math_kernels, name):
    """|ours - numpy| <= 1e-6 * max(1, |numpy|), and 1e-6 relative wherever numpy's result
    is a normal number (so tiny results such as tanh(1e-30) are accurate too)."""
    x = np.concatenate([unary_inputs(name, "float32"), SPECIALS.astype(np.float32)])
    ours, ref = math_kernels.get(name, "float32")(x), reference(name, x)
    assert_close(x, ours, ref, F32_TOL)
    normal = np.abs(ref.astype(np.float64)) >= TINY32
    assert_close(x[normal], ours[normal], ref[normal], F32_TOL, relative=True)


@pytest.mark.parametrize("name", sorted(set(SWEEPS) - set(KERNELS)))
def test_other_unary_f32_accuracy(math_kernels, name):
    x = np.concatenate([unary_inputs(name, "float32"), SPECIALS.astype(np.float32)])
    assert_close(x, math_kernels.get(name, "float32")(x), reference(name, x), F32_TOL)


@pytest.mark.parametrize("name", ["pow", "atan2", "fmod", "fmin", "fmax"])
def test_binary_f32_accuracy(math_kernels, name):
    x, y = binary_inputs(name, np.float32)
    special = SPECIALS.astype(np.float32)
    x = np.concatenate([x, np.repeat(special, special.size)])
    y = np.concatenate([y, np.tile(special, special.size)])
    ours, ref = math_kernels.get(name, "float32")(x, y), reference(name, x, y)
    assert_close(x, ours, ref, 0.0 if name.startswith("fm") else F32_TOL)


F32_SPECIAL_CASES = [
    ("exp", -np.inf, 0.0), ("exp", np.inf, np.inf), ("exp", 88.72284, np.inf),
    ("exp", 89.0, np.inf), ("exp", -104.0, 0.0), ("exp", np.nan, np.nan), ("exp", 0.0, 1.0),
    ("exp", -0.0, 1.0),
    ("exp_nonpositive", -np.inf, 0.0), ("exp_nonpositive", np.nan, np.nan),
    ("exp_nonpositive", 0.0, 1.0), ("exp_nonpositive", -0.0, 1.0),
    ("exp_nonpositive", 5.0, 1.0), ("exp_nonpositive", np.inf, 1.0),
    ("exp_nonpositive", EXP_NONPOSITIVE_MIN - 1e-5, 0.0), ("exp_nonpositive", -100.0, 0.0),
    ("log", 0.0, -np.inf), ("log", -0.0, -np.inf), ("log", -1.0, np.nan),
    ("log", -np.inf, np.nan), ("log", np.inf, np.inf), ("log", np.nan, np.nan), ("log", 1.0, 0.0),
    ("tanh", np.inf, 1.0), ("tanh", -np.inf, -1.0), ("tanh", np.nan, np.nan),
    ("tanh", -0.0, -0.0), ("tanh", 0.0, 0.0), ("tanh", 1e-30, 1e-30), ("tanh", 10.0, 1.0),
    ("sigmoid", -np.inf, 0.0), ("sigmoid", np.inf, 1.0), ("sigmoid", np.nan, np.nan),
    ("sigmoid", 0.0, 0.5), ("sigmoid", -0.0, 0.5), ("sigmoid", 100.0, 1.0),
    ("erf", np.inf, 1.0), ("erf", -np.inf, -1.0), ("erf", np.nan, np.nan), ("erf", -0.0, -0.0),
    ("erf", 10.0, 1.0),
    ("exp2", 128.0, np.inf), ("exp2", -149.0, 2.0**-149), ("exp2", 3.0, 8.0),
    ("exp2", -np.inf, 0.0), ("expm1", -0.0, -0.0), ("expm1", -np.inf, -1.0),
    ("expm1", np.inf, np.inf),
    ("log2", 8.0, 3.0), ("log2", 0.0, -np.inf), ("log10", 0.0, -np.inf),
    ("log10", -2.0, np.nan), ("log1p", -1.0, -np.inf), ("log1p", -2.0, np.nan),
    ("log1p", -0.0, -0.0), ("log1p", np.inf, np.inf), ("log1p", 1e-30, 1e-30),
    ("sinh", -0.0, -0.0), ("sinh", 89.5, np.inf), ("sinh", -np.inf, -np.inf), ("cosh", 0.0, 1.0),
    ("cosh", -np.inf, np.inf), ("cosh", np.nan, np.nan),
]


@pytest.mark.parametrize("name, x, expected", F32_SPECIAL_CASES)
def test_f32_special_values(math_kernels, name, x, expected):
    """Special inputs give NumPy's answer exactly, the sign of zero included."""
    got = math_kernels.get(name, "float32")(np.full(16, x, np.float32))
    want = np.full(16, expected, np.float32)
    np.testing.assert_array_equal(got, want)
    if not np.isnan(expected):
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


def test_sigmoid_of_very_negative_x_is_tiny_not_zero(math_kernels):
    x = np.array([-80.0, -90.0, -100.0, -103.0], np.float32)
    ours, ref = math_kernels.get("sigmoid", "float32")(x), reference("sigmoid", x)
    assert np.all(ours > 0)
    assert np.abs(ours.astype(np.float64) - ref).max() <= 2.0**-149


def test_exp_subnormal_results_are_not_flushed(math_kernels):
    """exp rounds subnormal results (x in [-103.97, -87.34]) once, like NumPy: never 0
    where NumPy is not, and within two steps of 2**-149 of NumPy's value."""
    x = np.linspace(-104, -87.3, 300_000, dtype=np.float32)
    ours, ref = math_kernels.get("exp", "float32")(x), np.exp(x)
    np.testing.assert_array_equal(ours > 0, ref > 0)
    assert np.abs(ours.astype(np.float64) - ref).max() <= 2 * 2.0**-149


@pytest.mark.parametrize("name", ["round", "floor", "ceil", "trunc", "abs", "sqrt", "rsqrt"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_exact_functions(math_kernels, name, dtype):
    """Intrinsic-based functions match NumPy bit for bit (round: half to even)."""
    x = np.concatenate([SPECIALS, np.arange(-10, 10, 0.25), [2.0**23 + 1, 0.49999997]])
    x = x.astype(dtype)
    np.testing.assert_array_equal(math_kernels.get(name, dtype, 8)(x), reference(name, x))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fmin_fmax_ignore_nan_and_fmod_keeps_dividend_sign(math_kernels, dtype):
    a = np.array([np.nan, 1.0, np.nan, -5.0, 5.0, -0.0, 7.5], dtype)
    b = np.array([2.0, np.nan, np.nan, 3.0, -3.0, 1.0, 2.0], dtype)
    np.testing.assert_array_equal(math_kernels.get("fmin", dtype, 8)(a, b), [2, 1, np.nan, -5,
                                                                            -3, -0.0, 2])
    np.testing.assert_array_equal(math_kernels.get("fmax", dtype, 8)(a, b), [2, 1, np.nan, 3,
                                                                            5, 1, 7.5])
    got = math_kernels.get("fmod", dtype, 8)(a, b)
    np.testing.assert_array_equal(got, [np.nan, np.nan, np.nan, -2, 2, -0.0, 1.5])
    assert np.signbit(got[5])


@settings(max_examples=30, deadline=None)
@given(x=arrays(np.float32, st.integers(1, 100), elements=st.floats(width=32)))
@pytest.mark.parametrize("name", INLINE_F32)
def test_inline_f32_random_inputs(math_kernels, name, x):
    assert_close(x, math_kernels.get(name, "float32")(x), reference(name, x), F32_TOL)


@settings(max_examples=30, deadline=None)
@given(x=arrays(np.float32, 40, elements=st.floats(width=32)),
       y=arrays(np.float32, 40, elements=st.floats(width=32)))
@pytest.mark.parametrize("name", ["pow", "atan2", "fmod", "fmin", "fmax"])
def test_binary_f32_random_inputs(math_kernels, name, x, y):
    tol = 0.0 if name.startswith("fm") else F32_TOL
    assert_close(x, math_kernels.get(name, "float32")(x, y), reference(name, x, y), tol)


# ---------------------------------------------------------------------------- vector widths

def _width_inputs(name, dtype):
    rng = np.random.default_rng(1)
    x = np.concatenate([SPECIALS, rng.standard_normal(500) * 4, rng.uniform(-1, 1, 500)])
    if name == "acosh":
        x = np.abs(x) + 1
    x = x[: x.size // 112 * 112].astype(dtype)  # a multiple of every width
    return [x] if ARITY[name] == 1 else [x, x[::-1].copy()]


@pytest.mark.parametrize("name", sorted(ARITY))
def test_widths_agree_f32(math_kernels, name):
    """Scalar, <1 x float> and 4-, 7-, 8- and 16-lane kernels compute the same bits."""
    args = _width_inputs(name, np.float32)
    want = math_kernels.get(name, "float32", 16)(*args)
    for width, vector in [(1, False), (1, True), (4, None), (7, None), (8, None)]:
        got = math_kernels.get(name, "float32", width, vector=vector)(*args)
        np.testing.assert_array_equal(got, want, err_msg=f"width {width}")


def test_wide_vectors(math_kernels):
    args = _width_inputs("tanh", np.float32)
    want = math_kernels.get("tanh", "float32", 16)(*args)
    np.testing.assert_array_equal(math_kernels.get("tanh", "float32", 64)(*args), want)
    args = _width_inputs("sin", np.float32)
    want = math_kernels.get("sin", "float32", 16)(*args)
    np.testing.assert_array_equal(math_kernels.get("sin", "float32", 56)(*args), want)


# ---------------------------------------------------------------------------- float64

F64_SWEEPS = {
    "exp": linspace(-746, 710, 200_000),
    "exp2": linspace(-1076, 1025, 200_000),
    "expm1": sweep(linspace(-40, 710, 100_000), logspace_both(-300, 0, 100_000)),
    "log": sweep(logspace(-320, 308, 200_000), linspace(0.5, 2, 50_000)),
    "sigmoid": linspace(-800, 800, 200_000),
    "cosh": linspace(-711, 711, 100_000),
}
F64_SWEEPS["log2"] = F64_SWEEPS["log10"] = F64_SWEEPS["log"]
F64_SWEEPS["sinh"] = F64_SWEEPS["cosh"]


@pytest.mark.parametrize("name", sorted(ARITY))
def test_f64_accuracy(math_kernels, name):
    if ARITY[name] == 2:
        args = binary_inputs(name, np.float64)
    else:
        x = F64_SWEEPS.get(name, SWEEPS[name])
        args = [np.concatenate([x[::2], SPECIALS, [1e-310, -1e-310, 1.7e308]])]
    ours = math_kernels.get(name, "float64", 8)(*args)
    assert_close(args[0], ours, reference(name, *args), F64_TOL)
    # the scalar and an odd-width kernel agree with the 8-lane one
    for width in (1, 3):
        head = [a[:30_000] for a in args]
        np.testing.assert_array_equal(math_kernels.get(name, "float64", width)(*head),
                                      ours[:30_000])


# ---------------------------------------------------------------------------- 16-bit floats

def _narrow_inputs(name, np_dtype):
    rng = np.random.default_rng(2)
    if ARITY[name] == 2:
        return [a[:20_000].astype(np.float32).astype(np_dtype)
                for a in binary_inputs(name, np.float32, 20_000)]
    x = np.concatenate([SWEEPS[name][::37], SPECIALS, rng.standard_normal(2000)])
    with np.errstate(over="ignore"):  # large inputs become inf
        return [x.astype(np.float32).astype(np_dtype)]


def assert_within_ulp(x, ours, ref, mantissa_bits, smallest):
    """|ours - ref| <= one unit in the last place of ref (float16: 10 bits, bfloat16: 7)."""
    ours, ref = ours.astype(np.float64), ref.astype(np.float64)
    errors(ours, ref)  # NaN and inf in the same places
    ulp = np.maximum(np.abs(ref) * 2.0**-mantissa_bits, smallest)
    with np.errstate(invalid="ignore"):
        bad = np.nonzero(np.isfinite(ref) & (np.abs(ours - ref) > ulp))[0]
    assert bad.size == 0, f"x={x[bad[0]]!r}: got {ours[bad[0]]}, want {ref[bad[0]]}"


@pytest.mark.parametrize("name", sorted(ARITY))
def test_float16(math_kernels, name):
    """float16 is computed in float32 and rounded: NumPy does the same."""
    args = _narrow_inputs(name, np.float16)
    ours = math_kernels.get(name, "float16", 8)(*args)
    with np.errstate(over="ignore"):
        ref = reference(name, *[a.astype(np.float32) for a in args]).astype(np.float16)
    assert_within_ulp(args[0], ours, ref, 10, 2.0**-24)


@pytest.mark.parametrize("name", ["exp", "log", "tanh", "sigmoid", "erf", "sqrt", "sin", "pow",
                                  "round", "fmax"])
def test_bfloat16(math_kernels, name):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    args = _narrow_inputs(name, ml_dtypes.bfloat16)
    ours = math_kernels.get(name, "bfloat16", 8)(*args)
    ref = reference(name, *[a.astype(np.float32) for a in args]).astype(ml_dtypes.bfloat16)
    assert_within_ulp(args[0].astype(np.float32), ours, ref, 7, 2.0**-133)


def test_bfloat16_rounds_like_ml_dtypes(math_kernels):
    """Rounding float32 results to bfloat16 is to nearest even, keeps subnormals and NaN:
    sqrt (correctly rounded in float32) then matches ml_dtypes bit for bit."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(0, 4, 20_000), np.logspace(-45, 38, 20_000), SPECIALS])
    x = x.astype(np.float32).astype(ml_dtypes.bfloat16)
    ours = math_kernels.get("sqrt", "bfloat16", 8)(x)
    with np.errstate(invalid="ignore"):
        want = np.sqrt(x.astype(np.float32)).astype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(ours.view(np.uint16)[~np.isnan(want)],
                                  want.view(np.uint16)[~np.isnan(want)])
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(want))
    tiny = math_kernels.get("abs", "bfloat16", 8)(np.array([1e-40, -3e-39], ml_dtypes.bfloat16))
    assert np.all(tiny > 0)


# ---------------------------------------------------------------------------- generated code

@pytest.mark.parametrize("name", INLINE_F32)
def test_inline_kernels_vectorize_without_calls(math_kernels, name):
    """Width-16 float32 kernels for AVX-512 are straight packed code: no call at all."""
    asm = math_kernels.assembly(name, "float32", 16, cpu="znver4")
    assert not re.search(r"\bcall", asm)
    assert re.search(r"\bvfmadd\w*ps\s+%[yz]mm", asm)


@pytest.mark.parametrize("name", REQUIRED_INLINE)
def test_inline_kernels_need_neither_fma_nor_sse41(math_kernels, name):
    """On baseline x86-64 (SSE2, no FMA) the kernels still make no call and stay accurate."""
    assert not re.search(r"\bcall", math_kernels.assembly(name, "float32", 8, cpu="x86-64"))
    x = np.concatenate([unary_inputs(name, "float32")[::4], SPECIALS.astype(np.float32)])
    ours = math_kernels.get(name, "float32", 8, cpu="x86-64")(x)
    assert_close(x, ours, reference(name, x), F32_TOL)


def _emit_into_module(names, dtype="float32", lanes=8):
    module = ir.Module()
    elem = {"float32": ir.FloatType(), "float64": ir.DoubleType()}[dtype]
    ty = ir.VectorType(elem, lanes)
    fn = ir.Function(module, ir.FunctionType(ty, [ty]), name="g")
    builder = ir.IRBuilder(fn.append_basic_block())
    value = fn.args[0]
    for name in names:
        value = emit_math(builder, name, [value] * ARITY[name], dtype)
    builder.ret(value)
    return str(module)


def test_inline_kernels_use_no_libm_and_no_fast_math():
    text = _emit_into_module(INLINE_F32)
    called = set(re.findall(r'call [^@]*@"?([\w.]+)', text))
    assert {c.rsplit(".", 1)[0] for c in called} <= {"llvm.fmuladd", "llvm.fabs", "llvm.copysign"}
    assert not re.search(r"\b(fast|nnan|ninf|nsz|arcp|afn|reassoc)\b", text)


def test_libm_functions_are_declared_once():
    text = _emit_into_module(["sin", "sin", "pow", "cos", "pow"], "float64", 4)
    for fname in ("sin", "pow", "cos"):
        assert len(re.findall(rf'declare double @"?{fname}"?\(', text)) == 1


# ---------------------------------------------------------------------------- errors

def _builder():
    module = ir.Module()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ir.FloatType(), ir.DoubleType()]),
                     name="g")
    return ir.IRBuilder(fn.append_basic_block()), fn.args


def test_unknown_function_is_rejected():
    builder, (x, _) = _builder()
    with pytest.raises(CodegenError, match=r"unknown math function 'gelu'.*supports.*tanh"):
        emit_math(builder, "gelu", [x], "float32")


def test_wrong_argument_count_is_rejected():
    builder, (x, _) = _builder()
    with pytest.raises(CodegenError, match=r"pow takes 2 argument\(s\), got 1"):
        emit_math(builder, "pow", [x], "float32")


def test_integer_dtype_is_rejected():
    builder, (x, _) = _builder()
    with pytest.raises(CodegenError, match=r"exp needs a floating-point dtype.*'int32'"):
        emit_math(builder, "exp", [x], "int32")


def test_argument_type_must_match_dtype():
    builder, (x, y) = _builder()
    with pytest.raises(CodegenError, match=r"atan2 for float32 got arguments of type float, "
                                           r"double"):
        emit_math(builder, "atan2", [x, y], "float32")


@pytest.mark.parametrize("name", ["round", "fmax", "exp"])
@pytest.mark.parametrize("cpu", ["haswell", "x86-64", "znver4"])
def test_bfloat16_kernels_call_no_libgcc_conversion(math_kernels, name, cpu):
    """Without AVX512-BF16, LLVM turns a float -> bfloat truncation into a call to
    __truncsfbf2, which GCC 12's libgcc lacks: the kernels must not contain one."""
    assert "__truncsfbf2" not in math_kernels.assembly(name, "bfloat16", 8, cpu=cpu)
