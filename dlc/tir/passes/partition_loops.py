"""Split loops around bound guards so the main part runs without them.

A non-divisible split leaves ``if likely(...)`` guards. For each loop (outermost first) and
each guard that depends on it, the loop's range is cut where the guard is always true
(the guard is removed there) and where it is always false (that part is dropped).

Before (``split(i, factor=4)`` of a loop of 10)::

    for i.outer in range(3):
      for i.inner in vectorized(4):
        if likely(i.outer * 4 + i.inner < 10):
          B[i.outer * 4 + i.inner] = A[i.outer * 4 + i.inner]

After::

    for i.outer in range(2):
      for i.inner in vectorized(4):
        B[i.outer * 4 + i.inner] = A[i.outer * 4 + i.inner]
    for i.inner in vectorized(2):
      B[i.inner + 8] = A[i.inner + 8]

A parallel loop is not cut into pieces, which would run the edge pieces on one thread:
its body branches on the loop variable instead::

    for i.outer in parallel(3):
      if i.outer < 2:
        for i.inner in vectorized(4): ...        # no guard
      else:
        for i.inner in vectorized(2): ...        # i.outer = 2
"""

from __future__ import annotations

from dlc import dtypes
from dlc.expr import nodes as n
from dlc.expr.analysis import int_bounds, linear_form
from dlc.expr.simplify import simplify
from dlc.tir import stmt as s
from dlc.tir.functor import StmtMutator, substitute_stmt

_INDEX = dtypes.INDEX_DTYPE
_MAX_PARTS = 64  # stop splitting a loop into more pieces than this


def partition_loops(func: s.PrimFunc) -> s.PrimFunc:
    body = _Partitioner().visit(func.body)
    return func if body is func.body else func.with_body(body)


class _Partitioner(StmtMutator):
    def __init__(self):
        self.ranges: dict = {}
        self.budget = _MAX_PARTS

    def visit_For(self, loop: s.For):
        if not (isinstance(loop.min, n.Const) and isinstance(loop.extent, n.Const)):
            return self.generic_visit_stmt(loop)
        lo, ext = loop.min.value, loop.extent.value
        if loop.kind is not s.ForKind.THREAD_BINDING and self.budget > 0:
            parts = self.find_cut(loop, lo, ext)
            if parts is not None and loop.kind is s.ForKind.PARALLEL:
                self.budget -= 1
                return self.branch_by_part(loop, parts)
            if parts is not None:
                self.budget -= 1
                return self.visit(s.seq(*[_make_loop(loop, a, b, body) for a, b, body in parts]))
        self.ranges[loop.var] = (lo, ext)
        body = self.visit(loop.body)
        del self.ranges[loop.var]
        if body is loop.body:
            return loop
        return s.For(loop.var, loop.min, loop.extent, loop.kind, body, loop.thread_tag)

    def find_cut(self, loop: s.For, lo: int, ext: int):
        for guard, inner_ranges in _likely_guards(loop.body, {}):
            region = self.true_false_regions(guard.cond, loop.var, lo, ext, inner_ranges)
            if region is None:
                continue
            t_lo, t_hi, f_lo, f_hi = region
            parts = []
            # [lo, t_lo): mixed, [t_lo, t_hi): always true, [t_hi, end): mixed or false
            pieces = _pieces(lo, lo + ext, t_lo, t_hi, f_lo, f_hi)
            if len(pieces) == 1 and pieces[0][2] == "mixed":
                continue
            for start, stop, verdict in pieces:
                if verdict == "false":
                    continue
                body = loop.body
                if verdict == "true":
                    body = _ReplaceGuard(guard, True).visit(body)
                parts.append((start, stop, body))
            return parts
        return None

    def branch_by_part(self, loop: s.For, parts: list) -> s.Stmt:
        """One parallel loop over the parts, whose body picks the part of the iteration."""
        if not parts:
            return s.NOP
        if any(a != prev_b for (_, prev_b, _), (a, _, _) in zip(parts, parts[1:])):
            # the parts do not tile a range (not expected: false parts are at the ends)
            return self.visit(s.seq(*[_make_loop(loop, a, b, body) for a, b, body in parts]))
        branches = []
        for start, stop, body in parts:
            if stop - start == 1:
                body = substitute_stmt(body, {loop.var: n.Const(start, _INDEX)})
            self.ranges[loop.var] = (start, stop - start)
            branches.append((stop, self.visit(body)))
            del self.ranges[loop.var]
        body = branches[-1][1]
        for stop, branch in reversed(branches[:-1]):
            body = s.IfThenElse(n.LT(loop.var, n.Const(stop, _INDEX)), branch, body)
        start, stop = parts[0][0], parts[-1][1]
        return s.For(loop.var, n.Const(start, _INDEX), n.Const(stop - start, _INDEX), loop.kind,
                     body, loop.thread_tag)

    def true_false_regions(self, cond, var, lo, ext, inner_ranges):
        """Ranges of ``var`` where ``cond`` always holds / never holds, whatever the values
        of the other loops."""
        if not isinstance(cond, (n.LT, n.LE, n.GE, n.GT)):
            return None
        if not dtypes.is_int(cond.a.dtype):
            return None
        # normalise to  coef * var + rest < bound  (or >= for the "ge" family)
        lin = linear_form(simplify(n.Sub(cond.a, cond.b)))
        coef = 0
        for key, (c, term) in list(lin.terms.items()):
            if term is var:
                coef = c
                del lin.terms[key]
        if coef == 0:
            return None
        ranges = dict(self.ranges)
        ranges.update(inner_ranges)
        rest_lo, rest_hi = int_bounds(lin.to_expr(), ranges)
        if rest_lo is None or rest_hi is None:
            return None
        # cond holds  <=>  coef*var + rest  OP 0
        always = _solve(type(cond), coef, rest_lo, rest_hi)   # var set where true for all rest
        never = _solve(_negate(type(cond)), coef, rest_lo, rest_hi)
        hi_all = lo + ext
        t_lo, t_hi = _clip(always, lo, hi_all)
        f_lo, f_hi = _clip(never, lo, hi_all)
        return t_lo, t_hi, f_lo, f_hi


def _negate(cmp):
    return {n.LT: n.GE, n.GE: n.LT, n.LE: n.GT, n.GT: n.LE}[cmp]


def _solve(cmp, coef, rest_lo, rest_hi):
    """The interval [a, b) of integers x with ``coef*x + rest CMP 0`` for every rest in
    [rest_lo, rest_hi]; None means empty, bounds may be +-inf as None."""
    # LT: coef*x + rest_hi < 0 ; LE: <= 0 ; GT: coef*x + rest_lo > 0 ; GE: >= 0
    if cmp in (n.LT, n.LE):
        limit = -rest_hi if cmp is n.LT else -rest_hi + 1  # coef*x < limit
        if coef > 0:
            return (None, _ceil_div(limit, coef))          # x < ceil(limit/coef)
        return (_floor_div(limit, coef) + 1, None)          # coef<0: x > limit/coef
    limit = -rest_lo if cmp is n.GT else -rest_lo - 1      # coef*x > limit
    if coef > 0:
        return (_floor_div(limit, coef) + 1, None)
    return (None, _ceil_div(limit, coef))


def _floor_div(a, b):
    return a // b


def _ceil_div(a, b):
    return -((-a) // b)


def _clip(interval, lo, hi):
    a, b = interval
    a = lo if a is None else max(a, lo)
    b = hi if b is None else min(b, hi)
    if a >= b:
        return (lo, lo)
    return (a, b)


def _pieces(lo, hi, t_lo, t_hi, f_lo, f_hi):
    """Cut [lo, hi) into labelled pieces: "true", "false", "mixed"."""
    cuts = sorted({lo, hi, t_lo, t_hi, f_lo, f_hi})
    pieces = []
    for a, b in zip(cuts, cuts[1:]):
        if a >= b or a < lo or b > hi:
            continue
        if t_lo <= a and b <= t_hi and t_lo < t_hi:
            label = "true"
        elif f_lo <= a and b <= f_hi and f_lo < f_hi:
            label = "false"
        else:
            label = "mixed"
        if pieces and pieces[-1][2] == label and pieces[-1][1] == a:
            pieces[-1] = (pieces[-1][0], b, label)
        else:
            pieces.append((a, b, label))
    return pieces


def _make_loop(loop: s.For, start: int, stop: int, body: s.Stmt) -> s.Stmt:
    if stop - start == 1:
        return substitute_stmt(body, {loop.var: n.Const(start, _INDEX)})
    return s.For(loop.var, n.Const(start, _INDEX), n.Const(stop - start, _INDEX), loop.kind,
                 body, loop.thread_tag)


def _likely_guards(node, ranges):
    """Yield (IfThenElse, ranges of loops between here and it) for likely guards."""
    if isinstance(node, s.IfThenElse):
        if node.likely:
            yield node, dict(ranges)
        yield from _likely_guards(node.then_case, ranges)
        if node.else_case is not None:
            yield from _likely_guards(node.else_case, ranges)
    elif isinstance(node, s.For):
        inner = dict(ranges)
        if isinstance(node.min, n.Const) and isinstance(node.extent, n.Const):
            inner[node.var] = (node.min.value, node.extent.value)
        yield from _likely_guards(node.body, inner)
    elif isinstance(node, s.SeqStmt):
        for c in node.stmts:
            yield from _likely_guards(c, ranges)
    elif isinstance(node, (s.Allocate, s.LetStmt)):
        yield from _likely_guards(node.body, ranges)


class _ReplaceGuard(StmtMutator):
    def __init__(self, guard: s.IfThenElse, value: bool):
        self.guard, self.value = guard, value

    def visit_IfThenElse(self, node):
        if node is self.guard:
            chosen = node.then_case if self.value else node.else_case
            return self.visit(chosen) if chosen is not None else s.NOP
        return self.generic_visit_stmt(node)

    def visit(self, node):
        if isinstance(node, n.Expr):
            return node
        return super().visit(node)
