"""Turn vectorized loops into vector statements (lanes as Ramp / Broadcast expressions).

Before::

    for j in vectorized(8):
      C[i * 8 + j] = A[i * 8 + j] + B[j]

After::

    C[ramp(i * 8, 1, 8)] = A[ramp(i * 8, 1, 8)] + B[ramp(0, 1, 8)]

Branches whose condition differs between lanes become masks on loads and stores, and
inner loops run once for all lanes. A loop of more than 8 iterations that are not a power
of two (the edge of a split, say 40) becomes one vector statement per power of two
(32 + 8 lanes): LLVM lowers odd-sized vectors such as <40 x float> to slow shuffles and
spills. Run after flatten_buffers.
"""

from __future__ import annotations

from dlc import dtypes
from dlc.errors import LoweringError
from dlc.expr import nodes as n
from dlc.expr.analysis import linear_form
from dlc.expr.functor import ExprMutator, substitute
from dlc.expr.simplify import simplify
from dlc.tir import stmt as s
from dlc.tir.functor import StmtMutator, substitute_stmt

_INDEX = dtypes.INDEX_DTYPE


def vectorize_loops(func: s.PrimFunc) -> s.PrimFunc:
    body = _FindVectorLoops().visit(func.body)
    return func if body is func.body else func.with_body(body)


class _FindVectorLoops(StmtMutator):
    def __init__(self):
        self.ranges: dict = {}

    def visit(self, node):
        if isinstance(node, n.Expr):
            return node
        return super().visit(node)

    def visit_For(self, loop: s.For):
        known = isinstance(loop.min, n.Const) and isinstance(loop.extent, n.Const)
        if known:
            self.ranges[loop.var] = (loop.min.value, loop.extent.value)
        body = self.visit(loop.body)
        if known:
            del self.ranges[loop.var]
        if loop.kind is not s.ForKind.VECTORIZED:
            if body is loop.body:
                return loop
            return s.For(loop.var, loop.min, loop.extent, loop.kind, body, loop.thread_tag)
        if not known:
            raise LoweringError(f"cannot vectorize loop {loop.var.name}: its bounds are not "
                                "constant")
        start, pieces = loop.min.value, []
        for width in _vector_widths(loop.extent.value):
            if width == 1:
                pieces.append(substitute_stmt(body, {loop.var: n.Const(start, _INDEX)}))
            else:
                ranges = dict(self.ranges)
                pieces.append(_VectorizeBody(loop.var, start, width, ranges).run(body))
            start += width
        return s.seq(*pieces)


def _vector_widths(lanes: int) -> list[int]:
    """Widths of the vector statements for a loop of ``lanes`` iterations: ``lanes`` itself
    when it is a power of two or at most 8, else its powers of two, largest first."""
    if lanes <= 8 or lanes & (lanes - 1) == 0:
        return [lanes]
    return [1 << b for b in range(lanes.bit_length() - 1, -1, -1) if lanes >> b & 1]


class _VectorizeBody:
    def __init__(self, var: n.Var, start: int, lanes: int, ranges: dict):
        self.var, self.start, self.lanes = var, start, lanes
        self.lane = n.Var(var.name + ".lane", _INDEX)
        self.ranges = dict(ranges)
        self.ranges[self.lane] = (0, lanes)
        self.lets: dict = {}
        self.mask = None  # vector bool expr of active lanes, or None for all

    def run(self, body: s.Stmt) -> s.Stmt:
        return self.stmt(body)

    # -- statements ------------------------------------------------------------------------
    def stmt(self, node: s.Stmt) -> s.Stmt:
        if isinstance(node, s.SeqStmt):
            return s.seq(*[self.stmt(c) for c in node.stmts])
        if isinstance(node, s.BufferStore):
            return self.store(node)
        if isinstance(node, s.IfThenElse):
            cond = self.expr(node.cond)
            if cond.lanes == 1:
                then_case = self.stmt(node.then_case)
                else_case = self.stmt(node.else_case) if node.else_case is not None else None
                return s.IfThenElse(cond, then_case, else_case, node.likely)
            outer = self.mask
            self.mask = cond if outer is None else n.And(outer, cond)
            then_case = self.stmt(node.then_case)
            else_case = None
            if node.else_case is not None:
                self.mask = n.Not(cond) if outer is None else n.And(outer, n.Not(cond))
                else_case = self.stmt(node.else_case)
            self.mask = outer
            return s.seq(then_case, else_case)
        if isinstance(node, s.For):
            lo, ext = self.expr(node.min), self.expr(node.extent)
            if lo.lanes != 1 or ext.lanes != 1:
                raise LoweringError(f"cannot vectorize loop {self.var.name}: the bounds of the "
                                    f"inner loop {node.var.name} depend on it")
            if node.kind in (s.ForKind.VECTORIZED, s.ForKind.PARALLEL):
                raise LoweringError(f"cannot vectorize loop {self.var.name}: it contains the "
                                    f"{node.kind.value} loop {node.var.name}")
            if isinstance(lo, n.Const) and isinstance(ext, n.Const):
                self.ranges[node.var] = (lo.value, ext.value)
            return s.For(node.var, lo, ext, node.kind, self.stmt(node.body), node.thread_tag)
        if isinstance(node, s.LetStmt):
            value = self.expr(node.value)
            if value.lanes == 1:
                return s.LetStmt(node.var, value, self.stmt(node.body))
            vvar = n.Var(node.var.name, node.var.dtype, value.lanes)
            self.lets[node.var] = vvar
            return s.LetStmt(vvar, value, self.stmt(node.body))
        if isinstance(node, s.Allocate):
            raise LoweringError(f"cannot vectorize loop {self.var.name}: stage "
                                f"{node.buffer.name} is computed inside it; compute it at an "
                                "outer loop")
        if isinstance(node, s.Evaluate):
            return s.Evaluate(self.expr(node.value))
        raise LoweringError(f"cannot vectorize a {type(node).__name__}")

    def store(self, node: s.BufferStore) -> s.Stmt:
        index = self.expr(node.indices[0])
        value = self.expr(node.value)
        pred = self.mask
        if node.predicate is not None:
            p = self.expr(node.predicate)
            pred = p if pred is None else n.And(pred, p)
        if index.lanes == 1:
            if value.lanes == 1 and pred is None:
                return s.BufferStore(node.buffer, value, (index,))
            raise LoweringError(
                f"cannot vectorize loop {self.var.name}: every lane would write the same "
                f"element of {node.buffer.name}; vectorize a loop that the output index uses")
        if value.lanes == 1:
            value = n.Broadcast(value, self.lanes)
        if pred is not None and pred.lanes == 1:
            pred = n.Broadcast(pred, self.lanes)
        return s.BufferStore(node.buffer, value, (index,), pred)

    # -- expressions -----------------------------------------------------------------------
    def expr(self, e):
        if e.dtype == _INDEX and _is_affine_candidate(e):
            return self.index_expr(e)
        return _ElementwiseVectorizer(self).visit(e)

    def index_expr(self, e):
        """Vectorize an integer expression: Ramp when it is affine in the lane."""
        substituted = substitute(e, {self.var: n.Add(n.Const(self.start, _INDEX), self.lane)})
        substituted = substitute(substituted, self.lets) if self.lets else substituted
        if any(v.lanes > 1 for v in self.lets.values()) and _uses(substituted, self.lets):
            return _ElementwiseVectorizer(self).visit(e)
        simple = simplify(substituted, self.ranges)
        lin = linear_form(simple)
        stride = 0
        for key, (coef, term) in list(lin.terms.items()):
            if term is self.lane:
                stride = coef
                del lin.terms[key]
        rest = lin.to_expr()
        if _uses(rest, {self.lane: 1}):
            return _ElementwiseVectorizer(self).visit(e)
        if stride == 0:
            return rest
        return n.Ramp(rest, n.Const(stride, _INDEX), self.lanes)


def _uses(e, variables) -> bool:
    from dlc.expr.functor import contains

    return contains(e, lambda x: isinstance(x, n.Var) and x in variables)


def _is_affine_candidate(e) -> bool:
    from dlc.expr.functor import contains

    return not contains(e, lambda x: isinstance(x, (n.BufferLoad, n.Select, n.Call)))


class _ElementwiseVectorizer(ExprMutator):
    """Vectorize an expression lane by lane (loads of vector indices become gathers)."""

    memoize = False  # the active-lane mask changes inside Select branches

    def __init__(self, outer: _VectorizeBody):
        self.outer = outer
        self.lanes = outer.lanes

    def widen(self, e):
        return e if e.lanes == self.lanes else n.Broadcast(e, self.lanes)

    def visit_Var(self, v):
        if v is self.outer.var:
            return n.Ramp(n.Const(self.outer.start, _INDEX), n.Const(1, _INDEX), self.lanes)
        return self.outer.lets.get(v, v)

    def visit_BinaryOp(self, e):
        a, b = self.visit(e.a), self.visit(e.b)
        if a.dtype == _INDEX and isinstance(e, (n.Add, n.Sub, n.Mul)) and \
                (a.lanes == 1 or b.lanes == 1):
            pass
        if a.lanes == 1 and b.lanes == 1:
            return e if (a is e.a and b is e.b) else type(e)(a, b)
        return type(e)(self.widen(a), self.widen(b))

    def visit_Select(self, e):
        cond = self.visit(e.cond)
        if cond.lanes == 1:
            t, f = self.visit(e.true_value), self.visit(e.false_value)
            if t.lanes == 1 and f.lanes == 1:
                return n.Select(cond, t, f)
            return n.Select(cond, self.widen(t), self.widen(f))
        saved = self.outer.mask
        self.outer.mask = cond if saved is None else n.And(saved, cond)
        t = self.visit(e.true_value)
        self.outer.mask = n.Not(cond) if saved is None else n.And(saved, n.Not(cond))
        f = self.visit(e.false_value)
        self.outer.mask = saved
        return n.Select(cond, self.widen(t), self.widen(f))

    def visit_BufferLoad(self, e):
        index = self.outer.expr(e.indices[0])
        mask = self.outer.mask
        if e.predicate is not None:
            p = self.visit(e.predicate)
            mask = p if mask is None else n.And(mask, p)
        if index.lanes == 1 and (mask is None or mask.lanes == 1):
            return n.BufferLoad(e.buffer, (index,), mask)
        if index.lanes == 1:
            index = n.Broadcast(index, self.lanes)
        if mask is not None and mask.lanes == 1:
            mask = n.Broadcast(mask, self.lanes)
        return n.BufferLoad(e.buffer, (index,), mask)

    def visit_Call(self, e):
        args = [self.visit(a) for a in e.args]
        if all(a.lanes == 1 for a in args):
            return n.Call(e.name, tuple(args), e.dtype)
        return n.Call(e.name, tuple(self.widen(a) for a in args), e.dtype)

    def visit_Ramp(self, e):  # an inner vectorized loop, already turned into vectors
        raise LoweringError(f"cannot vectorize loop {self.outer.var.name}: it contains another "
                            "vectorized loop; nested vectorized loops are not supported")
