"""How many floating-point operations a PrimFunc performs: each float add, subtract,
multiply, divide, remainder, min, max, comparison and math intrinsic (exp, tanh, ...)
counts one per lane, times the extents of the loops around it.

    for i in range(4):
      for j in range(8):
        C[i, j] = 0.0
        for k in range(16):
          C[i, j] = C[i, j] + A[i, k] * B[k, j]

performs 4 * 8 * 16 * 2 = 1024 (the store of 0.0 performs none). Integer arithmetic
(indices, addresses) is not counted, nor are casts and selects themselves (their
operands are). A subexpression shared within one statement counts once, as the compiled
code computes it once.

The count is of the loop nest as written: run on a scheduled kernel it includes padded
lanes and work recomputed at attach points; run on the unscheduled loop nest of a tensor
expression it is the algorithm's count (``dlc.compiler.kernels`` stores that one, so a
kernel's GFLOP/s compare across schedules). A branch whose condition depends on loop
variables counts its larger side, and a loop whose extent is not constant its largest
extent: the result is then an upper bound. None when a loop's extent has no bound.
"""

from __future__ import annotations

from dlc import dtypes
from dlc.expr import nodes as n
from dlc.expr.analysis import int_bounds
from dlc.tir import stmt as s

_ARITH = (n.Add, n.Sub, n.Mul, n.Div, n.Mod, n.FloorDiv, n.FloorMod, n.Min, n.Max)


def count_flops(func: s.PrimFunc) -> int | None:
    """Floating-point operations one call of ``func`` performs (see the module docstring);
    None when some loop has no bounded extent."""
    return _Counter().visit(func.body)


class _Counter:
    def __init__(self):
        self.ranges: dict = {}  # enclosing loop variables -> (min, extent) where known

    def visit(self, stmt) -> int | None:
        method = getattr(self, f"visit_{type(stmt).__name__}", None)
        if method is None:
            raise TypeError(f"count_flops cannot visit {type(stmt).__name__}")
        return method(stmt)

    def visit_For(self, loop: s.For) -> int | None:
        extent = self._max_extent(loop)
        if extent is None:
            return None
        if isinstance(loop.min, n.Const) and isinstance(loop.extent, n.Const):
            self.ranges[loop.var] = (loop.min.value, loop.extent.value)
        body = self.visit(loop.body)
        self.ranges.pop(loop.var, None)
        return None if body is None else extent * body

    def _max_extent(self, loop: s.For) -> int | None:
        if isinstance(loop.extent, n.Const):
            return max(loop.extent.value, 0)
        _, hi = int_bounds(loop.extent, self.ranges)
        return None if hi is None else max(hi, 0)

    def visit_SeqStmt(self, seq: s.SeqStmt) -> int | None:
        counts = [self.visit(st) for st in seq.stmts]
        return None if None in counts else sum(counts)

    def visit_BufferStore(self, store: s.BufferStore) -> int:
        return expr_flops(store.value)

    def visit_Evaluate(self, ev: s.Evaluate) -> int:
        return expr_flops(ev.value)

    def visit_Allocate(self, alloc: s.Allocate) -> int | None:
        return self.visit(alloc.body)

    def visit_LetStmt(self, let: s.LetStmt) -> int | None:
        body = self.visit(let.body)
        return None if body is None else expr_flops(let.value) + body

    def visit_IfThenElse(self, branch: s.IfThenElse) -> int | None:
        then = self.visit(branch.then_case)
        other = self.visit(branch.else_case) if branch.else_case is not None else 0
        if isinstance(branch.cond, n.Const):
            return then if branch.cond.value else other
        if then is None or other is None:
            return None
        return expr_flops(branch.cond) + max(then, other)


def expr_flops(expr: n.Expr) -> int:
    """Floating-point operations of one evaluation of ``expr``, shared nodes once.
    Buffer indices and predicates are addresses, not arithmetic on data: not visited."""
    seen: set = set()
    total = 0
    todo = [expr]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        total += _own_flops(e)
        if isinstance(e, n.BufferLoad):
            continue
        for name in n.child_fields(e):
            child = getattr(e, name)
            if isinstance(child, tuple):
                todo.extend(c for c in child if isinstance(c, n.Expr))
            elif isinstance(child, n.Expr):
                todo.append(child)
    return total


def _own_flops(e: n.Expr) -> int:
    if isinstance(e, n.CmpOp):
        return e.lanes if dtypes.is_float(e.a.dtype) else 0
    if isinstance(e, (*_ARITH, n.Call)):
        return e.lanes if dtypes.is_float(e.dtype) else 0
    return 0
