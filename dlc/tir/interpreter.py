"""A slow, direct interpreter of the loop IR: the executable definition of its semantics.

Tests run lowered functions here and through native code and compare. Semantics that C
leaves undefined are defined here, and code generation follows: integer division or
remainder by zero gives 0, shifts by at least the bit width give 0 (or -1 for arithmetic
right shifts of negatives), float-to-integer casts saturate and map NaN to 0. Reading or
writing outside a buffer raises IndexError.
"""

from __future__ import annotations

import numpy as np

from dlc import dtypes
from dlc.errors import ArgumentError
from dlc.expr import nodes as n
from dlc.te.intrinsics import np_exp_nonpositive
from dlc.tir import stmt as s


def run(func: s.PrimFunc, *arrays) -> None:
    """Execute ``func`` on NumPy arrays (outputs are written in place)."""
    if len(arrays) != len(func.params):
        raise ArgumentError(f"{func.name} takes {len(func.params)} arrays, got {len(arrays)}")
    memory = {}
    for buf, arr in zip(func.params, arrays):
        if tuple(arr.shape) != tuple(buf.shape) or arr.dtype != dtypes.to_numpy(buf.dtype):
            raise ArgumentError(f"argument {buf.name}: expected {buf.dtype}{list(buf.shape)}, "
                                f"got {arr.dtype}{list(arr.shape)}")
        memory[id(buf)] = arr.reshape(-1)
    with np.errstate(all="ignore"):
        _Interp(memory).exec(func.body, {})


def _np(dtype):
    return dtypes.to_numpy(dtype)


def _cast(value, dtype):
    out = dtypes.astype(np.asarray(value), dtype)
    return out if out.ndim else out.dtype.type(out)


def _int_div(a, b, floor: bool):
    a, b = np.asarray(a), np.asarray(b)
    safe = np.where(b == 0, 1, b)
    if floor:
        q = np.floor_divide(a, safe)
    else:
        wide_a, wide_b = a.astype(object), safe.astype(object)  # exact, no INT_MIN overflow
        q = np.vectorize(lambda x, y: abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1),
                         otypes=[object])(wide_a, wide_b)
        q = np.vectorize(lambda v: v & ((1 << (8 * a.dtype.itemsize)) - 1), otypes=[object])(q)
        q = q.astype(np.uint64).astype(a.dtype) if q.ndim else np.uint64(q).astype(a.dtype)
    q = np.where(b == 0, 0, q).astype(a.dtype)
    return q if q.ndim else a.dtype.type(q)


def _int_mod(a, b, floor: bool):
    a, b = np.asarray(a), np.asarray(b)
    safe = np.where(b == 0, 1, b)
    r = np.mod(a, safe) if floor else np.fmod(a, safe)
    r = np.where(b == 0, 0, r).astype(a.dtype)
    return r if r.ndim else a.dtype.type(r)


def _shift(a, b, left: bool, dtype: str):
    a, b = np.asarray(a), np.asarray(b)
    bits = dtypes.bits(dtype)
    too_far = (b < 0) | (b >= bits)
    safe = np.where(too_far, 0, b).astype(a.dtype)
    if left:
        r = np.left_shift(a, safe)
        r = np.where(too_far, 0, r)
    else:
        r = np.right_shift(a, safe)
        fill = np.where(a < 0, -1, 0) if dtypes.is_signed_int(dtype) else 0
        r = np.where(too_far, fill, r)
    r = np.asarray(r).astype(a.dtype)
    return r if r.ndim else a.dtype.type(r)


_MATH = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "tanh": np.tanh, "floor": np.floor,
    "ceil": np.ceil, "round": np.round, "trunc": np.trunc, "fmin": np.fmin, "fmax": np.fmax,
    "exp2": np.exp2, "log2": np.log2, "log10": np.log10, "log1p": np.log1p, "expm1": np.expm1,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos,
    "atan": np.arctan, "atan2": np.arctan2, "sinh": np.sinh, "cosh": np.cosh,
    "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh, "fmod": np.fmod,
    "pow": np.power, "abs": np.abs, "isnan": np.isnan, "isinf": np.isinf,
    "exp_nonpositive": np_exp_nonpositive,
}


def _call(name, args, dtype):
    if name == "rsqrt":
        return _np(dtype).type(1) / np.sqrt(args[0])
    if name == "sigmoid":
        x = args[0]
        return _np(dtype).type(1) / (_np(dtype).type(1) + np.exp(-x))
    if name == "erf":
        from math import erf

        vec = np.vectorize(lambda v: erf(float(v)), otypes=[np.float64])
        out = vec(np.asarray(args[0])).astype(_np(dtype))
        return out if np.ndim(out) else _np(dtype).type(out)
    return _MATH[name](*args)


def _check_bounds(what: str, buf, data, flat) -> None:
    """Out-of-bounds accesses are undefined in native code; here they are errors."""
    flat = np.asarray(flat)
    if flat.size and (flat.min() < 0 or flat.max() >= data.size):
        bad = flat[(flat < 0) | (flat >= data.size)].reshape(-1)[0]
        raise IndexError(f"out-of-bounds {what} of buffer {buf.name}{list(buf.shape)}: "
                         f"element {int(bad)} of {data.size}")


class _Interp:
    def __init__(self, memory):
        self.memory = memory

    # -- expressions ------------------------------------------------------------------------
    def eval(self, e, env):
        method = getattr(self, "e_" + type(e).__name__, None)
        if method is None:
            for base in type(e).__mro__:
                method = getattr(self, "e_" + base.__name__, None)
                if method is not None:
                    break
        if method is None:
            raise TypeError(f"interpreter cannot evaluate {type(e).__name__}")
        return method(e, env)

    def e_Const(self, e, env):
        if dtypes.is_float(e.dtype):  # rounded once, exactly as the code generator does
            return _np(e.dtype).type(dtypes.round_float(e.value, e.dtype))
        return _np(e.dtype).type(e.value)

    def e_Var(self, e, env):
        return env[e]

    def e_Ramp(self, e, env):
        base, stride = self.eval(e.base, env), self.eval(e.stride, env)
        return (base + stride * np.arange(e.lanes)).astype(_np(e.dtype))

    def e_Broadcast(self, e, env):
        return np.full(e.lanes, self.eval(e.value, env), dtype=_np(e.dtype))

    def e_BinaryOp(self, e, env):
        a, b = self.eval(e.a, env), self.eval(e.b, env)
        dtype = e.a.dtype
        isf = dtypes.is_float(dtype)
        t = type(e)
        if t is n.Add:
            return a + b
        if t is n.Sub:
            return a - b
        if t is n.Mul:
            return a * b
        if t is n.Div:
            return a / b if isf else _int_div(a, b, floor=False)
        if t is n.Mod:
            return np.fmod(a, b) if isf else _int_mod(a, b, floor=False)
        if t is n.FloorDiv:
            return np.floor_divide(a, b) if isf else _int_div(a, b, floor=True)
        if t is n.FloorMod:
            return np.mod(a, b) if isf else _int_mod(a, b, floor=True)
        if t is n.Min:
            return np.minimum(a, b)
        if t is n.Max:
            return np.maximum(a, b)
        if t is n.BitAnd or t is n.And:
            return np.bitwise_and(a, b) if t is n.BitAnd else np.logical_and(a, b)
        if t is n.BitOr or t is n.Or:
            return np.bitwise_or(a, b) if t is n.BitOr else np.logical_or(a, b)
        if t is n.BitXor:
            return np.bitwise_xor(a, b)
        if t is n.ShiftLeft:
            return _shift(a, b, True, dtype)
        if t is n.ShiftRight:
            return _shift(a, b, False, dtype)
        ops = {n.EQ: np.equal, n.NE: np.not_equal, n.LT: np.less, n.LE: np.less_equal,
               n.GT: np.greater, n.GE: np.greater_equal}
        return ops[t](a, b)

    def e_Not(self, e, env):
        return np.logical_not(self.eval(e.a, env))

    def e_BitNot(self, e, env):
        return np.invert(self.eval(e.a, env))

    def e_Cast(self, e, env):
        return _cast(self.eval(e.value, env), e.dtype)

    def e_Reinterpret(self, e, env):
        v = np.asarray(self.eval(e.value, env))
        out = v.view(_np(e.dtype))
        return out if out.ndim else _np(e.dtype).type(out)

    def e_Select(self, e, env):
        cond = self.eval(e.cond, env)
        if np.ndim(cond) == 0:
            return self.eval(e.true_value if cond else e.false_value, env)
        t = self.eval_masked(e.true_value, env, cond)
        f = self.eval_masked(e.false_value, env, np.logical_not(cond))
        return np.where(cond, t, f).astype(_np(e.dtype))

    def eval_masked(self, e, env, mask):
        saved, self.mask = getattr(self, "mask", None), mask
        try:
            return self.eval(e, env)
        finally:
            self.mask = saved

    def e_Call(self, e, env):
        args = [self.eval(a, env) for a in e.args]
        out = _call(e.name, args, e.args[0].dtype)
        if np.ndim(out):
            return np.asarray(out).astype(_np(e.dtype))
        return _np(e.dtype).type(out)

    def _offsets(self, buf, indices, env):
        idx = [self.eval(i, env) for i in indices]
        flat = 0
        for i, stride in zip(idx, buf.strides):
            flat = flat + np.asarray(i, dtype=np.int64) * stride
        return flat

    def e_BufferLoad(self, e, env):
        data = self.memory[id(e.buffer)]
        flat = self._offsets(e.buffer, e.indices, env)
        mask = getattr(self, "mask", None)
        if e.predicate is not None:
            pred = self.eval(e.predicate, env)
            mask = pred if mask is None else np.logical_and(mask, pred)
        if np.ndim(flat) == 0:
            if mask is not None and not np.all(mask):
                return data.dtype.type(0)
            _check_bounds("read", e.buffer, data, flat)
            return data[int(flat)]
        flat = np.asarray(flat)
        if mask is not None:
            mask = np.broadcast_to(mask, flat.shape)
            safe = np.where(mask, flat, 0)
            _check_bounds("read", e.buffer, data, safe)
            return np.where(mask, data[safe], 0).astype(data.dtype)
        _check_bounds("read", e.buffer, data, flat)
        return data[flat]

    # -- statements ------------------------------------------------------------------------
    def exec(self, node, env):
        t = type(node)
        if t is s.SeqStmt:
            for child in node.stmts:
                self.exec(child, env)
        elif t is s.For:
            lo = int(self.eval(node.min, env))
            ext = int(self.eval(node.extent, env))
            for v in range(lo, lo + ext):
                env[node.var] = np.int64(v)
                self.exec(node.body, env)
            env.pop(node.var, None)
        elif t is s.BufferStore:
            data = self.memory[id(node.buffer)]
            value = self.eval(node.value, env)
            flat = self._offsets(node.buffer, node.indices, env)
            if node.predicate is not None:
                pred = np.broadcast_to(self.eval(node.predicate, env), np.shape(flat))
                flat = np.asarray(flat)[pred]
                value = np.broadcast_to(value, pred.shape)[pred]
            _check_bounds("write", node.buffer, data, flat)
            data[flat] = value
        elif t is s.Allocate:
            buf = node.buffer
            fill = np.nan if dtypes.is_float(buf.dtype) else 0x5A
            self.memory[id(buf)] = np.full(buf.size, fill).astype(_np(buf.dtype))
            self.exec(node.body, env)
            del self.memory[id(buf)]
        elif t is s.IfThenElse:
            if self.eval(node.cond, env):
                self.exec(node.then_case, env)
            elif node.else_case is not None:
                self.exec(node.else_case, env)
        elif t is s.LetStmt:
            env[node.var] = self.eval(node.value, env)
            self.exec(node.body, env)
        elif t is s.Evaluate:
            self.eval(node.value, env)
        else:
            raise TypeError(f"interpreter cannot execute {t.__name__}")
