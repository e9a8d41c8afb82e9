"""Visitors and mutators over expressions, dispatching to ``visit_<ClassName>``."""

from __future__ import annotations

import dataclasses

from dlc.expr import nodes as n


def find_method(obj, cls):
    """The ``visit_<Name>`` method of ``obj`` for ``cls`` or its nearest base class."""
    cache = type(obj).__dict__.get("_dispatch_cache")
    if cache is None:
        cache = {}
        type(obj)._dispatch_cache = cache
    if cls not in cache:
        name = None
        for base in cls.__mro__:
            if hasattr(obj, "visit_" + base.__name__):
                name = "visit_" + base.__name__
                break
        cache[cls] = name
    name = cache[cls]
    return None if name is None else getattr(obj, name)


def memoized(visitor, expr, compute):
    """Evaluate ``compute()`` for ``expr`` once per top-level expression: expressions are
    DAGs (a subexpression used twice is one node), so walking them as trees can take
    exponential time. The memo lives while one top-level expression is visited, so
    visitors whose state changes between expressions (loop ranges) stay correct; visitors
    whose state changes *within* an expression set ``memoize = False``."""
    if not getattr(visitor, "memoize", True):
        return compute()
    state = visitor.__dict__
    depth = state.get("_memo_depth", 0)
    if depth == 0:
        state["_memo"] = {}
    memo = state["_memo"]
    hit = memo.get(id(expr))
    if hit is not None and hit[0] is expr:
        return hit[1]
    state["_memo_depth"] = depth + 1
    try:
        result = compute()
    finally:
        state["_memo_depth"] = depth
    memo[id(expr)] = (expr, result)
    return result


class ExprVisitor:
    """Walks an expression tree. Override ``visit_<ClassName>`` for the nodes of interest
    (a method for a base class also receives its subclasses); the default visits every
    child. A node shared by several parents is visited once per top-level expression."""

    def visit(self, expr):
        return memoized(self, expr, lambda: self._dispatch(expr))

    def _dispatch(self, expr):
        method = find_method(self, type(expr))
        if method is None:
            return self.generic_visit(expr)
        return method(expr)

    def generic_visit(self, expr):
        if not isinstance(expr, n.Expr):
            raise TypeError(f"{type(self).__name__} cannot visit {type(expr).__name__}")
        for name in n.child_fields(expr):
            child = getattr(expr, name)
            if isinstance(child, tuple):
                for c in child:
                    self.visit(c)
            elif child is not None:
                self.visit(child)


class ExprMutator:
    """Rebuilds an expression tree bottom-up; unchanged subtrees are returned as is, and a
    shared subexpression is rebuilt once (the result stays shared)."""

    def visit(self, expr):
        return memoized(self, expr, lambda: self._dispatch(expr))

    def _dispatch(self, expr):
        method = find_method(self, type(expr))
        if method is None:
            return self.generic_visit(expr)
        return method(expr)

    def generic_visit(self, expr):
        if not isinstance(expr, n.Expr):
            raise TypeError(f"{type(self).__name__} cannot visit {type(expr).__name__}")
        changes = {}
        for name in n.child_fields(expr):
            child = getattr(expr, name)
            if isinstance(child, tuple):
                new = tuple(self.visit(c) for c in child)
                if any(a is not b for a, b in zip(new, child)):
                    changes[name] = new
            elif child is not None:
                new = self.visit(child)
                if new is not child:
                    changes[name] = new
        if not changes:
            return expr
        return dataclasses.replace(expr, **changes)


def post_order(expr, fn) -> None:
    """Call ``fn`` on every node of ``expr``, children first."""

    class _Walker(ExprVisitor):
        def visit(self, e):
            super().visit(e)
            fn(e)

    _Walker().visit(expr)


def collect_vars(expr) -> set:
    """The Vars that occur in an expression."""
    found: set = set()

    def take(e):
        if isinstance(e, n.Var):
            found.add(e)

    post_order(expr, take)
    return found


def substitute(expr, mapping: dict):
    """Replace Vars (keys, compared by identity) by expressions."""
    if not mapping:
        return expr

    class _Sub(ExprMutator):
        def visit_Var(self, v):
            return mapping.get(v, v)

    return _Sub().visit(expr)


def contains(expr, predicate) -> bool:
    """True if any node of ``expr`` satisfies ``predicate``."""
    found = False

    def take(e):
        nonlocal found
        if predicate(e):
            found = True

    post_order(expr, take)
    return found
