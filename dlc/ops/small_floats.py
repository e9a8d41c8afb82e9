"""Conversions to and from the storage-only ML dtypes (``dlc.dtypes.STORAGE_DTYPES``).

Those dtypes have no arithmetic: a value is one byte (as ml_dtypes stores it) and every
conversion is bit manipulation on ``reinterpret(x, "uint8")`` widened to 32 bits. Each
conversion is written once, against a tiny set of operations (:class:`TeOps` builds tensor
expressions, :class:`NpOps` evaluates NumPy arrays), so compiled code and the NumPy
reference used for constant folding agree bit for bit.

Semantics (ONNX Cast, with ml_dtypes as the bit-level reference):

* to a small float: from float32 (other sources are converted to float32 first, as
  ml_dtypes does; integers with more than 24 bits are beyond every small float's range
  anyway), rounding to nearest even. ``saturate`` (float8 types only) sends out-of-range
  values and infinities to the largest finite value; without it they become infinity
  (float8_e5m2) or NaN. float4/float6 have neither infinity nor NaN: they always saturate,
  and NaN becomes +0. FNUZ types have no -0 (it becomes +0) and one NaN, 0x80.
* to float8_e8m0fnu (a power of two, sign ignored): ``round_mode`` "up" (toward
  infinity), "down" (toward zero) or "nearest" (ties up); a result beyond 2**127 or below
  2**-127, zero and infinity saturate to the extreme value with ``saturate``, else become
  NaN (0xFF); NaN stays NaN.
* from a small float: exact to float32, then converted like any float32 (integers
  truncate and saturate, NaN gives 0).
* to int4/uint4/int2/uint2: integers (and bool) keep their low bits, wrapping as ONNX
  specifies for every integer narrowing; floats truncate toward zero and saturate to the
  type's range, NaN giving 0, exactly like a float cast to a wider integer (ONNX leaves an
  out-of-range float undefined: -9.0 to uint4 is 0 and 17.0 is 15 in dlc, whatever the
  installed ml_dtypes does). From them: sign- or zero-extended to int32.
* a byte's bits beyond the type's width are ignored when reading; writing clears them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlc import dtypes, te

ROUND_MODES = ("up", "down", "nearest")


@dataclass(frozen=True)
class FloatFormat:
    """A small float: sign, ``exp_bits`` exponent and ``man_bits`` mantissa bits.

    ``special`` says which codes are not finite: "ieee" (exponent all ones: infinity
    or NaN, float8_e5m2), "fn" (all ones is NaN, float8_e4m3fn), "fnuz" (0x80, the
    pattern of -0, is the only NaN) or "none" (every code is finite).
    """

    exp_bits: int
    man_bits: int
    bias: int
    special: str

    @property
    def width(self) -> int:
        return 1 + self.exp_bits + self.man_bits

    @property
    def max_code(self) -> int:
        """The code of the largest finite magnitude."""
        all_ones = (1 << (self.exp_bits + self.man_bits)) - 1
        return {"ieee": all_ones - (1 << self.man_bits), "fn": all_ones - 1}.get(
            self.special, all_ones)


FLOAT_FORMATS = {
    "float8_e4m3fn": FloatFormat(4, 3, 7, "fn"),
    "float8_e4m3fnuz": FloatFormat(4, 3, 8, "fnuz"),
    "float8_e5m2": FloatFormat(5, 2, 15, "ieee"),
    "float8_e5m2fnuz": FloatFormat(5, 2, 16, "fnuz"),
    "float4_e2m1fn": FloatFormat(2, 1, 1, "none"),
    "float6_e2m3fn": FloatFormat(2, 3, 1, "none"),
    "float6_e3m2fn": FloatFormat(3, 2, 3, "none"),
}
E8M0 = "float8_e8m0fnu"
#: (bits, signed) of the sub-byte integers.
INT_FORMATS = {"int4": (4, True), "uint4": (4, False), "int2": (2, True), "uint2": (2, False)}
SMALL_FLOATS = tuple(FLOAT_FORMATS) + (E8M0,)
SMALL_INTS = tuple(INT_FORMATS)


def is_small_int(dtype: str) -> bool:
    return dtype in INT_FORMATS


def width(dtype: str) -> int:
    """Bits a value of ``dtype`` really has (BitCast needs equal widths): 8 for bool."""
    if dtype in FLOAT_FORMATS:
        return FLOAT_FORMATS[dtype].width
    if dtype in INT_FORMATS:
        return INT_FORMATS[dtype][0]
    return dtypes.bits(dtype)


def int_range(dtype: str) -> tuple[int, int]:
    """(lowest, highest) value of a sub-byte integer dtype."""
    bits, signed = INT_FORMATS[dtype]
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def max_finite(dtype: str) -> float:
    """The largest finite value of a small float dtype."""
    code = 0xFE if dtype == E8M0 else FLOAT_FORMATS[dtype].max_code
    return float(decode_array(np.array(code, np.uint8).view(dtypes.to_numpy(dtype))))


# -- the two evaluators -----------------------------------------------------------------
class TeOps:
    """The operations the conversions use, building tensor expressions."""

    const = staticmethod(te.const)
    select = staticmethod(te.if_then_else)
    cast = staticmethod(te.cast)
    reinterpret = staticmethod(te.reinterpret)
    round = staticmethod(te.round)  # half to even


class NpOps:
    """The same operations on NumPy arrays, with dlc's semantics."""

    @staticmethod
    def const(value, dtype):
        return np.asarray(value, dtypes.to_numpy(dtype))

    @staticmethod
    def select(cond, a, b):
        return np.where(cond, a, b)

    @staticmethod
    def cast(x, dtype):
        return dtypes.astype(np.asarray(x), dtype)

    @staticmethod
    def reinterpret(x, dtype):
        return np.ascontiguousarray(x).view(dtypes.to_numpy(dtype))

    @staticmethod
    def round(x):
        return np.rint(x)


# -- public entry points ----------------------------------------------------------------
def convert_expr(x, dst: str, saturate: bool = True, round_mode: str = "up"):
    """A tensor expression ``x`` converted to ``dst`` (any pair of dlc dtypes)."""
    return convert(TeOps, x, x.dtype, dst, saturate, round_mode)


def convert_array(x: np.ndarray, dst: str, saturate: bool = True,
                  round_mode: str = "up") -> np.ndarray:
    """NumPy twin of :func:`convert_expr`, bit for bit."""
    x = np.asarray(x)
    with np.errstate(all="ignore"):
        out = convert(NpOps, x, dtypes.canonical(x.dtype), dst, saturate, round_mode)
    return np.asarray(out, dtypes.to_numpy(dst)).reshape(x.shape)


def to_float32_expr(x):
    """A small-float (or any float) expression as float32, exactly."""
    return _to_float32(TeOps, x, x.dtype)


def decode_array(x: np.ndarray) -> np.ndarray:
    """NumPy: small-float values as float32, exactly."""
    x = np.asarray(x)
    with np.errstate(all="ignore"):
        return np.asarray(_to_float32(NpOps, x, dtypes.canonical(x.dtype))).reshape(x.shape)


def convert(ops, x, src: str, dst: str, saturate: bool = True, round_mode: str = "up"):
    """``x`` (of dtype ``src``) converted to ``dst`` with ``ops`` (TeOps or NpOps)."""
    if src == dst:
        return x
    if not dtypes.is_storage_only(src) and not dtypes.is_storage_only(dst):
        return ops.cast(x, dst)
    if is_small_int(dst):
        value = _to_int32(ops, x, src)
        if dtypes.is_float(src) or src in SMALL_FLOATS:
            value = _clamp_int(ops, value, dst)  # out of range: saturate, like wide integers
        return _encode_int(ops, value, dst)
    if dst == E8M0:
        return _encode_e8m0(ops, _to_float32(ops, x, src), saturate, round_mode)
    if dst in FLOAT_FORMATS:
        return _encode_float(ops, _to_float32(ops, x, src), dst, saturate)
    if is_small_int(src):
        return ops.cast(_decode_int(ops, x, src), dst)
    return ops.cast(_decode_float(ops, x, src), dst)


# -- to and from the standard dtypes ------------------------------------------------------
def _to_float32(ops, x, src: str):
    if src in SMALL_FLOATS:
        return _decode_float(ops, x, src)
    if src in INT_FORMATS:
        return ops.cast(_decode_int(ops, x, src), "float32")
    return ops.cast(x, "float32")


def _to_int32(ops, x, src: str):
    """Integers and bool exactly (wider ones keep their low 32 bits); floats truncated."""
    if src in INT_FORMATS:
        return _decode_int(ops, x, src)
    if src in SMALL_FLOATS:
        return ops.cast(_decode_float(ops, x, src), "int32")
    return ops.cast(x, "int32")


def _byte(ops, x, bits: int):
    """The low ``bits`` bits of a storage value's byte, as uint32."""
    b = ops.cast(ops.reinterpret(x, "uint8"), "uint32")
    return b if bits == 8 else b & ((1 << bits) - 1)


# -- sub-byte integers ------------------------------------------------------------------
def _decode_int(ops, x, src: str):
    bits, signed = INT_FORMATS[src]
    b = ops.cast(_byte(ops, x, bits), "int32")
    if signed:
        half = 1 << (bits - 1)
        b = (b ^ half) - half
    return b


def _clamp_int(ops, v, dst: str):
    """int32 ``v`` limited to the range of the sub-byte integer ``dst``."""
    lo, hi = (ops.const(limit, "int32") for limit in int_range(dst))
    return ops.select(v < lo, lo, ops.select(v > hi, hi, v))


def _encode_int(ops, v, dst: str):
    """The low bits of int32 ``v`` (wrapping, two's complement)."""
    bits, _ = INT_FORMATS[dst]
    code = ops.cast(v & ((1 << bits) - 1), "uint8")
    return ops.reinterpret(code, dst)


# -- small floats -----------------------------------------------------------------------
def _decode_float(ops, x, src: str):
    if src == E8M0:
        return _decode_e8m0(ops, x)
    f = FLOAT_FORMATS[src]
    u32 = _u32(ops)
    b = _byte(ops, x, f.width)
    sign = (b >> (f.width - 1)) << 31
    mag = b & ((1 << (f.width - 1)) - 1)
    exponent = mag >> f.man_bits
    normal = (mag << (23 - f.man_bits)) + ((127 - f.bias) << 23)
    tiny = ops.cast(mag, "float32") * ops.const(2.0 ** (1 - f.bias - f.man_bits), "float32")
    bits = ops.select(exponent == 0, ops.reinterpret(tiny, "uint32"), normal) | sign
    if f.special == "fn":
        bits = ops.select(mag == (1 << (f.width - 1)) - 1, u32(0x7FC00000) | sign, bits)
    elif f.special == "ieee":
        top = (1 << f.exp_bits) - 1
        special = ops.select(mag == top << f.man_bits, u32(0x7F800000), u32(0x7FC00000))
        bits = ops.select(exponent == top, special | sign, bits)
    elif f.special == "fnuz":
        bits = ops.select(b == 0x80, u32(0xFFC00000), bits)  # ml_dtypes' NaN (sign set)
    return ops.reinterpret(bits, "float32")


def _encode_float(ops, v, dst: str, saturate: bool):
    """float32 ``v`` -> ``dst``, rounding to nearest even (see the module docstring)."""
    f = FLOAT_FORMATS[dst]
    u32 = _u32(ops)
    bits = ops.reinterpret(v, "uint32")
    sign = bits >> 31
    mag = bits & 0x7FFFFFFF
    shift = 23 - f.man_bits
    # normal range: rebias, then round the integer to nearest even (carries into the
    # exponent are right); below it, the code of a subnormal is round(|v| / its ulp)
    rebiased = mag - ((127 - f.bias) << 23)
    normal = (rebiased + ((1 << (shift - 1)) - 1) + ((rebiased >> shift) & 1)) >> shift
    scaled = ops.reinterpret(mag, "float32") * ops.const(2.0 ** (f.bias - 1 + f.man_bits),
                                                        "float32")
    tiny = ops.cast(ops.round(scaled), "uint32")
    code = ops.select(mag < (128 - f.bias) << 23, tiny, normal)
    if saturate or f.special == "none":
        overflow = u32(f.max_code)
    else:
        overflow = u32({"ieee": f.max_code + 1, "fn": f.max_code + 1, "fnuz": 0x80}[f.special])
    code = ops.select(code > f.max_code, overflow, code)
    signed = code | (sign << (f.width - 1))
    if f.special == "fnuz":
        signed = ops.select(code == 0, u32(0), signed)  # no -0
    code = signed
    nan = {"fn": u32(0x7F) | (sign << 7), "ieee": u32(0x7E) | (sign << 7),
           "fnuz": u32(0x80), "none": u32(0)}[f.special]
    code = ops.select(mag > 0x7F800000, nan, code)
    return ops.reinterpret(ops.cast(code, "uint8"), dst)


def _decode_e8m0(ops, x):
    u32 = _u32(ops)
    b = _byte(ops, x, 8)
    bits = ops.select(b == 0, u32(0x00400000), b << 23)  # 2**-127 is a float32 subnormal
    bits = ops.select(b == 0xFF, u32(0x7FC00000), bits)
    return ops.reinterpret(bits, "float32")


def _encode_e8m0(ops, v, saturate: bool, round_mode: str):
    """float32 ``v`` -> float8_e8m0fnu, the sign ignored (see the module docstring)."""
    if round_mode not in ROUND_MODES:
        raise ValueError(f"round_mode {round_mode!r}; expected one of {ROUND_MODES}")
    def i32(value):
        return ops.const(value, "int32")

    mag = ops.reinterpret(v, "uint32") & 0x7FFFFFFF
    # float32 subnormals (and 0): scale by 2**64 (exactly) to read their exponent
    sub = mag < 0x00800000
    scaled = ops.reinterpret(ops.reinterpret(mag, "float32") * ops.const(2.0 ** 64, "float32"),
                             "uint32")
    norm = ops.select(sub, scaled, mag)
    exponent = ops.cast(norm >> 23, "int32") - ops.select(sub, i32(64), i32(0))
    fraction = norm & 0x7FFFFF
    if round_mode == "up":
        code = exponent + ops.cast(fraction != 0, "int32")
    elif round_mode == "nearest":
        code = exponent + ops.cast(fraction >= 0x400000, "int32")
    else:
        code = exponent
    low, high = (0, 0xFE) if saturate else (0xFF, 0xFF)
    code = ops.select(code < 0, i32(low), ops.select(code > 0xFE, i32(high), code))
    code = ops.select(mag == 0x7F800000, i32(high), code)
    code = ops.select(mag > 0x7F800000, i32(0xFF), code)
    return ops.reinterpret(ops.cast(code, "uint8"), E8M0)


def _u32(ops):
    return lambda value: ops.const(value, "uint32")
