"""Readable text of the loop IR (Python-like), used by ``print(dlc.lower(...))``."""

from __future__ import annotations

from dlc.expr import nodes as n
from dlc.expr.printer import expr_to_str
from dlc.tir import stmt as s

_INDENT = "  "


def func_to_str(func: s.PrimFunc) -> str:
    params = ", ".join(f"{b.name}: {b.dtype}{list(b.shape)}" for b in func.params)
    lines = [f"func {func.name}({params}):"]
    _emit(func.body, 1, lines)
    return "\n".join(lines)


def stmt_to_str(stmt: s.Stmt) -> str:
    lines: list[str] = []
    _emit(stmt, 0, lines)
    return "\n".join(lines)


def _range(f: s.For) -> str:
    lo, ext = f.min, f.extent
    if isinstance(lo, n.Const) and lo.value == 0:
        bounds = expr_to_str(ext)
    elif isinstance(lo, n.Const) and isinstance(ext, n.Const):
        bounds = f"{lo.value}, {lo.value + ext.value}"
    else:
        bounds = f"{expr_to_str(lo)}, {expr_to_str(lo)} + {expr_to_str(ext)}"
    if f.kind is s.ForKind.SERIAL:
        return f"range({bounds})"
    if f.kind is s.ForKind.THREAD_BINDING:
        return f"thread_binding({bounds}, \"{f.thread_tag}\")"
    return f"{f.kind.value}({bounds})"


def _let_shared(pad: str, lines: list, *exprs) -> dict:
    """Print subexpressions used more than once as ``%k = ...`` lines; returns the names."""
    from dlc.expr.printer import shared_subexpressions

    names: dict = {}
    for k, e in enumerate(shared_subexpressions(*exprs)):
        text = expr_to_str(e, names)
        names[id(e)] = f"%{k}"
        lines.append(f"{pad}%{k} = {text}")
    return names


def _emit(node: s.Stmt, depth: int, lines: list[str]) -> None:
    pad = _INDENT * depth
    if isinstance(node, s.SeqStmt):
        for child in node.stmts:
            _emit(child, depth, lines)
    elif isinstance(node, s.For):
        lines.append(f"{pad}for {node.var.name} in {_range(node)}:")
        _emit(node.body, depth + 1, lines)
    elif isinstance(node, s.BufferStore):
        names = _let_shared(pad, lines, node.value, node.predicate, *node.indices)
        idx = ", ".join(expr_to_str(i, names) for i in node.indices)
        text = f"{pad}{node.buffer.name}[{idx}] = {expr_to_str(node.value, names)}"
        if node.predicate is not None:
            text += f"  if {expr_to_str(node.predicate, names)}"
        lines.append(text)
    elif isinstance(node, s.Allocate):
        b = node.buffer
        lines.append(f"{pad}alloc {b.name}: {b.dtype}{list(b.shape)}  # {b.scope}")
        _emit(node.body, depth, lines)
    elif isinstance(node, s.IfThenElse):
        cond = expr_to_str(node.cond)
        lines.append(f"{pad}if likely({cond}):" if node.likely else f"{pad}if {cond}:")
        _emit(node.then_case, depth + 1, lines)
        if node.else_case is not None:
            lines.append(f"{pad}else:")
            _emit(node.else_case, depth + 1, lines)
    elif isinstance(node, s.LetStmt):
        lines.append(f"{pad}{node.var.name} = {expr_to_str(node.value)}")
        _emit(node.body, depth, lines)
    elif isinstance(node, s.Evaluate):
        if not s.is_nop(node):
            lines.append(f"{pad}{expr_to_str(node.value)}")
        elif not lines or lines[-1].endswith(":"):
            lines.append(f"{pad}pass")
    else:
        raise TypeError(f"cannot print {type(node).__name__}")
