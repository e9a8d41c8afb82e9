"""Scalar expression nodes shared by tensor expressions (dlc.te) and the loop IR (dlc.tir).

Nodes are small frozen dataclasses compared by identity; ``structural_key`` gives a
structural key when equality of shape is needed. Every node has ``dtype`` (a scalar dtype
name) and ``lanes`` (1 for scalars, >1 for vectors made by the vectorizer).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field, fields
from typing import Any

from dlc import dtypes
from dlc.errors import DlcTypeError


class Expr:
    """Base of all expression nodes; Python operators build new expressions."""

    __slots__ = ()
    dtype: str
    lanes: int

    # Arithmetic -------------------------------------------------------------------------
    def __add__(self, other):
        return _arith(Add, self, other)

    def __radd__(self, other):
        return _arith(Add, other, self)

    def __sub__(self, other):
        return _arith(Sub, self, other)

    def __rsub__(self, other):
        return _arith(Sub, other, self)

    def __mul__(self, other):
        return _arith(Mul, self, other)

    def __rmul__(self, other):
        return _arith(Mul, other, self)

    def __truediv__(self, other):
        return _true_div(self, other)

    def __rtruediv__(self, other):
        return _true_div(other, self)

    def __floordiv__(self, other):
        return _arith(FloorDiv, self, other)

    def __rfloordiv__(self, other):
        return _arith(FloorDiv, other, self)

    def __mod__(self, other):
        return _arith(FloorMod, self, other)

    def __rmod__(self, other):
        return _arith(FloorMod, other, self)

    def __neg__(self):
        # -0.0 - x flips the sign of zeros too (LLVM turns it into fneg)
        zero = const(-0.0 if dtypes.is_float(self.dtype) else 0, self.dtype)
        return _arith(Sub, zero, self)

    # Comparisons ------------------------------------------------------------------------
    def __lt__(self, other):
        return _arith(LT, self, other)

    def __le__(self, other):
        return _arith(LE, self, other)

    def __gt__(self, other):
        return _arith(GT, self, other)

    def __ge__(self, other):
        return _arith(GE, self, other)

    def __eq__(self, other):
        return _arith(EQ, self, other)

    def __ne__(self, other):
        return _arith(NE, self, other)

    # Bitwise and logical ----------------------------------------------------------------
    def __and__(self, other):
        a, b = _coerce_pair(self, other)
        return And(a, b) if a.dtype == "bool" else _arith(BitAnd, a, b)

    def __rand__(self, other):
        return Expr.__and__(as_expr(other, self.dtype), self)

    def __or__(self, other):
        a, b = _coerce_pair(self, other)
        return Or(a, b) if a.dtype == "bool" else _arith(BitOr, a, b)

    def __ror__(self, other):
        return Expr.__or__(as_expr(other, self.dtype), self)

    def __xor__(self, other):
        return _arith(BitXor, self, other)

    def __invert__(self):
        return Not(self) if self.dtype == "bool" else BitNot(self)

    def __lshift__(self, other):
        return _arith(ShiftLeft, self, other)

    def __rshift__(self, other):
        return _arith(ShiftRight, self, other)

    def __hash__(self):
        return id(self)

    def __bool__(self):
        raise DlcTypeError(
            "an expression has no truth value while the program is being built; use "
            "te.if_then_else / te.all / te.any instead of Python 'if', 'and', 'or', 'not'")

    def __repr__(self) -> str:
        from dlc.expr.printer import expr_to_str

        return expr_to_str(self)

    def astype(self, dtype) -> Expr:
        return cast(dtype, self)


def _frozen(cls):
    return dataclass(frozen=True, eq=False, repr=False)(cls)


# Leaves ---------------------------------------------------------------------------------
@_frozen
class Const(Expr):
    """A scalar constant of any dtype."""

    value: Any
    dtype: str
    lanes = 1


@_frozen
class Var(Expr):
    """A named variable: loop counters, let-bound values. Compared by identity."""

    name: str
    dtype: str = dtypes.INDEX_DTYPE
    lanes: int = 1


# Binary operators ------------------------------------------------------------------------
@_frozen
class BinaryOp(Expr):
    a: Expr
    b: Expr

    @property
    def dtype(self) -> str:
        return self.a.dtype

    @property
    def lanes(self) -> int:
        return max(self.a.lanes, self.b.lanes)


class Add(BinaryOp):
    symbol = "+"


class Sub(BinaryOp):
    symbol = "-"


class Mul(BinaryOp):
    symbol = "*"


class Div(BinaryOp):
    """Division: exact for floats, truncating toward zero for integers (C semantics)."""

    symbol = "/"


class Mod(BinaryOp):
    """Remainder with the sign of the dividend (C fmod / %)."""

    symbol = "%t"


class FloorDiv(BinaryOp):
    """Division rounding toward minus infinity (Python //)."""

    symbol = "//"


class FloorMod(BinaryOp):
    """Remainder with the sign of the divisor (Python %)."""

    symbol = "%"


class Min(BinaryOp):
    symbol = "min"


class Max(BinaryOp):
    symbol = "max"


class BitAnd(BinaryOp):
    symbol = "&"


class BitOr(BinaryOp):
    symbol = "|"


class BitXor(BinaryOp):
    symbol = "^"


class ShiftLeft(BinaryOp):
    symbol = "<<"


class ShiftRight(BinaryOp):
    """Arithmetic shift for signed, logical for unsigned integers."""

    symbol = ">>"


class CmpOp(BinaryOp):
    @property
    def dtype(self) -> str:
        return "bool"


class EQ(CmpOp):
    symbol = "=="

    def __bool__(self):  # lets Exprs be compared in containers: identity equality
        return self.a is self.b


class NE(CmpOp):
    symbol = "!="

    def __bool__(self):
        return self.a is not self.b


class LT(CmpOp):
    symbol = "<"


class LE(CmpOp):
    symbol = "<="


class GT(CmpOp):
    symbol = ">"


class GE(CmpOp):
    symbol = ">="


class And(BinaryOp):
    symbol = "&&"


class Or(BinaryOp):
    symbol = "||"


# Other operators -------------------------------------------------------------------------
@_frozen
class Not(Expr):
    a: Expr
    dtype = "bool"

    @property
    def lanes(self) -> int:
        return self.a.lanes


@_frozen
class BitNot(Expr):
    a: Expr

    @property
    def dtype(self) -> str:
        return self.a.dtype

    @property
    def lanes(self) -> int:
        return self.a.lanes


@_frozen
class Cast(Expr):
    """Value conversion (float->int truncates toward zero, like C and NumPy)."""

    dtype: str
    value: Expr

    @property
    def lanes(self) -> int:
        return self.value.lanes


@_frozen
class Reinterpret(Expr):
    """Bit-level reinterpretation between dtypes of the same size."""

    dtype: str
    value: Expr

    @property
    def lanes(self) -> int:
        return self.value.lanes


@_frozen
class Select(Expr):
    """``cond ? true_value : false_value``; only the chosen side is evaluated, so a side may
    read memory that is valid only when it is chosen."""

    cond: Expr
    true_value: Expr
    false_value: Expr

    @property
    def dtype(self) -> str:
        return self.true_value.dtype

    @property
    def lanes(self) -> int:
        return max(self.cond.lanes, self.true_value.lanes, self.false_value.lanes)


@_frozen
class Call(Expr):
    """A pure math intrinsic (exp, log, tanh, ...) applied to its arguments."""

    name: str
    args: tuple
    dtype: str

    @property
    def lanes(self) -> int:
        return max(a.lanes for a in self.args)


@_frozen
class Reduce(Expr):
    """A commutative reduction of ``source`` over reduction axes (IterVars)."""

    combiner: str  # "sum" | "prod" | "max" | "min"
    source: Expr
    axes: tuple
    condition: Expr | None = None
    lanes = 1

    @property
    def dtype(self) -> str:
        return self.source.dtype


@_frozen
class TensorRead(Expr):
    """Reading one element of a tensor expression (dlc.te.Tensor) at an index."""

    tensor: Any
    indices: tuple
    lanes = 1

    @property
    def dtype(self) -> str:
        return self.tensor.dtype


@_frozen
class Buffer:
    """A region of memory holding a tensor: a function argument or an allocation."""

    name: str
    shape: tuple
    dtype: str
    scope: str = "global"
    strides: tuple = field(default=None)

    def __post_init__(self):
        if self.strides is None:
            strides, acc = [], 1
            for extent in reversed(self.shape):
                strides.append(acc)
                acc *= extent
            object.__setattr__(self, "strides", tuple(reversed(strides)))

    @property
    def size(self) -> int:
        n = 1
        for extent in self.shape:
            n *= extent
        return n

    @property
    def nbytes(self) -> int:
        return self.size * dtypes.itemsize(self.dtype)

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other

    def __repr__(self) -> str:
        return f"Buffer({self.name}, {list(self.shape)}, {self.dtype}, {self.scope})"


@_frozen
class BufferLoad(Expr):
    """Reading a buffer; with a vector index it loads several lanes. ``predicate`` (a bool
    vector or scalar) masks lanes that must not be read."""

    buffer: Buffer
    indices: tuple
    predicate: Expr | None = None

    @property
    def dtype(self) -> str:
        return self.buffer.dtype

    @property
    def lanes(self) -> int:
        return max((i.lanes for i in self.indices), default=1)


@_frozen
class Ramp(Expr):
    """The vector ``base, base+stride, ..., base+(lanes-1)*stride``."""

    base: Expr
    stride: Expr
    lanes: int

    @property
    def dtype(self) -> str:
        return self.base.dtype


@_frozen
class Broadcast(Expr):
    """A scalar repeated in every lane."""

    value: Expr
    lanes: int

    @property
    def dtype(self) -> str:
        return self.value.dtype


# Construction helpers --------------------------------------------------------------------
def const(value, dtype: str | None = None) -> Const:
    """A constant; dtype defaults to int64 for ints, float32 for floats, bool for bools."""
    if dtype is None:
        if isinstance(value, bool):
            dtype = "bool"
        elif isinstance(value, int):
            dtype = dtypes.INDEX_DTYPE
        elif isinstance(value, float):
            dtype = "float32"
        else:
            raise DlcTypeError(f"cannot make a constant of {value!r}")
    dtype = dtypes.canonical(dtype)
    if dtype == "bool":
        value = bool(value)
    elif dtypes.is_float(dtype):
        if isinstance(value, numbers.Integral) and abs(int(value)) > 2**53:
            value = dtypes.round_float(int(value), dtype)  # once, not through float64 first
        value = float(value)
    else:
        if isinstance(value, float) and not value.is_integer():
            raise DlcTypeError(f"constant {value!r} is not an integer but dtype is {dtype}")
        value = int(value)
        lo, hi = dtypes.min_value(dtype), dtypes.max_value(dtype)
        if not lo <= value <= hi:
            raise DlcTypeError(f"constant {value} does not fit in {dtype}")
    return Const(value, dtype)


def as_expr(value, dtype: str | None = None) -> Expr:
    """Wrap a Python number as a constant (of ``dtype`` when given); Exprs pass through."""
    if isinstance(value, Expr):
        return value
    if hasattr(value, "as_expr"):  # IterVar and similar handles
        return value.as_expr()
    if isinstance(value, (bool, int, float)) or hasattr(value, "dtype"):
        if hasattr(value, "item"):
            value = value.item()
        return const(value, dtype)
    raise DlcTypeError(f"cannot use {value!r} ({type(value).__name__}) in an expression")


def _coerce_pair(a, b) -> tuple[Expr, Expr]:
    """Turn Python scalars into constants of the other side's dtype."""
    a_is = isinstance(a, Expr) or hasattr(a, "as_expr")
    b_is = isinstance(b, Expr) or hasattr(b, "as_expr")
    if a_is and not b_is:
        a = as_expr(a)
        b = _scalar_for(b, a.dtype)
    elif b_is and not a_is:
        b = as_expr(b)
        a = _scalar_for(a, b.dtype)
    else:
        a, b = as_expr(a), as_expr(b)
    return a, b


def _scalar_for(value, dtype: str) -> Expr:
    if isinstance(value, float) and not dtypes.is_float(dtype) and not value.is_integer():
        raise DlcTypeError(f"cannot combine the float {value!r} with a {dtype} expression; "
                           "cast the expression first (te.cast)")
    if dtype == "bool" and not isinstance(value, bool):
        raise DlcTypeError(f"cannot combine {value!r} with a bool expression")
    return const(value, dtype)


def _arith(cls, a, b) -> Expr:
    a, b = _coerce_pair(a, b)
    for x in (a, b):
        if dtypes.is_storage_only(x.dtype):
            raise DlcTypeError(f"{x.dtype} values have no arithmetic ('{cls.symbol}'); "
                               "reinterpret them as uint8 (te.reinterpret) and convert")
    if a.dtype != b.dtype:
        raise DlcTypeError(f"operands of '{cls.symbol}' have different dtypes {a.dtype} and "
                           f"{b.dtype}; convert one with te.cast")
    if a.lanes != b.lanes:
        if a.lanes == 1:
            a = Broadcast(a, b.lanes)
        elif b.lanes == 1:
            b = Broadcast(b, a.lanes)
        else:
            raise DlcTypeError(f"vector operands of '{cls.symbol}' have {a.lanes} and "
                               f"{b.lanes} lanes")
    if cls in (BitAnd, BitOr, BitXor, ShiftLeft, ShiftRight) and not (
            dtypes.is_int(a.dtype) or (a.dtype == "bool" and cls is not ShiftLeft
                                       and cls is not ShiftRight)):
        raise DlcTypeError(f"'{cls.symbol}' needs integer operands, got {a.dtype}")
    if cls in (FloorDiv, FloorMod, Div, Mod) and a.dtype == "bool":
        raise DlcTypeError(f"'{cls.symbol}' is not defined for bool operands")
    return cls(a, b)


def _true_div(a, b) -> Expr:
    a, b = _coerce_pair(a, b)
    if not dtypes.is_float(a.dtype):
        raise DlcTypeError(f"'/' on {a.dtype} operands is ambiguous: use '//' for floor "
                           "division or te.truncdiv for C-style division")
    return _arith(Div, a, b)


def cast(dtype, value) -> Expr:
    """Convert ``value`` to ``dtype`` (floats to ints truncate toward zero)."""
    dtype = dtypes.canonical(dtype)
    value = as_expr(value)
    if value.dtype == dtype:
        return value
    if dtypes.is_storage_only(dtype) or dtypes.is_storage_only(value.dtype):
        raise DlcTypeError(f"no direct cast between {value.dtype} and {dtype}: "
                           f"{dtype if dtypes.is_storage_only(dtype) else value.dtype} is "
                           "storage-only; reinterpret as uint8 and convert the bits")
    return Cast(dtype, value)


def child_fields(node) -> list[str]:
    """Names of the fields of a node that hold sub-expressions (or tuples of them)."""
    names = _CHILD_FIELDS.get(type(node))
    if names is None:
        for base in type(node).__mro__[1:]:
            if base in _CHILD_FIELDS:
                names = _CHILD_FIELDS[base]
                break
        else:
            names = [f.name for f in fields(node) if f.name not in _NON_CHILD]
        _CHILD_FIELDS[type(node)] = names
    return names


_CHILD_FIELDS: dict[type, list[str]] = {}
_NON_CHILD = {"name", "dtype", "lanes", "value", "combiner", "tensor", "buffer", "axes"}
_CHILD_FIELDS[Cast] = ["value"]
_CHILD_FIELDS[Reinterpret] = ["value"]
_CHILD_FIELDS[Broadcast] = ["value"]
_CHILD_FIELDS[Ramp] = ["base", "stride"]
_CHILD_FIELDS[Const] = []
_CHILD_FIELDS[Var] = []
_CHILD_FIELDS[Reduce] = ["source", "condition"]
_CHILD_FIELDS[TensorRead] = ["indices"]
_CHILD_FIELDS[BufferLoad] = ["indices", "predicate"]
_CHILD_FIELDS[Call] = ["args"]
_CHILD_FIELDS[Select] = ["cond", "true_value", "false_value"]
