"""Elementwise operators with NumPy broadcasting: arithmetic, math functions, activations.

Most ops here are one scalar formula written once against a small math namespace (``NP``
for the NumPy reference, ``TE`` for the tensor expression), so the reference and the
compiled code cannot drift apart. float16 and bfloat16 formulas are evaluated in float32
and rounded once at the end (``work_dtype``).
"""

from __future__ import annotations

import math

import numpy as np

from dlc import dtypes, te
from dlc.ops.common import broadcast_read, broadcast_shapes, np_dtype, out_type, same_dtype
from dlc.ops.registry import (
    BROADCAST,
    ELEMWISE,
    FLOATS,
    INTS,
    NUMERIC,
    OpDef,
    check_dtype,
    register,
)

SIGNED = FLOATS + dtypes.SIGNED_DTYPES


class NP:
    """Math functions on NumPy arrays (for references)."""

    where = staticmethod(np.where)
    maximum, minimum, abs, exp, expm1 = np.maximum, np.minimum, np.abs, np.exp, np.expm1
    log1p, tanh, sqrt = np.log1p, np.tanh, np.sqrt

    @staticmethod
    def erf(x):
        return np.vectorize(math.erf, otypes=[x.dtype])(x) if x.size else x.copy()

    @staticmethod
    def sigmoid(x):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


class TE:
    """The same functions on tensor expressions."""

    where = staticmethod(te.if_then_else)
    maximum, minimum, abs, exp, expm1 = te.maximum, te.minimum, te.abs, te.exp, te.expm1
    log1p, tanh, sqrt, erf, sigmoid = te.log1p, te.tanh, te.sqrt, te.erf, te.sigmoid


def work_dtype(dtype: str) -> str:
    """The dtype a formula is evaluated in: float32 for 16-bit floats."""
    return "float32" if dtype in ("float16", "bfloat16") else dtype


def np_formula(fn, out_dtype: str, work: str, *arrays, **kw):
    """Evaluate ``fn(NP, *arrays, **kw)`` in ``work`` and convert to ``out_dtype``."""
    args = [np.asarray(a).astype(np_dtype(work)) for a in arrays]
    with np.errstate(all="ignore"):
        return np.asarray(fn(NP, *args, **kw)).astype(np_dtype(out_dtype))


def te_formula(fn, out_dtype: str, work: str, *exprs, **kw):
    """Build ``fn(TE, *exprs, **kw)`` in ``work`` and convert to ``out_dtype``."""
    return te.cast(fn(TE, *[te.cast(e, work) for e in exprs], **kw), out_dtype)


# -- elementwise with broadcasting ---------------------------------------------------------
class Broadcasting(OpDef):
    """``out = f(inputs...)`` with multidirectional broadcasting over all inputs, which
    share one dtype. Subclasses give ``formula(m, *values, **attrs)`` or override
    ``scalar`` / ``reference``."""

    pattern = BROADCAST
    num_inputs = (2, 2)
    allowed = NUMERIC

    def infer(self, ctx):
        dtype = same_dtype(ctx)
        check_dtype(ctx, 0, self.allowed)
        self.check(ctx, dtype)
        present = [t.shape for t in ctx.in_types if t is not None]
        shape = broadcast_shapes(ctx, *present)
        return [out_type(shape, self.result_dtype(dtype))]

    def check(self, ctx, dtype):
        """Further checks of attributes and inputs."""

    def result_dtype(self, dtype):
        return dtype

    def work(self, ctx, dtype):
        return work_dtype(dtype)

    def reference(self, ctx, *arrays):
        dtype = ctx.in_types[0].dtype
        return [np_formula(self.formula, ctx.out_types[0].dtype, self.work(ctx, dtype),
                           *arrays, **ctx.attrs)]

    def scalar(self, ctx, *values):
        dtype = values[0].dtype
        return te_formula(self.formula, ctx.out_types[0].dtype, self.work(ctx, dtype),
                          *values, **ctx.attrs)

    def compute(self, ctx, *tensors):
        out = ctx.out_types[0]
        tensors = [t for t in tensors if t is not None]
        return [te.compute(out.shape, lambda *i: self.scalar(
            ctx, *[broadcast_read(t, i) for t in tensors]), name=ctx.name or self.name)]


def _binary(op_name, fn, allowed=NUMERIC):
    cls = type(op_name, (Broadcasting,), {"name": op_name, "allowed": allowed,
                                          "formula": staticmethod(fn)})
    return register(cls)


Add = _binary("Add", lambda m, a, b: a + b)
Sub = _binary("Sub", lambda m, a, b: a - b)
Mul = _binary("Mul", lambda m, a, b: a * b)


@register
class Div(Broadcasting):
    """Floats divide exactly; integers truncate toward zero (x / 0 gives 0)."""

    name = "Div"
    formula = staticmethod(lambda m, a, b: a / b)

    def reference(self, ctx, a, b):
        if np.issubdtype(a.dtype, np.integer):
            with np.errstate(all="ignore"):
                q = np.floor_divide(a, b)
                adjust = (np.remainder(a, b) != 0) & ((a < 0) ^ (b < 0))
            return [(q + adjust.astype(q.dtype)).astype(a.dtype)]
        return super().reference(ctx, a, b)

    def scalar(self, ctx, a, b):
        return a / b if dtypes.is_float(a.dtype) else te.truncdiv(a, b)


@register
class Mod(Broadcasting):
    """``fmod=0``: the remainder of floor division (sign of the divisor, like Python and
    numpy.mod); ``fmod=1``: of truncated division (sign of the dividend, like C fmod)."""

    name = "Mod"
    attrs = {"fmod": 0}

    def check(self, ctx, dtype):
        if ctx.attrs["fmod"] not in (0, 1):
            raise ctx.error(f"fmod must be 0 or 1, got {ctx.attrs['fmod']}")

    def reference(self, ctx, a, b):
        with np.errstate(all="ignore"):
            return [(np.fmod if ctx.attrs["fmod"] else np.mod)(a, b).astype(a.dtype)]

    def scalar(self, ctx, a, b):
        return te.truncmod(a, b) if ctx.attrs["fmod"] else a % b


@register
class Pow(Broadcasting):
    """``X ** Y``; X and Y may have different dtypes, the output has X's. A float power is
    computed in NumPy's promoted dtype of the pair, then converted. Integer powers are exact
    while |X| ** Y fits the dtype (a product of up to 64 factors; X = -1, 0, 1 are exact for
    every Y); a negative Y gives trunc(1 / X ** -Y), and 0 for X = 0."""

    name = "Pow"
    allowed = ("float16", "bfloat16", "float32", "float64", "int32", "int64")
    MAX_FACTORS = 64

    def infer(self, ctx):
        check_dtype(ctx, 0, self.allowed)
        check_dtype(ctx, 1, NUMERIC, "exponent")
        shape = broadcast_shapes(ctx, ctx.type(0).shape, ctx.type(1).shape)
        return [out_type(shape, ctx.type(0).dtype)]

    @staticmethod
    def float_dtype(xd: str, yd: str) -> str:
        """The dtype a float power is computed in (NumPy's promotion, at least float32)."""
        pair = [d if d != "bfloat16" else "float32" for d in (xd, yd)]
        promoted = np.result_type(*[np.dtype(d) for d in pair]).name
        return "float64" if promoted == "float64" else "float32"

    def int_exact(self, ctx) -> bool:
        return dtypes.is_int(ctx.type(0).dtype) and not dtypes.is_float(ctx.type(1).dtype)

    def reference(self, ctx, x, y):
        out = ctx.out_types[0].dtype
        if self.int_exact(ctx):
            xb, yb = np.broadcast_arrays(x, y.astype(np.int64))
            ones = np.ones_like(xb)
            minus_one = np.where(yb % 2, -ones, ones)
            with np.errstate(all="ignore"):
                pos = np.power(xb, np.clip(yb, 0, self.MAX_FACTORS))
            pos = np.where(xb == -1, minus_one, pos)
            neg = np.where(xb == 1, ones, np.where(xb == -1, minus_one, np.zeros_like(xb)))
            return [np.where(yb < 0, neg, pos).astype(out)]
        work = self.float_dtype(x.dtype.name, y.dtype.name)
        with np.errstate(all="ignore"):
            value = np.power(x.astype(work), y.astype(work))
        return [value.astype(np_dtype(out))]

    def compute(self, ctx, x, y):
        out = ctx.out_types[0]
        if self.int_exact(ctx):
            return self.int_power(ctx, x, y)
        const_y = ctx.in_values[1]
        if const_y is not None and const_y.size and np.all(const_y == 2):
            return [te.compute(out.shape, lambda *i: _square(broadcast_read(x, i)),
                               name=ctx.name or self.name)]
        work = self.float_dtype(x.dtype, y.dtype)
        return [te.compute(out.shape, lambda *i: te.cast(te.pow(
            te.cast(broadcast_read(x, i), work), te.cast(broadcast_read(y, i), work)),
            out.dtype), name=ctx.name or self.name)]

    def int_power(self, ctx, x, y):
        out = ctx.out_types[0]
        const_y = ctx.in_values[1]
        factors = self.MAX_FACTORS
        if const_y is not None and const_y.size:
            factors = int(min(max(int(const_y.max()), 1), self.MAX_FACTORS))
        k = te.reduce_axis(factors, "k")

        def read_y(i):
            return te.cast(broadcast_read(y, i), "int64")

        power = te.compute(out.shape, lambda *i: te.prod(
            te.if_then_else(k < read_y(i), broadcast_read(x, i), 1), axis=k),
            name=(ctx.name or self.name) + "_pos")

        def fix(*i):
            xv, yv = broadcast_read(x, i), read_y(i)
            minus_one = te.if_then_else((yv & 1) == 1, te.const(-1, out.dtype), 1)
            negative = te.if_then_else(xv == 1, te.const(1, out.dtype),
                                       te.if_then_else(xv == -1, minus_one, 0))
            exact = te.if_then_else(xv == -1, minus_one, power[i])
            return te.if_then_else(yv < 0, negative, exact)

        return [te.compute(out.shape, fix, name=ctx.name or self.name)]


def _square(v):
    return v * v


# -- variadic -------------------------------------------------------------------------------
class Variadic(Broadcasting):
    """Max, Min, Sum, Mean of one or more inputs, folded left to right."""

    num_inputs = (1, None)

    def reference(self, ctx, *arrays):
        acc = arrays[0]
        with np.errstate(all="ignore"):
            for a in arrays[1:]:
                acc = self.np_fold(acc, a)
            return [np.asarray(self.np_finish(acc, len(arrays))).astype(acc.dtype)]

    def scalar(self, ctx, *values):
        acc = values[0]
        for v in values[1:]:
            acc = self.te_fold(acc, v)
        return self.te_finish(acc, len(values))

    np_finish = te_finish = staticmethod(lambda acc, count: acc)


@register
class Max(Variadic):
    """Elementwise maximum; a NaN in any input gives NaN."""

    name = "Max"
    np_fold, te_fold = staticmethod(np.maximum), staticmethod(te.maximum)


@register
class Min(Variadic):
    """Elementwise minimum; a NaN in any input gives NaN."""

    name = "Min"
    np_fold, te_fold = staticmethod(np.minimum), staticmethod(te.minimum)


@register
class Sum(Variadic):
    name = "Sum"
    allowed = FLOATS
    np_fold = te_fold = staticmethod(lambda a, b: a + b)


@register
class Mean(Sum):
    """The sum (in the input dtype, left to right) divided by the number of inputs."""

    name = "Mean"
    np_finish = te_finish = staticmethod(lambda acc, count: acc / count)


@register
class Clip(Broadcasting):
    """``min(max(x, lo), hi)`` with optional scalar bounds; lo > hi gives hi, NaN stays."""

    name = "Clip"
    pattern = ELEMWISE
    num_inputs = (1, 3)

    def infer(self, ctx):
        dtype = same_dtype(ctx)
        check_dtype(ctx, 0, self.allowed)
        for k in (1, 2):
            if ctx.has_input(k) and int(np.prod(ctx.type(k).shape)) != 1:
                raise ctx.error(f"{('min', 'max')[k - 1]} must be a scalar, got shape "
                                f"{list(ctx.type(k).shape)}")
        return [out_type(ctx.type(0).shape, dtype)]

    def reference(self, ctx, x, lo=None, hi=None):
        out = x
        if lo is not None:
            out = np.maximum(out, lo.reshape(()))
        if hi is not None:
            out = np.minimum(out, hi.reshape(()))
        return [np.array(out, dtype=x.dtype)]

    def compute(self, ctx, x, lo=None, hi=None):
        def body(*i):
            v = x[i]
            if lo is not None:
                v = te.maximum(v, lo[(0,) * lo.ndim])
            if hi is not None:
                v = te.minimum(v, hi[(0,) * hi.ndim])
            return v

        return [te.compute(x.shape, body, name=ctx.name or self.name)]


# -- unary ----------------------------------------------------------------------------------
class Unary(Broadcasting):
    """``out = formula(x)`` on one input (ELEMWISE)."""

    pattern = ELEMWISE
    num_inputs = (1, 1)
    allowed = FLOATS


def _unary(op_name, fn, allowed=FLOATS, attrs=None, doc="", check=None):
    body = {"name": op_name, "allowed": allowed, "__doc__": doc, "attrs": dict(attrs or {}),
            "formula": staticmethod(fn)}
    if check is not None:
        body["check"] = staticmethod(check)
    return register(type(op_name, (Unary,), body))


class Intrinsic(Unary):
    """A math function the code generator provides (dlc.te.intrinsics)."""

    def reference(self, ctx, x):
        fn = self.np_fn
        dtype = ctx.type(0).dtype
        return [np_formula(lambda m, v: fn(v), dtype, work_dtype(dtype), x)]

    def scalar(self, ctx, v):
        return getattr(te, self.te_name)(v)


for _name, _np_fn, _te_name in [
        ("Exp", np.exp, "exp"), ("Log", np.log, "log"), ("Sqrt", np.sqrt, "sqrt"),
        ("Floor", np.floor, "floor"), ("Ceil", np.ceil, "ceil"), ("Round", np.round, "round"),
        ("Erf", NP.erf, "erf"), ("Sin", np.sin, "sin"), ("Cos", np.cos, "cos"),
        ("Tan", np.tan, "tan"), ("Asin", np.arcsin, "asin"), ("Acos", np.arccos, "acos"),
        ("Atan", np.arctan, "atan"), ("Sinh", np.sinh, "sinh"), ("Cosh", np.cosh, "cosh"),
        ("Asinh", np.arcsinh, "asinh"), ("Acosh", np.arccosh, "acosh"),
        ("Atanh", np.arctanh, "atanh"), ("Tanh", np.tanh, "tanh"),
        ("Sigmoid", NP.sigmoid, "sigmoid")]:
    register(type(_name, (Intrinsic,), {"name": _name, "np_fn": staticmethod(_np_fn),
                                        "te_name": _te_name}))


@register
class Abs(Intrinsic):
    name = "Abs"
    allowed = NUMERIC
    np_fn, te_name = staticmethod(np.abs), "abs"


@register
class Neg(Unary):
    """``-x``; for floats a sign flip (-(+0) is -0)."""

    name = "Neg"
    allowed = SIGNED

    def reference(self, ctx, x):
        return [np.negative(x)]

    def scalar(self, ctx, v):
        return v * -1 if dtypes.is_float(v.dtype) else 0 - v


Reciprocal = _unary("Reciprocal", lambda m, x: 1 / x)


@register
class Sign(Unary):
    """-1, 0 or 1 (+0 for -0); NaN stays NaN."""

    name = "Sign"
    allowed = NUMERIC

    def reference(self, ctx, x):
        return [np.sign(x)]

    def scalar(self, ctx, v):
        rest = te.if_then_else(v == 0, te.const(0, v.dtype), v)
        if not dtypes.is_unsigned_int(v.dtype):
            rest = te.if_then_else(v < 0, te.const(-1, v.dtype), rest)
        return te.if_then_else(v > 0, te.const(1, v.dtype), rest)


Relu = _unary("Relu", lambda m, x: m.maximum(x, 0), SIGNED)


@register
class Identity(Unary):
    """A copy of the input (any dtype)."""

    name = "Identity"
    allowed = NUMERIC + ("bool",)

    def reference(self, ctx, x):
        return [x.copy()]

    def scalar(self, ctx, v):
        return v


# -- activations with attributes -------------------------------------------------------------
def _gelu(m, x, approximate):
    if approximate == "tanh":
        inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1 + m.tanh(inner))
    return 0.5 * x * (1 + m.erf(x * (1 / math.sqrt(2))))


def _check_choice(ctx, key, choices):
    if ctx.attrs[key] not in choices:
        raise ctx.error(f"{key} must be one of {', '.join(map(repr, choices))}, got "
                        f"{ctx.attrs[key]!r}")


def _nonzero(ctx, key):
    if ctx.attrs[key] == 0:
        raise ctx.error(f"{key} must not be 0")


def _softplus(m, x):
    return m.maximum(x, 0) + m.log1p(m.exp(-m.abs(x)))


LeakyRelu = _unary("LeakyRelu", lambda m, x, alpha: m.where(x < 0, alpha * x, x),
                   attrs={"alpha": 0.009999999776482582})
Elu = _unary("Elu", lambda m, x, alpha: m.where(x > 0, x, alpha * m.expm1(x)),
             attrs={"alpha": 1.0})
Selu = _unary("Selu", lambda m, x, alpha, gamma: gamma * m.where(
    x > 0, x, alpha * m.expm1(x)), attrs={"alpha": 1.6732631921768188,
                                         "gamma": 1.0507010221481323})
Celu = _unary("Celu", lambda m, x, alpha: m.maximum(x, 0) + m.minimum(
    0, alpha * m.expm1(x / alpha)), attrs={"alpha": 1.0}, check=lambda ctx, dtype: _nonzero(
        ctx, "alpha"))
HardSigmoid = _unary("HardSigmoid", lambda m, x, alpha, beta: m.maximum(
    0, m.minimum(1, alpha * x + beta)), attrs={"alpha": 0.20000000298023224, "beta": 0.5})
HardSwish = _unary("HardSwish", lambda m, x: x * m.maximum(0, m.minimum(
    1, x * (1 / 6) + 0.5)))
Softplus = _unary("Softplus", _softplus, doc="log(1 + exp(x)), computed without overflow.")
Softsign = _unary("Softsign", lambda m, x: x / (1 + m.abs(x)))
Mish = _unary("Mish", lambda m, x: x * m.tanh(_softplus(m, x)))
Gelu = _unary("Gelu", _gelu, attrs={"approximate": "none"},
              check=lambda ctx, dtype: _check_choice(ctx, "approximate", ("none", "tanh")))
ThresholdedRelu = _unary("ThresholdedRelu", lambda m, x, alpha: m.where(x > alpha, x, 0),
                         attrs={"alpha": 1.0})
Swish = _unary("Swish", lambda m, x, alpha: x * m.sigmoid(alpha * x), attrs={"alpha": 1.0})




@register
class Shrink(Unary):
    """x + bias below -lambd, x - bias above lambd, else 0; integers are compared and
    shifted in float64 (like NumPy), then truncated."""

    name = "Shrink"
    allowed = ("float16", "float32", "float64") + INTS
    attrs = {"bias": 0.0, "lambd": 0.5}

    @staticmethod
    def formula(m, x, bias, lambd):
        return m.where(x < -lambd, x + bias, m.where(x > lambd, x - bias, 0))

    def work(self, ctx, dtype):
        return "float64" if dtypes.is_int(dtype) else work_dtype(dtype)


@register
class PRelu(Broadcasting):
    """x where x >= 0, slope * x elsewhere; slope broadcasts to x's shape."""

    name = "PRelu"
    allowed = FLOATS + ("int32", "int64", "uint32", "uint64")

    def infer(self, ctx):
        (t,) = super().infer(ctx)
        if t.shape != ctx.type(0).shape:
            raise ctx.error(f"slope of shape {list(ctx.type(1).shape)} does not broadcast to "
                            f"X's shape {list(ctx.type(0).shape)}")
        return [t]

    @staticmethod
    def formula(m, x, slope):
        return m.where(x < 0, slope * x, x)


@register
class SwiGLU(Broadcasting):
    """Swish(A) * B for A and B of one shape (no broadcasting)."""

    name = "SwiGLU"
    allowed = FLOATS
    attrs = {"alpha": 1.0}

    def check(self, ctx, dtype):
        if ctx.type(0).shape != ctx.type(1).shape:
            raise ctx.error(f"A and B must have the same shape, got {list(ctx.type(0).shape)}"
                            f" and {list(ctx.type(1).shape)}")

    @staticmethod
    def formula(m, a, b, alpha):
        return a * m.sigmoid(alpha * a) * b
