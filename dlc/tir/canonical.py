"""A canonical text of a PrimFunc: buffers and variables renamed in order of first
appearance, so that kernels computing the same thing on the same shapes compare equal
(used to compile identical kernels once)."""

from __future__ import annotations

import dataclasses

from dlc.expr import nodes as n
from dlc.tir import stmt as s
from dlc.tir.functor import StmtMutator


class _Renamer(StmtMutator):
    def __init__(self):
        self.buffers: dict = {}
        self.vars: dict = {}

    def buffer(self, buf: n.Buffer) -> n.Buffer:
        if id(buf) not in self.buffers:
            self.buffers[id(buf)] = n.Buffer(f"b{len(self.buffers)}", buf.shape, buf.dtype,
                                             buf.scope, buf.strides)
        return self.buffers[id(buf)]

    def visit_Var(self, v):
        if v not in self.vars:
            self.vars[v] = n.Var(f"v{len(self.vars)}", v.dtype, v.lanes)
        return self.vars[v]

    def visit_BufferLoad(self, e):
        e = self.generic_visit(e)
        return dataclasses.replace(e, buffer=self.buffer(e.buffer))

    def visit_BufferStore(self, st):
        st = self.generic_visit_stmt(st)
        return dataclasses.replace(st, buffer=self.buffer(st.buffer))

    def visit_Allocate(self, st):
        buf = self.buffer(st.buffer)
        return s.Allocate(buf, self.visit(st.body))

    def visit_For(self, st):
        var = self.visit_Var(st.var)
        body = self.visit(st.body)
        return s.For(var, self.visit(st.min), self.visit(st.extent), st.kind, body,
                     st.thread_tag)

    def visit_LetStmt(self, st):
        var = self.visit_Var(st.var)
        return s.LetStmt(var, self.visit(st.value), self.visit(st.body))


def canonical_text(func: s.PrimFunc) -> str:
    """The function's text with canonical names (equal for equivalent kernels)."""
    renamer = _Renamer()
    params = tuple(renamer.buffer(b) for b in func.params)
    body = renamer.visit(func.body)
    return str(s.PrimFunc("kernel", params, body))
