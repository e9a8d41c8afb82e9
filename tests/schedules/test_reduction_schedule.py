"""The CPU schedule of softmax, normalizations and reductions (dlc.schedules.cpu.reduction):
results against NumPy at awkward shapes (rows the threads do not share evenly, reduced
axes that the vector width does not divide, length 1, middle and leading axes, keepdims,
fused prologues and epilogues), through both the interpreter and native code, and the
loop nests it chooses."""

import ml_dtypes
import numpy as np
import pytest
from helpers import AVX512, check

import dlc
from dlc import te
from dlc.graph.builder import GraphBuilder
from dlc.ops.common import reduce_compute
from dlc.schedules import apply_schedule
from dlc.tir import stmt as s
from dlc.tir.functor import walk


def rand(shape, dtype="float32", seed=0, scale=3.0):
    return np.random.default_rng(seed).uniform(-scale, scale, size=shape).astype(dtype)


def compile_op(op, x, *consts, outputs=1, target=None, **attrs):
    g = GraphBuilder("t")
    syms = [g.input("x", x.shape, x.dtype)]
    syms += [g.constant(np.asarray(c)) if c is not None else None for c in consts]
    out = g.op(op, *syms, **attrs)
    out = out if isinstance(out, tuple) else (out,)
    g.output(*out[:outputs])
    return dlc.compile(g.build(), target=target)


def run_op(op, x, *consts, **attrs):
    return compile_op(op, x, *consts, **attrs).run(x)


def loops(func) -> list:
    found = []
    walk(func.body, lambda x: found.append(x) if isinstance(x, s.For) else None)
    return found


def kinds(func, kind) -> list:
    return [lp for lp in loops(func) if lp.kind is kind]


def np_softmax(x, axis):
    x = x.astype(np.float64)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def np_log_softmax(x, axis):
    x = x.astype(np.float64)
    sh = x - np.max(x, axis=axis, keepdims=True)
    return sh - np.log(np.sum(np.exp(sh), axis=axis, keepdims=True))


def np_layer_norm(x, scale, bias, axis, eps=1e-5):
    axes = tuple(range(axis % x.ndim, x.ndim))
    v = x.astype(np.float64)
    mean = v.mean(axis=axes, keepdims=True)
    var = ((v - mean) ** 2).mean(axis=axes, keepdims=True)
    return (v - mean) / np.sqrt(var + eps) * scale + bias


# Shapes: rows not divisible by the threads' chunks, reduced extents around 16 and 32 (and
# not divisible by them), length 1, large enough to run in parallel (64 x 300 elements).
SHAPES = [(7, 37), (3, 1), (1, 1), (5, 16), (4, 33), (2, 3, 100), (64, 300), (1, 5000),
          (2, 130, 17)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("op,expect", [("Softmax", np_softmax),
                                       ("LogSoftmax", np_log_softmax)])
def test_softmax_every_axis(op, expect, shape):
    x = rand(shape, seed=len(shape))
    for axis in range(-len(shape), 0):
        (y,) = run_op(op, x, axis=axis)
        np.testing.assert_allclose(y, expect(x, axis), rtol=2e-5, atol=2e-6,
                                   err_msg=f"{op} axis={axis}")


@pytest.mark.parametrize("shape", [(7, 37), (2, 3, 100), (64, 300), (3, 70, 5)])
def test_hardmax_picks_the_first_maximum(shape):
    x = np.round(rand(shape, seed=3))  # many ties
    for axis in range(len(shape)):
        (y,) = run_op("Hardmax", x, axis=axis)
        want = np.zeros_like(x)
        np.put_along_axis(want, np.expand_dims(np.argmax(x, axis=axis), axis), 1, axis=axis)
        np.testing.assert_array_equal(y, want, err_msg=f"axis={axis}")


def test_softmax_nan_and_inf_stay_in_their_rows():
    x = rand((40, 45), seed=4)
    x[3, 44] = np.nan    # in the masked tail of the 32-lane partial results
    x[7, 0] = np.inf
    x[9, :] = -np.inf
    x[11, 20] = np.finfo(np.float32).max
    (y,) = run_op("Softmax", x)
    with np.errstate(invalid="ignore"):
        want = np_softmax(x, -1)
    np.testing.assert_allclose(y, want, rtol=2e-5, atol=2e-6)
    assert np.isnan(y[3]).all() and np.isnan(y[7]).all() and np.isnan(y[9]).all()
    assert np.isfinite(np.delete(y, [3, 7, 9], axis=0)).all()


@pytest.mark.parametrize("width", [1, 3, 5, 7, 8, 9])
def test_row_pairs_of_every_sign(width):
    """Rows taken two at a time (an even number of rows), with short vector widths, and
    rows that are all negative, all positive or mixed."""
    x = rand((12, width), seed=width)
    x[1::3] = -np.abs(x[1::3])
    x[2::3] = np.abs(x[2::3])
    for op, expect in (("Softmax", np_softmax), ("LogSoftmax", np_log_softmax)):
        (y,) = run_op(op, x, axis=-1)
        np.testing.assert_allclose(y, expect(x, -1), rtol=2e-5, atol=2e-6, err_msg=op)
    x4 = rand((2, 3, 4, width), seed=width) - 1.5  # mostly negative rows
    (y,) = run_op("LogSoftmax", x4, axis=3)
    np.testing.assert_allclose(y, np_log_softmax(x4, 3), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_softmax_and_layer_norm_dtypes(dtype):
    npdt = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    x = rand((9, 70), seed=5).astype(npdt)
    tol = {"float16": 2e-3, "bfloat16": 2e-2, "float64": 1e-12}[dtype]
    (y,) = run_op("Softmax", x, axis=-1)
    assert y.dtype == npdt
    np.testing.assert_allclose(y.astype(np.float64), np_softmax(x.astype(np.float64), -1),
                               rtol=tol, atol=tol)
    scale, bias = np.ones(70, npdt), np.zeros(70, npdt)
    (y,) = run_op("LayerNormalization", x, scale, bias, axis=-1)  # statistics in float32
    tol = max(tol, 1e-5)
    np.testing.assert_allclose(y.astype(np.float64),
                               np_layer_norm(x.astype(np.float64), 1, 0, -1),
                               rtol=4 * tol, atol=4 * tol)


@pytest.mark.parametrize("shape,axis", [((7, 37), -1), ((128, 768), -1), ((1, 3, 1), -1),
                                        ((4, 6, 50), 1), ((33, 70), 0), ((2, 3, 5, 40), 2)])
def test_layer_normalization(shape, axis):
    x = rand(shape, seed=6)
    norm = shape[axis:]
    scale = (1 + rand(norm, seed=7, scale=0.2)).astype(np.float32)
    bias = rand(norm, seed=8, scale=0.5)
    (y,) = run_op("LayerNormalization", x, scale, bias, axis=axis)
    np.testing.assert_allclose(y, np_layer_norm(x, scale, bias, axis), rtol=1e-4, atol=1e-5)


def test_layer_normalization_with_mean_and_inv_std_dev_outputs():
    """Several outputs: the generic schedule (the statistics are stored whole)."""
    x = rand((20, 45), seed=9)
    scale, bias = np.full(45, 1.5, np.float32), np.full(45, 0.25, np.float32)
    y, mean, inv = run_op("LayerNormalization", x, scale, bias, outputs=3, axis=-1)
    v = x.astype(np.float64)
    np.testing.assert_allclose(y, np_layer_norm(x, scale, bias, -1), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(mean[:, 0], v.mean(axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(inv[:, 0], 1 / np.sqrt(v.var(axis=1) + 1e-5), rtol=1e-5)


@pytest.mark.parametrize("shape", [(5, 37), (64, 300)])
def test_rms_and_lp_normalization(shape):
    x = rand(shape, seed=10)
    scale = np.linspace(0.5, 1.5, shape[-1]).astype(np.float32)
    (y,) = run_op("RMSNormalization", x, scale, axis=-1)
    v = x.astype(np.float64)
    want = v / np.sqrt(np.mean(v * v, axis=-1, keepdims=True) + 1e-5) * scale
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)
    for axis in (0, 1):
        for p in (1, 2):
            (y,) = run_op("LpNormalization", x, axis=axis, p=p)
            norm = np.linalg.norm(v, ord=p, axis=axis, keepdims=True)
            np.testing.assert_allclose(y, v / norm, rtol=1e-5, atol=1e-6)


def test_instance_normalization():
    x = rand((2, 3, 7, 21), seed=11)
    scale, bias = np.array([1, 2, 0.5], np.float32), np.array([0, 1, -1], np.float32)
    (y,) = run_op("InstanceNormalization", x, scale, bias)
    v = x.astype(np.float64)
    mean = v.mean(axis=(2, 3), keepdims=True)
    var = v.var(axis=(2, 3), keepdims=True)
    want = (v - mean) / np.sqrt(var + 1e-5) * scale.reshape(3, 1, 1) + bias.reshape(3, 1, 1)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


REDUCE = {
    "ReduceSum": lambda v, a, k: np.sum(v, axis=a, keepdims=k),
    "ReduceMean": lambda v, a, k: np.mean(v, axis=a, keepdims=k),
    "ReduceMax": lambda v, a, k: np.max(v, axis=a, keepdims=k),
    "ReduceMin": lambda v, a, k: np.min(v, axis=a, keepdims=k),
    "ReduceL2": lambda v, a, k: np.sqrt(np.sum(v * v, axis=a, keepdims=k)),
    "ReduceSumSquare": lambda v, a, k: np.sum(v * v, axis=a, keepdims=k),
    "ReduceLogSumExp": lambda v, a, k: np.log(np.sum(np.exp(v), axis=a, keepdims=k)),
}


@pytest.mark.parametrize("shape,axes", [
    ((7, 37), [1]), ((7, 37), [0]), ((3, 5, 37), [1]), ((3, 5, 37), [1, 2]),
    ((3, 5, 37), [0, 2]), ((3, 5, 37), None), ((64, 300), [1]), ((1000, 64), [0]),
    ((100, 20, 50), [0]), ((4, 6, 8, 10), [2, 3]), ((6, 1, 40), [1]), ((2, 9000), [1]),
])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reductions(shape, axes, keepdims):
    x = rand(shape, seed=12)
    v = x.astype(np.float64)
    np_axes = tuple(axes) if axes is not None else None
    consts = [np.array(axes, np.int64)] if axes is not None else []
    for op, expect in REDUCE.items():
        (y,) = run_op(op, x, *consts, keepdims=keepdims)
        np.testing.assert_allclose(y, expect(v, np_axes, bool(keepdims)), rtol=1e-5,
                                   atol=1e-5, err_msg=op)


@pytest.mark.parametrize("shape", [(300_001,), (3, 70_000)])
def test_large_full_reduction_runs_in_chunks(shape):
    x = rand(shape, seed=13)
    m = compile_op("ReduceSum", x, keepdims=0)
    (func,) = [k.func for k in m.kernels]
    assert len(kinds(func, s.ForKind.PARALLEL)) == 1
    (y,) = m.run(x)
    np.testing.assert_allclose(y, np.sum(x.astype(np.float64)), rtol=1e-6, atol=1e-4)
    (y,) = run_op("ReduceMax", x, keepdims=0)
    assert y == x.max()


def test_float32_sums_accumulate_in_float64():
    x = np.full((3, 100_003), 0.1, np.float32)
    x[1, -1] = 1e4
    (y,) = run_op("ReduceSum", x, np.array([1], np.int64), keepdims=0)
    np.testing.assert_allclose(y, np.sum(x.astype(np.float64), axis=1), rtol=1e-7)


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8"])
def test_integer_reductions(dtype):
    x = np.random.default_rng(14).integers(0, 100, size=(9, 70)).astype(dtype)
    for op, fn in (("ReduceSum", np.sum), ("ReduceMax", np.max), ("ReduceMin", np.min)):
        for axis in (0, 1):
            (y,) = run_op(op, x, np.array([axis], np.int64), keepdims=0)
            np.testing.assert_array_equal(y, fn(x, axis=axis).astype(dtype), err_msg=op)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("last", [0, 1])
def test_arg_reductions_with_ties_and_tails(op, last):
    x = np.round(rand((6, 45, 37), seed=15))
    for axis in range(3):
        (y,) = run_op(op, x, axis=axis, keepdims=1, select_last_index=last)
        fn = np.argmax if op == "ArgMax" else np.argmin
        want = fn(x, axis=axis) if not last else \
            x.shape[axis] - 1 - fn(np.flip(x, axis), axis=axis)
        np.testing.assert_array_equal(y, np.expand_dims(want, axis))


def test_reduction_with_fused_prologue_and_epilogue():
    """sqrt(relu(sum((x + b) * x))) over the last axis: one kernel, rows in parallel."""
    x = rand((64, 300), seed=16)
    b = np.linspace(-1, 1, 300).astype(np.float32)
    g = GraphBuilder("t")
    xs = g.input("x", x.shape)
    sq = g.op("Mul", g.op("Add", xs, g.constant(b)), xs)
    total = g.op("ReduceSum", sq, g.constant(np.array([-1], np.int64)), keepdims=1)
    g.output(g.op("Sqrt", g.op("Relu", total)))
    m = dlc.compile(g.build())
    (func,) = [k.func for k in m.kernels]
    assert len(kinds(func, s.ForKind.PARALLEL)) == 1
    (y,) = m.run(x)
    v = x.astype(np.float64)
    np.testing.assert_allclose(y, np.sqrt(np.maximum(((v + b) * v).sum(-1, keepdims=True),
                                                     0)), rtol=1e-5)


def test_middle_axis_reduction_with_fused_epilogue():
    x = rand((5, 30, 40), seed=17)
    g = GraphBuilder("t")
    xs = g.input("x", x.shape)
    mean = g.op("ReduceMean", g.op("Abs", xs), g.constant(np.array([1], np.int64)),
                keepdims=0)
    g.output(g.op("Mul", mean, g.constant(np.float32(2.0))))
    (y,) = dlc.compile(g.build()).run(x)
    np.testing.assert_allclose(y, 2 * np.abs(x.astype(np.float64)).mean(axis=1), rtol=1e-5)


# -- the loop nests -------------------------------------------------------------------------
def test_big_softmax_gets_rows_in_parallel_and_vector_reductions():
    x = rand((12, 128, 128))
    m = compile_op("Softmax", x, axis=-1, target=AVX512)
    (func,) = [k.func for k in m.kernels]
    parallel = kinds(func, s.ForKind.PARALLEL)
    assert len(parallel) == 1 and parallel[0].extent.value == 12 * 128 // 2  # row pairs
    # the stages are computed per row, inside the parallel loop
    assert not isinstance(func.body, s.Allocate)
    vector = {lp.var.name: lp.extent.value for lp in kinds(func, s.ForKind.VECTORIZED)}
    assert vector.get("r2.inner") == 32, vector  # the reduced axis, 32 lanes
    assert vector.get("i2.inner") == 16, vector  # the exp and output stages
    text = str(func)
    assert "_max.rf[" in text and "_sum.rf[" in text  # the partial results
    # the final combine is vector operations on halves, not a chain of 32 scalars
    serial_reduce = [lp for lp in loops(func) if lp.kind is s.ForKind.SERIAL
                     and lp.var.name.startswith("r2") and lp.extent.value > 4]
    assert all(lp.var.name == "r2.outer" for lp in serial_reduce), serial_reduce
    (y,) = compile_op("Softmax", x, axis=-1).run(x)  # the host's schedule computes it
    np.testing.assert_allclose(y, np_softmax(x, -1), rtol=2e-5, atol=2e-6)


def test_layer_norm_statistics_are_computed_per_row():
    x = rand((128, 768))
    m = compile_op("LayerNormalization", x, np.ones(768, np.float32),
                   np.zeros(768, np.float32), axis=-1, target=AVX512)
    (func,) = [k.func for k in m.kernels]
    (par,) = kinds(func, s.ForKind.PARALLEL)
    assert par.extent.value == 128 // 2  # row pairs
    vector = {lp.var.name: lp.extent.value for lp in kinds(func, s.ForKind.VECTORIZED)}
    assert vector["r1.inner"] == 32  # the sum and the squared deviations
    assert vector["i1.inner"] == 16  # the output
    text = str(func)
    assert text.count("_sum.rf[") and text.count("_dev.rf[")


def test_outer_axis_reduction_is_vectorized_along_the_columns():
    x = rand((1000, 64))
    m = compile_op("ReduceSum", x, np.array([0], np.int64), keepdims=0)
    (func,) = [k.func for k in m.kernels]
    (par,) = kinds(func, s.ForKind.PARALLEL)
    vector = kinds(func, s.ForKind.VECTORIZED)
    assert par.var.name == "i0.outer" and vector[0].var.name == "i0.inner"
    (y,) = m.run(x)
    np.testing.assert_allclose(y, x.astype(np.float64).sum(axis=0), rtol=1e-5)


def test_small_kernels_stay_serial():
    m = compile_op("Softmax", rand((4, 33)), axis=-1)
    (func,) = [k.func for k in m.kernels]
    assert not kinds(func, s.ForKind.PARALLEL)


# -- straight from tensor expressions: interpreter and native code ---------------------------
def softmax_te(shape, axis):
    x = te.placeholder(shape, "float32", name="x")

    def kept(i):
        return tuple(0 if d == axis else v for d, v in enumerate(i))

    mx = reduce_compute(shape, [axis], lambda i: x[i], "max", name="mx")
    e = te.compute(shape, lambda *i: te.exp(x[i] - mx[kept(i)]), name="e")
    total = reduce_compute(shape, [axis], lambda i: te.cast(e[i], "float64"), "sum",
                           name="total")
    y = te.compute(shape, lambda *i: e[i] / te.cast(total[kept(i)], "float32"), name="y")
    return x, y


@pytest.mark.parametrize("shape,axis", [((5, 45), 1), ((3, 7, 20), 1), ((40, 3), 0),
                                        ((130, 129), 1)])
def test_schedule_on_tensor_expressions(shape, axis):
    x, y = softmax_te(shape, axis)
    sch = dlc.Schedule([x, y])
    apply_schedule("reduction", sch, [y])
    a = rand(shape, seed=18)
    check(sch, [a], np_softmax(a, axis), rtol=2e-5, atol=2e-6)


def test_argmax_over_all_elements_in_chunks():
    x = te.placeholder((70_000,), "float32", name="x")
    k = te.reduce_axis(70_000, "k")
    best = te.compute((1,), lambda i: te.max(x[k], axis=k), name="best")
    k2 = te.reduce_axis(70_000, "k2")
    first = te.compute((1,), lambda i: te.min(k2, axis=k2, where=x[k2] == best[0]),
                       name="first")
    sch = dlc.Schedule([x, first])
    apply_schedule("reduction", sch, [first])
    assert "parallel" in str(dlc.lower(sch))
    a = rand((70_000,), seed=19)
    a[-1] = 10.0  # in the last chunk
    check(sch, [a], np.array([69_999]), interp=False)
