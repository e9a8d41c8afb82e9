"""Inline, vectorizable float32 math kernels: exp, log, tanh, sigmoid, erf and their relatives.

Every kernel here is straight-line LLVM IR (multiply-adds, compares, selects and bit tricks
through `bitcast` to i32), so a `<16 x float>` argument becomes a few dozen packed AVX-512
instructions and no libm call. Each kernel works on a scalar `float` or any `<N x float>`.

Accuracy, measured against NumPy's float32 functions by tests/codegen/test_mathlib.py, is a
few ulp: far inside the 1e-6 relative-or-absolute budget. Special values follow NumPy:
exp(-inf)=0, exp(inf)=inf, log(0)=-inf, log(x<0)=NaN, tanh(-0)=-0, NaN in gives NaN out.
Subnormal results are computed, not flushed: exp scales by 2^n in two exact steps, so
exp(-100) is the subnormal 3.7e-44 (rounded once), as in NumPy, rather than 0. The one
exception is exp_nonpositive, softmax's exponential, which is 0 below 2^-125 by definition
(see dlc.te.intrinsics.np_exp_nonpositive).

The polynomial coefficients were fitted for dlc (weighted least squares on Chebyshev nodes,
then rounded to float32); the range reductions are the classic Cody-Waite and frexp ones.
No fast-math flags are used anywhere: they would license LLVM to drop the NaN/inf handling.
"""

from __future__ import annotations

from llvmlite import ir

from dlc.te.intrinsics import EXP_NONPOSITIVE_MIN

F32 = ir.FloatType()

LN2 = 0.6931471805599453
LN2_HI = 0.693359375  # 9 significant bits: n * LN2_HI is exact for |n| < 2**15
LN2_LO = -2.1219444005469057e-04  # LN2 - LN2_HI
LOG2E = 1.4426950408889634

# e^r = 1 + r + r^2 * EXP_Q(r) on |r| <= ln2/2
EXP_Q = (0.5, 0.16666578, 0.041666854, 0.0083631445, 0.0013901271)
# log(1+f) = f - f^2/2 + f^3 * LOG_G(f) on sqrt(1/2)-1 <= f < sqrt(2)-1
LOG_G = (0.3333333, -0.24999994, 0.20000714, -0.16668056, 0.1424932, -0.12420172,
         0.11677051, -0.11514416, 0.07037301)
# tanh(x) = x + x^3 * TANH_P(x^2) on |x| < 0.625
TANH_P = (-0.33333328, 0.13332771, -0.053851068, 0.020997746, -0.006097383)
# sinh(x) = x + x^3 * SINH_P(x^2) on |x| < 1
SINH_P = (0.16666667, 0.008333339, 0.00019838125, 2.8061265e-06)
# erf(x) = x * ERF_P(x^2) on |x| < 1.25
ERF_P = (1.1283791, -0.3761248, 0.11282196, -0.026804956, 0.005110036, -0.0007426298,
         6.202841e-05)
# erfc(x) = exp(-x^2) * ERFC_P(1/x) on 1.25 <= x <= 4 (erf(x) rounds to 1 beyond 4)
ERFC_P = (0.00023408483, 0.55954885, 0.039241854, -0.46459457, 0.49107727, -0.25276336,
          0.054884594)


def intrinsic_suffix(ty: ir.Type) -> str:
    """LLVM's overload suffix of a type: f32, f64, v16f32."""
    if isinstance(ty, ir.VectorType):
        return f"v{ty.count}{intrinsic_suffix(ty.element)}"
    return ty.intrinsic_name


def declare(module: ir.Module, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
    """The function `name` of `module`, declared on first use."""
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    return ir.Function(module, ir.FunctionType(ret, args), name=name)


class Ops:
    """Float arithmetic on one LLVM type (scalar or vector) with constants splatted to it."""

    def __init__(self, builder: ir.IRBuilder, ty: ir.Type):
        self.b = builder
        self.ty = ty
        vec = isinstance(ty, ir.VectorType)
        elem = ty.element if vec else ty
        width = {"half": 16, "bfloat": 16, "float": 32, "double": 64}[str(elem)]
        self.ity = ir.VectorType(ir.IntType(width), ty.count) if vec else ir.IntType(width)

    def const(self, value: float) -> ir.Constant:
        if isinstance(self.ty, ir.VectorType):
            return ir.Constant(self.ty, [value] * self.ty.count)
        return ir.Constant(self.ty, value)

    def iconst(self, value: int) -> ir.Constant:
        if isinstance(self.ity, ir.VectorType):
            return ir.Constant(self.ity, [value] * self.ity.count)
        return ir.Constant(self.ity, value)

    def intrinsic(self, name: str, *args: ir.Value) -> ir.Value:
        fn = declare(self.b.module, f"{name}.{intrinsic_suffix(self.ty)}", self.ty,
                     [self.ty] * len(args))
        return self.b.call(fn, list(args))

    # arithmetic
    def add(self, a, b):
        return self.b.fadd(a, b)

    def sub(self, a, b):
        return self.b.fsub(a, b)

    def mul(self, a, b):
        return self.b.fmul(a, b)

    def div(self, a, b):
        return self.b.fdiv(a, b)

    def fma(self, a, b, c):
        """a*b + c, fused where the target has FMA (llvm.fmuladd never becomes a call)."""
        return self.intrinsic("llvm.fmuladd", a, b, c)

    def horner(self, x, coeffs):
        """coeffs[0] + coeffs[1]*x + coeffs[2]*x^2 + ..."""
        acc = self.const(coeffs[-1])
        for c in reversed(coeffs[:-1]):
            acc = self.fma(acc, x, self.const(c))
        return acc

    def abs(self, x):
        return self.intrinsic("llvm.fabs", x)

    def copysign(self, mag, sign):
        return self.intrinsic("llvm.copysign", mag, sign)

    # comparisons and selects (ordered compares are false for NaN)
    def cmp(self, op: str, a, b):
        return self.b.fcmp_ordered(op, a, b)

    def isnan(self, x):
        return self.b.fcmp_unordered("uno", x, x)

    def select(self, cond, a, b):
        return self.b.select(cond, a, b)

    def clamp(self, x, lo: float, hi: float):
        """x limited to [lo, hi]; NaN becomes hi (callers restore NaN at the end)."""
        x = self.select(self.cmp("<", x, self.const(hi)), x, self.const(hi))
        return self.select(self.cmp(">", x, self.const(lo)), x, self.const(lo))

    # bits
    def to_bits(self, x):
        return self.b.bitcast(x, self.ity)

    def from_bits(self, i):
        return self.b.bitcast(i, self.ty)

    def round_int(self, y):
        """round-half-even(y) as (float, i32) for |y| < 2**22: adding 1.5 * 2**23 leaves the
        integer in the low mantissa bits. No roundeven call, even on SSE2-only targets."""
        shifted = self.add(y, self.const(12582912.0))
        n_int = self.b.sub(self.to_bits(shifted), self.iconst(0x4B400000))
        return self.sub(shifted, self.const(12582912.0)), n_int

    def pow2(self, n):
        """2**n as a float, for integer n in [-126, 127]."""
        biased = self.b.add(n, self.iconst(127))
        return self.from_bits(self.b.shl(biased, self.iconst(23)))


# ---------------------------------------------------------------------------- exp family

def exp_reduce(o: Ops, x, lo: float, hi: float):
    """Split clamp(x, lo, hi) = n*ln2 + r, |r| <= ln2/2; return (e^r - 1, n as i32)."""
    x = o.clamp(x, lo, hi)
    n, n_int = o.round_int(o.mul(x, o.const(LOG2E)))
    r = o.fma(n, o.const(-LN2_HI), x)  # exact: n*LN2_HI has at most 17 bits
    r = o.fma(n, o.const(-LN2_LO), r)
    em1 = o.fma(o.mul(r, r), o.horner(r, EXP_Q), r)
    return em1, n_int


def scale(o: Ops, p, n):
    """p * 2**n for n in [-252, 254], in two exact steps so subnormal results round once."""
    half = o.b.ashr(n, o.iconst(1))
    return o.mul(o.mul(p, o.pow2(half)), o.pow2(o.b.sub(n, half)))


def exp(o: Ops, x):
    """e^x. Clamping to [-104, 89] keeps 2^n representable; the clamp ends still round to
    0 and inf, so only NaN needs a select."""
    em1, n = exp_reduce(o, x, -104.0, 89.0)
    y = scale(o, o.add(em1, o.const(1.0)), n)
    return o.select(o.isnan(x), x, y)


def exp_nonpositive(o: Ops, x):
    """e^min(x, 0), with results below 2^-125 (x < EXP_NONPOSITIVE_MIN) flushed to +0: the
    exponential of softmax's ``x - max(x)``, in about two thirds of exp's instructions.

    The argument never exceeds 0, so nothing overflows, and every result kept is normal: 2^n
    scales in one step (n in [-125, 0]). NaN needs no select: ``min`` keeps it, and NaN
    times the (arbitrary) scale is NaN; the flush compare is ordered, so NaN is kept."""
    x = o.select(o.cmp(">", x, o.const(0.0)), o.const(0.0), x)
    n, n_int = o.round_int(o.mul(x, o.const(LOG2E)))
    r = o.fma(n, o.const(-LN2_HI), x)
    r = o.fma(n, o.const(-LN2_LO), r)
    p = o.add(o.fma(o.mul(r, r), o.horner(r, EXP_Q), r), o.const(1.0))
    y = o.mul(p, o.pow2(n_int))
    return o.select(o.cmp("<", x, o.const(EXP_NONPOSITIVE_MIN)), o.const(0.0), y)


def exp2(o: Ops, x):
    """2^x = 2^n * e^(f*ln2) with n = round(x), f = x - n exact."""
    x_c = o.clamp(x, -151.0, 129.0)
    n, n_int = o.round_int(x_c)
    r = o.mul(o.sub(x_c, n), o.const(LN2))
    em1 = o.fma(o.mul(r, r), o.horner(r, EXP_Q), r)
    y = scale(o, o.add(em1, o.const(1.0)), n_int)
    return o.select(o.isnan(x), x, y)


def expm1(o: Ops, x):
    """e^x - 1 = 2^n*(e^r - 1) + (2^n - 1): accurate near 0, where e^x - 1 cancels."""
    em1, n = exp_reduce(o, x, -104.0, 89.0)
    n_small = o.b.select(o.b.icmp_signed("<", n, o.iconst(-30)), o.iconst(-30), n)
    s = o.pow2(n_small)  # n < -30 gives -1 either way
    small = o.fma(s, em1, o.sub(s, o.const(1.0)))
    big = scale(o, o.add(em1, o.const(1.0)), n)  # n > 30: e^x - 1 rounds to e^x
    y = o.select(o.b.icmp_signed(">", n, o.iconst(30)), big, small)
    return o.select(o.b.or_(o.isnan(x), o.cmp("==", x, o.const(0.0))), x, y)


def half_exp(o: Ops, a):
    """e^a / 2 for 0 <= a, finite up to a ~ 89.4 (where sinh and cosh overflow)."""
    em1, n = exp_reduce(o, a, -1.0, 90.0)
    return scale(o, o.add(em1, o.const(1.0)), o.b.sub(n, o.iconst(1)))


def sinh(o: Ops, x):
    a = o.abs(x)
    x2 = o.mul(x, x)
    small = o.fma(o.mul(x, x2), o.horner(x2, SINH_P), x)
    h = half_exp(o, a)
    big = o.copysign(o.sub(h, o.div(o.const(0.25), h)), x)
    y = o.select(o.cmp("<", a, o.const(1.0)), small, big)
    return o.select(o.isnan(x), x, y)


def cosh(o: Ops, x):
    h = half_exp(o, o.abs(x))
    y = o.add(h, o.div(o.const(0.25), h))
    return o.select(o.isnan(x), x, y)


def sigmoid(o: Ops, x):
    """1/(1+e^-x) for x >= 0, e^x/(1+e^x) for x < 0: tiny, not 0 or NaN, for very negative x."""
    e = exp(o, o.b.fneg(o.abs(x)))
    r = o.div(o.const(1.0), o.add(o.const(1.0), e))
    return o.select(o.cmp(">=", x, o.const(0.0)), r, o.mul(e, r))


def tanh(o: Ops, x):
    """Odd polynomial below 0.625, 1 - 2/(e^2|x| + 1) above (no cancellation there)."""
    a = o.abs(x)
    a2 = o.mul(a, a)
    small = o.fma(o.mul(a, a2), o.horner(a2, TANH_P), a)
    e = exp(o, o.add(a, a))
    big = o.sub(o.const(1.0), o.div(o.const(2.0), o.add(e, o.const(1.0))))
    return o.copysign(o.select(o.cmp("<", a, o.const(0.625)), small, big), x)  # keeps -0.0


def erf(o: Ops, x):
    """x*P(x^2) below 1.25; 1 - e^(-x^2) * Q(1/x) up to 4; 1 beyond (erf rounds to 1)."""
    a = o.abs(x)
    small = o.mul(x, o.horner(o.mul(x, x), ERF_P))
    a_c = o.clamp(a, 1.0, 4.0)
    erfc = o.mul(exp(o, o.b.fneg(o.mul(a_c, a_c))),
                 o.horner(o.div(o.const(1.0), a_c), ERFC_P))
    big = o.copysign(o.sub(o.const(1.0), erfc), x)
    y = o.select(o.cmp("<", a, o.const(1.25)), small, big)
    return o.select(o.isnan(x), x, y)


# ---------------------------------------------------------------------------- log family

def log_reduce(o: Ops, x):
    """Split x > 0 (subnormals included) as 2^e * (1 + f), sqrt(1/2) <= 1 + f < sqrt(2).
    Return (e as float, log(1 + f))."""
    tiny = o.cmp("<", x, o.const(1.1754944e-38))
    x = o.select(tiny, o.mul(x, o.const(8388608.0)), x)  # * 2^23: exact, now normal
    bits = o.to_bits(x)
    e = o.b.ashr(o.b.sub(bits, o.iconst(0x3F3504F3)), o.iconst(23))  # 0x3F3504F3: sqrt(1/2)
    f = o.sub(o.from_bits(o.b.sub(bits, o.b.shl(e, o.iconst(23)))), o.const(1.0))
    e_f = o.sub(o.b.sitofp(e, o.ty), o.select(tiny, o.const(23.0), o.const(0.0)))
    f2 = o.mul(f, f)
    log1pf = o.fma(f2, o.fma(f, o.horner(f, LOG_G), o.const(-0.5)), f)
    return e_f, log1pf


def log_specials(o: Ops, x, y):
    """NumPy's log at the domain edges: x<0 or NaN -> NaN, 0 -> -inf, inf -> inf."""
    y = o.select(o.cmp("==", x, o.const(float("inf"))), x, y)
    y = o.select(o.cmp("==", x, o.const(0.0)), o.const(float("-inf")), y)
    return o.select(o.b.fcmp_unordered("<", x, o.const(0.0)), o.const(float("nan")), y)


def log(o: Ops, x):
    e, lf = log_reduce(o, x)
    y = o.fma(e, o.const(LN2_HI), o.fma(e, o.const(LN2_LO), lf))
    return log_specials(o, x, y)


def log2(o: Ops, x):
    e, lf = log_reduce(o, x)
    hi, lo = 1.442695, 1.925963e-08  # log2(e) = hi + lo
    y = o.add(e, o.fma(lf, o.const(hi), o.mul(lf, o.const(lo))))
    return log_specials(o, x, y)


def log10(o: Ops, x):
    e, lf = log_reduce(o, x)
    hi2, lo2 = 0.301025390625, 4.605039e-06  # log10(2), hi has 12 bits so e*hi2 is exact
    hie, loe = 0.4342945, -1.010305e-08  # log10(e)
    rest = o.fma(e, o.const(lo2), o.fma(lf, o.const(hie), o.mul(lf, o.const(loe))))
    return log_specials(o, x, o.fma(e, o.const(hi2), rest))


def log1p(o: Ops, x):
    """log(u) + (x - (u - 1))/u with u = 1 + x: the correction restores what rounding x+1 lost."""
    u = o.add(x, o.const(1.0))
    y = log(o, u)
    corr = o.div(o.sub(x, o.sub(u, o.const(1.0))), u)
    finite = o.b.and_(o.cmp(">", u, o.const(0.0)), o.cmp("<", u, o.const(float("inf"))))
    y = o.select(finite, o.add(y, corr), y)
    return o.select(o.cmp("==", x, o.const(0.0)), x, y)  # keeps -0.0


KERNELS = {
    "exp": exp, "exp_nonpositive": exp_nonpositive, "exp2": exp2, "expm1": expm1, "log": log,
    "log2": log2, "log10": log10,
    "log1p": log1p, "tanh": tanh, "sigmoid": sigmoid, "erf": erf, "sinh": sinh, "cosh": cosh,
}
