"""Replace unrolled loops by one copy of the body per iteration.

Before::

    for j in unrolled(2):
      C[j] = A[j] * 2.0

After::

    C[0] = A[0] * 2.0
    C[1] = A[1] * 2.0
"""

from __future__ import annotations

from dlc import dtypes
from dlc.errors import LoweringError
from dlc.expr import nodes as n
from dlc.tir import stmt as s
from dlc.tir.functor import StmtMutator, substitute_stmt

MAX_UNROLLED_STATEMENTS = 4096


def unroll_loops(func: s.PrimFunc) -> s.PrimFunc:
    body = _Unroller().visit(func.body)
    return func if body is func.body else func.with_body(body)


class _Unroller(StmtMutator):
    def visit_For(self, loop: s.For):
        body = self.visit(loop.body)
        if loop.kind is not s.ForKind.UNROLLED:
            if body is loop.body:
                return loop
            return s.For(loop.var, loop.min, loop.extent, loop.kind, body, loop.thread_tag)
        if not (isinstance(loop.min, n.Const) and isinstance(loop.extent, n.Const)):
            raise LoweringError(f"cannot unroll loop {loop.var.name}: its bounds are not "
                                "constant")
        lo, ext = loop.min.value, loop.extent.value
        if ext > MAX_UNROLLED_STATEMENTS:
            raise LoweringError(f"cannot unroll loop {loop.var.name}: {ext} iterations")
        copies = [substitute_stmt(body, {loop.var: n.Const(lo + k, dtypes.INDEX_DTYPE)})
                  for k in range(ext)]
        return s.seq(*copies)
