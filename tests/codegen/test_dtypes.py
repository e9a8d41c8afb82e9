"""Every dtype through dlc.build (scalar loops, vector loops with a peeled tail, and masked
vector loops) and through the loop-IR interpreter, against NumPy.

Semantics pinned down here (dlc.tir.interpreter defines them, the code generator follows):

* integer + - * wrap around (uint8 250 + 10 == 4), like NumPy;
* ``//`` and ``%`` round toward minus infinity, ``te.truncdiv``/``te.truncmod`` toward zero;
  integer division or remainder by zero gives 0; INT_MIN // -1 wraps to INT_MIN (remainder 0);
* shifts by at least the bit width (or by a negative amount) give 0, or -1 for an arithmetic
  right shift of a negative value;
* float -> integer casts truncate toward zero and saturate: out-of-range values give the
  dtype's minimum or maximum, infinities too, and NaN gives 0 (C leaves all of these
  undefined; this is LLVM's fptosi.sat / fptoui.sat);
* bool ``+`` is logical or and ``*`` logical and, as in NumPy.

Float arithmetic is bit-exact against NumPy, float16/bfloat16 included: one operation rounds
once. Casts are bit-exact too. A cast *to* bfloat16 goes through float32 (float64 and integers
wider than 24 bits can round twice, a documented choice: bfloat16 registers are float32);
the reference spells that out rather than trusting ml_dtypes, which rounds once since 0.7
and twice before. Constants are rounded once from their exact value (dtypes.round_float).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from codegen_util import (
    FLOATS,
    MODES,
    Elementwise,
    N,
    assert_same,
    cached,
    is_float,
    np_dtype,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from dlc import te

DTYPES = ("float32", "float64", "float16", "bfloat16", "int8", "int16", "int32", "int64",
          "uint8", "bool")
INTS = ("int8", "int16", "int32", "int64", "uint8")
WIDE_UNSIGNED = ("uint16", "uint32", "uint64")  # supported too; tested more lightly


def is_int(dtype: str) -> bool:
    return dtype.startswith(("int", "uint"))
ENGINES = ("native", "interpreter")


# -- data ----------------------------------------------------------------------------------
def _pairs(dtype: str) -> list[tuple]:
    """Hand-picked (a, b) operand pairs: the edge cases of every operator."""
    if dtype == "bool":
        return [(False, False), (False, True), (True, False), (True, True)]
    if is_float(dtype):
        nan, inf = math.nan, math.inf
        return [(nan, 1.0), (1.0, nan), (inf, inf), (inf, -inf), (-inf, 2.0), (0.0, -0.0),
                (-0.0, -0.0), (-0.0, 0.0), (5.0, 0.0), (-5.0, 0.0), (0.0, 0.0), (5.5, inf),
                (-5.5, inf), (7.5, -inf), (inf, 2.0), (7.0, 2.0), (-7.0, 2.0), (7.0, -2.0),
                (-7.5, 2.5), (1e30, 1e30), (60000.0, 2.0), (3.0, 3.0)]
    info = np.iinfo(dtype)
    lo, hi = int(info.min), int(info.max)
    if lo == 0:
        return [(255, 0), (250, 10), (3, 5), (16, 16), (255, 255), (7, 2), (0, 0), (200, 1),
                (0, 1), (128, 128)]
    return [(lo, -1), (lo, 3), (lo, -3), (lo, 2), (hi, -1), (7, 0), (-7, 0), (0, 0), (hi, 1),
            (lo, lo), (hi, hi), (7, 2), (-7, 2), (7, -2), (-7, -2), (hi, lo), (lo, 1), (-1, hi)]


def operands(dtype: str, seed: int = 0):
    """Arrays a, b (dtype), cond (bool) and shift amounts s (dtype) of N elements."""
    rng = np.random.default_rng(seed)
    pairs = _pairs(dtype)
    if dtype == "bool":
        a, b = rng.integers(0, 2, (2, N)).astype(bool)
    elif is_float(dtype):
        a, b = rng.uniform(-50, 50, (2, N))
    else:
        info = np.iinfo(dtype)
        a, b = rng.integers(int(info.min), int(info.max), (2, N), endpoint=True,
                            dtype=np.int64 if info.min else np.uint64)
    a, b = a.astype(object), b.astype(object)
    for k, (x, y) in enumerate(pairs):
        a[k], b[k] = x, y
    nd = np_dtype(dtype)
    with np.errstate(over="ignore"):
        a = np.array(a.tolist(), dtype=np.float64 if is_float(dtype) else object).astype(nd)
        b = np.array(b.tolist(), dtype=np.float64 if is_float(dtype) else object).astype(nd)
    cond = rng.integers(0, 2, N).astype(bool)
    shift = _shift_amounts(dtype, rng)
    return a, b, cond, shift


def _shift_amounts(dtype: str, rng) -> np.ndarray:
    if not is_int(dtype):
        return rng.integers(0, 2, N).astype(np_dtype(dtype))
    bits = np.iinfo(dtype).bits
    special = [0, 1, bits - 1, bits, bits + 1, 2 * bits - 1]
    if np.iinfo(dtype).min:
        special += [-1, -bits, int(np.iinfo(dtype).min)]
    rest = rng.integers(0, bits, N - len(special)).tolist()
    return np.array(special + rest, dtype=dtype)


# -- operators and their references ---------------------------------------------------------
def _trunc_div(a, b):
    out = [0 if y == 0 else (abs(x) // abs(y)) * (1 if (x < 0) == (y < 0) else -1)
           for x, y in zip(a.tolist(), b.tolist())]
    return _wrap(out, a.dtype)


def _trunc_mod(a, b):
    out = [0 if y == 0 else x - y * (abs(x) // abs(y)) * (1 if (x < 0) == (y < 0) else -1)
           for x, y in zip(a.tolist(), b.tolist())]
    return _wrap(out, a.dtype)


def _wrap(values, dtype):
    bits = np.iinfo(dtype).bits
    wrapped = [v % (1 << bits) for v in values]
    return np.array(wrapped, dtype=f"uint{bits}").view(dtype)


def _shift(a, s, left: bool):
    bits = np.iinfo(a.dtype).bits
    out = []
    for x, k in zip(a.tolist(), s.tolist()):
        if 0 <= k < bits:
            out.append(x << k if left else x >> k)
        else:  # too far: every bit shifted out
            out.append(0 if left or x >= 0 else -1)
    return _wrap(out, a.dtype)


def operators(dtype: str) -> dict:
    """name -> (te expression of a, b, cond, s; NumPy reference of the same)."""
    ops = {
        "add": (lambda a, b, c, s: a + b, lambda a, b, c, s: a + b),
        "mul": (lambda a, b, c, s: a * b, lambda a, b, c, s: a * b),
        "min": (lambda a, b, c, s: te.minimum(a, b), lambda a, b, c, s: np.minimum(a, b)),
        "max": (lambda a, b, c, s: te.maximum(a, b), lambda a, b, c, s: np.maximum(a, b)),
        "select": (lambda a, b, c, s: te.if_then_else(c, a, b),
                   lambda a, b, c, s: np.where(c, a, b)),
        "eq": (lambda a, b, c, s: a == b, lambda a, b, c, s: a == b),
        "ne": (lambda a, b, c, s: a != b, lambda a, b, c, s: a != b),
        "lt": (lambda a, b, c, s: a < b, lambda a, b, c, s: a < b),
        "le": (lambda a, b, c, s: a <= b, lambda a, b, c, s: a <= b),
        "gt": (lambda a, b, c, s: a > b, lambda a, b, c, s: a > b),
        "ge": (lambda a, b, c, s: a >= b, lambda a, b, c, s: a >= b),
    }
    if dtype == "bool":
        ops["and"] = (lambda a, b, c, s: a & b, lambda a, b, c, s: a & b)
        ops["or"] = (lambda a, b, c, s: a | b, lambda a, b, c, s: a | b)
        ops["xor"] = (lambda a, b, c, s: a ^ b, lambda a, b, c, s: a ^ b)
        ops["not"] = (lambda a, b, c, s: ~a, lambda a, b, c, s: ~a)
        return ops
    ops["sub"] = (lambda a, b, c, s: a - b, lambda a, b, c, s: a - b)
    ops["neg"] = (lambda a, b, c, s: -a, lambda a, b, c, s: np.negative(a))  # -(+0.0) is -0.0
    ops["floordiv"] = (lambda a, b, c, s: a // b, lambda a, b, c, s: np.floor_divide(a, b))
    ops["floormod"] = (lambda a, b, c, s: a % b, lambda a, b, c, s: np.mod(a, b))
    if is_float(dtype):
        ops["div"] = (lambda a, b, c, s: a / b, lambda a, b, c, s: a / b)
        ops["truncmod"] = (lambda a, b, c, s: te.truncmod(a, b),
                           lambda a, b, c, s: np.fmod(a, b))
        return ops
    ops["truncdiv"] = (lambda a, b, c, s: te.truncdiv(a, b), lambda a, b, c, s: _trunc_div(a, b))
    ops["truncmod"] = (lambda a, b, c, s: te.truncmod(a, b), lambda a, b, c, s: _trunc_mod(a, b))
    ops["and"] = (lambda a, b, c, s: a & b, lambda a, b, c, s: a & b)
    ops["or"] = (lambda a, b, c, s: a | b, lambda a, b, c, s: a | b)
    ops["xor"] = (lambda a, b, c, s: a ^ b, lambda a, b, c, s: a ^ b)
    ops["invert"] = (lambda a, b, c, s: ~a, lambda a, b, c, s: ~a)
    ops["shl"] = (lambda a, b, c, s: a << s, lambda a, b, c, s: _shift(a, s, left=True))
    ops["shr"] = (lambda a, b, c, s: a >> s, lambda a, b, c, s: _shift(a, s, left=False))
    # constant divisors take another code path (no zero / -1 checks)
    ops["floordiv_c7"] = (lambda a, b, c, s: a // 7, lambda a, b, c, s: a // a.dtype.type(7))
    ops["floormod_c7"] = (lambda a, b, c, s: a % 7, lambda a, b, c, s: a % a.dtype.type(7))
    ops["floordiv_c0"] = (lambda a, b, c, s: a // 0, lambda a, b, c, s: np.zeros_like(a))
    ops["truncmod_c0"] = (lambda a, b, c, s: te.truncmod(a, 0),
                          lambda a, b, c, s: np.zeros_like(a))
    if np.iinfo(dtype).min:
        ops["truncdiv_cm7"] = (lambda a, b, c, s: te.truncdiv(a, -7),
                               lambda a, b, c, s: _trunc_div(a, np.full_like(a, -7)))
        ops["floordiv_cm1"] = (lambda a, b, c, s: a // -1, lambda a, b, c, s: np.zeros_like(a) - a)
    return ops


OP_CASES = [(dt, op) for dt in DTYPES for op in operators(dt)]


def _kernel(dtype: str, mode: str) -> Elementwise:
    ops = {name: expr for name, (expr, _) in operators(dtype).items()}
    return cached(("ops", dtype, mode),
                  lambda: Elementwise((dtype, dtype, "bool", dtype), ops, mode))


def _results(dtype: str, mode: str, engine: str) -> dict:
    return cached(("ops-run", dtype, mode, engine),
                  lambda: _kernel(dtype, mode).run(engine, *operands(dtype)))


def _reference(dtype: str, op: str, args) -> np.ndarray:
    with np.errstate(all="ignore"):
        want = np.asarray(operators(dtype)[op][1](*args))
    return want.astype(bool) if want.dtype == bool else want.astype(np_dtype(dtype))


def _op_params():
    for dtype, op in OP_CASES:
        for engine in ENGINES:
            for mode in MODES:
                yield pytest.param(dtype, op, engine, mode,
                                   id=f"{engine}-{mode}-{dtype}-{op}")


@pytest.mark.parametrize("dtype, op, engine, mode", list(_op_params()))
def test_operator(dtype, op, engine, mode):
    got = _results(dtype, mode, engine)[op]
    want = _reference(dtype, op, operands(dtype))
    assert_same(got, want, f"{engine} {mode} {dtype} {op}",
                signed_zeros=op not in ("min", "max"))


@pytest.mark.parametrize("mode", MODES)
def test_integer_edge_cases_spelled_out(mode):
    """The integer rules of the module docstring, on explicit int8/uint8 values."""
    a = np.array([-128, -128, 7, -7, 127, 250 - 256, 1, -1], np.int8)
    b = np.array([-1, 0, 0, 2, 1, 3, 8, 9], np.int8)
    k = cached(("int8-edges", mode), lambda: Elementwise(("int8", "int8"), {
        "fdiv": lambda x, y: x // y, "fmod": lambda x, y: x % y,
        "tdiv": lambda x, y: te.truncdiv(x, y), "tmod": lambda x, y: te.truncmod(x, y),
        "shl": lambda x, y: x << y, "shr": lambda x, y: x >> y, "add": lambda x, y: x + y,
    }, mode, n=8))
    got = k.native(a, b)
    assert got["fdiv"].tolist() == [-128, 0, 0, -4, 127, -2, 0, -1]
    assert got["fmod"].tolist() == [0, 0, 0, 1, 0, 0, 1, 8]
    assert got["tdiv"].tolist() == [-128, 0, 0, -3, 127, -2, 0, 0]
    assert got["tmod"].tolist() == [0, 0, 0, -1, 0, 0, 1, -1]
    assert got["shl"].tolist() == [0, -128, 7, -28, -2, -48, 0, 0]  # 1 << 8: shifted out
    assert got["shr"].tolist() == [-1, -128, 7, -2, 63, -1, 0, -1]  # -1 >> 9: sign fill
    assert got["add"].tolist() == [127, -128, 7, -5, -128, -3, 9, 8]  # wraps around

    u = np.array([250, 3, 16, 255, 0, 200, 128, 1], np.uint8)
    v = np.array([10, 5, 16, 255, 1, 0, 128, 8], np.uint8)
    ku = cached(("uint8-edges", mode), lambda: Elementwise(("uint8", "uint8"), {
        "add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
        "div": lambda x, y: x // y, "shl": lambda x, y: x << y, "shr": lambda x, y: x >> y,
    }, mode, n=8))
    got = ku.native(u, v)
    assert got["add"].tolist() == [4, 8, 32, 254, 1, 200, 0, 9]
    assert got["sub"].tolist() == [240, 254, 0, 0, 255, 200, 0, 249]
    assert got["mul"].tolist() == [196, 15, 0, 1, 0, 0, 0, 8]
    assert got["div"].tolist() == [25, 0, 1, 1, 0, 0, 1, 0]
    assert got["shl"].tolist() == [0, 96, 0, 0, 0, 200, 0, 0]
    assert got["shr"].tolist() == [0, 0, 0, 0, 0, 200, 0, 0]


@pytest.mark.parametrize("dtype", WIDE_UNSIGNED)
def test_wide_unsigned(dtype):
    """uint16/32/64: every operator (vector code) and casts to and from float64 and int64."""
    args = operands(dtype)
    got = _kernel(dtype, "vector").native(*args)
    for op in operators(dtype):
        assert_same(got[op], _reference(dtype, op, args), f"{dtype} {op}")
    x = np.array([math.nan, math.inf, -math.inf, -1.0, 0.5, 2.0**64, 2.0**63, 1e5, 65535.5,
                  2.0**32 - 1], np.float64)
    k = cached(("wide-unsigned", dtype), lambda: Elementwise(
        ("float64", dtype), {"from_f64": lambda f, u: te.cast(f, dtype),
                             "to_f64": lambda f, u: te.cast(u, "float64"),
                             "to_i64": lambda f, u: te.cast(u, "int64")}, "vector", n=10))
    u = np.array([0, 1, 2**16 - 1, 2**32 - 1, 2**63, 2**64 - 1, 7, 2**53 + 1, 5, 3],
                 np.uint64).astype(dtype)
    got = k.native(x, u)
    assert_same(got["from_f64"], _saturate(x, dtype), f"float64 -> {dtype}")
    assert_same(got["to_f64"], u.astype(np.float64), f"{dtype} -> float64")
    assert_same(got["to_i64"], u.astype(np.int64), f"{dtype} -> int64")


CONSTANTS = (1e6, 1e40, -1e40, math.inf, -math.inf, math.nan, 0.1, -0.0, 1e-10, 1e-50,
             5e-324, 65519.0, 65520.0, 3.4028235e38, 3.5e38, 1 + 2**-8 + 2**-30)
INF, NAN = math.inf, math.nan
#: CONSTANTS rounded once from their exact (double) value, ties to even, worked out by hand:
#: the ulp at each value, the nearest multiple, infinity past the largest finite value plus
#: half an ulp (float16 65504 + 16, bfloat16 (2 - 2**-7) * 2**127 + 2**119).
ROUNDED_CONSTANTS = {
    "float64": CONSTANTS,
    "float32": (1e6, INF, -INF, INF, -INF, NAN, 13421773 * 2.0**-27, -0.0,
                14411519 * 2.0**-57, 0.0, 0.0, 65519.0, 65520.0, (2 - 2**-23) * 2.0**127, INF,
                1 + 2**-8),
    "float16": (INF, INF, -INF, INF, -INF, NAN, 1638 * 2**-14, -0.0, 0.0, 0.0, 0.0, 65504.0,
                INF, INF, INF, 1 + 2**-8),
    "bfloat16": (244 * 2.0**12, INF, -INF, INF, -INF, NAN, 205 * 2**-11, -0.0, 220 * 2.0**-41,
                 0.0, 0.0, 65536.0, 65536.0, INF, INF, 1 + 2**-7),
}


@pytest.mark.parametrize("mode", ("scalar", "vector"))
@pytest.mark.parametrize("dtype", FLOATS)
def test_float_constants(dtype, mode):
    """Constants are rounded once from their exact value (never through float32 first), ties
    to even, overflow to infinity included (1e6 is inf in float16, 1e40 in float32 and
    bfloat16), in compiled code and in the loop-IR interpreter alike."""
    outs = {f"c{k}": _constant(v, dtype) for k, v in enumerate(CONSTANTS)}
    k = cached(("constants", dtype, mode), lambda: Elementwise((dtype,), outs, mode, n=11))
    zeros = np.zeros(11, np_dtype(dtype))
    got, interpreted = k.native(zeros), k.interpret(zeros)
    for j, (value, rounded) in enumerate(zip(CONSTANTS, ROUNDED_CONSTANTS[dtype])):
        want = np.full(11, rounded, np.float64).astype(np_dtype(dtype))  # exact: representable
        assert_same(got[f"c{j}"], want, f"{dtype} constant {value!r}")
        assert_same(interpreted[f"c{j}"], want, f"{dtype} constant {value!r} (interpreter)")


def test_round_float_ties_and_subnormals():
    """dtypes.round_float on the cases that decide a rounding rule: exact ties go to the
    even neighbour, a hair above a tie goes up, subnormals keep their absolute ulp."""
    from dlc.dtypes import round_float

    assert round_float(1 + 2**-8, "bfloat16") == 1.0              # tie, 1.0 is even
    assert round_float(1 + 3 * 2**-8, "bfloat16") == 1 + 2**-6    # tie, up to even
    assert round_float(1 + 2**-8 + 2**-40, "bfloat16") == 1 + 2**-7
    assert round_float(2**-25, "float16") == 0.0                  # half the smallest: even 0
    assert round_float(3 * 2**-25, "float16") == 2 * 2**-24
    assert round_float(-(2**-26), "float16") == 0.0 and math.copysign(
        1, round_float(-(2**-26), "float16")) == -1                # -0, not +0
    assert round_float(65520.0 - 2**-30, "float16") == 65504.0
    assert round_float(2**53 + 1, "float32") == 2.0**53            # ints are exact inputs too
    assert round_float(2**24 + 3, "float32") == 2**24 + 4
    # an integer constant beyond float64's precision rounds once too: through float64 it
    # would lose its last 1, tie, and round to even (2**60)
    assert te.const(2**60 + 2**36 + 1, "float32").value == 2**60 + 2**37


def _constant(value, dtype):
    return lambda a: te.if_then_else(a == a, te.const(value, dtype), a)


# -- casts -----------------------------------------------------------------------------------
def cast_inputs(src: str) -> np.ndarray:
    """N values of ``src`` that hit every conversion edge: NaN, infinities, signed zeros,
    values just inside and outside each integer range, halfway cases, double rounding."""
    if src == "bool":
        return (np.arange(N) % 3 == 0)
    if is_float(src):
        values = [math.nan, math.inf, -math.inf, 0.0, -0.0, 0.5, -0.7, 2.5, -2.5, 127.9,
                  128.0, -128.9, -129.0, 255.5, 256.0, -1.0, 32767.5, -32769.0, 65504.0,
                  65520.0, 2147483520.0, 2.0**31, -2.0**31, -2.0**31 - 4096, 2.0**63,
                  -2.0**63, 1e19, 1e30, -1e30, 1e-8, 3e-39, 1 + 2**-8 + 2**-30,
                  1 + 2**-11 + 2**-40, 1e300, -3.3e38, 6.1e-5, 123.456]
        with np.errstate(over="ignore"):
            return np.array(values[:N], np.float64).astype(np_dtype(src))
    info = np.iinfo(src)
    values = [int(info.min), int(info.max), 0, 1, -1, 127, 128, -128, -129, 255, 256,
              32767, 32768, -32769, 65504, 65519, 65520, 65536, 2**24 + 1, 2**24 + 2**16 + 1,
              2**31 - 1, -2**31, 2**53 + 1, 2**62 + 2**38 + 1, -(2**63) + 1, 1000, 77, -77,
              2**16 + 3, 2**40 + 2**20, 5, 6, 7, 8, 9, 10, 11]
    wrapped = [v % (1 << info.bits) for v in values[:N]]
    return np.array(wrapped, dtype=f"uint{info.bits}").view(src)


def _saturate(x: np.ndarray, dst: str) -> np.ndarray:
    info = np.iinfo(dst)
    out = []
    for v in x.astype(np.float64).tolist():
        if math.isnan(v):
            out.append(0)
        elif math.isinf(v):
            out.append(int(info.max) if v > 0 else int(info.min))
        else:
            out.append(min(max(math.trunc(v), int(info.min)), int(info.max)))
    return np.array(out, dtype=dst)


def cast_reference(x: np.ndarray, src: str, dst: str) -> np.ndarray:
    if is_float(src) and is_int(dst):
        return _saturate(x, dst)  # NumPy leaves out-of-range and NaN undefined
    with np.errstate(all="ignore"):
        if dst == "bfloat16" and src != "float32":
            x = x.astype(np.float32)  # dlc's rule: to bfloat16 through float32
        return x.astype(np_dtype(dst))


def _caster(dst: str):
    return lambda a: te.cast(a, dst)


def _cast_kernel(src: str, mode: str) -> Elementwise:
    outs = {dst: _caster(dst) for dst in DTYPES if dst != src}
    return cached(("cast", src, mode), lambda: Elementwise((src,), outs, mode))


def _cast_params():
    for src in DTYPES:
        for dst in DTYPES:
            if dst == src:
                continue
            for engine in ENGINES:
                yield pytest.param(src, dst, engine, id=f"{engine}-{src}-{dst}")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("src, dst, engine", list(_cast_params()))
def test_cast(src, dst, engine, mode):
    x = cast_inputs(src)
    got = cached(("cast-run", src, mode, engine),
                 lambda: _cast_kernel(src, mode).run(engine, x))[dst]
    want = cast_reference(x, src, dst)
    ulps = 0
    assert_same(got, want, f"{engine} {mode} cast {src} -> {dst}", ulps=ulps)


@pytest.mark.parametrize("mode", MODES)
def test_float_to_int_saturates(mode):
    """Out-of-range and NaN conversions, spelled out (see the module docstring)."""
    x = np.array([math.nan, math.inf, -math.inf, 1e10, -1e10, 2.9, -2.9, 300.0], np.float32)
    k = cached(("saturate", mode), lambda: Elementwise(("float32",), {
        dst: _caster(dst) for dst in ("int32", "uint8", "int8", "int64")
    }, mode, n=8))
    got = k.native(x)
    assert got["int32"].tolist() == [0, 2**31 - 1, -2**31, 2**31 - 1, -2**31, 2, -2, 300]
    assert got["uint8"].tolist() == [0, 255, 0, 255, 0, 2, 0, 255]
    assert got["int8"].tolist() == [0, 127, -128, 127, -128, 2, -2, 127]
    assert got["int64"].tolist() == [0, 2**63 - 1, -2**63, 10**10, -10**10, 2, -2, 300]


# -- random arrays -----------------------------------------------------------------------------
def _element_strategy(dtype: str):
    if dtype == "float32":
        return st.floats(width=32, allow_nan=True, allow_infinity=True)
    if dtype == "float64":
        return st.floats(allow_nan=True, allow_infinity=True)
    info = np.iinfo(dtype)
    return st.integers(int(info.min), int(info.max))


def _array(dtype: str):
    """N random elements (floats include NaN, infinities and subnormals)."""
    if dtype == "float16":  # random bit patterns: st.floats(width=16) filters too much
        bits = st.lists(st.integers(0, 0xFFFF), min_size=N, max_size=N)
        return bits.map(lambda values: np.array(values, np.uint16).view(np.float16))
    return st.lists(_element_strategy(dtype), min_size=N, max_size=N).map(
        lambda values: np.array(values, dtype=np_dtype(dtype)))


HYPOTHESIS_DTYPES = ("float32", "float64", "float16", "int8", "int32", "int64", "uint8")


@pytest.mark.parametrize("dtype", HYPOTHESIS_DTYPES)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_operators_on_random_arrays(dtype, data):
    """Every operator of the dtype on random operands, vector code, against NumPy."""
    a, b = data.draw(_array(dtype)), data.draw(_array(dtype))
    cond = data.draw(st.lists(st.booleans(), min_size=N, max_size=N).map(np.array))
    shift = data.draw(_array(dtype)) if is_int(dtype) else np.zeros(N, np_dtype(dtype))
    got = _kernel(dtype, "vector").native(a, b, cond, shift)
    for op in operators(dtype):
        want = _reference(dtype, op, (a, b, cond, shift))
        assert_same(got[op], want, f"{dtype} {op}", signed_zeros=op not in ("min", "max"))


@pytest.mark.parametrize("src", ("float32", "float64", "int64", "int32"))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_casts_on_random_arrays(src, data):
    x = data.draw(_array(src))
    got = _cast_kernel(src, "vector").native(x)
    for dst in DTYPES:
        if dst == src:
            continue
        ulps = 1 if dst in ("float16", "bfloat16") else 0
        assert_same(got[dst], cast_reference(x, src, dst), f"cast {src} -> {dst}", ulps=ulps)

