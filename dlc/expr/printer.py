"""Text form of expressions, as used by the loop IR printer and golden tests."""

from __future__ import annotations

import math
import threading

from dlc.expr import nodes as n

_PRECEDENCE = {
    "||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6, "<": 7, "<=": 7, ">": 7,
    ">=": 7, "<<": 8, ">>": 8, "+": 9, "-": 9, "*": 10, "/": 10, "//": 10, "%": 10, "%t": 10,
}
_FUNCTION_STYLE = {"min", "max", "%t"}


def expr_to_str(expr, names: dict | None = None) -> str:
    """Text of an expression; ``names`` maps id(subexpression) -> a name printed instead
    (for subexpressions shared in a DAG, see shared_subexpressions)."""
    saved = getattr(_LOCAL, "names", {})
    _LOCAL.names = names or {}
    try:
        return _fmt(expr, 0)
    finally:
        _LOCAL.names = saved


# ``names`` of the expr_to_str call running in each thread: per thread, so that threads
# printing at once (compiling kernels, say) never print with each other's names
_LOCAL = threading.local()


def shared_subexpressions(*exprs, min_size: int = 12) -> list:
    """Subexpressions of at least ``min_size`` nodes (as a tree) reached through more than
    one parent, children first: printing them once keeps DAG-shaped expressions small."""
    parents: dict = {}
    order: list = []
    seen: set = set()

    def walk(e):
        if e is None or not isinstance(e, n.Expr):
            return
        parents[id(e)] = parents.get(id(e), 0) + 1
        if id(e) in seen:
            return
        seen.add(id(e))
        for name in n.child_fields(e):
            child = getattr(e, name)
            for c in (child if isinstance(child, tuple) else (child,)):
                walk(c)
        order.append(e)

    for e in exprs:
        walk(e)
    sizes: dict = {}
    for e in order:  # children come first
        total = 1
        for name in n.child_fields(e):
            child = getattr(e, name)
            for c in (child if isinstance(child, tuple) else (child,)):
                if isinstance(c, n.Expr):
                    total += sizes[id(c)]
        sizes[id(e)] = min(total, 1 << 30)
    return [e for e in order if parents[id(e)] > 1 and sizes[id(e)] >= min_size]


def _const_str(c: n.Const) -> str:
    v = c.value
    if c.dtype == "bool":
        return "True" if v else "False"
    if isinstance(v, float):
        if math.isnan(v):
            text = "nan"
        elif math.isinf(v):
            text = "inf" if v > 0 else "-inf"
        else:
            text = repr(v)
        return text if c.dtype == "float32" else f"{c.dtype}({text})"
    return str(v) if c.dtype in ("int64", "int32") else f"{c.dtype}({v})"


def _fmt(e, parent_prec: int) -> str:
    name = _LOCAL.names.get(id(e))
    if name is not None:
        return name
    if isinstance(e, n.Const):
        return _const_str(e)
    if isinstance(e, n.Var):
        return e.name
    if isinstance(e, n.BinaryOp):
        sym = e.symbol
        if sym in _FUNCTION_STYLE:
            name = "truncmod" if sym == "%t" else sym
            return f"{name}({_fmt(e.a, 0)}, {_fmt(e.b, 0)})"
        if isinstance(e, n.Div) and not _is_float(e):
            return f"truncdiv({_fmt(e.a, 0)}, {_fmt(e.b, 0)})"
        prec = _PRECEDENCE[sym]
        text = f"{_fmt(e.a, prec)} {sym} {_fmt(e.b, prec + 1)}"
        return f"({text})" if prec < parent_prec else text
    if isinstance(e, n.Not):
        return f"!{_fmt(e.a, 11)}"
    if isinstance(e, n.BitNot):
        return f"~{_fmt(e.a, 11)}"
    if isinstance(e, n.Cast):
        return f"{e.dtype}({_fmt(e.value, 0)})"
    if isinstance(e, n.Reinterpret):
        return f"reinterpret<{e.dtype}>({_fmt(e.value, 0)})"
    if isinstance(e, n.Select):
        return (f"select({_fmt(e.cond, 0)}, {_fmt(e.true_value, 0)}, "
                f"{_fmt(e.false_value, 0)})")
    if isinstance(e, n.Call):
        return f"{e.name}({', '.join(_fmt(a, 0) for a in e.args)})"
    if isinstance(e, n.Reduce):
        axes = ", ".join(a.name for a in e.axes)
        where = f", where={_fmt(e.condition, 0)}" if e.condition is not None else ""
        return f"{e.combiner}({_fmt(e.source, 0)}, axis=[{axes}]{where})"
    if isinstance(e, n.TensorRead):
        return f"{e.tensor.name}[{', '.join(_fmt(i, 0) for i in e.indices)}]"
    if isinstance(e, n.BufferLoad):
        text = f"{e.buffer.name}[{', '.join(_fmt(i, 0) for i in e.indices)}]"
        if e.predicate is not None:
            text += f" if {_fmt(e.predicate, 0)}"
        return text
    if isinstance(e, n.Ramp):
        return f"ramp({_fmt(e.base, 0)}, {_fmt(e.stride, 0)}, {e.lanes})"
    if isinstance(e, n.Broadcast):
        return f"x{e.lanes}({_fmt(e.value, 0)})"
    raise TypeError(f"cannot print {type(e).__name__}")


def _is_float(e) -> bool:
    from dlc import dtypes

    return dtypes.is_float(e.dtype)
