"""Turn multi-dimensional buffer accesses into one-dimensional ones.

Before: ``C[i, j] = A[i, k]`` with C of shape [4, 8] and A of shape [4, 3];
after: ``C[i * 8 + j] = A[i * 3 + k]`` with both buffers one-dimensional. The shapes of
the arguments are kept in ``attrs["arg_shapes"]``.
"""

from __future__ import annotations

from dlc import dtypes
from dlc.expr import nodes as n
from dlc.expr.simplify import simplify
from dlc.tir import stmt as s
from dlc.tir.functor import StmtMutator


def flatten_buffers(func: s.PrimFunc) -> s.PrimFunc:
    if func.attrs.get("flat"):
        return func
    flattener = _Flattener()
    params = tuple(flattener.flat(b) for b in func.params)
    body = flattener.visit(func.body)
    attrs = dict(func.attrs)
    attrs["flat"] = True
    attrs["arg_shapes"] = [tuple(b.shape) for b in func.params]
    return s.PrimFunc(func.name, params, body, attrs)


class _Flattener(StmtMutator):
    def __init__(self):
        self.mapping: dict[int, n.Buffer] = {}

    def flat(self, buf: n.Buffer) -> n.Buffer:
        if id(buf) not in self.mapping:
            self.mapping[id(buf)] = n.Buffer(buf.name, (buf.size,), buf.dtype, buf.scope)
        return self.mapping[id(buf)]

    def index(self, buf: n.Buffer, indices) -> tuple:
        flat = n.Const(0, dtypes.INDEX_DTYPE)
        for idx, stride in zip(indices, buf.strides):
            flat = n.Add(flat, n.Mul(idx, n.Const(stride, dtypes.INDEX_DTYPE)))
        return (simplify(flat),)

    def visit_BufferLoad(self, e):
        e = self.generic_visit(e)
        return n.BufferLoad(self.flat(e.buffer), self.index(e.buffer, e.indices), e.predicate)

    def visit_BufferStore(self, st):
        st = self.generic_visit_stmt(st)
        return s.BufferStore(self.flat(st.buffer), st.value, self.index(st.buffer, st.indices),
                             st.predicate)

    def visit_Allocate(self, st):
        body = self.visit(st.body)
        return s.Allocate(self.flat(st.buffer), body)
