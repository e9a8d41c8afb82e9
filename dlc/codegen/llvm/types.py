"""Mapping of dlc dtypes to LLVM types, in registers and in memory."""

from __future__ import annotations

import llvmlite.ir as ir

from dlc.errors import CodegenError

I1, I8, I16, I32, I64 = (ir.IntType(b) for b in (1, 8, 16, 32, 64))
F16, F32, F64 = ir.HalfType(), ir.FloatType(), ir.DoubleType()
PTR = ir.PointerType()
VOID = ir.VoidType()

_REGISTER = {
    "bool": I1, "int8": I8, "uint8": I8, "int16": I16, "uint16": I16, "int32": I32,
    "uint32": I32, "int64": I64, "uint64": I64, "float16": F16, "float32": F32,
    "float64": F64,
    # bfloat16 values live in float registers; memory holds the upper 16 bits
    "bfloat16": F32,
}
_REGISTER.update({name: I8 for name in (
    "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu",
    "float4_e2m1fn", "float6_e2m3fn", "float6_e3m2fn", "int4", "uint4", "int2", "uint2")})
_MEMORY = dict(_REGISTER, bool=I8, bfloat16=I16)


def reg_type(dtype: str, lanes: int = 1):
    """The LLVM type of a value of ``dtype`` in registers."""
    try:
        base = _REGISTER[dtype]
    except KeyError:
        raise CodegenError(f"no LLVM type for dtype {dtype!r}") from None
    return base if lanes == 1 else ir.VectorType(base, lanes)


def mem_type(dtype: str, lanes: int = 1):
    """The LLVM type of ``dtype`` as stored in memory."""
    base = _MEMORY[dtype]
    return base if lanes == 1 else ir.VectorType(base, lanes)
