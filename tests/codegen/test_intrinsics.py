"""Every te intrinsic through dlc.build, scalar and vectorized, against NumPy.

One build per (dtype, mode) computes all intrinsics, each on its own input array drawn from
the function's useful domain plus its special values (NaN, infinities, signed zeros, domain
edges). Accuracy:

* float32: within 1e-6 relative-or-absolute (|got - want| <= 1e-6 * max(1, |want|)) of the
  float64 result rounded to float32;
* float64: within 1e-13 of NumPy's float64 result;
* float16 and bfloat16: within 1 ulp of the float64 result rounded to the dtype;
* sqrt, abs, floor, ceil, round (half to even), trunc, fmin, fmax, fmod, isnan and isinf
  are exact in every dtype, and so is rsqrt (1 / sqrt(x), two roundings) in float32 and
  float64; fmin(0.0, -0.0) may return either zero, as in C (NumPy's own answer differs
  between float16 and float32).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from codegen_util import (
    MODES,
    Elementwise,
    assert_close,
    assert_same,
    cached,
    np_dtype,
)

from dlc import te
from dlc.te.intrinsics import ANY_INTRINSICS, FLOAT_INTRINSICS, np_exp_nonpositive

N = 61
NAN, INF = math.nan, math.inf
SPECIALS = [NAN, INF, -INF, 0.0, -0.0]


def _spread(lo, hi, count=N):
    return list(np.linspace(lo, hi, count))


def _logs(lo, hi, count=N):
    return list(np.logspace(lo, hi, count))


# name -> (inputs as lists of float64 values, one list per argument). Special values first.
DOMAINS = {
    "exp": ([*SPECIALS, -104.0, -103.0, -88.0, 88.7, 89.0, 1e-8, *_spread(-87, 88)],),
    "exp_nonpositive": ([*SPECIALS, -104.0, -86.65, -86.64, 1.0, 1e-8, -1e-8,
                         *_spread(-86, 0)],),
    "exp2": ([*SPECIALS, -150.0, -149.0, 127.9, 128.0, -0.5, *_spread(-126, 127)],),
    "expm1": ([*SPECIALS, 1e-10, -1e-10, 1e-5, -1e-5, -20.0, 88.0, *_spread(-3, 3)],),
    "log": ([*SPECIALS, -1.0, 1.0, 1e-45, 1e-40, 3e38, *_logs(-37, 38)],),
    "log2": ([*SPECIALS, -1.0, 1.0, 2.0, 1e-45, 1024.0, *_logs(-37, 38)],),
    "log10": ([*SPECIALS, -1.0, 1.0, 10.0, 1e-45, 1000.0, *_logs(-37, 38)],),
    "log1p": ([*SPECIALS, -1.0, -1.5, 1e-10, -1e-10, -0.999, *_spread(-0.9, 100)],),
    "sqrt": ([*SPECIALS, -1.0, 1e-45, 2.0, 4.0, *_logs(-37, 38)],),
    "rsqrt": ([*SPECIALS, -1.0, 1e-30, 2.0, 4.0, *_logs(-30, 38)],),
    "tanh": ([*SPECIALS, 1e-8, -1e-8, 0.6, 0.625, 0.65, 9.0, -10.0, 20.0, *_spread(-5, 5)],),
    "sigmoid": ([*SPECIALS, -100.0, 100.0, -87.0, 1e-8, 30.0, *_spread(-20, 20)],),
    "erf": ([*SPECIALS, 1e-8, -1e-8, 1.24, 1.25, 1.26, 3.9, 4.1, -6.0, *_spread(-4, 4)],),
    "sin": ([*SPECIALS, math.pi, -math.pi / 2, 100.0, 1e-8, *_spread(-10, 10)],),
    "cos": ([*SPECIALS, math.pi, -math.pi / 2, 100.0, 1e-8, *_spread(-10, 10)],),
    "tan": ([*SPECIALS, 1.5, -1.5, 1e-8, 0.7, *_spread(-1.4, 1.4)],),
    "asin": ([*SPECIALS, 1.0, -1.0, 1.5, -2.0, 1e-8, *_spread(-0.999, 0.999)],),
    "acos": ([*SPECIALS, 1.0, -1.0, 1.5, -2.0, 1e-8, *_spread(-0.999, 0.999)],),
    "atan": ([*SPECIALS, 1.0, -1.0, 1e30, -1e30, 1e-8, *_spread(-20, 20)],),
    "sinh": ([*SPECIALS, 1e-8, 0.99, 1.0, 89.0, -89.5, 90.0, *_spread(-10, 10)],),
    "cosh": ([*SPECIALS, 1e-8, 0.99, 1.0, 89.0, -89.5, 90.0, *_spread(-10, 10)],),
    "asinh": ([*SPECIALS, 1e-8, 1e30, -1e30, 1.0, *_spread(-20, 20)],),
    "acosh": ([*SPECIALS, 1.0, 0.5, -1.0, 1e30, *_spread(1, 50)],),
    "atanh": ([*SPECIALS, 1.0, -1.0, 1.5, 1e-8, *_spread(-0.999, 0.999)],),
    "abs": ([*SPECIALS, -1.5, 1e-45, -1e30, *_spread(-5, 5)],),
    "floor": ([*SPECIALS, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 1e-30, -1e-30, 2.0**52 + 0.5,
               -(2.0**52) - 0.5, 8388607.5, 1e30, *_spread(-9.5, 9.5)],),
    "ceil": ([*SPECIALS, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 1e-30, -1e-30, 2.0**52 + 0.5,
              -(2.0**52) - 0.5, 8388607.5, 1e30, *_spread(-9.5, 9.5)],),
    "round": ([*SPECIALS, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.3, -0.3, 2.0**52 + 0.5,
               -(2.0**52) - 0.5, 8388607.5, 4194304.5, 1e30, *_spread(-9.5, 9.5)],),
    "trunc": ([*SPECIALS, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.3, -0.3, 2.0**52 + 0.5,
               -(2.0**52) - 0.5, 8388607.5, 1e30, *_spread(-9.5, 9.5)],),
    "isnan": ([*SPECIALS, 1.0, -1e-45, 3e38, *_spread(-3, 3)],),
    "isinf": ([*SPECIALS, 1.0, -1e-45, 3e38, 1e300, *_spread(-3, 3)],),
    "pow": ([2.0, 0.0, 0.0, -2.0, -2.0, -8.0, 1.0, NAN, 2.0, 0.5, INF, -INF, -0.0,
             *_spread(0.1, 10)],
            [10.0, -1.0, 0.0, 3.0, 0.5, 1 / 3, NAN, 0.0, INF, INF, -1.0, 3.0, -3.0,
             *_spread(-5, 5)]),
    "atan2": ([*SPECIALS, 1.0, -1.0, 0.0, -0.0, INF, *_spread(-3, 3)],
              [1.0, 1.0, INF, -0.0, 0.0, 0.0, -0.0, -1.0, 1.0, -INF, *_spread(3, -3)]),
    "fmin": ([*SPECIALS, 1.0, NAN, -0.0, 5.0, *_spread(-3, 3)],
             [1.0, 2.0, 2.0, -0.0, 0.0, NAN, NAN, 0.0, -INF, *_spread(3, -3)]),
    "fmax": ([*SPECIALS, 1.0, NAN, -0.0, 5.0, *_spread(-3, 3)],
             [1.0, 2.0, 2.0, -0.0, 0.0, NAN, NAN, 0.0, -INF, *_spread(3, -3)]),
    "fmod": ([*SPECIALS, 5.5, -5.5, 5.5, 1e30, 7.0, -0.0, *_spread(-9, 9)],
             [2.0, 2.0, 2.0, 2.0, 2.0, 0.0, 2.0, -2.0, 3.0, INF, 1.0, *_spread(3, -3)]),
}

EXACT = {"sqrt", "rsqrt", "abs", "floor", "ceil", "round", "trunc", "fmin", "fmax", "fmod",
         "isnan", "isinf"}

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


_NUMPY = {"rsqrt": lambda x: 1 / np.sqrt(x), "sigmoid": _sigmoid, "erf": _erf,
          "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "asinh": np.arcsinh,
          "acosh": np.arccosh, "atanh": np.arctanh, "atan2": np.arctan2, "pow": np.power,
          "exp_nonpositive": np_exp_nonpositive}


def is_exact(name: str, dtype: str) -> bool:
    # float16/bfloat16 rsqrt is 1/sqrt(x) in float32, rounded once: NumPy's float16
    # 1/np.sqrt(x) rounds twice in float16, so compare both with the float64 answer
    return name in EXACT and not (name == "rsqrt" and dtype in ("float16", "bfloat16"))


def numpy_reference(name: str, args: list[np.ndarray], dtype: str) -> np.ndarray:
    """Exact functions in the dtype itself; the others in float64, rounded to the dtype."""
    fn = _NUMPY.get(name) or getattr(np, name)
    with np.errstate(all="ignore"):
        if is_exact(name, dtype):
            return np.asarray(fn(*args))
        wide = [a.astype(np.float64) for a in args]
        return np.asarray(fn(*wide)).astype(np_dtype(dtype))


def inputs(name: str, dtype: str) -> list[np.ndarray]:
    out = []
    for values in DOMAINS[name]:
        values = (list(values) * 2)[:N] if len(values) < N else values[:N]
        with np.errstate(over="ignore"):
            out.append(np.array(values, np.float64).astype(np_dtype(dtype)))
    return out


def _applier(name, first, arity):
    fn = getattr(te, name)
    return lambda *xs: fn(*xs[first:first + arity])


def _kernel(dtype: str, mode: str):
    def build():
        in_dtypes, outputs = [], {}
        for name, domain in DOMAINS.items():
            outputs[name] = _applier(name, len(in_dtypes), len(domain))
            in_dtypes += [dtype] * len(domain)
        return Elementwise(in_dtypes, outputs, mode, n=N)

    return cached(("intrinsics", dtype, mode), build)


def _results(dtype: str, mode: str) -> dict:
    def run():
        arrays = [a for name in DOMAINS for a in inputs(name, dtype)]
        return _kernel(dtype, mode).native(*arrays)

    return cached(("intrinsics-run", dtype, mode), run)


def test_every_intrinsic_is_covered():
    assert set(DOMAINS) == set(FLOAT_INTRINSICS) | set(ANY_INTRINSICS)


@pytest.mark.parametrize("name", sorted(DOMAINS))
@pytest.mark.parametrize("mode", ["scalar", "vector"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_intrinsic(dtype, mode, name):
    got = _results(dtype, mode)[name]
    want = numpy_reference(name, inputs(name, dtype), dtype)
    what = f"{name} {dtype} {mode}"
    if name in EXACT:
        assert_same(got, want, what, signed_zeros=name not in ("fmin", "fmax"))
    else:
        assert_close(got, want, what, tol=1e-6 if dtype == "float32" else 1e-13)


@pytest.mark.parametrize("name", sorted(DOMAINS))
@pytest.mark.parametrize("mode", ["scalar", "vector"])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_intrinsic_half(dtype, mode, name):
    got = _results(dtype, mode)[name]
    want = numpy_reference(name, inputs(name, dtype), dtype)
    assert_same(got, want, f"{name} {dtype} {mode}", ulps=0 if is_exact(name, dtype) else 1,
                signed_zeros=name not in ("fmin", "fmax"))


@pytest.mark.parametrize("mode", MODES)
def test_integer_abs(mode):
    """abs on every integer dtype: |INT_MIN| wraps to INT_MIN, as in NumPy; unsigned is
    unchanged."""
    kinds = ("int8", "int16", "int32", "int64", "uint8")
    k = cached(("int-abs", mode), lambda: Elementwise(
        kinds, {dt: _applier("abs", j, 1) for j, dt in enumerate(kinds)}, mode, n=N))
    arrays = []
    for dt in kinds:
        info = np.iinfo(dt)
        values = [int(info.min), int(info.max), 0, 1, -1 if info.min else 200]
        values += list(np.linspace(int(info.min) // 2, int(info.max) // 2, N - 5).astype(int))
        arrays.append(np.array(values, dtype=dt))
    got = k.native(*arrays)
    for dt, x in zip(kinds, arrays):
        assert_same(got[dt], np.abs(x), f"abs {dt} {mode}")
    assert got["int8"][0] == -128
