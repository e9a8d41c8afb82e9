"""The tensor-expression API (dlc.te): construction, dtypes, and the meaning of computes
checked against NumPy through the interpreter and native code (default schedules)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import check, rand

import dlc
from dlc import te


def default(*args):
    return dlc.Schedule(list(args))


def elementwise(shape, fn, *tensors, name):
    """``name[i] = fn(t0[i], t1[i], ...)`` for 1-d tensors."""
    return te.compute(shape, lambda i: fn(*[t[i] for t in tensors]), name=name)


# -- construction -------------------------------------------------------------------------
def test_placeholder_and_compute_attributes():
    A = te.placeholder((3, 4), "float16", name="A")
    assert (A.name, A.shape, A.dtype, A.ndim) == ("A", (3, 4), "float16", 2)
    assert te.placeholder((np.int64(5),), np.float64).shape == (5,)
    assert te.placeholder(7, "int8").shape == (7,)
    B = te.compute((3, 4), lambda row, col: A[row, col] * 2, name="B")
    assert [a.name for a in B.op.axes] == ["row", "col"]
    assert [a.extent for a in B.op.axes] == [3, 4]
    assert B.dtype == "float16" and B.op.inputs[0] is A and B.op.reduce_axes == ()
    assert repr(B.op) == "B[row, col] = A[row, col] * float16(2.0)"
    C = te.compute((2, 3), lambda *ax: A[ax[0], ax[1]])
    assert [a.name for a in C.op.axes] == ["i0", "i1"]


def test_reduce_axes_are_recorded_in_order():
    A = te.placeholder((2, 3, 4), name="A")
    k1, k2 = te.reduce_axis(3, "k1"), te.reduce_axis(4, "k2")
    B = te.compute((2,), lambda i: te.sum(A[i, k1, k2], axis=[k2, k1]), name="B")
    assert [a.name for a in B.op.reduce_axes] == ["k2", "k1"]
    assert repr(B.op) == "B[i] = sum(A[i, k1, k2], axis=[k2, k1])"


@pytest.mark.parametrize("build, dtype", [
    (lambda x: x + 1, "float32"),
    (lambda x: x * 2.5, "float32"),
    (lambda x: te.cast(x, "int8"), "int8"),
    (lambda x: x.astype("float64") + 1.0, "float64"),
    (lambda x: x > 0, "bool"),
    (lambda x: te.all(x > 0, x < 1), "bool"),
    (lambda x: te.any(x > 0, x < 1, x == 0.5), "bool"),
    (lambda x: te.if_then_else(x > 0, x, 0.0), "float32"),
    (lambda x: te.exp(x), "float32"),
    (lambda x: te.isnan(x), "bool"),
    (lambda x: te.pow(x, 2), "float32"),
    (lambda x: te.reinterpret(x, "int32"), "int32"),
    (lambda x: te.cast(x, "int32") // 2, "int32"),
    (lambda x: te.cast(x, "int32") << 1, "int32"),
    (lambda x: te.abs(te.cast(x, "int16")), "int16"),
])
def test_expression_dtypes(build, dtype):
    A = te.placeholder((1,), name="A")
    assert build(A[0]).dtype == dtype


def test_constants_and_helpers():
    assert te.const(3).dtype == "int64" and te.const(3.0).dtype == "float32"
    assert te.const(True).dtype == "bool" and te.const(3, "uint8").dtype == "uint8"
    assert te.all().value is True and te.any().value is False
    assert te.identity_of("sum", "float32") == 0 and te.identity_of("prod", "int8") == 1
    assert te.identity_of("max", "int8") == -128 and te.identity_of("min", "uint8") == 255
    assert te.identity_of("max", "float32") == -np.inf


# -- errors --------------------------------------------------------------------------------
A2 = te.placeholder((4, 5), name="A")
I32 = te.placeholder((4,), "int32", name="I")
K5 = te.reduce_axis(5, name="k")


def _other_axis():
    B = te.compute((4,), lambda i: A2[i, 0], name="B")
    return B.op.axes[0]


ERRORS = [
    ("shape float", lambda: te.placeholder((2.5,)), dlc.DlcError, "shape must be a tuple of int"),
    ("shape bool", lambda: te.placeholder((True, 2)), dlc.DlcError, "shape must be a tuple"),
    ("shape str", lambda: te.placeholder(("a",)), dlc.DlcError, "shape must be a tuple"),
    ("shape None", lambda: te.placeholder(None), dlc.DlcError, "shape must be a tuple"),
    ("shape negative", lambda: te.placeholder((3, -2), name="Z"), dlc.DlcError,
     "placeholder Z: dimensions must be non-negative"),
    ("compute shape", lambda: te.compute((-1,), lambda i: A2[0, 0], name="C"), dlc.DlcError,
     "compute C: dimensions must be non-negative"),
    ("dtype", lambda: te.placeholder((2,), "floaty"), dlc.DlcTypeError, "unknown dtype 'floaty'"),
    ("dtype complex", lambda: te.placeholder((2,), "complex64"), dlc.DlcTypeError,
     "unsupported dtype 'complex64'"),
    ("reduce_axis float", lambda: te.reduce_axis(2.5, "r"), dlc.DlcError,
     "reduce_axis r: extent must be a non-negative integer"),
    ("reduce_axis negative", lambda: te.reduce_axis(-1, "r"), dlc.DlcError, "non-negative"),
    ("reduce_axis str", lambda: te.reduce_axis("3", "r"), dlc.DlcError,
     "must be a non-negative integer"),
    ("dtype mismatch", lambda: A2[0, 0] + I32[0], dlc.DlcTypeError,
     "operands of '\\+' have different dtypes float32 and int32"),
    ("int and float literal", lambda: I32[0] * 1.5, dlc.DlcTypeError,
     "cannot combine the float 1.5 with a int32"),
    ("true div of ints", lambda: I32[0] / 2, dlc.DlcTypeError, "'/' on int32 operands"),
    ("bitwise float", lambda: A2[0, 0] & A2[0, 1], dlc.DlcTypeError, "needs integer operands"),
    ("shift float", lambda: A2[0, 0] >> 1, dlc.DlcTypeError, "needs integer operands"),
    ("python if", lambda: bool(A2[0, 0] > 0), dlc.DlcTypeError, "no truth value"),
    ("wrong index count", lambda: A2[1], dlc.DlcError,
     "tensor A has 2 dimensions but is indexed with 1"),
    ("float index", lambda: A2[1.5, 0], dlc.DlcTypeError, "1.5 is not an integer"),
    ("float expr index", lambda: A2[A2[0, 0], 0], dlc.DlcTypeError,
     "index of tensor A must be an integer expression, got float32"),
    ("reduction not top", lambda: te.compute((4,), lambda i: te.sum(A2[i, K5], axis=K5) + 1,
                                             name="R"),
     dlc.DlcError, "compute R: a reduction must be the whole body"),
    ("reduction in where", lambda: te.compute(
        (4,), lambda i: te.sum(A2[i, K5], axis=K5, where=te.max(A2[i, K5], axis=K5) > 0),
        name="R"), dlc.DlcError, "compute R: a reduction must be the whole body"),
    ("reduction in select", lambda: te.compute(
        (4,), lambda i: te.if_then_else(i > 0, te.sum(A2[i, K5], axis=K5), 0.0), name="R"),
     dlc.DlcError, "a reduction must be the whole body"),
    ("reduce axis outside reduction", lambda: te.compute((4,), lambda i: A2[i, K5], name="R"),
     dlc.DlcError, "compute R: reduction axis k is used outside a reduction"),
    ("axis of another compute", lambda: te.compute((5,), lambda j: A2[_other_axis(), j],
                                                   name="R"),
     dlc.DlcError, "compute R: variable i is not an axis of this compute"),
    ("spatial axis reduced", lambda: te.compute((4,), lambda i: te.sum(A2[i, 0], axis=i)),
     dlc.DlcError, "te.sum: axis .*i.* is not a te.reduce_axis"),
    ("no axis", lambda: te.sum(A2[0, 0]), dlc.DlcError, "te.sum needs axis="),
    ("empty axis", lambda: te.sum(A2[0, 0], axis=[]), dlc.DlcError, "te.sum: axis= is empty"),
    ("axis twice", lambda: te.prod(A2[0, K5], axis=[K5, K5]), dlc.DlcError,
     "te.prod: an axis is listed twice"),
    ("sum of bools", lambda: te.sum(A2[0, K5] > 0, axis=K5), dlc.DlcTypeError,
     "te.sum over bool values"),
    ("where not bool", lambda: te.min(A2[0, K5], axis=K5, where=A2[0, K5]), dlc.DlcTypeError,
     "te.min: where= must be bool, got float32"),
    ("fcompute arity", lambda: te.compute((4, 5), lambda i: A2[i, 0]), dlc.DlcError,
     "fcompute takes 1 arguments but the shape has 2 dimensions"),
    ("fcompute returns tensor", lambda: te.compute((4, 5), lambda i, j: A2, name="R"),
     dlc.DlcError, "compute R: fcompute returned a tensor; index it"),
    ("fcompute returns None", lambda: te.compute((4,), lambda i: None), dlc.DlcTypeError,
     "cannot use None"),
    ("if_then_else cond", lambda: te.if_then_else(A2[0, 0], 1.0, 2.0), dlc.DlcTypeError,
     "if_then_else: condition must be bool, got float32"),
    ("if_then_else branches", lambda: te.if_then_else(A2[0, 0] > 0, A2[0, 0], I32[0]),
     dlc.DlcTypeError, "if_then_else: branches have dtypes float32 and int32"),
    ("cast to unknown", lambda: te.cast(A2[0, 0], "float8"), dlc.DlcTypeError,
     "unknown dtype 'float8'"),
    ("reinterpret size", lambda: te.reinterpret(A2[0, 0], "int16"), dlc.DlcTypeError,
     "reinterpret from float32 to int16: sizes differ"),
    ("intrinsic of int", lambda: te.exp(I32[0]), dlc.DlcTypeError,
     "exp needs floating-point arguments, got int32"),
    ("intrinsic arity", lambda: te.atan2(A2[0, 0]), dlc.DlcTypeError,
     "atan2 takes 2 argument"),
    ("intrinsic unknown", lambda: te.call("gelu", A2[0, 0]), dlc.DlcTypeError,
     "unknown intrinsic 'gelu'"),
    ("intrinsic dtypes", lambda: te.pow(A2[0, 0], te.cast(A2[0, 0], "float64")),
     dlc.DlcTypeError, "different dtypes"),
    ("abs of bool", lambda: te.abs(A2[0, 0] > 0), dlc.DlcTypeError, "abs is not defined for bool"),
    ("constant out of range", lambda: te.const(300, "int8"), dlc.DlcTypeError,
     "constant 300 does not fit in int8"),
    ("unknown combiner", lambda: te.identity_of("mean", "float32"), dlc.DlcError,
     "unknown reduction 'mean'"),
]


@pytest.mark.parametrize("make, exc, message", [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_construction_error(make, exc, message):
    with pytest.raises(exc, match=message) as info:
        make()
    assert isinstance(info.value, dlc.DlcError)


# -- meaning, against NumPy ---------------------------------------------------------------
def test_elementwise_with_broadcasting_and_size_one_dims():
    A = te.placeholder((3, 1, 5), name="A")
    B = te.placeholder((4, 1), name="B")
    C = te.placeholder((1,), name="C")
    D = te.compute((3, 4, 5), lambda i, j, k: A[i, 0, k] * B[j, 0] - C[0], name="D")
    a, b, c = rand((3, 1, 5), seed=1), rand((4, 1), seed=2), rand((1,), seed=3)
    check(default(A, B, C, D), [a, b, c], a * b[None] - c)


@pytest.mark.parametrize("combiner, ref", [
    ("sum", np.sum), ("prod", np.prod), ("max", np.max), ("min", np.min)])
def test_reduction_over_two_axes(combiner, ref):
    A = te.placeholder((3, 4, 5), name="A")
    k, r = te.reduce_axis(4, "k"), te.reduce_axis(5, "r")
    fn = getattr(te, combiner)
    B = te.compute((3,), lambda i: fn(A[i, k, r] + 0.5, axis=[k, r]), name="B")
    a = rand((3, 4, 5), seed=4)
    check(default(A, B), [a], ref(a + 0.5, axis=(1, 2)), rtol=1e-4)


def test_reduction_with_where_and_positional_axis():
    A = te.placeholder((6, 7), name="A")
    k = te.reduce_axis(7, "k")
    S = te.compute((6,), lambda i: te.sum(A[i, k], axis=k, where=k <= i), name="S")
    M = te.compute((6,), lambda i: te.max(A[i, k], k), name="M")  # axis given positionally
    a = rand((6, 7), seed=5)
    tri = np.tril(np.ones((6, 7), bool))
    check(default(A, S, M), [a], [np.where(tri, a, 0).sum(1), a.max(1)])


def test_reduction_whose_where_excludes_everything_gives_the_identity():
    A = te.placeholder((3, 4), "int32", name="A")
    k = te.reduce_axis(4, "k")
    M = te.compute((3,), lambda i: te.max(A[i, k], axis=k, where=i > 5), name="M")
    P = te.compute((3,), lambda i: te.prod(A[i, k], axis=k, where=i < 0), name="P")
    a = rand((3, 4), "int32", seed=6)
    check(default(A, M, P), [a], [np.full(3, np.iinfo(np.int32).min), np.ones(3)])


def test_integer_division_and_remainder_match_numpy_and_c():
    A = te.placeholder((12,), "int32", name="A")
    B = te.placeholder((12,), "int32", name="B")
    outs = [elementwise((12,), f, A, B, name=nm) for nm, f in [
        ("fd", lambda a, b: a // b), ("fm", lambda a, b: a % b),
        ("td", te.truncdiv), ("tm", te.truncmod)]]
    a = np.array([7, -7, 7, -7, 0, 13, -13, 5, -1, 100, -100, 3], "int32")
    b = np.array([2, 2, -2, -2, 3, 5, 5, -5, 7, 7, -9, 3], "int32")
    trunc = np.trunc(a / b).astype("int32")
    check(default(A, B, *outs), [a, b], [a // b, a % b, trunc, a - b * trunc])


def test_narrow_integer_arithmetic_wraps_like_numpy():
    A = te.placeholder((16,), "int8", name="A")
    B = te.compute((16,), lambda i: A[i] * 100 + A[i] * 100, name="B")
    C = te.compute((16,), lambda i: te.if_then_else(A[i] + 100 < 50, A[i], -A[i]), name="C")
    a = np.arange(-128, 128, 16).astype("int8")
    with np.errstate(over="ignore"):
        want_b = a * np.int8(100) + a * np.int8(100)
        want_c = np.where(a + np.int8(100) < 50, a, -a)
    check(default(A, B, C), [a], [want_b, want_c])


def test_casts():
    A = te.placeholder((8,), name="A")
    I = te.compute((8,), lambda i: te.cast(A[i] * 10, "int32"), name="I")  # truncates
    F = te.compute((8,), lambda i: te.cast(I[i], "float64") / 4.0, name="F")
    B = te.compute((8,), lambda i: te.cast(A[i] > 0, "int8"), name="B")
    U = te.compute((8,), lambda i: te.cast(te.cast(A[i] * 10, "int32"), "uint8"), name="U")
    a = rand((8,), seed=7)
    i = (a * 10).astype("int32")
    check(default(A, I, F, B, U), [a],
          [i, i.astype("float64") / 4, (a > 0).astype("int8"), i.astype("uint8")])


def test_if_then_else_pads_without_reading_out_of_bounds():
    A = te.placeholder((5, 6), name="A")
    P = te.compute((7, 8), lambda i, j: te.if_then_else(
        te.all(i >= 1, i < 6, j >= 1, j < 7), A[i - 1, j - 1], -1.0), name="P")
    a = rand((5, 6), seed=8)
    check(default(A, P), [a], np.pad(a, 1, constant_values=-1.0))


@pytest.mark.parametrize("name, ref, low, high", [
    ("exp", np.exp, -3, 3), ("log", np.log, 0.1, 5), ("sqrt", np.sqrt, 0, 4),
    ("tanh", np.tanh, -4, 4), ("sigmoid", lambda x: 1 / (1 + np.exp(-x)), -6, 6),
    ("floor", np.floor, -3, 3), ("abs", np.abs, -2, 2), ("rsqrt", lambda x: 1 / np.sqrt(x), 0.1, 4),
    ("erf", None, -2, 2), ("sin", np.sin, -3, 3), ("log1p", np.log1p, -0.5, 3),
])
def test_unary_intrinsics(name, ref, low, high):
    if ref is None:
        from math import erf

        ref = np.vectorize(erf)
    A = te.placeholder((19,), name="A")
    B = te.compute((19,), lambda i: getattr(te, name)(A[i]), name="B")
    a = np.linspace(low, high, 19).astype("float32")
    check(default(A, B), [a], ref(a.astype("float64")).astype("float32"), rtol=2e-6, atol=2e-6)


def test_binary_intrinsics_and_min_max():
    A = te.placeholder((9,), name="A")
    B = te.placeholder((9,), name="B")
    outs = [elementwise((9,), f, A, B, name=nm) for nm, f in [
        ("pow", lambda a, b: te.pow(te.abs(a), b)), ("atan2", te.atan2),
        ("mx", te.maximum), ("mn", te.minimum), ("fmod", te.fmod)]]
    a, b = rand((9,), seed=9), rand((9,), seed=10) + 1.5
    check(default(A, B, *outs), [a, b], [np.abs(a) ** b, np.arctan2(a, b), np.maximum(a, b),
                                         np.minimum(a, b), np.fmod(a, b)], rtol=2e-6)


def test_zero_dimensional_tensors():
    P = te.placeholder((), name="P")
    A = te.placeholder((4, 5), name="A")
    k = te.reduce_axis(5, "k")
    S = te.compute((), lambda: te.sum(A[k % 4, k], axis=k), name="S")
    U = te.compute((3,), lambda i: P[()] + te.cast(i, "float32"), name="U")
    a, p = rand((4, 5), seed=11), np.array(1.5, "float32")
    check(default(P, A, S, U), [p, a], [sum(a[j % 4, j] for j in range(5)), 1.5 + np.arange(3)])


def test_a_chain_of_computes_and_a_shared_producer():
    A = te.placeholder((6,), name="A")
    B = te.compute((6,), lambda i: A[i] + 1.0, name="B")
    C = te.compute((6,), lambda i: B[i] * B[5 - i], name="C")
    D = te.compute((6,), lambda i: C[i] - B[i], name="D")
    a = rand((6,), seed=12)
    b = a + 1
    check(default(A, D), [a], (b * b[::-1]) - b)


def test_schedule_names_are_made_unique():
    A = te.placeholder((3,), name="X")
    B = te.compute((3,), lambda i: A[i] + 1.0, name="X")
    sch = default(A, B)
    assert sch.args == ["X", "X_1"]
    assert re.search(r"X_1\[i\] = X\[i\] \+ 1\.0", str(dlc.lower(sch)))
    check(sch, [np.arange(3, dtype="float32")], np.arange(3) + 1.0)
