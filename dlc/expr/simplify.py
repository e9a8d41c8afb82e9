"""Expression simplification: constant folding, linear canonical form for integer
arithmetic, and range-aware rules for floor division, modulo, min, max and comparisons.

Only index arithmetic (int64 scalars) is rewritten algebraically: it is assumed never to
overflow. Narrower integers wrap around, so ``a + 100 < 50`` on int8 is not ``a < -50``;
expressions of other integer dtypes are only constant-folded."""

from __future__ import annotations

import math

import numpy as np

from dlc import dtypes
from dlc.expr import nodes as n
from dlc.expr.analysis import int_bounds, linear_form, structural_key
from dlc.expr.functor import ExprMutator


def simplify(expr, ranges: dict | None = None):
    """Simplify ``expr``; ``ranges`` maps loop Vars to ``(min, extent)``."""
    return Simplifier(ranges or {}).visit(expr)


def _is_index(e) -> bool:
    """Scalar index arithmetic, which the rewrite rules assume does not overflow."""
    return e.dtype == dtypes.INDEX_DTYPE and e.lanes == 1


def is_const(e, value=None) -> bool:
    return isinstance(e, n.Const) and (value is None or e.value == value)


def _np_scalar(value, dtype):
    if dtype == "bool":
        return np.bool_(value)
    if dtypes.is_float(dtype):  # a constant's value, rounded once as codegen rounds it
        return dtypes.to_numpy(dtype).type(dtypes.round_float(value, dtype))
    return dtypes.to_numpy(dtype).type(value)


def _wrap_int(value: int, dtype: str) -> int:
    """Reduce an integer to the range of ``dtype`` with two's-complement wraparound."""
    b = dtypes.bits(dtype)
    value &= (1 << b) - 1
    if dtypes.is_signed_int(dtype) and value >= 1 << (b - 1):
        value -= 1 << b
    return value


def _fold_binary(e: n.BinaryOp):
    """Value of a binary op on two constants, or None if it cannot be folded safely."""
    a, b, dtype = e.a.value, e.b.value, e.a.dtype
    is_float = dtypes.is_float(dtype)
    if isinstance(e, n.CmpOp):
        ops = {n.EQ: a == b, n.NE: a != b, n.LT: a < b, n.LE: a <= b, n.GT: a > b, n.GE: a >= b}
        return n.Const(bool(ops[type(e)]), "bool")
    if isinstance(e, n.And):
        return n.Const(bool(a and b), "bool")
    if isinstance(e, n.Or):
        return n.Const(bool(a or b), "bool")
    if is_float:
        with np.errstate(all="ignore"):
            x, y = _np_scalar(a, dtype), _np_scalar(b, dtype)
            table = {n.Add: lambda: x + y, n.Sub: lambda: x - y, n.Mul: lambda: x * y,
                     n.Div: lambda: x / y, n.Min: lambda: np.minimum(x, y),
                     n.Max: lambda: np.maximum(x, y), n.FloorDiv: lambda: np.floor_divide(x, y),
                     n.FloorMod: lambda: np.mod(x, y), n.Mod: lambda: np.fmod(x, y)}
            fn = table.get(type(e))
            return None if fn is None else n.Const(float(fn()), dtype)
    if dtype == "bool":
        return None
    if isinstance(e, (n.Div, n.Mod, n.FloorDiv, n.FloorMod)) and b == 0:
        return None
    if isinstance(e, n.Add):
        v = a + b
    elif isinstance(e, n.Sub):
        v = a - b
    elif isinstance(e, n.Mul):
        v = a * b
    elif isinstance(e, n.FloorDiv):
        v = a // b
    elif isinstance(e, n.FloorMod):
        v = a % b
    elif isinstance(e, n.Div):
        v = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)
    elif isinstance(e, n.Mod):
        v = a - b * (abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1))
    elif isinstance(e, n.Min):
        v = min(a, b)
    elif isinstance(e, n.Max):
        v = max(a, b)
    elif isinstance(e, n.BitAnd):
        v = a & b
    elif isinstance(e, n.BitOr):
        v = a | b
    elif isinstance(e, n.BitXor):
        v = a ^ b
    elif isinstance(e, n.ShiftLeft):
        if not 0 <= b < dtypes.bits(dtype):
            return None
        v = a << b
    elif isinstance(e, n.ShiftRight):
        if not 0 <= b < dtypes.bits(dtype):
            return None
        v = a >> b
    else:
        return None
    return n.Const(_wrap_int(v, dtype), dtype)


def _fold_cast(dtype: str, c: n.Const):
    src = c.dtype
    v = c.value
    if dtype == "bool":
        return n.Const(bool(v), "bool")
    if dtypes.is_float(dtype):
        if dtype == "bfloat16":
            return None
        if src == "bool":
            v = int(v)
        elif dtypes.is_float(src):
            v = dtypes.round_float(v, src)
        return n.Const(dtypes.round_float(v, dtype), dtype)  # one rounding, from the exact value
    if dtypes.is_float(src):
        if math.isnan(v) or math.isinf(v):
            return None
        v = int(v)  # truncation toward zero
        lo, hi = dtypes.min_value(dtype), dtypes.max_value(dtype)
        if not lo <= v <= hi:
            return None  # undefined in C; leave to the target
        return n.Const(v, dtype)
    return n.Const(_wrap_int(int(v), dtype), dtype)


class Simplifier(ExprMutator):
    """Bottom-up rewriting; integer index arithmetic is kept in linear canonical form."""

    def __init__(self, ranges: dict):
        self.ranges = ranges

    # helpers -----------------------------------------------------------------------------
    def bounds(self, e):
        return int_bounds(e, self.ranges)

    def _canonical(self, e):
        lin = linear_form(e)
        return lin.to_expr()

    # arithmetic --------------------------------------------------------------------------
    def _binary(self, e):
        e = self.generic_visit(e)
        if isinstance(e.a, n.Const) and isinstance(e.b, n.Const) and e.lanes == 1:
            folded = _fold_binary(e)
            if folded is not None:
                return folded
        return e

    def visit_Add(self, e):
        e = self._binary(e)
        if not isinstance(e, n.Add):
            return e
        if _is_index(e):
            return self._canonical(e)
        if is_const(e.b, 0) and not dtypes.is_float(e.dtype):
            return e.a
        if is_const(e.a, 0) and not dtypes.is_float(e.dtype):
            return e.b
        return e

    def visit_Sub(self, e):
        e = self._binary(e)
        if not isinstance(e, n.Sub):
            return e
        if _is_index(e):
            return self._canonical(e)
        if is_const(e.b, 0):
            return e.a
        return e

    def visit_Mul(self, e):
        e = self._binary(e)
        if not isinstance(e, n.Mul):
            return e
        if _is_index(e):
            return self._canonical(e)
        if is_const(e.b, 1):
            return e.a
        if is_const(e.a, 1):
            return e.b
        return e

    def visit_FloorDiv(self, e):
        e = self._binary(e)
        if not isinstance(e, n.FloorDiv) or e.dtype != dtypes.INDEX_DTYPE or e.lanes != 1:
            return e
        if not (isinstance(e.b, n.Const) and e.b.value > 0):
            return e
        c = e.b.value
        if c == 1:
            return e.a
        if isinstance(e.a, n.FloorDiv) and isinstance(e.a.b, n.Const) and e.a.b.value > 0:
            return self.visit(n.FloorDiv(e.a.a, n.Const(e.a.b.value * c, e.dtype)))
        quotient, rest = _split_by(linear_form(e.a), c)
        rest_expr = rest.to_expr()
        lo, hi = self.bounds(rest_expr)
        if lo is not None and hi is not None and lo // c == hi // c:
            tail = n.Const(lo // c, e.dtype)
        else:
            tail = n.FloorDiv(rest_expr, e.b)
        if quotient.is_const() and quotient.constant == 0:
            return tail
        return self._canonical(n.Add(quotient.to_expr(), tail))

    def visit_FloorMod(self, e):
        e = self._binary(e)
        if not isinstance(e, n.FloorMod) or e.dtype != dtypes.INDEX_DTYPE or e.lanes != 1:
            return e
        if not (isinstance(e.b, n.Const) and e.b.value > 0):
            return e
        c = e.b.value
        if c == 1:
            return n.Const(0, e.dtype)
        _, rest = _split_by(linear_form(e.a), c)
        rest_expr = rest.to_expr()
        lo, hi = self.bounds(rest_expr)
        if lo is not None and hi is not None and lo // c == hi // c:
            return self._canonical(n.Sub(rest_expr, n.Const(lo // c * c, e.dtype)))
        return n.FloorMod(rest_expr, e.b)

    def visit_Div(self, e):
        e = self._binary(e)
        if isinstance(e, n.Div) and is_const(e.b, 1):
            return e.a
        if isinstance(e, n.Div) and e.dtype == dtypes.INDEX_DTYPE and isinstance(e.b, n.Const) \
                and e.b.value > 0:
            lo, _ = self.bounds(e.a)
            if lo is not None and lo >= 0:  # truncation equals floor for non-negatives
                return self.visit(n.FloorDiv(e.a, e.b))
        return e

    def visit_Mod(self, e):
        e = self._binary(e)
        if isinstance(e, n.Mod) and e.dtype == dtypes.INDEX_DTYPE and isinstance(e.b, n.Const) \
                and e.b.value > 0:
            lo, _ = self.bounds(e.a)
            if lo is not None and lo >= 0:
                return self.visit(n.FloorMod(e.a, e.b))
        return e

    def _min_max(self, e, pick_a_when):
        e = self._binary(e)
        if not isinstance(e, (n.Min, n.Max)) or not _is_index(e):
            if isinstance(e, (n.Min, n.Max)) and structural_key(e.a) == structural_key(e.b):
                return e.a
            return e
        diff = self._canonical(n.Sub(e.a, e.b))
        lo, hi = self.bounds(diff)
        if pick_a_when(lo, hi) is True:
            return e.a
        if pick_a_when(lo, hi) is False:
            return e.b
        return e

    def visit_Min(self, e):
        return self._min_max(e, lambda lo, hi: True if hi is not None and hi <= 0 else
                             False if lo is not None and lo >= 0 else None)

    def visit_Max(self, e):
        return self._min_max(e, lambda lo, hi: True if lo is not None and lo >= 0 else
                             False if hi is not None and hi <= 0 else None)

    # comparisons -------------------------------------------------------------------------
    def _compare(self, e):
        e = self._binary(e)
        if not isinstance(e, n.CmpOp) or not _is_index(e.a) or e.lanes != 1:
            return e
        if _reads_data(e.a) or _reads_data(e.b):
            return e  # int64 data may be anywhere in its range: a - b could overflow
        diff = linear_form(n.Sub(e.a, e.b))
        lo, hi = self.bounds(diff.to_expr())
        verdict = _decide(type(e), lo, hi)
        if verdict is not None:
            return n.Const(verdict, "bool")
        # normalise to "terms OP constant"
        constant = diff.constant
        diff.constant = 0
        return type(e)(diff.to_expr(), n.Const(-constant, e.a.dtype))

    visit_LT = visit_LE = visit_GT = visit_GE = visit_EQ = visit_NE = _compare

    def visit_And(self, e):
        e = self.generic_visit(e)
        for x, y in ((e.a, e.b), (e.b, e.a)):
            if is_const(x):
                return y if x.value else x
        return e

    def visit_Or(self, e):
        e = self.generic_visit(e)
        for x, y in ((e.a, e.b), (e.b, e.a)):
            if is_const(x):
                return x if x.value else y
        return e

    def visit_Not(self, e):
        e = self.generic_visit(e)
        if is_const(e.a):
            return n.Const(not e.a.value, "bool")
        return e

    visit_BitAnd = visit_BitOr = visit_BitXor = _binary
    visit_ShiftLeft = visit_ShiftRight = _binary

    def visit_Select(self, e):
        e = self.generic_visit(e)
        if is_const(e.cond):
            return e.true_value if e.cond.value else e.false_value
        if structural_key(e.true_value) == structural_key(e.false_value):
            return e.true_value
        return e

    def visit_Cast(self, e):
        e = self.generic_visit(e)
        if e.value.dtype == e.dtype:
            return e.value
        if isinstance(e.value, n.Const):
            folded = _fold_cast(e.dtype, e.value)
            if folded is not None:
                return folded
        return e

    def visit_Ramp(self, e):
        e = self.generic_visit(e)
        if is_const(e.stride, 0):
            return n.Broadcast(e.base, e.lanes)
        return e


def _split_by(lin, c: int):
    """Split a linear form into (quotient q, rest r) with lin == c*q + r."""
    quotient = lin.__class__(lin.dtype)
    rest = lin.__class__(lin.dtype)
    for key, (coef, term) in lin.terms.items():
        if coef % c == 0:
            quotient.terms[key] = [coef // c, term]
        else:
            rest.terms[key] = [coef, term]
    quotient.constant = lin.constant // c
    rest.constant = lin.constant % c
    return quotient, rest


def _decide(cmp, lo, hi):
    """Decide ``diff CMP 0`` from the bounds of diff, or None."""
    if cmp is n.LT:
        return True if hi is not None and hi < 0 else False if lo is not None and lo >= 0 \
            else None
    if cmp is n.LE:
        return True if hi is not None and hi <= 0 else False if lo is not None and lo > 0 \
            else None
    if cmp is n.GT:
        return True if lo is not None and lo > 0 else False if hi is not None and hi <= 0 \
            else None
    if cmp is n.GE:
        return True if lo is not None and lo >= 0 else False if hi is not None and hi < 0 \
            else None
    if cmp is n.EQ:
        if lo is not None and lo == hi == 0:
            return True
        if (lo is not None and lo > 0) or (hi is not None and hi < 0):
            return False
        return None
    if cmp is n.NE:
        verdict = _decide(n.EQ, lo, hi)
        return None if verdict is None else not verdict
    return None


def _reads_data(e) -> bool:
    from dlc.expr.functor import contains

    return contains(e, lambda x: isinstance(x, (n.BufferLoad, n.TensorRead)))
