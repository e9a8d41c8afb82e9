"""Loop IR statements. A PrimFunc is a loop nest over buffers, ready for code generation."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from dlc.expr import nodes as n


class ForKind(enum.Enum):
    """How a loop runs: one iteration after another, across threads, as SIMD lanes,
    fully unrolled, or bound to a GPU thread index."""

    SERIAL = "serial"
    PARALLEL = "parallel"
    VECTORIZED = "vectorized"
    UNROLLED = "unrolled"
    THREAD_BINDING = "thread_binding"


class Stmt:
    __slots__ = ()

    def __repr__(self) -> str:
        from dlc.tir.printer import stmt_to_str

        return stmt_to_str(self)


def _frozen(cls):
    return dataclass(frozen=True, eq=False, repr=False)(cls)


@_frozen
class For(Stmt):
    """``for var in [min, min + extent)``; ``thread_tag`` names the bound GPU index."""

    var: n.Var
    min: n.Expr
    extent: n.Expr
    kind: ForKind
    body: Stmt
    thread_tag: str | None = None


@_frozen
class BufferStore(Stmt):
    """``buffer[indices] = value``; ``predicate`` masks lanes of a vector store."""

    buffer: n.Buffer
    value: n.Expr
    indices: tuple
    predicate: n.Expr | None = None


@_frozen
class Allocate(Stmt):
    """Scratch memory for ``buffer`` that lives while ``body`` runs."""

    buffer: n.Buffer
    body: Stmt


@_frozen
class SeqStmt(Stmt):
    stmts: tuple


@_frozen
class IfThenElse(Stmt):
    """A branch; ``likely`` marks bound guards that loop partitioning may remove."""

    cond: n.Expr
    then_case: Stmt
    else_case: Stmt | None = None
    likely: bool = False


@_frozen
class LetStmt(Stmt):
    var: n.Var
    value: n.Expr
    body: Stmt


@_frozen
class Evaluate(Stmt):
    """An expression evaluated for its effect; ``Evaluate(0)`` is the empty statement."""

    value: n.Expr


NOP = Evaluate(n.Const(0, "int32"))


def is_nop(s: Stmt) -> bool:
    return isinstance(s, Evaluate) and isinstance(s.value, n.Const)


def seq(*stmts) -> Stmt:
    """Sequence statements, flattening nested sequences and dropping no-ops."""
    flat = []
    for s in stmts:
        if s is None or is_nop(s):
            continue
        if isinstance(s, SeqStmt):
            flat.extend(s.stmts)
        else:
            flat.append(s)
    if not flat:
        return NOP
    return flat[0] if len(flat) == 1 else SeqStmt(tuple(flat))


@_frozen
class PrimFunc:
    """A function over buffers: ``params`` are its arguments (inputs, then outputs)."""

    name: str
    params: tuple
    body: Stmt
    attrs: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        from dlc.tir.printer import func_to_str

        return func_to_str(self)

    def __str__(self) -> str:
        return self.__repr__()

    def with_body(self, body: Stmt) -> PrimFunc:
        return PrimFunc(self.name, self.params, body, dict(self.attrs))


STMT_FIELDS = {
    For: (("min", "extent"), ("body",)),
    BufferStore: (("value", "indices", "predicate"), ()),
    Allocate: ((), ("body",)),
    SeqStmt: ((), ("stmts",)),
    IfThenElse: (("cond",), ("then_case", "else_case")),
    LetStmt: (("value",), ("body",)),
    Evaluate: (("value",), ()),
}
