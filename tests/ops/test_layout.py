"""LayoutTransform, Conv2dNCHWc, DepthwiseConv2dNCHWc and the NCHWc pools
(dlc/ops/layout.py): compiled results and the ops' NumPy references against NumPy written
here (blocking by reshape and transpose, convolutions and pools by direct loops), the
weight packing helpers, and must-fail cases."""

import itertools

import numpy as np
import pytest

import dlc
from dlc.errors import ModelError
from dlc.graph import GraphBuilder, run_graph
from dlc.ops.layout import (
    pack_channel_vector,
    pack_conv_weights,
    pack_depthwise_weights,
    parse_layout,
    unpack_conv_weights,
)


def rand(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=shape).astype(np.float32)


def block(x, b):
    """[N, C, H, W] -> [N, ceil(C / b), H, W, b], zero channels appended."""
    n, c, h, w = x.shape
    chunks = -(-c // b)
    full = np.zeros((n, chunks * b, h, w), x.dtype)
    full[:, :c] = x
    return full.reshape(n, chunks, b, h, w).transpose(0, 1, 3, 4, 2).copy()


def unblock(x, channels):
    n, chunks, h, w, b = x.shape
    return x.transpose(0, 1, 4, 2, 3).reshape(n, chunks * b, h, w)[:, :channels].copy()


def naive_conv(x, w, bias=None, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1),
               group=1):
    """y[n, m, o] = sum over c, k of xpad[n, g * Cg + c, o * s + k * d] * w[m, c, k]."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    xp = np.pad(x, [(0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])])
    m, cg, kh, kw = w.shape
    oh = (xp.shape[2] - (kh - 1) * dilations[0] - 1) // strides[0] + 1
    ow = (xp.shape[3] - (kw - 1) * dilations[1] - 1) // strides[1] + 1
    y = np.zeros((x.shape[0], m, oh, ow))
    for o in range(m):
        g = o // (m // group)
        for i, j in itertools.product(range(kh), range(kw)):
            rows = slice(i * dilations[0], i * dilations[0] + (oh - 1) * strides[0] + 1,
                         strides[0])
            cols = slice(j * dilations[1], j * dilations[1] + (ow - 1) * strides[1] + 1,
                         strides[1])
            window = xp[:, g * cg:(g + 1) * cg, rows, cols]
            y[:, o] += np.einsum("nchw,c->nhw", window, w[o, :, i, j])
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    return y


def run(op, inputs, consts=(), **attrs):
    """Compiled outputs and NumPy-interpreter outputs of one ``op`` node."""
    g = GraphBuilder("t")
    syms, feeds = [], {}
    for k, x in enumerate(inputs):
        if x is None:
            syms.append(None)
        elif k in consts:
            syms.append(g.constant(x))
        else:
            syms.append(g.input(f"in{k}", x.shape, x.dtype))
            feeds[f"in{k}"] = x
    g.output(g.op(op, *syms, **attrs))
    graph = g.build()
    return dlc.compile(graph).run(feeds)[0], run_graph(graph, feeds)[0]


def check(op, inputs, want, consts=(), tol=1e-4, **attrs):
    got, ref = run(op, inputs, consts, **attrs)
    assert got.shape == want.shape and ref.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg="compiled")
    np.testing.assert_allclose(ref, want, rtol=tol, atol=tol, err_msg="reference")


# -- layouts and packing ---------------------------------------------------------------------
def test_parse_layout():
    assert parse_layout("NCHW") is None and parse_layout("NCHW16c") == 16
    for bad in ("NHWC", "NCHW0c", "NCHWc", ""):
        with pytest.raises(ValueError, match="layout"):
            parse_layout(bad)


@pytest.mark.parametrize("channels,b", [(16, 16), (20, 8), (3, 3), (5, 4), (1, 8)])
def test_layout_transform_to_blocks_and_back(channels, b):
    x = rand((2, channels, 3, 5), seed=channels)
    blocked = block(x, b)
    check("LayoutTransform", [x], blocked, dst_layout=f"NCHW{b}c")
    check("LayoutTransform", [blocked], x, src_layout=f"NCHW{b}c", channels=channels)


def test_layout_transform_between_block_sizes():
    x = rand((1, 24, 4, 3), seed=1)
    check("LayoutTransform", [block(x, 8)], block(x, 16), src_layout="NCHW8c",
          dst_layout="NCHW16c", channels=24)
    ints = (np.arange(2 * 12 * 2 * 2).reshape(2, 12, 2, 2) % 7).astype(np.int32)
    check("LayoutTransform", [block(ints, 4)], block(ints, 3), src_layout="NCHW4c",
          dst_layout="NCHW3c")


@pytest.mark.parametrize("shape,attrs,match", [
    ((1, 4, 2, 2), {"dst_layout": "NHWC"}, "layout"),
    ((1, 1, 2, 2, 8), {"dst_layout": "NCHW8c"}, "not in layout NCHW"),
    ((1, 2, 2, 2, 8), {"src_layout": "NCHW4c"}, "not in layout NCHW4c"),
    ((1, 2, 2, 2, 8), {"src_layout": "NCHW8c", "channels": 17}, "channels=17"),
    ((1, 2, 2, 2, 8), {"src_layout": "NCHW8c", "channels": 8}, "channels=8"),
])
def test_layout_transform_must_fail(shape, attrs, match):
    with pytest.raises(ModelError, match=match):
        run("LayoutTransform", [rand(shape)], **attrs)


def test_weight_packing():
    w = rand((20, 6, 3, 2), seed=3)
    packed = pack_conv_weights(w, 4, 8)
    assert packed.shape == (3, 2, 3, 2, 4, 8)
    for o, i, kh, kw in itertools.product(range(20), range(6), range(3), range(2)):
        assert packed[o // 8, i // 4, kh, kw, i % 4, o % 8] == w[o, i, kh, kw]
    assert not packed[2, :, :, :, :, 4:].any() and not packed[:, 1, :, :, 2:].any()
    np.testing.assert_array_equal(unpack_conv_weights(packed)[:20, :6], w)
    dw = rand((6, 1, 3, 3), seed=4)
    packed = pack_depthwise_weights(dw, 4)
    assert packed.shape == (2, 3, 3, 4) and packed[1, 2, 0, 1] == dw[5, 0, 2, 0]
    np.testing.assert_array_equal(pack_channel_vector(np.arange(6.0), 4).reshape(-1),
                                  [0, 1, 2, 3, 4, 5, 0, 0])


# -- convolutions ----------------------------------------------------------------------------
CONVS = [  # x shape, (out channels, kernel), attrs, ic_bn, oc_bn
    ((1, 16, 9, 11), (16, 3, 3), {"pads": [1, 1, 1, 1]}, 8, 8),
    ((2, 8, 10, 9), (24, 3, 3), {"pads": [0, 1, 2, 1], "strides": [2, 1]}, 8, 8),
    ((1, 6, 12, 12), (8, 1, 1), {"strides": [2, 2]}, 3, 4),
    ((1, 3, 17, 17), (16, 7, 7), {"pads": [3, 3, 3, 3], "strides": [2, 2]}, 3, 16),
    ((1, 8, 9, 9), (4, 3, 2), {"dilations": [2, 3], "pads": [2, 1, 2, 1]}, 4, 4),
    ((1, 32, 7, 7), (32, 3, 3), {"pads": [1, 1, 1, 1]}, 32, 32),
]


@pytest.mark.parametrize("xs,ws,attrs,ic_bn,oc_bn", CONVS)
@pytest.mark.parametrize("plain_in,plain_out,bias", [(False, False, True), (True, True, False),
                                                     (True, False, True),
                                                     (False, True, True)])
def test_conv2d_nchwc(xs, ws, attrs, ic_bn, oc_bn, plain_in, plain_out, bias):
    x = rand(xs, seed=1)
    w = rand((ws[0], xs[1], ws[1], ws[2]), seed=2)
    b = rand((ws[0],), seed=3) if bias else None
    want = naive_conv(x, w, b, attrs.get("strides", (1, 1)), attrs.get("pads", (0,) * 4),
                      attrs.get("dilations", (1, 1))).astype(np.float32)
    inputs = [x if plain_in else block(x, ic_bn), pack_conv_weights(w, ic_bn, oc_bn),
              pack_channel_vector(b, oc_bn) if bias else None]
    check("Conv2dNCHWc", inputs, want if plain_out else block(want, oc_bn), consts=(1, 2),
          out_layout="NCHW" if plain_out else "", **attrs)


DEPTHWISE = [  # x shape, kernel, attrs, block
    ((1, 32, 10, 12), (3, 3), {"pads": [1, 1, 1, 1]}, 16),
    ((2, 8, 11, 9), (3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}, 8),
    ((1, 12, 70, 9), (5, 3), {"pads": [2, 0, 2, 1], "dilations": [1, 2]}, 4),
    ((1, 6, 8, 130), (3, 3), {}, 3),
]


@pytest.mark.parametrize("xs,ks,attrs,bn", DEPTHWISE)
@pytest.mark.parametrize("plain_in,plain_out,bias", [(False, False, True), (True, True, True),
                                                     (True, True, False),
                                                     (False, True, False)])
def test_depthwise_conv2d_nchwc(xs, ks, attrs, bn, plain_in, plain_out, bias):
    x = rand(xs, seed=4)
    w = rand((xs[1], 1, *ks), seed=5)
    b = rand((xs[1],), seed=6) if bias else None
    want = naive_conv(x, w, b, attrs.get("strides", (1, 1)), attrs.get("pads", (0,) * 4),
                      attrs.get("dilations", (1, 1)), group=xs[1]).astype(np.float32)
    inputs = [x if plain_in else block(x, bn), pack_depthwise_weights(w, bn),
              pack_channel_vector(b, bn) if bias else None]
    check("DepthwiseConv2dNCHWc", inputs, want if plain_out else block(want, bn),
          consts=(1, 2), out_layout="NCHW" if plain_out else "", **attrs)


def test_conv2d_nchwc_with_padding_channels():
    """Blocks padded with zero channels (LayoutTransform's) give the plain result."""
    x, w = rand((1, 5, 6, 6), seed=7), rand((6, 5, 3, 3), seed=8)
    want = naive_conv(x, w, pads=(1, 1, 1, 1)).astype(np.float32)
    got, _ = run("Conv2dNCHWc", [block(x, 4), pack_conv_weights(w, 4, 4)], consts=(1,),
                 pads=[1, 1, 1, 1])
    np.testing.assert_allclose(unblock(got, 6), want, rtol=1e-4, atol=1e-4)
    assert not got[:, 1, :, :, 2:].any()


@pytest.mark.parametrize("op,xs,ws,bs,attrs,match", [
    ("Conv2dNCHWc", (1, 2, 5, 5, 4), (1, 2, 3, 3, 4), None, {}, "expected \\[OC"),
    ("Conv2dNCHWc", (1, 2, 5, 5, 4), (1, 3, 3, 3, 4, 8), None, {}, "blocks of 4"),
    ("Conv2dNCHWc", (1, 2, 5, 5, 4), (1, 2, 3, 3, 2, 8), None, {}, "blocks of 2"),
    ("Conv2dNCHWc", (1, 9, 5, 5), (1, 2, 3, 3, 4, 8), None, {}, "blocks of 4"),
    ("Conv2dNCHWc", (1, 2, 5), (1, 2, 3, 3, 4, 8), None, {}, "rank 5"),
    ("Conv2dNCHWc", (1, 2, 5, 5, 4), (1, 2, 3, 3, 4, 8), (8,), {}, "bias"),
    ("Conv2dNCHWc", (1, 2, 5, 5, 4), (1, 2, 3, 3, 4, 8), None, {"out_layout": "NHWC"},
     "out_layout"),
    ("Conv2dNCHWc", (1, 2, 2, 2, 4), (1, 2, 3, 3, 4, 8), None, {}, "larger"),
    ("Conv2dNCHWc", (1, 2, 5, 5, 4), (1, 2, 3, 3, 4, 8), None, {"pads": [1, 1]}, "pads"),
    ("DepthwiseConv2dNCHWc", (1, 2, 5, 5, 4), (2, 3, 3, 8), None, {}, "blocks of 8"),
    ("DepthwiseConv2dNCHWc", (1, 2, 5, 5, 4), (2, 3, 4), None, {}, "expected \\[C"),
])
def test_conv_nchwc_must_fail(op, xs, ws, bs, attrs, match):
    inputs = [rand(xs), rand(ws), rand(bs) if bs else None]
    with pytest.raises(ModelError, match=match):
        run(op, inputs, consts=(1, 2), **attrs)


def test_conv_nchwc_must_fail_on_dtype():
    x, w = rand((1, 1, 4, 4, 4)), rand((1, 1, 3, 3, 4, 4))
    with pytest.raises(ModelError, match="one dtype"):
        run("Conv2dNCHWc", [x, w.astype(np.float64)], consts=(1,))
    with pytest.raises(ModelError, match="dtype"):
        run("Conv2dNCHWc", [x.astype(np.float16), w.astype(np.float16)], consts=(1,))


# -- pools -----------------------------------------------------------------------------------
def naive_pool(kind, x, kernel, strides=(1, 1), pads=(0, 0, 0, 0), ceil_mode=False,
               include_pad=False):
    """MaxPool / AveragePool of NCHW ``x`` by loops over windows."""
    n, c, h, w = x.shape
    out = []
    for d, size in enumerate((h, w)):
        span = size + pads[d] + pads[2 + d] - kernel[d]
        o = (-(-span // strides[d]) if ceil_mode else span // strides[d]) + 1
        if ceil_mode and (o - 1) * strides[d] >= size + pads[d]:
            o -= 1
        out.append(o)
    y = np.zeros((n, c, *out), np.float64)
    for i, j in itertools.product(range(out[0]), range(out[1])):
        r0, c0 = i * strides[0] - pads[0], j * strides[1] - pads[1]
        rows = [r for r in range(r0, r0 + kernel[0]) if 0 <= r < h]
        cols = [q for q in range(c0, c0 + kernel[1]) if 0 <= q < w]
        window = x[:, :, rows][:, :, :, cols].astype(np.float64)
        if kind == "max":
            y[:, :, i, j] = window.max(axis=(2, 3))
        else:
            count = len(rows) * len(cols)
            if include_pad:
                count = len([r for r in range(r0, r0 + kernel[0]) if r < h + pads[2]]) * \
                    len([q for q in range(c0, c0 + kernel[1]) if q < w + pads[3]])
            y[:, :, i, j] = window.sum(axis=(2, 3)) / count
    return y.astype(np.float32)


POOLS = [
    ({"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, (1, 2, 11, 11, 16)),
    ({"kernel_shape": [2, 3], "strides": [2, 2], "ceil_mode": 1}, (2, 1, 9, 8, 8)),
    ({"kernel_shape": [3, 3], "pads": [1, 0, 1, 2]}, (1, 3, 5, 6, 4)),
]


@pytest.mark.parametrize("attrs,xs", POOLS)
@pytest.mark.parametrize("kind", ["max", "avg", "avg_include_pad"])
def test_pools_nchwc(attrs, xs, kind):
    x = rand(xs, seed=9)
    channels = xs[1] * xs[4]
    plain = unblock(x, channels)
    want = naive_pool(kind[:3], plain, attrs["kernel_shape"], attrs.get("strides", (1, 1)),
                      attrs.get("pads", (0,) * 4), bool(attrs.get("ceil_mode")),
                      kind == "avg_include_pad")
    op = "MaxPoolNCHWc" if kind == "max" else "AveragePoolNCHWc"
    extra = {"count_include_pad": 1} if kind == "avg_include_pad" else {}
    check(op, [x], block(want, xs[4]), **attrs, **extra)


def test_global_average_pool_nchwc():
    x = rand((2, 3, 7, 5, 8), seed=10)
    want = unblock(x, 24).astype(np.float64).mean(axis=(2, 3), keepdims=True)
    check("GlobalAveragePoolNCHWc", [x], block(want.astype(np.float32), 8), tol=1e-5)


@pytest.mark.parametrize("op,xs,attrs,match", [
    ("MaxPoolNCHWc", (1, 2, 5, 5), {"kernel_shape": [2, 2]}, "rank 5"),
    ("MaxPoolNCHWc", (1, 2, 5, 5, 4), {"kernel_shape": [2]}, "2-D kernel_shape"),
    ("AveragePoolNCHWc", (1, 2, 5, 5, 4), {"kernel_shape": [2, 2], "ceil_mode": 2},
     "ceil_mode"),
    ("MaxPoolNCHWc", (1, 2, 5, 5, 4), {}, "kernel_shape"),
    ("GlobalAveragePoolNCHWc", (1, 2, 5, 5), {}, "rank 5"),
])
def test_pools_nchwc_must_fail(op, xs, attrs, match):
    with pytest.raises(ModelError, match=match):
        run(op, [rand(xs)], **attrs)
