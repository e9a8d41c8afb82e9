"""Cast, CastLike and BitCast: conversions between dtypes.

Value conversions follow ONNX (integers wrap, floats round to nearest even, anything nonzero
or NaN is true). Where ONNX leaves the result undefined, dlc's choice, the same for every
integer width from 2 to 64 bits: a float truncates toward zero, a value outside the integer
dtype's range saturates to its nearest limit (infinities too), and NaN becomes 0 (LLVM's
``fptosi.sat``). Casts to bfloat16 go through float32. The storage-only ML dtypes (float8,
float4, float6, int4, int2, ...) convert as described in ``dlc.ops.small_floats``, where
``saturate`` (float8 targets) and ``round_mode`` (float8_e8m0fnu targets) apply. The table
is in docs/onnx_support.md, "Where the spec leaves the result undefined".
"""

from __future__ import annotations

import numpy as np

from dlc import dtypes, te
from dlc.errors import DlcTypeError
from dlc.ops import small_floats as sf
from dlc.ops.common import np_dtype, out_type
from dlc.ops.registry import ALL, ELEMWISE, REQUIRED, OpDef, check_dtype, register

ROUND_MODES = sf.ROUND_MODES
#: Every dtype Cast and BitCast accept.
ANY = ALL + dtypes.STORAGE_DTYPES


def cast_array(x: np.ndarray, dtype: str, saturate: bool = True,
               round_mode: str = "up") -> np.ndarray:
    """``x`` converted to ``dtype`` with dlc's semantics (see the module docstring)."""
    return sf.convert_array(x, dtype, saturate, round_mode)


class CastBase(OpDef):
    pattern = ELEMWISE
    attrs = {"saturate": 1, "round_mode": "up"}

    def target(self, ctx) -> str:
        raise NotImplementedError

    def infer(self, ctx):
        check_dtype(ctx, 0, ANY)
        if ctx.attrs["round_mode"] not in ROUND_MODES:
            raise ctx.error(f"round_mode must be one of {', '.join(ROUND_MODES)}, got "
                            f"{ctx.attrs['round_mode']!r}")
        if ctx.attrs["saturate"] not in (0, 1):
            raise ctx.error(f"saturate must be 0 or 1, got {ctx.attrs['saturate']}")
        return [out_type(ctx.type(0).shape, self.target(ctx))]

    def reference(self, ctx, x, *_):
        return [cast_array(x, ctx.out_types[0].dtype, bool(ctx.attrs["saturate"]),
                           ctx.attrs["round_mode"])]

    def compute(self, ctx, x, *_):
        dtype = ctx.out_types[0].dtype
        saturate, mode = bool(ctx.attrs["saturate"]), ctx.attrs["round_mode"]
        return [te.compute(x.shape, lambda *i: sf.convert_expr(x[i], dtype, saturate, mode),
                           name=ctx.name or self.name)]


@register
class Cast(CastBase):
    """Convert to the dtype ``to`` (a dlc dtype name such as "float16")."""

    name = "Cast"
    attrs = dict(CastBase.attrs, to=REQUIRED)

    def target(self, ctx):
        return _dtype_attr(ctx)


@register
class CastLike(CastBase):
    """Convert to the dtype of the second input (whose values are not read)."""

    name = "CastLike"
    num_inputs = (2, 2)

    def target(self, ctx):
        return ctx.type(1).dtype


@register
class BitCast(OpDef):
    """Reinterpret the bits of each element as the dtype ``to`` of the same width (a
    nonzero byte is a true bool; int4, uint4 and float4_e2m1fn are 4 bits wide, the
    float6 types 6, int2 and uint2 2)."""

    name = "BitCast"
    pattern = ELEMWISE
    attrs = {"to": REQUIRED}

    def infer(self, ctx):
        src = check_dtype(ctx, 0, ANY)
        dst = _dtype_attr(ctx)
        if sf.width(src) != sf.width(dst):
            raise ctx.error(f"cannot reinterpret {src} ({sf.width(src)} bits) as {dst} "
                            f"({sf.width(dst)} bits); the sizes must match")
        return [out_type(ctx.type(0).shape, dst)]

    def reference(self, ctx, x):
        src, dst = dtypes.canonical(x.dtype), ctx.out_types[0].dtype
        if dst == "bool":
            return [x.view(np.uint8) != 0]
        if dtypes.is_storage_only(src) or dtypes.is_storage_only(dst):
            byte = x.astype(np.uint8) if src == "bool" else np.ascontiguousarray(x).view(np.uint8)
            return [(byte & ((1 << sf.width(dst)) - 1)).astype(np.uint8).view(np_dtype(dst))]
        return [np.ascontiguousarray(x).view(np_dtype(dst))]

    def compute(self, ctx, x):
        dst = ctx.out_types[0].dtype

        def body(*i):
            v = x[i]
            if dst == "bool":
                return te.reinterpret(v, "uint8") != 0 if v.dtype != "bool" else v
            if dtypes.is_storage_only(v.dtype) or dtypes.is_storage_only(dst):
                byte = te.cast(v, "uint8") if v.dtype == "bool" else te.reinterpret(v, "uint8")
                if sf.width(dst) < 8:
                    byte = byte & ((1 << sf.width(dst)) - 1)
                return te.reinterpret(byte, dst)
            if v.dtype == "bool":
                return te.cast(v, dst)
            if "bfloat16" in (v.dtype, dst) and dtypes.is_float(v.dtype) and \
                    dtypes.is_float(dst):  # float <-> bfloat16: through the integer bits
                return te.reinterpret(te.reinterpret(v, "uint16"), dst)
            return te.reinterpret(v, dst)

        return [te.compute(x.shape, body, name=ctx.name or self.name)]


def _dtype_attr(ctx) -> str:
    to = ctx.attrs["to"]
    try:
        return dtypes.canonical(to)
    except DlcTypeError:
        raise ctx.error(f"to={to!r} is not a dtype; expected one of "
                        f"{', '.join(dtypes.ALL_DTYPES)}") from None
