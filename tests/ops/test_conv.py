"""Conv, ConvTranspose, ConvInteger, QLinearConv, DeformConv: compiled results against
naive NumPy loops written here, the opset 1-10 ConvTranspose converter, and must-fail
cases."""

import itertools

import numpy as np
import pytest
from onnx import TensorProto, helper

import dlc
from dlc.errors import ModelError
from dlc.graph.builder import GraphBuilder


def run(op, inputs, consts=(), **attrs):
    """Compile ``op`` with ``inputs`` (arrays; None for an omitted input) as graph inputs,
    except the indices in ``consts`` which become constants; return the outputs."""
    g = GraphBuilder("t")
    syms, feeds = [], []
    for k, x in enumerate(inputs):
        if x is None:
            syms.append(None)
        elif k in consts:
            syms.append(g.constant(x))
        else:
            syms.append(g.input(f"in{k}", x.shape, x.dtype))
            feeds.append(x)
    out = g.op(op, *syms, **attrs)
    g.output(*(out if isinstance(out, tuple) else (out,)))
    return dlc.compile(g.build()).run(*feeds)


def rand(shape, dtype="float32", seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=shape).astype(dtype)


def naive_conv(x, w, b=None, strides=None, pads=None, dilations=None, group=1):
    """Direct definition: y[n, m, o] = sum_{c,k} xpad[n, g*Cg+c, o*s + k*d] * w[m, c, k]."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    r = x.ndim - 2
    strides = strides or [1] * r
    dilations = dilations or [1] * r
    pads = pads or [0] * (2 * r)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pads[d], pads[r + d]) for d in range(r)])
    M, Cg = w.shape[:2]
    Mg = M // group
    out = [(xp.shape[2 + d] - (w.shape[2 + d] - 1) * dilations[d] - 1) // strides[d] + 1
           for d in range(r)]
    y = np.zeros((x.shape[0], M, *out))
    for o in itertools.product(*[range(s) for s in out]):
        for m in range(M):
            g = m // Mg
            window = xp[(slice(None), slice(g * Cg, (g + 1) * Cg),
                         *[slice(o[d] * strides[d], o[d] * strides[d] + (w.shape[2 + d] - 1)
                                 * dilations[d] + 1, dilations[d]) for d in range(r)])]
            y[(slice(None), m, *o)] = np.sum(window * w[m], axis=tuple(range(1, r + 2)))
    if b is not None:
        y += b.reshape(-1, *[1] * r)
    return y


@pytest.mark.parametrize("xs,ws,attrs", [
    ((2, 3, 11), (4, 3, 3), {}),
    ((1, 2, 7), (3, 2, 2), {"strides": [2], "pads": [1, 2], "dilations": [2]}),
    ((2, 4, 6, 5), (6, 2, 3, 2), {"group": 2, "pads": [1, 0, 2, 1]}),
    ((1, 3, 9, 9), (3, 1, 3, 3), {"group": 3, "strides": [2, 3], "pads": [1, 1, 1, 1]}),
    ((1, 2, 8, 7), (5, 2, 2, 3), {"dilations": [3, 2], "strides": [1, 2]}),
    ((1, 2, 5, 4, 6), (2, 2, 2, 3, 2), {"pads": [0, 1, 1, 1, 0, 0], "strides": [1, 2, 2]}),
    ((1, 1, 1, 1), (1, 1, 1, 1), {}),
])
@pytest.mark.parametrize("bias", [False, True])
def test_conv_matches_naive(xs, ws, attrs, bias):
    x, w = rand(xs, seed=1), rand(ws, seed=2)
    b = rand((ws[0],), seed=3) if bias else None
    (y,) = run("Conv", [x, w, b], consts=(1, 2), **attrs)
    want = naive_conv(x, w, b, attrs.get("strides"), attrs.get("pads"),
                      attrs.get("dilations"), attrs.get("group", 1))
    assert y.shape == want.shape
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("auto_pad,size,stride", [("SAME_UPPER", 7, 2), ("SAME_LOWER", 7, 2),
                                                  ("SAME_UPPER", 6, 1), ("VALID", 8, 3),
                                                  ("SAME_LOWER", 5, 3)])
def test_conv_auto_pad(auto_pad, size, stride):
    x, w = rand((1, 2, size, size), seed=4), rand((3, 2, 4, 3), seed=5)
    (y,) = run("Conv", [x, w], consts=(1,), auto_pad=auto_pad, strides=[stride, stride])
    if auto_pad == "VALID":
        pads = [0, 0, 0, 0]
    else:
        out = -(-size // stride)
        total = [max(0, (out - 1) * stride + k - size) for k in (4, 3)]
        small, large = [t // 2 for t in total], [t - t // 2 for t in total]
        pads = small + large if auto_pad == "SAME_UPPER" else large + small
    want = naive_conv(x, w, strides=[stride, stride], pads=pads)
    assert y.shape == want.shape
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype,tol", [("float16", 3e-3), ("float64", 1e-12)])
def test_conv_dtypes(dtype, tol):
    x, w, b = rand((1, 4, 6, 6), dtype, 6), rand((2, 4, 3, 3), dtype, 7), rand((2,), dtype, 8)
    (y,) = run("Conv", [x, w, b], pads=[1, 1, 1, 1])
    assert y.dtype == np.dtype(dtype)
    want = naive_conv(x, w, b, pads=[1, 1, 1, 1])
    np.testing.assert_allclose(y.astype(np.float64), want, rtol=tol, atol=tol)


def test_conv_kernel_shape_attribute_and_batch():
    x, w = rand((3, 2, 5, 5), seed=9), rand((2, 2, 2, 2), seed=10)
    (y,) = run("Conv", [x, w], kernel_shape=[2, 2])
    np.testing.assert_allclose(y, naive_conv(x, w), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("xs,ws,attrs,match", [
    ((1, 3, 5, 5), (2, 2, 3, 3), {}, "group"),
    ((1, 4, 5, 5), (3, 2, 3, 3), {"group": 2}, "group"),
    ((1, 2, 5, 5), (2, 2, 3, 3), {"kernel_shape": [2, 2]}, "kernel_shape"),
    ((1, 2, 5, 5), (2, 2, 3, 3), {"pads": [1, 1]}, "pads"),
    ((1, 2, 5, 5), (2, 2, 3, 3), {"strides": [0, 1]}, "strides"),
    ((1, 2, 5, 5), (2, 2, 3, 3), {"auto_pad": "SAME"}, "auto_pad"),
    ((1, 2, 2, 2), (2, 2, 3, 3), {}, "larger"),
    ((1, 2, 5), (2, 2, 3, 3), {}, "rank"),
    ((2, 5), (2, 5), {}, "rank 3"),
])
def test_conv_must_fail(xs, ws, attrs, match):
    with pytest.raises(ModelError, match=match):
        run("Conv", [rand(xs), rand(ws)], **attrs)


def test_conv_must_fail_on_bias_and_dtype():
    x, w = rand((1, 2, 4, 4)), rand((3, 2, 2, 2))
    with pytest.raises(ModelError, match="bias"):
        run("Conv", [x, w, rand((2,))])
    with pytest.raises(ModelError, match="dtype"):
        run("Conv", [x, w.astype(np.float64)])
    with pytest.raises(ModelError, match="dtype"):
        run("Conv", [x.astype(np.int32), w.astype(np.int32)])


# -- ConvTranspose ---------------------------------------------------------------------------
def naive_conv_transpose(x, w, b=None, strides=None, pads=None, dilations=None, group=1,
                         output_padding=None, out=None):
    """Scatter definition: y[o * s + k * d - pad_begin] += x[i] * w[c, m, k]."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    r = x.ndim - 2
    strides = strides or [1] * r
    dilations = dilations or [1] * r
    output_padding = output_padding or [0] * r
    C, Mg = w.shape[:2]
    Cg = C // group
    full = [strides[d] * (x.shape[2 + d] - 1) + output_padding[d] + (w.shape[2 + d] - 1)
            * dilations[d] + 1 for d in range(r)]
    if out is None:
        pads = pads or [0] * (2 * r)
        out = [full[d] - pads[d] - pads[r + d] for d in range(r)]
    begin = pads[:r]
    big = np.zeros((x.shape[0], Mg * group, *[f + 8 for f in full]))
    for i in itertools.product(*[range(s) for s in x.shape[2:]]):
        for k in itertools.product(*[range(s) for s in w.shape[2:]]):
            pos = tuple(i[d] * strides[d] + k[d] * dilations[d] + 4 for d in range(r))
            for c in range(C):
                g = c // Cg
                big[(slice(None), slice(g * Mg, (g + 1) * Mg), *pos)] += \
                    x[(slice(None), c, *i)][:, None] * w[(c, slice(None), *k)][None]
    y = big[(Ellipsis, *[slice(4 + begin[d], 4 + begin[d] + out[d]) for d in range(r)])]
    if b is not None:
        y = y + b.reshape(-1, *[1] * r)
    return y


@pytest.mark.parametrize("xs,ws,attrs", [
    ((1, 2, 4), (2, 3, 3), {"strides": [2]}),
    ((2, 2, 3, 3), (2, 2, 3, 2), {"strides": [2, 3], "pads": [1, 0, 0, 1]}),
    ((1, 4, 3, 2), (4, 1, 2, 2), {"group": 2, "dilations": [2, 1]}),
    ((1, 1, 3, 3), (1, 2, 3, 3), {"strides": [3, 2], "output_padding": [1, 1]}),
    ((1, 2, 2, 2, 2), (2, 1, 2, 2, 2), {"strides": [2, 1, 2], "pads": [1, 0, 0, 0, 1, 1]}),
])
@pytest.mark.parametrize("bias", [False, True])
def test_conv_transpose_matches_naive(xs, ws, attrs, bias):
    x, w = rand(xs, seed=11), rand(ws, seed=12)
    b = rand((ws[1] * attrs.get("group", 1),), seed=13) if bias else None
    (y,) = run("ConvTranspose", [x, w, b], consts=(1,), **attrs)
    want = naive_conv_transpose(x, w, b, attrs.get("strides"), attrs.get("pads"),
                                attrs.get("dilations"), attrs.get("group", 1),
                                attrs.get("output_padding"))
    assert y.shape == want.shape
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "NOTSET"])
@pytest.mark.parametrize("out_shape", [[7, 6], [9, 9], [10, 8]])
def test_conv_transpose_output_shape(auto_pad, out_shape):
    x, w = rand((1, 1, 3, 3), seed=14), rand((1, 2, 3, 3), seed=15)
    (y,) = run("ConvTranspose", [x, w], strides=[3, 2], output_shape=out_shape,
               auto_pad=auto_pad)
    full = [3 * 2 + 3, 2 * 2 + 3]
    total = [f - o for f, o in zip(full, out_shape)]
    if auto_pad == "SAME_UPPER":
        begin = [t // 2 for t in total]
    else:
        begin = [t - t // 2 for t in total]
    want = naive_conv_transpose(x, w, strides=[3, 2], pads=begin + [0, 0], out=out_shape)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_conv_transpose_same_without_output_shape():
    x, w = rand((1, 2, 3, 4), seed=16), rand((2, 1, 3, 3), seed=17)
    (y,) = run("ConvTranspose", [x, w], strides=[2, 2], auto_pad="SAME_UPPER")
    assert y.shape == (1, 1, 6, 8)
    want = naive_conv_transpose(x, w, strides=[2, 2], pads=[0, 0, 1, 1], out=[6, 8])
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def _onnx_model(nodes, inputs, outputs, opset, inits=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


@pytest.mark.parametrize("opset", [10, 11])
def test_conv_transpose_opset_10_splits_padding_the_other_way(opset):
    x, w = rand((1, 1, 3, 3), seed=18), rand((1, 1, 3, 3), seed=19)
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2],
                            output_shape=[6, 6])
    model = _onnx_model([node], [_vi("x", [1, 1, 3, 3]), _vi("w", [1, 1, 3, 3])],
                        [_vi("y", None)], opset)
    (y,) = dlc.compile(model).run(x, w)
    # full size 7, one pixel to remove: opset 11 (NOTSET) removes it at the start, 10 at the end
    begin = [1, 1] if opset == 11 else [0, 0]
    want = naive_conv_transpose(x, w, strides=[2, 2], pads=begin + [0, 0], out=[6, 6])
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_conv_transpose_must_fail():
    x = rand((1, 2, 3, 3))
    with pytest.raises(ModelError, match="W.shape"):
        run("ConvTranspose", [x, rand((3, 1, 2, 2))])
    with pytest.raises(ModelError, match="output_shape"):
        run("ConvTranspose", [x, rand((2, 1, 2, 2))], output_shape=[4])
    with pytest.raises(ModelError, match="empty"):
        run("ConvTranspose", [x, rand((2, 1, 2, 2))], pads=[3, 3, 3, 3])


# -- integer and quantized convolutions -------------------------------------------------------
def qrand(shape, dtype, seed):
    info = np.iinfo(dtype)
    return np.random.default_rng(seed).integers(info.min, info.max + 1, size=shape).astype(dtype)


@pytest.mark.parametrize("xd,wd", [("uint8", "uint8"), ("int8", "int8"), ("uint8", "int8")])
@pytest.mark.parametrize("per_channel", [False, True])
def test_conv_integer(xd, wd, per_channel):
    x, w = qrand((1, 2, 5, 5), xd, 20), qrand((3, 2, 3, 3), wd, 21)
    xzp = np.array(7, xd)
    wzp = qrand((3,), wd, 22) if per_channel else np.array(-3 if wd == "int8" else 3, wd)
    (y,) = run("ConvInteger", [x, w, xzp, wzp], pads=[1, 1, 1, 1])
    assert y.dtype == np.int32
    xs = x.astype(np.int64) - 7
    ws = w.astype(np.int64) - (wzp.reshape(-1, 1, 1, 1) if per_channel else wzp)
    want = naive_conv(xs, ws, pads=[1, 1, 1, 1])  # padding is zero after the shift
    np.testing.assert_array_equal(y, np.round(want).astype(np.int64))


def test_conv_integer_without_zero_points():
    x, w = qrand((2, 1, 4, 4), "uint8", 23), qrand((1, 1, 2, 2), "uint8", 24)
    (y,) = run("ConvInteger", [x, w], strides=[2, 2])
    np.testing.assert_array_equal(y, np.round(naive_conv(x, w, strides=[2, 2])))


@pytest.mark.parametrize("per_channel", [False, True])
def test_qlinear_conv(per_channel):
    x, w = qrand((1, 2, 4, 4), "uint8", 25), qrand((2, 2, 2, 2), "int8", 26)
    xs, xzp = np.array(0.05, np.float32), np.array(128, np.uint8)
    ws = np.array([0.01, 0.02], np.float32) if per_channel else np.array(0.015, np.float32)
    wzp = np.array([0, 0], np.int8) if per_channel else np.array(0, np.int8)
    ys, yzp = np.array(0.2, np.float32), np.array(100, np.uint8)
    b = np.array([500, -700], np.int32)
    (y,) = run("QLinearConv", [x, xs, xzp, w, ws, wzp, ys, yzp, b], pads=[0, 1, 1, 0])
    acc = naive_conv(x.astype(np.int64) - 128, w.astype(np.int64), pads=[0, 1, 1, 0])
    acc = np.round(acc) + b.reshape(-1, 1, 1)
    mult = (xs * ws / ys).astype(np.float32).astype(np.float64)
    want = np.clip(np.round(acc * (mult.reshape(-1, 1, 1) if per_channel else mult)) + 100,
                   0, 255)
    np.testing.assert_array_equal(y, want.astype(np.uint8))


def test_qlinear_conv_must_fail_on_bias_type():
    x, w = qrand((1, 1, 3, 3), "uint8", 27), qrand((1, 1, 2, 2), "uint8", 28)
    one = np.array(1.0, np.float32)
    with pytest.raises(ModelError, match="bias"):
        run("QLinearConv", [x, one, np.array(0, np.uint8), w, one, np.array(0, np.uint8), one,
                            np.array(0, np.uint8), np.array([1.0], np.float32)])


# -- DeformConv ------------------------------------------------------------------------------
def naive_deform_conv(x, w, offset, b=None, mask=None, pads=(0, 0, 0, 0), og=1):
    """2-D deformable convolution, stride 1: bilinear samples (zero outside)."""
    N, C, H, W = x.shape
    M, Cg, kh, kw = w.shape
    oh, ow = offset.shape[2:]
    off = offset.reshape(N, og, kh, kw, 2, oh, ow)
    y = np.zeros((N, M, oh, ow))

    def sample(img, py, px):
        y0, x0 = int(np.floor(py)), int(np.floor(px))
        total = 0.0
        for yy, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
            for xx, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
                if 0 <= yy < H and 0 <= xx < W:
                    total += wy * wx * img[yy, xx]
        return total

    for n, m, i, j in itertools.product(range(N), range(M), range(oh), range(ow)):
        for c, a, bb in itertools.product(range(Cg), range(kh), range(kw)):
            g = c // (C // og)
            py = i - pads[0] + a + off[n, g, a, bb, 0, i, j]
            px = j - pads[1] + bb + off[n, g, a, bb, 1, i, j]
            v = sample(x[n, c], py, px)
            if mask is not None:
                v *= mask.reshape(N, og, kh, kw, oh, ow)[n, g, a, bb, i, j]
            y[n, m, i, j] += v * w[m, c, a, bb]
    if b is not None:
        y += b.reshape(-1, 1, 1)
    return y


def test_deform_conv_with_zero_offsets_is_conv():
    x, w = rand((1, 2, 5, 5), seed=29), rand((3, 2, 3, 3), seed=30)
    offset = np.zeros((1, 18, 5, 5), np.float32)
    (y,) = run("DeformConv", [x, w, offset], pads=[1, 1, 1, 1])
    np.testing.assert_allclose(y, naive_conv(x, w, pads=[1, 1, 1, 1]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("with_mask", [False, True])
def test_deform_conv_fractional_offsets(with_mask):
    x, w, b = rand((1, 2, 4, 5), seed=31), rand((2, 2, 2, 2), seed=32), rand((2,), seed=33)
    offset = rand((1, 2 * 4 * 2, 4, 5), seed=34) * 1.5
    mask = rand((1, 2 * 4, 4, 5), seed=35) if with_mask else None
    (y,) = run("DeformConv", [x, w, offset, b, mask], pads=[0, 0, 1, 1], offset_group=2)
    want = naive_deform_conv(x, w, offset, b, mask, pads=(0, 0), og=2)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_deform_conv_must_fail_on_offset_shape():
    with pytest.raises(ModelError, match="offset"):
        run("DeformConv", [rand((1, 2, 4, 4)), rand((2, 2, 2, 2)), rand((1, 4, 3, 3))])
