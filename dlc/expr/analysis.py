"""Structural keys, linear forms and integer bounds of expressions."""

from __future__ import annotations

import threading

from dlc import dtypes
from dlc.expr import nodes as n

_INTERN: dict = {}
_NEXT_ID = [0]
_INTERN_LIMIT = 1 << 20
_INTERN_LOCK = threading.Lock()  # threads lowering at once share the table


def structural_key(e) -> int:
    """A key equal for structurally identical expressions (Vars and buffers by identity).

    Keys are interned integers, computed once per distinct subexpression, so shared
    subexpressions (expressions are DAGs) cost nothing extra. Float constants compare by
    bits, so 0.0 and -0.0 differ.
    """
    return _key(e, {})


def _intern(shape: tuple) -> int:
    key = _INTERN.get(shape)
    if key is None:
        with _INTERN_LOCK:  # a new shape gets one key, even when threads meet it at once
            key = _INTERN.get(shape)
            if key is None:
                if len(_INTERN) > _INTERN_LIMIT:
                    _INTERN.clear()  # fresh numbers never alias old keys: only equality is lost
                _NEXT_ID[0] += 1
                key = _INTERN[shape] = _NEXT_ID[0]
    return key


def _key(e, memo: dict) -> int:
    hit = memo.get(id(e))
    if hit is not None and hit[0] is e:
        return hit[1]
    if isinstance(e, n.Const):
        value = e.value
        shape = ("C", value.hex() if isinstance(value, float) else value, e.dtype)
    elif isinstance(e, n.Var):
        shape = ("V", id(e))
    else:
        parts = [type(e).__name__, getattr(e, "dtype", None)]
        if isinstance(e, n.BufferLoad):
            parts.append(id(e.buffer))
        elif isinstance(e, n.TensorRead):
            parts.append(id(e.tensor))
        elif isinstance(e, n.Call):
            parts.append(e.name)
        elif isinstance(e, (n.Ramp, n.Broadcast)):
            parts.append(e.lanes)
        elif isinstance(e, n.Reduce):
            parts.extend((e.combiner, tuple(id(a) for a in e.axes)))
        for name in n.child_fields(e):
            child = getattr(e, name)
            if isinstance(child, tuple):
                parts.append(tuple(_key(c, memo) for c in child))
            elif child is None:
                parts.append(None)
            else:
                parts.append(_key(child, memo))
        shape = tuple(parts)
    key = _intern(shape)
    memo[id(e)] = (e, key)
    return key


def structural_equal(a, b) -> bool:
    return a is b or structural_key(a) == structural_key(b)


# Linear forms --------------------------------------------------------------------------
class Linear:
    """``sum(coef * term) + constant`` over integer terms, keyed structurally."""

    __slots__ = ("terms", "constant", "dtype")

    def __init__(self, dtype: str, terms=None, constant: int = 0):
        self.dtype = dtype
        self.terms: dict = dict(terms or {})  # key -> [coef, term]
        self.constant = constant

    def copy(self) -> Linear:
        return Linear(self.dtype, {k: list(v) for k, v in self.terms.items()}, self.constant)

    def add(self, other: Linear, scale: int = 1) -> Linear:
        out = self.copy()
        for key, (coef, term) in other.terms.items():
            if key in out.terms:
                out.terms[key][0] += coef * scale
                if out.terms[key][0] == 0:
                    del out.terms[key]
            else:
                out.terms[key] = [coef * scale, term]
        out.constant += other.constant * scale
        return out

    def scale(self, factor: int) -> Linear:
        if factor == 0:
            return Linear(self.dtype)
        out = self.copy()
        for entry in out.terms.values():
            entry[0] *= factor
        out.constant *= factor
        return out

    def is_const(self) -> bool:
        return not self.terms

    def to_expr(self) -> n.Expr:
        """Rebuild an expression: terms in order of first appearance, constant last."""
        result = None
        for coef, term in self.terms.values():
            if coef == 0:
                continue
            magnitude = abs(coef)
            piece = term if magnitude == 1 else n.Mul(term, n.Const(magnitude, self.dtype))
            if result is None:
                result = piece if coef > 0 else n.Sub(n.Const(0, self.dtype), piece)
            else:
                result = n.Add(result, piece) if coef > 0 else n.Sub(result, piece)
        if result is None:
            return n.Const(self.constant, self.dtype)
        if self.constant > 0:
            result = n.Add(result, n.Const(self.constant, self.dtype))
        elif self.constant < 0:
            result = n.Sub(result, n.Const(-self.constant, self.dtype))
        return result


def linear_form(e) -> Linear:
    """Linear form of an integer expression; non-linear parts become opaque terms."""
    dtype = e.dtype
    if isinstance(e, n.Const):
        return Linear(dtype, constant=int(e.value))
    if isinstance(e, n.Add):
        return linear_form(e.a).add(linear_form(e.b))
    if isinstance(e, n.Sub):
        return linear_form(e.a).add(linear_form(e.b), -1)
    if isinstance(e, n.Mul):
        la, lb = linear_form(e.a), linear_form(e.b)
        if lb.is_const():
            return la.scale(lb.constant)
        if la.is_const():
            return lb.scale(la.constant)
    return Linear(dtype, {structural_key(e): [1, e]})


# Integer bounds ------------------------------------------------------------------------
def int_bounds(e, ranges: dict | None = None):
    """Inclusive ``(lo, hi)`` integer bounds of ``e``, or None where unknown.

    ``ranges`` maps Vars to ``(min, extent)``; either end of a result may be None.
    """
    ranges = ranges or {}
    return _bounds(e, ranges)


def _dtype_bounds(dtype):
    if dtypes.is_int(dtype):
        return (dtypes.min_value(dtype), dtypes.max_value(dtype))
    if dtype == "bool":
        return (0, 1)
    return (None, None)


def _bounds(e, ranges):
    lo, hi = _bounds_of_value(e, ranges)
    if e.dtype != dtypes.INDEX_DTYPE and dtypes.is_int(e.dtype):
        # narrow integers wrap around: a result outside the dtype may be anything
        dlo, dhi = _dtype_bounds(e.dtype)
        if lo is None or hi is None or lo < dlo or hi > dhi:
            return (dlo, dhi)
    return (lo, hi)


def _bounds_of_value(e, ranges):
    if isinstance(e, n.Const):
        if isinstance(e.value, bool):
            return (int(e.value), int(e.value))
        if isinstance(e.value, int):
            return (e.value, e.value)
        return (None, None)
    if isinstance(e, n.Var):
        r = ranges.get(e)
        if r is None:
            return (None, None) if e.dtype == dtypes.INDEX_DTYPE else _dtype_bounds(e.dtype)
        lo, ext = r
        if isinstance(lo, int) and isinstance(ext, int):
            return (lo, lo + ext - 1)
        return (None, None)
    if isinstance(e, n.Add):
        a, b = _bounds(e.a, ranges), _bounds(e.b, ranges)
        return (_add(a[0], b[0]), _add(a[1], b[1]))
    if isinstance(e, n.Sub):
        a, b = _bounds(e.a, ranges), _bounds(e.b, ranges)
        return (_add(a[0], _neg(b[1])), _add(a[1], _neg(b[0])))
    if isinstance(e, n.Mul):
        a, b = _bounds(e.a, ranges), _bounds(e.b, ranges)
        return _mul(a, b)
    if isinstance(e, (n.FloorDiv, n.Div)):
        a, b = _bounds(e.a, ranges), _bounds(e.b, ranges)
        if b[0] is not None and b[0] == b[1] and b[0] > 0:
            c = b[0]
            if isinstance(e, n.FloorDiv):
                return (None if a[0] is None else a[0] // c, None if a[1] is None else a[1] // c)
            if a[0] is not None and a[0] >= 0:
                return (a[0] // c, None if a[1] is None else a[1] // c)
        return _dtype_bounds(e.dtype)
    if isinstance(e, n.FloorMod):
        b = _bounds(e.b, ranges)
        if b[0] is not None and b[0] == b[1] and b[0] > 0:
            a = _bounds(e.a, ranges)
            if a[0] is not None and a[1] is not None and a[0] >= 0 and a[1] < b[0]:
                return a
            return (0, b[0] - 1)
        return _dtype_bounds(e.dtype)
    if isinstance(e, n.Mod):
        b = _bounds(e.b, ranges)
        a = _bounds(e.a, ranges)
        if b[0] is not None and b[0] == b[1] and b[0] > 0 and a[0] is not None and a[0] >= 0:
            if a[1] is not None and a[1] < b[0]:
                return a
            return (0, b[0] - 1)
        return _dtype_bounds(e.dtype)
    if isinstance(e, n.Min):
        a, b = _bounds(e.a, ranges), _bounds(e.b, ranges)
        return (_min(a[0], b[0], lower=True), _min(a[1], b[1], lower=False))
    if isinstance(e, n.Max):
        a, b = _bounds(e.a, ranges), _bounds(e.b, ranges)
        return (_max(a[0], b[0], lower=True), _max(a[1], b[1], lower=False))
    if isinstance(e, n.Select):
        a, b = _bounds(e.true_value, ranges), _bounds(e.false_value, ranges)
        lo = None if a[0] is None or b[0] is None else min(a[0], b[0])
        hi = None if a[1] is None or b[1] is None else max(a[1], b[1])
        return (lo, hi)
    if isinstance(e, n.Cast) and dtypes.is_int(e.dtype) and (
            dtypes.is_int(e.value.dtype) or e.value.dtype == "bool"):
        inner = _bounds(e.value, ranges)
        outer = _dtype_bounds(e.dtype)
        if inner[0] is not None and inner[1] is not None and outer[0] <= inner[0] \
                and inner[1] <= outer[1]:
            return inner
        return outer
    if isinstance(e, n.Ramp):
        base, stride = _bounds(e.base, ranges), _bounds(e.stride, ranges)
        last = _add_b(base, _mul(stride, (e.lanes - 1, e.lanes - 1)))
        return (_min(base[0], last[0], lower=True), _max(base[1], last[1], lower=False))
    if isinstance(e, n.Broadcast):
        return _bounds(e.value, ranges)
    if isinstance(e, n.CmpOp) or isinstance(e, (n.And, n.Or, n.Not)):
        return (0, 1)
    return _dtype_bounds(e.dtype)


def _add_b(a, b):
    return (_add(a[0], b[0]), _add(a[1], b[1]))


def _add(x, y):
    return None if x is None or y is None else x + y


def _neg(x):
    return None if x is None else -x


def _mul(a, b):
    if None in a or None in b:
        # one side a non-negative constant and the other half-known: keep what is sound
        if a[0] is not None and a[0] == a[1]:
            c = a[0]
            lo, hi = b
        elif b[0] is not None and b[0] == b[1]:
            c = b[0]
            lo, hi = a
        else:
            return (None, None)
        if c >= 0:
            return (None if lo is None else lo * c, None if hi is None else hi * c)
        return (None if hi is None else hi * c, None if lo is None else lo * c)
    products = [a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]]
    return (min(products), max(products))


def _min(x, y, lower):
    if x is None or y is None:
        if lower:
            return None
        return x if y is None else y if x is None else None
    return min(x, y)


def _max(x, y, lower):
    if x is None or y is None:
        if lower:
            return x if y is None else y if x is None else None
        return None
    return max(x, y)
