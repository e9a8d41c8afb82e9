"""Cast, CastLike and BitCast: conversions between dtypes.

Value conversions follow NumPy's ``astype`` (integers wrap, floats round to nearest even,
anything nonzero or NaN is true), except where ONNX leaves the result undefined: a float
outside an integer dtype's range saturates to its limits and NaN becomes 0 (what the code
generator's saturating conversions give). ``saturate`` and ``round_mode`` concern only
8-bit float dtypes, which dlc does not have; they are accepted and checked.
"""

from __future__ import annotations

import numpy as np

from dlc import dtypes, te
from dlc.errors import DlcTypeError
from dlc.ops.common import np_dtype, out_type
from dlc.ops.registry import ALL, ELEMWISE, REQUIRED, OpDef, check_dtype, register

ROUND_MODES = ("up", "down", "nearest")


def cast_array(x: np.ndarray, dtype: str) -> np.ndarray:
    """``x`` converted to ``dtype`` with dlc's semantics (see the module docstring)."""
    src = dtypes.canonical(x.dtype)
    if not (dtypes.is_float(src) and dtypes.is_int(dtype)):
        return np.asarray(x).astype(np_dtype(dtype))
    wide = np.asarray(x).astype(np.float64)
    lo, hi = dtypes.min_value(dtype), dtypes.max_value(dtype)
    out = np.zeros(wide.shape, np_dtype(dtype))
    inside = (wide > lo - 1) & (wide < hi + 1)  # both bounds are exact in float64
    out[inside] = np.trunc(wide[inside]).astype(np_dtype(dtype))
    out[wide >= hi + 1] = hi
    out[wide <= lo - 1] = lo
    return out


class CastBase(OpDef):
    pattern = ELEMWISE
    attrs = {"saturate": 1, "round_mode": "up"}

    def target(self, ctx) -> str:
        raise NotImplementedError

    def infer(self, ctx):
        check_dtype(ctx, 0, ALL)
        if ctx.attrs["round_mode"] not in ROUND_MODES:
            raise ctx.error(f"round_mode must be one of {', '.join(ROUND_MODES)}, got "
                            f"{ctx.attrs['round_mode']!r}")
        if ctx.attrs["saturate"] not in (0, 1):
            raise ctx.error(f"saturate must be 0 or 1, got {ctx.attrs['saturate']}")
        return [out_type(ctx.type(0).shape, self.target(ctx))]

    def reference(self, ctx, x, *_):
        return [cast_array(x, ctx.out_types[0].dtype)]

    def compute(self, ctx, x, *_):
        dtype = ctx.out_types[0].dtype
        return [te.compute(x.shape, lambda *i: te.cast(x[i], dtype),
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
    """Reinterpret the bits of each element as the dtype ``to`` of the same size (a
    nonzero byte is a true bool)."""

    name = "BitCast"
    pattern = ELEMWISE
    attrs = {"to": REQUIRED}

    def infer(self, ctx):
        src = check_dtype(ctx, 0, ALL)
        dst = _dtype_attr(ctx)
        if dtypes.bits(src) != dtypes.bits(dst):
            raise ctx.error(f"cannot reinterpret {src} ({dtypes.bits(src)} bits) as {dst} "
                            f"({dtypes.bits(dst)} bits); the sizes must match")
        return [out_type(ctx.type(0).shape, dst)]

    def reference(self, ctx, x):
        dst = ctx.out_types[0].dtype
        if dst == "bool":
            return [x.view(np.uint8) != 0]
        return [np.ascontiguousarray(x).view(np_dtype(dst))]

    def compute(self, ctx, x):
        dst = ctx.out_types[0].dtype

        def body(*i):
            v = x[i]
            if v.dtype == "bool":
                return te.cast(v, dst) if dst != "bool" else v
            if dst == "bool":
                return v != 0
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
