"""Bound inference: which region of a producer one iteration of a consumer's loop needs.

Intervals are symbolic: ``base + [lo, hi]`` where ``base`` is an index expression over
the loops that enclose the point of computation and ``lo``/``hi`` are constants, so every
buffer gets a constant size while its position moves with the enclosing loops.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlc import dtypes
from dlc.expr import nodes as n
from dlc.expr.analysis import int_bounds, linear_form, structural_key
from dlc.expr.functor import contains
from dlc.expr.simplify import simplify
from dlc.tir.schedule.stage import Split

_ZERO = n.Const(0, dtypes.INDEX_DTYPE)


@dataclass
class SymInterval:
    base: n.Expr
    lo: int
    hi: int

    @staticmethod
    def point(e) -> SymInterval:
        return SymInterval(e, 0, 0)

    @staticmethod
    def const(lo: int, hi: int) -> SymInterval:
        return SymInterval(_ZERO, lo, hi)

    def add(self, other: SymInterval) -> SymInterval:
        return SymInterval(simplify(n.Add(self.base, other.base)), self.lo + other.lo,
                           self.hi + other.hi)

    def scale(self, c: int) -> SymInterval:
        base = simplify(n.Mul(self.base, n.Const(c, dtypes.INDEX_DTYPE)))
        if c >= 0:
            return SymInterval(base, self.lo * c, self.hi * c)
        return SymInterval(base, self.hi * c, self.lo * c)

    def numeric(self, ranges) -> tuple:
        lo, hi = int_bounds(self.base, ranges)
        return (None if lo is None else lo + self.lo, None if hi is None else hi + self.hi)


def leaf_extents(stage, root_extents: dict) -> dict:
    """Trip counts of every loop of a stage given the extents of its root loops."""
    ext = dict(root_extents)
    for rel in stage.relations:
        if isinstance(rel, Split):
            e = ext[id(rel.parent)]
            if e == 0:
                ext[id(rel.outer)], ext[id(rel.inner)] = 0, 0
                continue
            if rel.factor is not None:
                inner = min(rel.factor, e)
                outer = -(-e // inner)
            else:
                outer = min(rel.nparts, e)
                inner = -(-e // outer)
            ext[id(rel.outer)], ext[id(rel.inner)] = outer, inner
        else:
            ext[id(rel.fused)] = ext[id(rel.outer)] * ext[id(rel.inner)]
    return ext


def root_values(stage, values: dict, ext: dict) -> dict:
    """Express every loop (down to the roots) from the leaf loop values (id -> Expr)."""
    values = dict(values)
    for rel in reversed(stage.relations):
        if isinstance(rel, Split):
            values[id(rel.parent)] = n.Add(
                n.Mul(values[id(rel.outer)], n.Const(ext[id(rel.inner)], dtypes.INDEX_DTYPE)),
                values[id(rel.inner)])
        else:
            inner_ext = n.Const(ext[id(rel.inner)], dtypes.INDEX_DTYPE)
            values[id(rel.outer)] = n.FloorDiv(values[id(rel.fused)], inner_ext)
            values[id(rel.inner)] = n.FloorMod(values[id(rel.fused)], inner_ext)
    return values


def split_guards(stage, values: dict, ext: dict) -> list[tuple[bool, n.Expr]]:
    """Conditions ``value < extent`` for splits that overshoot their parent loop; each
    paired with whether it concerns a reduction loop."""
    guards = []
    for rel in stage.relations:
        if isinstance(rel, Split) and ext[id(rel.outer)] * ext[id(rel.inner)] > ext[id(rel.parent)]:
            cond = n.LT(values[id(rel.parent)], n.Const(ext[id(rel.parent)], dtypes.INDEX_DTYPE))
            guards.append((rel.parent.is_reduce, cond))
    return guards


def root_intervals(stage, ext: dict, fixed: int) -> dict:
    """Intervals of the root loops (relative to the stage's region) when the first
    ``fixed`` leaf loops hold their current values and the others run freely."""
    intervals = {}
    for pos, lv in enumerate(stage.leaves):
        if pos < fixed:
            intervals[id(lv)] = SymInterval.point(lv.var)
        else:
            intervals[id(lv)] = SymInterval.const(0, ext[id(lv)] - 1)
    for rel in reversed(stage.relations):
        if isinstance(rel, Split):
            outer, inner = intervals[id(rel.outer)], intervals[id(rel.inner)]
            intervals[id(rel.parent)] = outer.scale(ext[id(rel.inner)]).add(inner)
        else:
            fused = intervals[id(rel.fused)]
            inner_ext = ext[id(rel.inner)]
            if fused.lo == fused.hi:
                point = simplify(n.Add(fused.base, n.Const(fused.lo, dtypes.INDEX_DTYPE)))
                c = n.Const(inner_ext, dtypes.INDEX_DTYPE)
                intervals[id(rel.outer)] = SymInterval.point(simplify(n.FloorDiv(point, c)))
                intervals[id(rel.inner)] = SymInterval.point(simplify(n.FloorMod(point, c)))
            else:
                intervals[id(rel.outer)] = _floordiv(fused, inner_ext)
                intervals[id(rel.inner)] = SymInterval.const(0, inner_ext - 1)
    return intervals


def _floordiv(iv: SymInterval, c: int) -> SymInterval:
    if structural_key(iv.base) == structural_key(_ZERO):
        return SymInterval.const(iv.lo // c, iv.hi // c)
    lin = linear_form(iv.base)
    if lin.constant % c == 0 and all(coef % c == 0 for coef, _ in lin.terms.values()):
        # base = c * m exactly, so (base + x) // c = m + x // c: no extra element
        quotient = simplify(n.FloorDiv(iv.base, n.Const(c, dtypes.INDEX_DTYPE)))
        return SymInterval(quotient, iv.lo // c, iv.hi // c)
    start = simplify(n.FloorDiv(n.Add(iv.base, n.Const(iv.lo, dtypes.INDEX_DTYPE)),
                                n.Const(c, dtypes.INDEX_DTYPE)))
    return SymInterval(start, 0, (iv.hi - iv.lo) // c + 1)


def index_interval(e, var_intervals: dict, var_ranges: dict, ranges: dict):
    """Interval of index expression ``e`` given intervals of the root axes (by Var), or
    None when it cannot be bounded (data-dependent indices)."""
    lin = linear_form(simplify(e))
    result = SymInterval.const(lin.constant, lin.constant)
    for coef, term in lin.terms.values():
        iv = _term_interval(term, var_intervals, var_ranges, ranges)
        if iv is None:
            return None
        result = result.add(iv.scale(coef))
    return result


def _term_interval(term, var_intervals, var_ranges, ranges):
    if isinstance(term, n.Var) and term in var_intervals:
        return var_intervals[term]
    if isinstance(term, n.Var) and term in ranges:
        return SymInterval.point(term)
    if isinstance(term, n.FloorDiv) and isinstance(term.b, n.Const) and term.b.value > 0:
        inner = index_interval(term.a, var_intervals, var_ranges, ranges)
        if inner is not None:
            return _floordiv(inner, term.b.value)
    if contains(term, lambda x: isinstance(x, (n.TensorRead, n.BufferLoad))):
        return None
    all_ranges = dict(ranges)
    all_ranges.update(var_ranges)
    lo, hi = int_bounds(term, all_ranges)
    if lo is None or hi is None:
        return None
    return SymInterval.const(lo, hi)


def union(a: SymInterval | None, b: SymInterval | None, ranges: dict):
    if a is None or b is None:
        return None
    if structural_key(a.base) == structural_key(b.base):
        return SymInterval(a.base, min(a.lo, b.lo), max(a.hi, b.hi))
    diff = simplify(n.Sub(b.base, a.base))
    if isinstance(diff, n.Const):
        d = diff.value
        return SymInterval(a.base, min(a.lo, b.lo + d), max(a.hi, b.hi + d))
    alo, ahi = a.numeric(ranges)
    blo, bhi = b.numeric(ranges)
    if None in (alo, ahi, blo, bhi):
        return None
    return SymInterval.const(min(alo, blo), max(ahi, bhi))
