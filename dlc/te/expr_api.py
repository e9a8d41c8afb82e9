"""Functions that build scalar expressions inside ``te.compute`` bodies."""

from __future__ import annotations

from dlc import dtypes
from dlc.errors import DlcError, DlcTypeError
from dlc.expr import nodes as n

_REDUCERS = ("sum", "prod", "max", "min")


def const(value, dtype=None) -> n.Const:
    """A constant of ``dtype`` (int64 / float32 / bool by default)."""
    return n.const(value, dtype)


def cast(value, dtype) -> n.Expr:
    """Convert to ``dtype``; float to int truncates toward zero (like NumPy's astype)."""
    return n.cast(dtype, value)


def reinterpret(value, dtype) -> n.Expr:
    """Reinterpret the bits of ``value`` as ``dtype`` (same size)."""
    value = n.as_expr(value)
    dtype = dtypes.canonical(dtype)
    if dtypes.bits(dtype) != dtypes.bits(value.dtype):
        raise DlcTypeError(f"reinterpret from {value.dtype} to {dtype}: sizes differ")
    return n.Reinterpret(dtype, value)


def if_then_else(cond, true_value, false_value) -> n.Expr:
    """``true_value`` where ``cond`` holds, else ``false_value``; only the chosen side is
    evaluated, so it may read out of bounds on the other side (e.g. padding)."""
    cond = n.as_expr(cond)
    if cond.dtype != "bool":
        raise DlcTypeError(f"if_then_else: condition must be bool, got {cond.dtype}")
    t, f = n._coerce_pair(true_value, false_value)
    if t.dtype != f.dtype:
        raise DlcTypeError(f"if_then_else: branches have dtypes {t.dtype} and {f.dtype}")
    return n.Select(cond, t, f)


select = if_then_else


def all(*conds) -> n.Expr:  # noqa: A001 - mirrors tvm.te.all
    """Logical and of several conditions."""
    result = n.const(True)
    for c in conds:
        c = n.as_expr(c)
        result = c if result is None or (isinstance(result, n.Const) and result.value) \
            else n.And(result, c)
    return result


def any(*conds) -> n.Expr:  # noqa: A001 - mirrors tvm.te.any
    """Logical or of several conditions."""
    result = None
    for c in conds:
        c = n.as_expr(c)
        result = c if result is None else n.Or(result, c)
    return result if result is not None else n.const(False)


def truncdiv(a, b) -> n.Expr:
    """Integer division rounding toward zero (C semantics)."""
    return n._arith(n.Div, a, b)


def truncmod(a, b) -> n.Expr:
    """Remainder with the sign of the dividend (C ``%``, ``fmod`` for floats)."""
    return n._arith(n.Mod, a, b)


def floordiv(a, b) -> n.Expr:
    return n._arith(n.FloorDiv, a, b)


def floormod(a, b) -> n.Expr:
    return n._arith(n.FloorMod, a, b)


def maximum(a, b) -> n.Expr:
    """Elementwise maximum (NaN-propagating for floats, like numpy.maximum)."""
    return n._arith(n.Max, a, b)


def minimum(a, b) -> n.Expr:
    """Elementwise minimum (NaN-propagating for floats, like numpy.minimum)."""
    return n._arith(n.Min, a, b)


def _reduction(combiner):
    def reducer(expr, *rest, axis=None, where=None):
        if axis is None:
            if combiner in ("max", "min") and len(rest) == 1 and not _is_axes(rest[0]):
                return maximum(expr, rest[0]) if combiner == "max" else minimum(expr, rest[0])
            if len(rest) == 1:
                axis = rest[0]
            else:
                raise DlcError(f"te.{combiner} needs axis=<reduce_axis or list of them>")
        axes = tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)
        for ax in axes:
            if getattr(ax, "kind", None) != "reduce":
                raise DlcError(f"te.{combiner}: axis {ax!r} is not a te.reduce_axis")
        if not axes:
            raise DlcError(f"te.{combiner}: axis= is empty; give at least one te.reduce_axis")
        if len({id(a) for a in axes}) != len(axes):
            raise DlcError(f"te.{combiner}: an axis is listed twice")
        source = n.as_expr(expr)
        if source.dtype == "bool":
            raise DlcTypeError(f"te.{combiner} over bool values: cast to an integer dtype first")
        cond = None
        if where is not None:
            cond = n.as_expr(where)
            if cond.dtype != "bool":
                raise DlcTypeError(f"te.{combiner}: where= must be bool, got {cond.dtype}")
        return n.Reduce(combiner, source, axes, cond)

    reducer.__name__ = combiner
    reducer.__doc__ = (f"The {combiner} of ``expr`` over reduction axes: "
                       f"``te.{combiner}(A[i, k], axis=k)``.")
    return reducer


sum = _reduction("sum")  # noqa: A001
prod = _reduction("prod")
max = _reduction("max")  # noqa: A001
min = _reduction("min")  # noqa: A001


def _is_axes(value) -> bool:
    """True for a reduce axis or a list of them (the positional ``axis`` of a reduction)."""
    values = value if isinstance(value, (list, tuple)) else [value]
    kinds = {getattr(v, "kind", None) for v in values}  # (all() is te.all in this module)
    return kinds == {"reduce"}


def identity_of(combiner: str, dtype: str):
    """The identity element of a reduction combiner for ``dtype``."""
    if combiner == "sum":
        return False if dtype == "bool" else 0
    if combiner == "prod":
        return True if dtype == "bool" else 1
    if combiner == "max":
        return dtypes.min_value(dtype)
    if combiner == "min":
        return dtypes.max_value(dtype)
    raise DlcError(f"unknown reduction {combiner!r}; expected one of {', '.join(_REDUCERS)}")
