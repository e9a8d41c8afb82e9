"""Math functions for the LLVM code generator: one entry point, `emit_math`.

    y = emit_math(builder, "tanh", [x], "float32")   # x: float or <N x float>

How each function is built, by dtype:

* float32: exp, exp_nonpositive, exp2, expm1, log, log2, log10, log1p, tanh, sigmoid, erf,
  sinh and cosh are inline polynomial kernels (mathlib_f32.py) that vectorize to packed
  instructions with no call. sqrt, rsqrt, abs, floor, ceil, round (half to even), trunc,
  fmin, fmax and fmod are LLVM intrinsics or instructions (x86 has no vector fmod: the
  backend calls fmodf per lane for `frem`). pow and the trigonometric and inverse hyperbolic
  functions call libm's float functions (sinf, powf, ...), one call per vector lane.
* float64: the same intrinsics; everything else calls libm's double functions lane by lane.
  sigmoid is e/(1+e) with e = exp(-|x|), exact enough at both ends; exp_nonpositive is
  libm's exp of min(x, 0) with the flush of the float32 kernel.
* float16, bfloat16: extended to float32, computed as above, rounded back to nearest even
  (bfloat16 by integer rounding, which keeps subnormal results; see `_round_to_bfloat`).
  llvmlite has no bfloat type: `BFloatType` below stands in for it.

fmin/fmax ignore a NaN operand (like numpy.fmin/fmax); fmod has C semantics (the result takes
the dividend's sign); rsqrt is an exact 1/sqrt(x). libm functions are declared once per module.
"""

from __future__ import annotations

from llvmlite import ir

from dlc.codegen.llvm.mathlib_f32 import F32, KERNELS, Ops, declare
from dlc.errors import CodegenError
from dlc.te.intrinsics import EXP_NONPOSITIVE_MIN

#: Number of arguments of every supported function.
ARITY = {
    **{name: 1 for name in (
        "exp", "exp_nonpositive", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "erf", "abs",
        "floor", "ceil",
        "round", "trunc", "exp2", "log2", "log10", "log1p", "expm1", "sin", "cos", "tan",
        "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh")},
    **{name: 2 for name in ("pow", "fmin", "fmax", "atan2", "fmod")},
}

# Functions that map onto one LLVM intrinsic, which lowers to vector instructions.
_INTRINSICS = {
    "sqrt": "llvm.sqrt", "abs": "llvm.fabs", "floor": "llvm.floor", "ceil": "llvm.ceil",
    "round": "llvm.roundeven", "trunc": "llvm.trunc", "fmin": "llvm.minnum",
    "fmax": "llvm.maxnum",
}

# LLVM's spelling of each element type, by dtype.
_ELEMENT = {"float16": "half", "bfloat16": "bfloat", "float32": "float", "float64": "double"}


class BFloatType(ir.Type):
    """LLVM's `bfloat` type, which llvmlite.ir lacks. Values of this type (or vectors of it)
    can be passed to `emit_math` with dtype "bfloat16"."""

    intrinsic_name = "bf16"

    def _to_string(self) -> str:
        return "bfloat"

    def __eq__(self, other) -> bool:
        return isinstance(other, BFloatType)

    def __hash__(self) -> int:
        return hash(BFloatType)


def emit_math(builder: ir.IRBuilder, name: str, args: list[ir.Value], dtype: str) -> ir.Value:
    """Emit `name(*args)` at the builder's position and return the result.

    Every argument has one type: the scalar type of `dtype` ("float32", "float64", "float16"
    or "bfloat16") or a vector of it; the result has that type too.
    """
    ty = _check(name, args, dtype)
    if dtype in ("float16", "bfloat16"):
        wide = ir.VectorType(F32, ty.count) if isinstance(ty, ir.VectorType) else F32
        if dtype == "bfloat16":
            result = _emit(builder, name, [_widen_bfloat(builder, a, wide) for a in args],
                           "float32")
            return _round_to_bfloat(Ops(builder, wide), result, ty)
        result = _emit(builder, name, [builder.fpext(a, wide) for a in args], "float32")
        return builder.fptrunc(result, ty)
    return _emit(builder, name, list(args), dtype)


def _widen_bfloat(builder: ir.IRBuilder, x: ir.Value, wide: ir.Type) -> ir.Value:
    """bfloat16 -> float32 by moving the bits up (exact). Not ``fpext``: LLVM would narrow
    ``roundeven(fpext x)`` or ``maxnum(fpext x, fpext y)`` back to bfloat operations, which
    CPUs without AVX512-BF16 legalize through a call to ``__truncsfbf2``, a libgcc routine
    older GCCs (12) do not ship."""
    count = wide.count if isinstance(wide, ir.VectorType) else None
    i16 = ir.VectorType(ir.IntType(16), count) if count else ir.IntType(16)
    i32 = ir.VectorType(ir.IntType(32), count) if count else ir.IntType(32)
    bits = builder.zext(builder.bitcast(x, i16), i32)
    shift = ir.Constant(i32, [16] * count) if count else ir.Constant(i32, 16)
    return builder.bitcast(builder.shl(bits, shift), wide)


def _round_to_bfloat(o: Ops, x: ir.Value, ty: ir.Type) -> ir.Value:
    """float32 -> bfloat16, rounding to nearest even and keeping subnormals and NaN.

    LLVM's `fptrunc` to bfloat becomes VCVTNEPS2BF16 on AVX512-BF16 CPUs, which flushes
    subnormal results to zero; this bit manipulation rounds like NumPy's ml_dtypes everywhere.
    """
    bits = o.to_bits(x)
    odd = o.b.and_(o.b.lshr(bits, o.iconst(16)), o.iconst(1))
    rounded = o.b.add(bits, o.b.add(o.iconst(0x7FFF), odd))
    quiet_nan = o.b.or_(bits, o.iconst(0x400000))
    kept = o.b.lshr(o.select(o.isnan(x), quiet_nan, rounded), o.iconst(16))
    i16 = ir.VectorType(ir.IntType(16), ty.count) if isinstance(ty, ir.VectorType) \
        else ir.IntType(16)
    return o.b.bitcast(o.b.trunc(kept, i16), ty)


def _check(name: str, args: list[ir.Value], dtype: str) -> ir.Type:
    """The common type of args, after checking the call is one dlc can emit."""
    if name not in ARITY:
        raise CodegenError(f"unknown math function {name!r}: the LLVM backend supports "
                           f"{', '.join(sorted(ARITY))}")
    if dtype not in _ELEMENT:
        raise CodegenError(f"math function {name} needs a floating-point dtype "
                           f"({', '.join(_ELEMENT)}), not {dtype!r}; cast the input first")
    if len(args) != ARITY[name]:
        raise CodegenError(f"math function {name} takes {ARITY[name]} argument(s), "
                           f"got {len(args)} (a dlc bug)")
    ty = args[0].type
    elem = ty.element if isinstance(ty, ir.VectorType) else ty
    if str(elem) != _ELEMENT[dtype] or any(a.type != ty for a in args):
        got = ", ".join(str(a.type) for a in args)
        raise CodegenError(f"math function {name} for {dtype} got arguments of type {got}; "
                           f"expected {_ELEMENT[dtype]} or a vector of it (a dlc bug)")
    return ty


def _emit(builder: ir.IRBuilder, name: str, args: list[ir.Value], dtype: str) -> ir.Value:
    o = Ops(builder, args[0].type)
    if name in _INTRINSICS:
        return o.intrinsic(_INTRINSICS[name], *args)
    if name == "rsqrt":
        return o.div(o.const(1.0), o.intrinsic("llvm.sqrt", args[0]))
    if name == "fmod":
        return builder.frem(args[0], args[1])
    if dtype == "float32" and name in KERNELS:
        return KERNELS[name](o, args[0])
    if dtype == "float64" and name == "sigmoid":
        return _sigmoid_libm(o, args[0])
    if dtype == "float64" and name == "exp_nonpositive":
        x = args[0]
        e = call_libm(builder, "exp", [o.select(o.cmp(">", x, o.const(0.0)), o.const(0.0), x)])
        return o.select(o.cmp("<", x, o.const(EXP_NONPOSITIVE_MIN)), o.const(0.0), e)
    return call_libm(builder, name + ("f" if dtype == "float32" else ""), args)


def _sigmoid_libm(o: Ops, x: ir.Value) -> ir.Value:
    """1/(1+e) for x >= 0 and e/(1+e) below, with e = exp(-|x|): never inf/inf, and tiny
    (not 0) for very negative x."""
    e = call_libm(o.b, "exp", [o.b.fneg(o.abs(x))])
    r = o.div(o.const(1.0), o.add(o.const(1.0), e))
    return o.select(o.cmp(">=", x, o.const(0.0)), r, o.mul(e, r))


def call_libm(builder: ir.IRBuilder, fname: str, args: list[ir.Value]) -> ir.Value:
    """Call the scalar libm function `fname`, once per lane when the arguments are vectors."""
    ty = args[0].type
    if not isinstance(ty, ir.VectorType):
        fn = declare(builder.module, fname, ty, [ty] * len(args))
        return builder.call(fn, args)
    fn = declare(builder.module, fname, ty.element, [ty.element] * len(args))
    out = ir.Constant(ty, ir.Undefined)
    for lane in range(ty.count):
        index = ir.Constant(ir.IntType(32), lane)
        value = builder.call(fn, [builder.extract_element(a, index) for a in args])
        out = builder.insert_element(out, value, index)
    return out
