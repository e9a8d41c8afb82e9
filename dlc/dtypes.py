"""Scalar data types, spelled as NumPy names ("float32", "int64", "bool")."""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

from dlc.errors import DlcTypeError

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
SIGNED_DTYPES = ("int8", "int16", "int32", "int64")
UNSIGNED_DTYPES = ("uint8", "uint16", "uint32", "uint64")
#: 8-bit-stored types without arithmetic (small floats and sub-byte integers, one value
#: per byte as ml_dtypes stores them). Values are converted to and from them with
#: bit manipulation after ``te.reinterpret(x, "uint8")``.
STORAGE_DTYPES = ("float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz",
                  "float8_e8m0fnu", "float4_e2m1fn", "float6_e2m3fn", "float6_e3m2fn",
                  "int4", "uint4", "int2", "uint2")
ALL_DTYPES = FLOAT_DTYPES + SIGNED_DTYPES + UNSIGNED_DTYPES + ("bool",) + STORAGE_DTYPES

_BITS = {
    "bool": 8, "int8": 8, "uint8": 8, "int16": 16, "uint16": 16, "float16": 16, "bfloat16": 16,
    "int32": 32, "uint32": 32, "float32": 32, "int64": 64, "uint64": 64, "float64": 64,
    **{name: 8 for name in STORAGE_DTYPES},
}

#: The dtype of loop variables and tensor indices.
INDEX_DTYPE = "int64"


def canonical(dtype) -> str:
    """Return the canonical name of a dtype given as a string, NumPy dtype or type."""
    if isinstance(dtype, str) and dtype in _BITS:
        return dtype
    try:
        name = np.dtype(dtype).name
    except TypeError:
        raise DlcTypeError(f"unknown dtype {dtype!r}; expected one of "
                           f"{', '.join(ALL_DTYPES)}") from None
    if name not in _BITS:
        raise DlcTypeError(f"unsupported dtype {name!r}; expected one of "
                           f"{', '.join(ALL_DTYPES)}")
    return name


def bits(dtype: str) -> int:
    """Storage size of one element in bits (bool is stored in 8)."""
    return _BITS[dtype]


def itemsize(dtype: str) -> int:
    """Storage size of one element in bytes."""
    return _BITS[dtype] // 8


def is_float(dtype: str) -> bool:
    return dtype in FLOAT_DTYPES


def is_signed_int(dtype: str) -> bool:
    return dtype in SIGNED_DTYPES


def is_unsigned_int(dtype: str) -> bool:
    return dtype in UNSIGNED_DTYPES


def is_int(dtype: str) -> bool:
    return dtype in SIGNED_DTYPES or dtype in UNSIGNED_DTYPES


def is_bool(dtype: str) -> bool:
    return dtype == "bool"


def is_storage_only(dtype: str) -> bool:
    return dtype in STORAGE_DTYPES


def to_numpy(dtype: str) -> np.dtype:
    """The NumPy dtype that stores values of this dtype (ml_dtypes for the ML types)."""
    if dtype == "bfloat16" or dtype in STORAGE_DTYPES:
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, dtype))
    return np.dtype(dtype)


def min_value(dtype: str):
    """Smallest value of a dtype (-inf for floats)."""
    if is_float(dtype):
        return -float("inf")
    if dtype == "bool":
        return False
    return int(np.iinfo(dtype).min)


def max_value(dtype: str):
    """Largest value of a dtype (+inf for floats)."""
    if is_float(dtype):
        return float("inf")
    if dtype == "bool":
        return True
    return int(np.iinfo(dtype).max)


def astype(x: np.ndarray, dtype: str) -> np.ndarray:
    """``x.astype(dtype)`` with the code generator's semantics where C and NumPy leave them
    open: a float converted to an integer truncates, saturates to the integer's limits
    (infinities too) and gives 0 for NaN; a conversion to bfloat16 goes through float32
    (whatever ml_dtypes' own rounding is). The loop-IR interpreter and the ops' NumPy
    references both convert with this."""
    src = canonical(x.dtype)
    if not (is_float(src) and is_int(dtype)):
        with np.errstate(over="ignore", invalid="ignore"):  # overflow to inf is intended
            if dtype == "bfloat16" and src != "float32":
                x = x.astype(np.float32)  # through float32, as compiled code converts
            return x.astype(to_numpy(dtype))
    wide = x.astype(np.float64)
    lo, hi = min_value(dtype), max_value(dtype)
    out = np.zeros(wide.shape, to_numpy(dtype))
    inside = (wide > lo - 1) & (wide < hi + 1)  # NaN is neither inside nor beyond: 0
    out[inside] = np.trunc(wide[inside]).astype(out.dtype)
    out[wide >= hi + 1] = hi
    out[wide <= lo - 1] = lo
    return out


#: (exponent bits, mantissa bits) of the float dtypes narrower than float64.
_FLOAT_FORMATS = {"float16": (5, 10), "bfloat16": (8, 7), "float32": (8, 23)}


def round_float(value, dtype: str) -> float:
    """``value`` (a Python float or int, taken exactly) rounded once to the nearest value of
    the float ``dtype``, ties to even; beyond the largest finite value plus half an ulp it
    is an infinity, as IEEE 754 rounds. NaN, infinities and signed zeros pass through.

    Constants are rounded with this, not through float32 (double rounding: 1 + 2**-8 +
    2**-30 is 1.0078125 in bfloat16, not 1.0) nor through whichever library is installed.
    """
    if dtype == "float64" or value == 0 or value != value or value in (math.inf, -math.inf):
        return float(value)  # zeros keep their sign
    return _round_nonzero(value, dtype)


@functools.lru_cache(maxsize=4096)  # codegen, the interpreter and the simplifier ask often
def _round_nonzero(value, dtype: str) -> float:
    exp_bits, man_bits = _FLOAT_FORMATS[dtype]
    bias = (1 << (exp_bits - 1)) - 1
    magnitude = abs(Fraction(value))
    # 2**exponent <= magnitude < 2**(exponent + 1), from the sizes of numerator and denominator
    exponent = magnitude.numerator.bit_length() - magnitude.denominator.bit_length()
    if Fraction(2) ** exponent > magnitude:
        exponent -= 1
    quantum = Fraction(2) ** (max(exponent, 1 - bias) - man_bits)  # the ulp, subnormals too
    rounded = round(magnitude / quantum) * quantum  # Fraction rounds half to even
    largest = (2 - Fraction(1, 1 << man_bits)) * Fraction(2) ** bias
    return math.copysign(math.inf if rounded > largest else float(rounded),
                         -1 if value < 0 else 1)
