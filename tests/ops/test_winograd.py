"""The Winograd ops (dlc/ops/winograd.py): the transform matrices against the definition of
a correlation, each op compiled against its NumPy reference, the three chained against a
direct convolution written here (awkward sizes: output not a multiple of the tile, one
output pixel, asymmetric pads, batch 2, blocks of 8 and 16), and must-fail cases."""

import numpy as np
import pytest
from test_layout import block, naive_conv, rand

import dlc
from dlc.errors import ModelError
from dlc.graph import GraphBuilder, run_graph
from dlc.ops.layout import pack_channel_vector, pack_conv_weights
from dlc.ops.winograd import TILE_SIZES, tile_counts, transform_weights, winograd_matrices


@pytest.mark.parametrize("tile", TILE_SIZES)
def test_matrices_compute_a_correlation(tile):
    """y = A^T [(G g) * (B^T d)] is the correlation of d with g, in 1-D and in 2-D."""
    at, g, bt = winograd_matrices(tile)
    rng = np.random.default_rng(tile)
    d, k = rng.standard_normal(tile + 2), rng.standard_normal(3)
    want = np.array([d[i:i + 3] @ k for i in range(tile)])
    np.testing.assert_allclose(at @ ((g @ k) * (bt @ d)), want, rtol=1e-12, atol=1e-12)
    d2, k2 = rng.standard_normal((tile + 2, tile + 2)), rng.standard_normal((3, 3))
    want2 = np.array([[np.sum(d2[i:i + 3, j:j + 3] * k2) for j in range(tile)]
                      for i in range(tile)])
    got2 = at @ ((g @ k2 @ g.T) * (bt @ d2 @ bt.T)) @ at.T
    np.testing.assert_allclose(got2, want2, rtol=1e-12, atol=1e-12)


def test_unknown_tile_is_refused():
    with pytest.raises(ValueError, match="tile must be one of"):
        winograd_matrices(3)


def chain(x, w, b, tile, pads):
    """The three ops as one graph on blocked x (constant transformed weights and bias)."""
    g = GraphBuilder("wino")
    xs = g.input("x", x.shape, x.dtype)
    v = g.op("WinogradInputNCHWc", xs, pads=pads, tile=tile)
    m = g.op("WinogradGemmNCHWc", v, g.constant(transform_weights(w, tile)))
    out_h, out_w = x.shape[2] + pads[0] + pads[2] - 2, x.shape[3] + pads[1] + pads[3] - 2
    args = [m] + ([g.constant(b)] if b is not None else [])
    g.output(g.op("WinogradOutputNCHWc", *args, tile=tile, out_height=out_h,
                  out_width=out_w))
    return g.build()


CASES = [  # x shape (plain), out channels, pads, in block, out block
    ((1, 16, 9, 11), 16, [1, 1, 1, 1], 8, 8),
    ((2, 8, 6, 5), 24, [0, 1, 2, 1], 8, 8),
    ((1, 16, 1, 1), 16, [1, 1, 1, 1], 16, 16),
    ((1, 32, 3, 7), 16, [0, 0, 0, 0], 16, 8),
    ((1, 32, 16, 16), 32, [1, 1, 1, 1], 16, 16),
]


@pytest.mark.parametrize("tile", TILE_SIZES)
@pytest.mark.parametrize("xs,oc,pads,ib,ob", CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_chain_is_a_convolution(tile, xs, oc, pads, ib, ob, bias):
    x = rand(xs, seed=1)
    w = rand((oc, xs[1], 3, 3), seed=2)
    b = rand((oc,), seed=3) if bias else None
    want = block(naive_conv(x, w, b, pads=pads), ob)
    graph = chain(block(x, ib), pack_conv_weights(w, ib, ob),
                  pack_channel_vector(b, ob) if bias else None, tile, pads)
    got = dlc.compile(graph).run(block(x, ib))[0]
    ref = run_graph(graph, {"x": block(x, ib)})[0]
    assert got.shape == want.shape == ref.shape
    # F(4x4, 3x3) scales by up to 8 and 1/24: errors near 1e-6 of |x| * |w| * 9 * channels
    tol = 2e-5 * xs[1]
    np.testing.assert_allclose(got, want, rtol=0, atol=tol)
    np.testing.assert_allclose(ref, want, rtol=0, atol=tol)


@pytest.mark.parametrize("op,shape,attrs", [
    ("WinogradInputNCHWc", (2, 2, 7, 10, 8), {"tile": 4, "pads": [1, 0, 1, 2]}),
    ("WinogradInputNCHWc", (1, 1, 3, 3, 4), {"tile": 2, "pads": [0, 0, 0, 0]}),
    ("WinogradOutputNCHWc", (6, 6, 1, 2, 6, 8), {"tile": 4, "out_height": 5,
                                                 "out_width": 9}),
    ("WinogradOutputNCHWc", (4, 4, 2, 1, 1, 4), {"tile": 2, "out_height": 1,
                                                 "out_width": 2}),
])
def test_transforms_match_their_references(op, shape, attrs):
    x = rand(shape, seed=5)
    g = GraphBuilder("t")
    g.output(g.op(op, g.input("x", shape, "float32"), **attrs))
    graph = g.build()
    got = dlc.compile(graph).run(x)[0]
    ref = run_graph(graph, {"x": x})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_products_match_their_reference():
    v, u = rand((4, 4, 2, 3, 5, 8), seed=6), rand((4, 4, 2, 3, 8, 16), seed=7)
    g = GraphBuilder("t")
    g.output(g.op("WinogradGemmNCHWc", g.input("v", v.shape, "float32"),
                  g.input("u", u.shape, "float32")))
    graph = g.build()
    got = dlc.compile(graph).run(v, u)[0]
    want = np.einsum("efncpi,efocij->efnopj", v.astype(np.float64), u.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(run_graph(graph, {"v": v, "u": u})[0], want, rtol=1e-5,
                               atol=1e-5)


def test_tile_counts_round_up():
    assert tile_counts(56, 56, 4) == (14, 14) and tile_counts(7, 9, 4) == (2, 3)
    assert tile_counts(1, 1, 2) == (1, 1)


@pytest.mark.parametrize("op,shapes,attrs,match", [
    ("WinogradInputNCHWc", [(1, 2, 8, 8, 4)], {"tile": 3}, "tile must be one of"),
    ("WinogradInputNCHWc", [(1, 8, 8, 4)], {"tile": 4}, "rank 5"),
    ("WinogradInputNCHWc", [(1, 2, 1, 8, 4)], {"tile": 4}, "does not fit"),
    ("WinogradInputNCHWc", [(1, 2, 8, 8, 4)], {"tile": 4, "pads": [1, 1]},
     "4 non-negative"),
    ("WinogradGemmNCHWc", [(6, 6, 1, 2, 4, 8), (6, 6, 2, 2, 4, 8)], {}, "expected V"),
    ("WinogradOutputNCHWc", [(6, 6, 1, 2, 4, 8)], {"tile": 4, "out_height": 9,
                                                   "out_width": 8}, "expected"),
    ("WinogradOutputNCHWc", [(6, 6, 1, 2, 4, 8), (1, 2, 1, 1, 4)],
     {"tile": 4, "out_height": 8, "out_width": 8}, "bias"),
])
def test_must_fail(op, shapes, attrs, match):
    g = GraphBuilder("t")
    syms = [g.input(f"in{k}", s, "float32") for k, s in enumerate(shapes)]
    with pytest.raises(ModelError, match=match):
        g.op(op, *syms, **attrs)
