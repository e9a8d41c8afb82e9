"""Comparisons, logic, bitwise ops, Where, IsNaN/IsInf (dlc/ops/logical.py) against NumPy
expectations written here; must-fail cases for bad dtypes, shapes and attributes."""

import ml_dtypes
import numpy as np
import pytest
from op_util import run_fold as run

import dlc
from dlc.graph import GraphBuilder


def run_pair(a, b, ops):
    """One model applying each binary op of ``ops`` to (a, b)."""
    g = GraphBuilder("pair")
    x, y = g.input("a", a.shape, a.dtype), g.input("b", b.shape, b.dtype)
    g.output(*[g.op(op, x, y) for op in ops])
    return dlc.compile(g.build()).run(a, b)


COMPARE = {"Equal": np.equal, "Less": np.less, "LessOrEqual": np.less_equal,
           "Greater": np.greater, "GreaterOrEqual": np.greater_equal}


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64", "int8",
                                   "uint8", "int64", "uint64", "uint32"])
def test_comparisons_broadcast(dtype):
    np_dt = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, size=(2, 1, 4)).astype(np_dt)
    b = rng.integers(0, 4, size=(3, 1)).astype(np_dt)
    outs = run_pair(a, b, list(COMPARE))
    for (op, fn), got in zip(COMPARE.items(), outs):
        assert got.dtype == np.bool_ and got.shape == (2, 3, 4), op
        np.testing.assert_array_equal(got, fn(a.astype(np.float64), b.astype(np.float64)),
                                      err_msg=op)


def test_comparisons_with_nan_are_false():
    a = np.array([np.nan, np.nan, 1.0, -0.0], np.float32)
    b = np.array([np.nan, 1.0, np.nan, 0.0], np.float32)
    eq, lt, le, gt, ge = run_pair(a, b, list(COMPARE))
    np.testing.assert_array_equal(eq, [False, False, False, True])  # -0 == +0
    for got in (lt, gt):
        np.testing.assert_array_equal(got, [False] * 4)
    for got in (le, ge):
        np.testing.assert_array_equal(got, [False, False, False, True])


def test_comparisons_extreme_integers():
    a = np.array([np.iinfo(np.uint64).max, 0], np.uint64)
    b = np.array([1, 1], np.uint64)
    np.testing.assert_array_equal(run("Greater", a, b), [True, False])  # unsigned compare
    i = np.array([-(2**63), 2**63 - 1], np.int64)
    np.testing.assert_array_equal(run("Less", i, np.array([0, 0], np.int64)), [True, False])


def test_equal_bool():
    a = np.array([True, False, True, False])
    b = np.array([True, True, False, False])
    np.testing.assert_array_equal(run("Equal", a, b), a == b)
    with pytest.raises(dlc.ModelError, match="dtype bool"):
        run("Less", a, b)


def test_logical_ops():
    a = np.array([[True, False, True, False]])
    b = np.array([[True], [False]])
    and_, or_, xor = run_pair(a, b, ["And", "Or", "Xor"])
    np.testing.assert_array_equal(and_, a & b)
    np.testing.assert_array_equal(or_, a | b)
    np.testing.assert_array_equal(xor, a ^ b)
    np.testing.assert_array_equal(run("Not", a), ~a)
    np.testing.assert_array_equal(run("Xor", a, b, fold=True), a ^ b)
    with pytest.raises(dlc.ModelError, match="dtype int32"):
        run("And", np.zeros(2, np.int32), np.zeros(2, np.int32))
    with pytest.raises(dlc.ModelError, match="dtype float32"):
        run("Not", np.zeros(2, np.float32))


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "uint32", "int64", "uint64"])
def test_bitwise(dtype):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(1)
    a = rng.integers(info.min, info.max, size=(3, 4), endpoint=True, dtype=dtype)
    b = rng.integers(info.min, info.max, size=(4,), endpoint=True, dtype=dtype)
    and_, or_, xor = run_pair(a, b, ["BitwiseAnd", "BitwiseOr", "BitwiseXor"])
    np.testing.assert_array_equal(and_, a & b)
    np.testing.assert_array_equal(or_, a | b)
    np.testing.assert_array_equal(xor, a ^ b)
    np.testing.assert_array_equal(run("BitwiseNot", a), ~a)


def test_bitwise_must_fail():
    with pytest.raises(dlc.ModelError, match="dtype float32"):
        run("BitwiseAnd", np.zeros(2, np.float32), np.zeros(2, np.float32))
    with pytest.raises(dlc.ModelError, match="dtype bool"):
        run("BitwiseNot", np.zeros(2, bool))
    with pytest.raises(dlc.ModelError, match="one dtype"):
        run("BitwiseOr", np.zeros(2, np.int8), np.zeros(2, np.uint8))


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int32", "uint64", "int64"])
def test_bitshift(dtype):
    bits = np.iinfo(dtype).bits
    signed = np.iinfo(dtype).min < 0
    x = np.array([1, 5, 96, -8 if signed else 200, -1 if signed else 3, 7, 7], dtype)
    y = np.array([1, 2, 3, 1, 3, bits, bits + 5], dtype)
    left = run("BitShift", x, y, direction="LEFT")
    right = run("BitShift", x, y, direction="RIGHT")
    with np.errstate(over="ignore"):
        want_left = [(int(v) << int(s)) % (1 << bits) for v, s in zip(x[:5], y[:5])]
    want_left = np.array(want_left, dtype=f"uint{bits}").view(dtype)
    np.testing.assert_array_equal(left[:5], want_left)
    np.testing.assert_array_equal(right[:5], [int(v) >> int(s) for v, s in zip(x[:5], y[:5])])
    np.testing.assert_array_equal(left[5:], [0, 0])     # shift >= width: the fill
    np.testing.assert_array_equal(right[5:], [0, 0])
    np.testing.assert_array_equal(run("BitShift", x, y, fold=True, direction="RIGHT"), right)


def test_bitshift_out_of_range_amounts_give_the_fill():
    x = np.array([-8, -8, 8, 8, -8], np.int32)
    y = np.array([-1, 40, -1, 32, 31], np.int32)
    np.testing.assert_array_equal(run("BitShift", x, y, direction="RIGHT"), [-1, -1, 0, 0, -1])
    np.testing.assert_array_equal(run("BitShift", x, y, direction="LEFT"), [0, 0, 0, 0, 0])
    np.testing.assert_array_equal(run("BitShift", x, y, fold=True, direction="LEFT"),
                                  [0, 0, 0, 0, 0])
    np.testing.assert_array_equal(run("BitShift", x, y, fold=True, direction="RIGHT"),
                                  [-1, -1, 0, 0, -1])


def test_bitshift_must_fail():
    u = np.zeros(2, np.uint8)
    with pytest.raises(dlc.ModelError, match="direction must be 'LEFT' or 'RIGHT'"):
        run("BitShift", u, u, direction="UP")
    with pytest.raises(dlc.ModelError, match="direction must be"):
        run("BitShift", u, u)
    with pytest.raises(dlc.ModelError, match="dtype float32"):
        run("BitShift", np.zeros(2, np.float32), np.zeros(2, np.float32), direction="LEFT")


@pytest.mark.parametrize("dtype", ["float32", "int64", "bool", "uint8", "float16"])
def test_where_three_way_broadcast(dtype):
    rng = np.random.default_rng(2)
    cond = rng.integers(0, 2, size=(2, 1, 3)).astype(bool)
    x = rng.integers(0, 2 if dtype == "bool" else 50, size=(4, 1)).astype(dtype)
    y = rng.integers(0, 2 if dtype == "bool" else 50, size=(3,)).astype(dtype)
    got = run("Where", cond, x, y)
    assert got.dtype == np.dtype(dtype) and got.shape == (2, 4, 3)
    np.testing.assert_array_equal(got, np.where(cond, x, y))
    np.testing.assert_array_equal(run("Where", cond, x, y, fold=True), np.where(cond, x, y))


def test_where_must_fail():
    f = np.zeros(3, np.float32)
    with pytest.raises(dlc.ModelError, match="dtype float32"):
        run("Where", f, f, f)
    with pytest.raises(dlc.ModelError, match="one dtype"):
        run("Where", np.zeros(3, bool), f, np.zeros(3, np.float64))
    with pytest.raises(dlc.ModelError, match="cannot be broadcast"):
        run("Where", np.zeros(2, bool), f, f)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_isnan_isinf(dtype):
    np_dt = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -1.5, 3.0], np_dt).reshape(2, 3)
    g = GraphBuilder("isx")
    s = g.input("x", x.shape, dtype)
    g.output(g.op("IsNaN", s), g.op("IsInf", s), g.op("IsInf", s, detect_negative=0),
             g.op("IsInf", s, detect_positive=0),
             g.op("IsInf", s, detect_positive=0, detect_negative=0))
    nan, inf, pos, neg, none = dlc.compile(g.build()).run(x)
    x64 = x.astype(np.float64)
    np.testing.assert_array_equal(nan, np.isnan(x64))
    np.testing.assert_array_equal(inf, np.isinf(x64))
    np.testing.assert_array_equal(pos, np.isposinf(x64))
    np.testing.assert_array_equal(neg, np.isneginf(x64))
    np.testing.assert_array_equal(none, np.zeros(x.shape, bool))
    np.testing.assert_array_equal(run("IsInf", x, fold=True, detect_positive=0),
                                  np.isneginf(x64))


def test_isnan_must_fail():
    with pytest.raises(dlc.ModelError, match="dtype int32"):
        run("IsNaN", np.zeros(2, np.int32))
    with pytest.raises(dlc.ModelError, match="dtype int32"):
        run("IsInf", np.zeros(2, np.int32))
