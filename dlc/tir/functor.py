"""Visitors and mutators over loop IR statements (and the expressions inside them)."""

from __future__ import annotations

import dataclasses

from dlc.expr import nodes as n
from dlc.expr.functor import ExprMutator, ExprVisitor, find_method, memoized
from dlc.tir import stmt as s


class StmtVisitor(ExprVisitor):
    """Visits statements and their expressions; dispatches on ``visit_<ClassName>``."""

    def visit(self, node):
        if isinstance(node, n.Expr):
            return memoized(self, node, lambda: self._dispatch_any(node))
        return self._dispatch_any(node)

    def _dispatch_any(self, node):
        method = find_method(self, type(node))
        if method is not None:
            return method(node)
        if isinstance(node, s.Stmt):
            return self.generic_visit_stmt(node)
        return self.generic_visit(node)

    def generic_visit_stmt(self, node):
        fields = s.STMT_FIELDS.get(type(node))
        if fields is None:
            raise TypeError(f"{type(self).__name__} cannot visit {type(node).__name__}")
        expr_fields, stmt_fields = fields
        for name in expr_fields + stmt_fields:
            child = getattr(node, name)
            if isinstance(child, tuple):
                for c in child:
                    self.visit(c)
            elif child is not None:
                self.visit(child)


class StmtMutator(ExprMutator):
    """Rebuilds statements bottom-up; unchanged subtrees are kept."""

    def visit(self, node):
        if isinstance(node, n.Expr):
            return memoized(self, node, lambda: self._dispatch_any(node))
        return self._dispatch_any(node)

    def _dispatch_any(self, node):
        method = find_method(self, type(node))
        if method is not None:
            return method(node)
        if isinstance(node, s.Stmt):
            return self.generic_visit_stmt(node)
        return self.generic_visit(node)

    def generic_visit_stmt(self, node):
        fields = s.STMT_FIELDS.get(type(node))
        if fields is None:
            raise TypeError(f"{type(self).__name__} cannot visit {type(node).__name__}")
        expr_fields, stmt_fields = fields
        changes = {}
        for name in expr_fields + stmt_fields:
            child = getattr(node, name)
            if isinstance(child, tuple):
                new = tuple(self.visit(c) for c in child)
                if any(a is not b for a, b in zip(new, child)):
                    changes[name] = new
            elif child is not None:
                new = self.visit(child)
                if new is not child:
                    changes[name] = new
        if not changes:
            return node
        if isinstance(node, s.SeqStmt):
            return s.seq(*changes["stmts"])
        return dataclasses.replace(node, **changes)


def map_func(func: s.PrimFunc, mutator: StmtMutator) -> s.PrimFunc:
    body = mutator.visit(func.body)
    return func if body is func.body else func.with_body(body)


def walk(node, fn) -> None:
    """Call ``fn`` on every statement and expression node, parents first."""

    class _Walker(StmtVisitor):
        def visit(self, x):
            fn(x)
            super().visit(x)

    _Walker().visit(node)


def buffers_used(node) -> list[n.Buffer]:
    """Buffers read or written in ``node``, in order of first use."""
    found: dict[int, n.Buffer] = {}

    def take(x):
        if isinstance(x, (n.BufferLoad, s.BufferStore)):
            found.setdefault(id(x.buffer), x.buffer)
        elif isinstance(x, s.Allocate):
            found.setdefault(id(x.buffer), x.buffer)

    walk(node, take)
    return list(found.values())


def uses_var(node, var) -> bool:
    hit = False

    def take(x):
        nonlocal hit
        if x is var:
            hit = True

    walk(node, take)
    return hit


class VarSubstituter(StmtMutator):
    def __init__(self, mapping: dict):
        self.mapping = mapping

    def visit_Var(self, v):
        return self.mapping.get(v, v)


def substitute_stmt(node, mapping: dict):
    """Replace Vars in a statement tree."""
    if not mapping:
        return node
    return VarSubstituter(mapping).visit(node)


__all__ = ["StmtVisitor", "StmtMutator", "ExprVisitor", "ExprMutator", "map_func", "walk",
           "buffers_used", "uses_var", "substitute_stmt"]
