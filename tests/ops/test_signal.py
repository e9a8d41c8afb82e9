"""DFT, STFT, the window functions and MelWeightMatrix (dlc/ops/signal.py) and their ONNX
converters, against NumPy expectations written here."""

import math

import numpy as np
import pytest
from onnx import TensorProto, helper

import dlc
from dlc.graph import GraphBuilder
from dlc.graph.ir import TensorType
from dlc.ops.registry import OPS, infer_node, make_context


def run(op, *arrays, consts=(), **attrs):
    """One-node graph: arrays are inputs (None: omitted), indices in ``consts`` are
    constants (the value inputs: lengths, axes, sizes)."""
    g = GraphBuilder(op.lower())
    syms, feeds = [], []
    for k, a in enumerate(arrays):
        if a is None:
            syms.append(None)
        elif k in consts:
            syms.append(g.constant(a))
        else:
            syms.append(g.input(f"in{k}", a.shape, a.dtype))
            feeds.append(a)
    g.output(g.op(op, *syms, **attrs))
    return dlc.compile(g.build()).run(*feeds)[0]


def as_complex(x):
    return x[..., 0] + 1j * x[..., 1] if x.shape[-1] == 2 else x[..., 0].astype(complex)


def as_pairs(c):
    return np.stack([c.real, c.imag], axis=-1)


RNG = np.random.default_rng(0)


@pytest.mark.parametrize("shape, axis, n, parts", [
    ((2, 8, 1), 1, None, 1), ((2, 8, 2), -2, None, 2), ((3, 5, 4, 2), 1, 7, 2),
    ((3, 5, 4, 1), 2, 3, 1), ((1, 6, 2), 0, None, 2), ((4, 9, 1), -3, 16, 1)])
def test_dft_forward(shape, axis, n, parts):
    x = RNG.standard_normal(shape).astype(np.float32)
    inputs = [x, None if n is None else np.array(n, np.int64), np.array(axis, np.int64)]
    got = run("DFT", *inputs, consts=(1, 2))
    ax = axis % len(shape)
    want = as_pairs(np.fft.fft(as_complex(x.astype(np.float64)), n=n, axis=ax))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_dft_inverse_and_onesided():
    x = RNG.standard_normal((2, 6, 3, 2)).astype(np.float64)
    axis = np.array(1, np.int64)
    got = run("DFT", x, None, axis, consts=(2,), inverse=1)
    want = as_pairs(np.fft.ifft(as_complex(x), axis=1))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    real = x[..., :1]
    got = run("DFT", real, np.array(5, np.int64), axis, consts=(1, 2), onesided=1)
    np.testing.assert_allclose(got, as_pairs(np.fft.rfft(real[..., 0], n=5, axis=1)),
                               atol=1e-12)


@pytest.mark.parametrize("n", [None, 10, 9, 4])
def test_dft_irfft(n):
    half = RNG.standard_normal((2, 6, 3, 2)).astype(np.float32)
    inputs = [half, None if n is None else np.array(n, np.int64), np.array(1, np.int64)]
    got = run("DFT", *inputs, consts=(1, 2), inverse=1, onesided=1)
    want = np.fft.irfft(as_complex(half.astype(np.float64)), n=n, axis=1)[..., None]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype, tol", [("float16", 2e-2), ("float64", 1e-12)])
def test_dft_dtypes(dtype, tol):
    x = RNG.standard_normal((1, 12, 2)).astype(dtype)
    got = run("DFT", x)
    assert got.dtype == dtype
    want = as_pairs(np.fft.fft(as_complex(x.astype(np.float64)), axis=1))
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol, atol=tol * 4)


def stft_expect(sig, step, window, length, onesided):
    c = as_complex(sig.astype(np.float64))
    frames = (c.shape[1] - length) // step + 1
    w = np.ones(length) if window is None else window.astype(np.float64)
    framed = np.stack([c[:, f * step:f * step + length] * w for f in range(frames)], axis=1)
    spec = np.fft.fft(framed, axis=-1)
    return as_pairs(spec[..., :length // 2 + 1] if onesided else spec)


@pytest.mark.parametrize("parts, use_window, use_length, onesided", [
    (1, True, False, 1), (1, False, True, 1), (2, True, True, 0), (1, False, False, 0)])
def test_stft(parts, use_window, use_length, onesided):
    sig = RNG.standard_normal((2, 37, parts)).astype(np.float32)
    length, step = 8, 3
    window = np.hanning(length).astype(np.float32) if use_window else None
    frame_length = np.array(length, np.int64) if use_length else None
    if not use_window and not use_length:
        length = 37
    got = run("STFT", sig, np.array(step, np.int64), window, frame_length, consts=(1, 3),
              onesided=onesided)
    want = stft_expect(sig, step, window, length, onesided)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


COEFFS = {"HannWindow": (0.5, 0.5, 0.0), "HammingWindow": (25 / 46, 21 / 46, 0.0),
          "BlackmanWindow": (0.42, 0.5, 0.08)}


@pytest.mark.parametrize("op", list(COEFFS))
@pytest.mark.parametrize("periodic", [0, 1])
def test_windows(op, periodic):
    a0, a1, a2 = COEFFS[op]
    size = 10
    n = np.arange(size)
    period = size if periodic else size - 1
    want = a0 - a1 * np.cos(2 * np.pi * n / period) + a2 * np.cos(4 * np.pi * n / period)
    got = run(op, np.array(size, np.int32), consts=(0,), periodic=periodic)
    assert got.dtype == np.float32 and got.shape == (size,)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    got = run(op, np.array(size, np.int64), consts=(0,), periodic=periodic,
              output_datatype="float64")
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-15)


def test_window_integer_output_and_small_sizes():
    got = run("HannWindow", np.array(5, np.int64), consts=(0,), output_datatype="int32",
              periodic=0)
    np.testing.assert_array_equal(got, [0, 0, 1, 0, 0])    # 0, .5, 1, .5, 0 truncated
    assert run("HammingWindow", np.array(0, np.int64), consts=(0,)).shape == (0,)
    np.testing.assert_allclose(run("BlackmanWindow", np.array(1, np.int64), consts=(0,)),
                               [0.42 - 0.5 + 0.08], atol=1e-7)


def mel_expect(bins, dft_length, rate, lower, upper):
    """The ONNX reference's loops, with its float precision."""
    spectrum = dft_length // 2 + 1
    lo_mel = 2595 * np.log1p(lower / 700) / np.log(10)
    hi_mel = 2595 * np.log1p(upper / 700) / np.log(10)
    step = (hi_mel - lo_mel) / (bins + 2)
    hz = 700 * np.expm1((np.arange(bins + 2) * step + lo_mel) / 2595 * np.log(10))
    edges = ((dft_length + 1) * hz // rate).astype(int)
    out = np.zeros((spectrum, bins))
    for i in range(bins):
        lo, c, hi = edges[i:i + 3]
        if c == lo:
            out[c, i] = 1
        else:
            for j in range(lo, c + 1):
                out[j, i] = (j - lo) / (c - lo)
        for j in range(c, hi):
            out[j, i] = (hi - j) / (hi - c)
    return out


@pytest.mark.parametrize("bins, dft_length, rate, lower, upper", [
    (8, 16, 8192, 0.0, 4096.0), (20, 512, 16000, 20.0, 7600.0), (3, 64, 1000, 100.0, 480.0)])
def test_mel_weight_matrix(bins, dft_length, rate, lower, upper):
    args = [np.array(bins, np.int32), np.array(dft_length, np.int64), np.array(rate, np.int32),
            np.array(lower, np.float32), np.array(upper, np.float32)]
    want = mel_expect(bins, dft_length, rate, np.float32(lower), np.float32(upper))
    got = run("MelWeightMatrix", *args, consts=(0, 1, 2, 3, 4))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    # the tensor-expression path too (in a graph the constant inputs are folded away)
    op = OPS["MelWeightMatrix"]
    ctx = make_context(op, "mel", {"output_datatype": "float64"},
                       [TensorType.of(a) for a in args], args)
    infer_node(op, ctx)
    (out,) = op.compute(ctx, *[None] * 5)
    result = np.zeros(out.shape, out.dtype)
    dlc.build(dlc.Schedule([out]))(result)
    np.testing.assert_allclose(result, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("op, arrays, consts, attrs, message", [
    ("DFT", [np.zeros((2, 8, 3), np.float32)], (), {}, "last dimension must be 1"),
    ("DFT", [np.zeros((2, 8, 1), np.float32), None, np.array(2)], (2,), {}, "out of range"),
    ("DFT", [np.zeros((2, 8, 1), np.float32), np.array(0), None], (1,), {}, "at least 1"),
    ("DFT", [np.zeros((8, 1), np.int32)], (), {}, "dtype"),
    ("STFT", [np.zeros((2, 8, 1), np.float32), np.array(0)], (1,), {}, "frame_step"),
    ("STFT", [np.zeros((2, 8, 1), np.float32), np.array(2), np.zeros(4, np.float32),
              np.array(5)], (1, 3), {}, "window has 4"),
    ("STFT", [np.zeros((2, 8, 1), np.float32), np.array(2), None, np.array(9)], (1, 3), {},
     "frame_length 9"),
    ("HannWindow", [np.array(-1)], (0,), {}, "size must be"),
    ("HannWindow", [np.array(4)], (0,), {"periodic": 2}, "periodic"),
    ("MelWeightMatrix", [np.array(8), np.array(16), np.array(100), np.array(0.0, np.float32),
                         np.array(4000.0, np.float32)], (0, 1, 2, 3, 4), {}, "outside"),
])
def test_must_fail(op, arrays, consts, attrs, message):
    g = GraphBuilder("bad")
    syms = [None if a is None else g.constant(a) if k in consts else
            g.input(f"in{k}", a.shape, a.dtype) for k, a in enumerate(arrays)]
    with pytest.raises(dlc.ModelError, match=message):
        g.op(op, *syms, **attrs)


def test_onnx_dft_axis_attribute_and_input():
    x = RNG.standard_normal((2, 4, 6, 1)).astype(np.float32)
    want = as_pairs(np.fft.fft(x[..., 0].astype(np.float64), axis=2))
    for opset, node, inits in [
        (17, helper.make_node("DFT", ["x"], ["y"], axis=2), []),
        (20, helper.make_node("DFT", ["x", "", "a"], ["y"]),
         [helper.make_tensor("a", TensorProto.INT64, [], [2])])]:
        graph = helper.make_graph(
            [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        np.testing.assert_allclose(dlc.compile(model).run(x)[0], want, rtol=1e-5, atol=1e-5)


def test_onnx_window_output_datatype():
    node = helper.make_node("HammingWindow", ["n"], ["y"], output_datatype=TensorProto.DOUBLE)
    graph = helper.make_graph([node], "g", [], [helper.make_tensor_value_info(
        "y", TensorProto.DOUBLE, None)], initializer=[helper.make_tensor(
            "n", TensorProto.INT64, [], [4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    got = dlc.compile(model).run()[0]
    want = 25 / 46 - 21 / 46 * np.cos(2 * math.pi * np.arange(4) / 4)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-14)
