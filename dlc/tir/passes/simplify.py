"""Simplify every expression using the ranges of the enclosing loops; drop empty loops,
decided branches and no-op statements.

Before::

    for i in range(4):
      for j in range(1):
        if likely(i * 8 + j < 100):
          C[i // 1, j + 0] = A[(i * 8 + j) // 8]

After::

    for i in range(4):
      C[i, 0] = A[i]
"""

from __future__ import annotations

from dlc.expr import nodes as n
from dlc.expr.simplify import Simplifier
from dlc.tir import stmt as s
from dlc.tir.functor import StmtMutator, substitute_stmt


class _StmtSimplifier(StmtMutator):
    def __init__(self):
        self.ranges: dict = {}
        self.expr = Simplifier(self.ranges)

    def visit(self, node):
        if isinstance(node, n.Expr):
            return self.expr.visit(node)
        return super().visit(node)

    def visit_For(self, loop: s.For):
        lo, ext = self.expr.visit(loop.min), self.expr.visit(loop.extent)
        if isinstance(ext, n.Const) and ext.value <= 0:
            return s.NOP
        single = isinstance(ext, n.Const) and ext.value == 1
        if single and loop.kind is not s.ForKind.THREAD_BINDING:
            return self.visit(substitute_stmt(loop.body, {loop.var: lo}))
        known = isinstance(lo, n.Const) and isinstance(ext, n.Const)
        if known:
            self.ranges[loop.var] = (lo.value, ext.value)
        body = self.visit(loop.body)
        if known:
            del self.ranges[loop.var]
        if s.is_nop(body):
            return s.NOP
        if body is loop.body and lo is loop.min and ext is loop.extent:
            return loop
        return s.For(loop.var, lo, ext, loop.kind, body, loop.thread_tag)

    def visit_IfThenElse(self, node: s.IfThenElse):
        cond = self.expr.visit(node.cond)
        if isinstance(cond, n.Const):
            chosen = node.then_case if cond.value else node.else_case
            return s.NOP if chosen is None else self.visit(chosen)
        then_case = self.visit(node.then_case)
        else_case = self.visit(node.else_case) if node.else_case is not None else None
        if else_case is not None and s.is_nop(else_case):
            else_case = None
        if s.is_nop(then_case) and else_case is None:
            return s.NOP
        return s.IfThenElse(cond, then_case, else_case, node.likely)

    def visit_Allocate(self, node: s.Allocate):
        body = self.visit(node.body)
        if s.is_nop(body):
            return s.NOP
        return node if body is node.body else s.Allocate(node.buffer, body)


def simplify_func(func: s.PrimFunc) -> s.PrimFunc:
    """Simplify a whole function (see the module docstring)."""
    body = _StmtSimplifier().visit(func.body)
    return func if body is func.body else func.with_body(body)
