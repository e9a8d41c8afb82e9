"""Math intrinsics usable in tensor expressions (compiled by the code generator)."""

from __future__ import annotations

import numpy as np

from dlc import dtypes
from dlc.errors import DlcTypeError
from dlc.expr import nodes as n

#: Intrinsics on floating-point values, with their number of arguments.
FLOAT_INTRINSICS = {
    "exp": 1, "exp_nonpositive": 1, "log": 1, "sqrt": 1, "rsqrt": 1, "tanh": 1, "sigmoid": 1,
    "erf": 1, "pow": 2,
    "floor": 1, "ceil": 1, "round": 1, "trunc": 1, "fmin": 2, "fmax": 2, "exp2": 1, "log2": 1,
    "log10": 1, "log1p": 1, "expm1": 1, "sin": 1, "cos": 1, "tan": 1, "asin": 1, "acos": 1,
    "atan": 1, "atan2": 2, "sinh": 1, "cosh": 1, "asinh": 1, "acosh": 1, "atanh": 1,
    "fmod": 2, "isnan": 1, "isinf": 1,
}
#: Intrinsics defined for every numeric dtype.
ANY_INTRINSICS = {"abs": 1}


def call(name: str, *args) -> n.Call:
    """Apply intrinsic ``name`` to ``args`` (Python numbers take the dtype of the others)."""
    arity = FLOAT_INTRINSICS.get(name, ANY_INTRINSICS.get(name))
    if arity is None:
        raise DlcTypeError(f"unknown intrinsic {name!r}")
    if len(args) != arity:
        raise DlcTypeError(f"{name} takes {arity} argument(s), got {len(args)}")
    if arity == 2:
        exprs = list(n._coerce_pair(args[0], args[1]))
    else:
        exprs = [n.as_expr(args[0], "float32" if isinstance(args[0], float) else None)]
    dtype = exprs[0].dtype
    if any(e.dtype != dtype for e in exprs):
        raise DlcTypeError(f"{name}: arguments have different dtypes "
                           f"{', '.join(e.dtype for e in exprs)}")
    if name in FLOAT_INTRINSICS and not dtypes.is_float(dtype):
        raise DlcTypeError(f"{name} needs floating-point arguments, got {dtype}; "
                           "cast with te.cast first")
    if name in ANY_INTRINSICS and dtype == "bool":
        raise DlcTypeError(f"{name} is not defined for bool")
    result_dtype = "bool" if name in ("isnan", "isinf") else dtype
    return n.Call(name, tuple(exprs), result_dtype)


#: Below this argument (-125 * ln2) exp_nonpositive is 0: its results are normal numbers or 0,
#: so the code generator scales by 2^n in one step (no subnormal results).
EXP_NONPOSITIVE_MIN = -86.64339


def np_exp_nonpositive(x):
    """NumPy's ``exp_nonpositive``: e^min(x, 0), 0 where x < EXP_NONPOSITIVE_MIN (an ordered
    compare: NaN stays NaN), in x's dtype. Softmax's exponential: its argument ``x - max``
    is never above 0, and the values flushed are below 2^-125 (probabilities that small are
    0 in every float32 sum they join)."""
    x = np.asarray(x)
    with np.errstate(over="ignore", under="ignore"):
        y = np.exp(np.minimum(x, x.dtype.type(0)))
    y = np.where(x < x.dtype.type(EXP_NONPOSITIVE_MIN), x.dtype.type(0), y)
    return y if y.ndim else x.dtype.type(y)


def _make(name):
    def fn(*args):
        return call(name, *args)

    fn.__name__ = name
    fn.__doc__ = f"Elementwise ``{name}`` (see dlc.te.intrinsics)."
    return fn


exp = _make("exp")
#: e^min(x, 0), 0 where x < EXP_NONPOSITIVE_MIN: softmax's exponential (see
#: ``np_exp_nonpositive``).
exp_nonpositive = _make("exp_nonpositive")
log = _make("log")
sqrt = _make("sqrt")
rsqrt = _make("rsqrt")
tanh = _make("tanh")
sigmoid = _make("sigmoid")
erf = _make("erf")
pow = _make("pow")  # noqa: A001
abs = _make("abs")  # noqa: A001
floor = _make("floor")
ceil = _make("ceil")
round = _make("round")  # noqa: A001 - half to even, like numpy.round
trunc = _make("trunc")
fmin = _make("fmin")
fmax = _make("fmax")
exp2 = _make("exp2")
log2 = _make("log2")
log10 = _make("log10")
log1p = _make("log1p")
expm1 = _make("expm1")
sin = _make("sin")
cos = _make("cos")
tan = _make("tan")
asin = _make("asin")
acos = _make("acos")
atan = _make("atan")
atan2 = _make("atan2")
sinh = _make("sinh")
cosh = _make("cosh")
asinh = _make("asinh")
acosh = _make("acosh")
atanh = _make("atanh")
fmod = _make("fmod")
isnan = _make("isnan")
isinf = _make("isinf")
