"""Comparison, logical and bitwise operators, Where, IsNaN/IsInf."""

from __future__ import annotations

import numpy as np

from dlc import te
from dlc.ops import small_floats
from dlc.ops.common import broadcast_shapes, out_type, same_dtype
from dlc.ops.elementwise import Broadcasting, Unary
from dlc.ops.registry import ALL, FLOATS, INTS, NUMERIC, check_dtype, register


class Exact(Broadcasting):
    """A broadcasting op evaluated in the input dtype, with one NumPy function."""

    def reference(self, ctx, *arrays):
        return [np.asarray(self.np_fn(*arrays)).astype(ctx.out_types[0].dtype)]

    def scalar(self, ctx, *values):
        return self.te_fn(*values)


class Compare(Exact):
    """``a <op> b`` -> bool; every comparison with a NaN is false."""

    def result_dtype(self, dtype):
        return "bool"


def _op(base, name, np_fn, te_fn, allowed, num_inputs=(2, 2)):
    return register(type(name, (base,), {
        "name": name, "allowed": allowed, "num_inputs": num_inputs,
        "np_fn": staticmethod(np_fn), "te_fn": staticmethod(te_fn)}))


Equal = _op(Compare, "Equal", np.equal, lambda a, b: a == b, ALL)
Less = _op(Compare, "Less", np.less, lambda a, b: a < b, NUMERIC)
LessOrEqual = _op(Compare, "LessOrEqual", np.less_equal, lambda a, b: a <= b, NUMERIC)
Greater = _op(Compare, "Greater", np.greater, lambda a, b: a > b, NUMERIC)
GreaterOrEqual = _op(Compare, "GreaterOrEqual", np.greater_equal, lambda a, b: a >= b,
                     NUMERIC)

And = _op(Exact, "And", np.logical_and, lambda a, b: te.all(a, b), ("bool",))
Or = _op(Exact, "Or", np.logical_or, lambda a, b: te.any(a, b), ("bool",))
Xor = _op(Exact, "Xor", np.logical_xor, lambda a, b: a != b, ("bool",))
BitwiseAnd = _op(Exact, "BitwiseAnd", np.bitwise_and, lambda a, b: a & b, INTS)
BitwiseOr = _op(Exact, "BitwiseOr", np.bitwise_or, lambda a, b: a | b, INTS)
BitwiseXor = _op(Exact, "BitwiseXor", np.bitwise_xor, lambda a, b: a ^ b, INTS)


class ExactUnary(Exact, Unary):
    pass


Not = _op(ExactUnary, "Not", np.logical_not, lambda a: ~a, ("bool",), (1, 1))
BitwiseNot = _op(ExactUnary, "BitwiseNot", np.invert, lambda a: ~a, INTS, (1, 1))


@register
class BitShift(Broadcasting):
    """Shift X by Y bits (``direction`` LEFT or RIGHT). Right shifts of signed values are
    arithmetic. A shift by a negative amount or by the bit width or more gives what the
    fill alone produces: -1 for a right shift of a negative X, else 0."""

    name = "BitShift"
    allowed = INTS
    attrs = {"direction": ""}

    def check(self, ctx, dtype):
        if ctx.attrs["direction"] not in ("LEFT", "RIGHT"):
            raise ctx.error(f"direction must be 'LEFT' or 'RIGHT', got "
                            f"{ctx.attrs['direction']!r}")

    def reference(self, ctx, x, y):
        x, y = np.broadcast_arrays(x, y)
        width = x.dtype.itemsize * 8
        out_of_range = (y < 0) | (y >= width)
        safe = np.where(out_of_range, 0, y).astype(x.dtype)
        unsigned = x.view(f"u{x.dtype.itemsize}")
        if ctx.attrs["direction"] == "LEFT":
            value = np.left_shift(unsigned, safe.view(unsigned.dtype)).view(x.dtype)
            fill = np.zeros_like(x)
        else:
            value = np.right_shift(x, safe)
            fill = np.where(x < 0, -1, 0).astype(x.dtype) if x.dtype.kind == "i" \
                else np.zeros_like(x)
        return [np.where(out_of_range, fill, value)]

    def scalar(self, ctx, x, y):
        if ctx.attrs["direction"] == "LEFT":
            return x << y
        return x >> y  # the code generator gives the fill for out-of-range amounts


@register
class Where(Broadcasting):
    """``X`` where ``condition`` holds, else ``Y`` (three-way broadcasting)."""

    name = "Where"
    num_inputs = (3, 3)

    def infer(self, ctx):
        check_dtype(ctx, 0, ("bool",), "condition")
        dtype = same_dtype(ctx, [1, 2])
        check_dtype(ctx, 1, ALL)
        shape = broadcast_shapes(ctx, *[ctx.type(k).shape for k in range(3)])
        return [out_type(shape, dtype)]

    def reference(self, ctx, cond, x, y):
        return [np.where(cond, x, y).astype(x.dtype)]

    def scalar(self, ctx, cond, x, y):
        return te.if_then_else(cond, x, y)


#: IsNaN and IsInf read the float8 types ONNX allows through float32 (exactly).
NAN_DTYPES = FLOATS + ("float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz")


def _wide_array(x: np.ndarray) -> np.ndarray:
    if x.dtype.name in NAN_DTYPES[len(FLOATS):]:
        return small_floats.decode_array(x)
    return x.astype(np.float32) if x.dtype.itemsize == 2 else x


def _wide_expr(v):
    return small_floats.to_float32_expr(v) if v.dtype in NAN_DTYPES[len(FLOATS):] else v


@register
class IsNaN(Unary):
    name = "IsNaN"

    def infer(self, ctx):
        check_dtype(ctx, 0, NAN_DTYPES)
        return [out_type(ctx.type(0).shape, "bool")]

    def reference(self, ctx, x):
        return [np.isnan(_wide_array(x))]

    def scalar(self, ctx, v):
        return te.isnan(_wide_expr(v))


@register
class IsInf(IsNaN):
    """True for +inf (``detect_positive``) and -inf (``detect_negative``); only
    float8_e5m2 among the float8 types has infinities."""

    name = "IsInf"
    attrs = {"detect_negative": 1, "detect_positive": 1}

    def reference(self, ctx, x):
        x = _wide_array(x)
        return [np.isinf(x) & (((x > 0) & bool(ctx.attrs["detect_positive"]))
                               | ((x < 0) & bool(ctx.attrs["detect_negative"])))]

    def scalar(self, ctx, v):
        v = _wide_expr(v)
        pos, neg = ctx.attrs["detect_positive"], ctx.attrs["detect_negative"]
        if pos and neg:
            return te.isinf(v)
        if not pos and not neg:
            return te.const(False)
        return te.all(te.isinf(v), v > 0 if pos else v < 0)
