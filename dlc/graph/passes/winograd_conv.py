"""Compute 3x3 stride-1 convolutions with Winograd's F(m x m, 3 x 3) (dlc.ops.winograd):
4x (m = 4) or 2.25x (m = 2) fewer multiplications than the direct convolution, at the cost
of three kernels and two intermediate tensors ((m + 2) / m)^2 the size of the input and
output.

A ``Conv2dNCHWc`` (after alter_conv_layout) is eligible when its weights are constant
float32 3x3 windows with unit strides and dilations and its input and output are blocked.
Which algorithm an eligible convolution uses (direct, F(4x4, 3x3) or F(2x2, 3x3)) is
measured by ``dlc tune`` on the machine at hand (dlc.autotune.algorithms: a
``conv_algorithm`` record per distinct convolution, applied through the tuning log).
Without a measurement a rule decides: the products need enough work to amortize the
transforms, at least ``MIN_CHANNELS`` input and output channels and ``MIN_TILES`` output
tiles (the transformed weights are ((m + 2) / 3)^2 times larger than the direct ones and
each is reused once per tile, so with few tiles the products read weights instead of
multiplying): the larger tile where it has enough tiles, else the smaller, else direct.
The weights are transformed here, once (``U = G w G^T``).

Before::

    graph g(x: float32[1, 1, 16, 16, 32]):
      w = constant float32[1, 1, 3, 3, 32, 32]
      b = constant float32[1, 1, 1, 1, 32]
      c = Conv2dNCHWc(x, w, b) {dilations=[1, 1], pads=[1, 1, 1, 1], strides=[1, 1]} : float32[1, 1, 16, 16, 32]
      y = Relu(c) : float32[1, 1, 16, 16, 32]
      return y

After::

    graph g(x: float32[1, 1, 16, 16, 32]):
      b = constant float32[1, 1, 1, 1, 32]
      w_winograd = constant float32[6, 6, 1, 1, 32, 32]
      c_winograd_input = WinogradInputNCHWc(x) {pads=[1, 1, 1, 1], tile=4} : float32[6, 6, 1, 1, 16, 32]
      c_winograd_products = WinogradGemmNCHWc(c_winograd_input, w_winograd) : float32[6, 6, 1, 1, 16, 32]
      c = WinogradOutputNCHWc(c_winograd_products, b) {out_height=16, out_width=16, tile=4} : float32[1, 1, 16, 16, 32]
      y = Relu(c) : float32[1, 1, 16, 16, 32]
      return y
"""

from __future__ import annotations

from dlc.graph.ir import Graph, Node, TensorType
from dlc.graph.passes.rewrite import Namer, constant, rewrite_nodes
from dlc.ops.winograd import WINOGRAD_DTYPES, tile_counts, transform_weights

#: The output tiles offered (F(m x m, 3 x 3)), the rule's preference first.
TILES = (4, 2)
#: Fewest input and output channels, and output tiles, for which the rule uses Winograd.
MIN_CHANNELS, MIN_TILES = 32, 16


def winograd_conv(graph: Graph, choose=None) -> Graph:
    """Replace qualifying convolutions (see the module docstring) by the three Winograd
    kernels; ``graph`` itself when none qualifies. ``choose(graph, node)``, when given, is
    asked first for every eligible convolution: an output tile (one of TILES) or 0
    (direct) decides (a choice measured by the tuner, dlc.autotune.algorithms), None leaves
    it to the rule."""
    namer = Namer(graph)

    def rewrite(out: Graph, node: Node):
        if not eligible(graph, node):
            return None
        choice = choose(graph, node) if choose is not None else None
        tile = by_rule(graph, node) if choice is None else choice
        return _rewrite(out, node, namer, tile) if tile else None

    return rewrite_nodes(graph, rewrite)


def eligible(graph: Graph, node: Node) -> bool:
    """Whether ``node`` can be computed with Winograd: a Conv2dNCHWc with constant float32
    3x3 weights, unit strides and dilations, blocked input and output."""
    if node.op != "Conv2dNCHWc":
        return False
    attrs = node.attrs
    x, y = graph.types.get(node.inputs[0]), graph.types.get(node.outputs[0])
    w = constant(graph, node.inputs[1])
    if x is None or y is None or w is None or x.ndim != 5 or y.ndim != 5:
        return False
    if x.dtype not in WINOGRAD_DTYPES or attrs.get("out_layout", "") != "":
        return False
    if list(attrs.get("strides") or [1, 1]) != [1, 1] or \
            list(attrs.get("dilations") or [1, 1]) != [1, 1]:
        return False
    return w.ndim == 6 and tuple(w.shape[2:4]) == (3, 3)


def by_rule(graph: Graph, node: Node) -> int:
    """The untuned choice for an eligible convolution: the first of TILES that makes at
    least MIN_TILES tiles, with enough channels; 0 (direct) when none does."""
    x, y = graph.types[node.inputs[0]], graph.types[node.outputs[0]]
    if x.shape[1] * x.shape[4] < MIN_CHANNELS or y.shape[1] * y.shape[4] < MIN_CHANNELS:
        return 0
    for tile in TILES:
        th, tw = tile_counts(y.shape[2], y.shape[3], tile)
        if th * tw >= MIN_TILES:
            return tile
    return 0


def _rewrite(graph: Graph, node: Node, namer: Namer, tile: int) -> list:
    x, wname = node.inputs[:2]
    bias = node.inputs[2] if len(node.inputs) > 2 else ""
    y = node.outputs[0]
    xt, yt = graph.types[x], graph.types[y]
    n, blocks, out_h, out_w, ob = yt.shape
    th, tw = tile_counts(out_h, out_w, tile)
    t = tile + 2
    base = node.name or y
    u = namer.fresh(f"{wname}_winograd")
    graph.constants[u] = transform_weights(constant(graph, wname), tile)
    graph.types[u] = TensorType.of(graph.constants[u])
    v, m = namer.fresh(f"{y}_winograd_input"), namer.fresh(f"{y}_winograd_products")
    graph.types[v] = TensorType((t, t, n, xt.shape[1], th * tw, xt.shape[4]), xt.dtype)
    graph.types[m] = TensorType((t, t, n, blocks, th * tw, ob), xt.dtype)
    pads = list(node.attrs.get("pads") or [0, 0, 0, 0])
    return [
        Node("WinogradInputNCHWc", (x,), (v,), {"pads": pads, "tile": tile},
             f"{base}_winograd_input"),
        Node("WinogradGemmNCHWc", (v, u), (m,), {}, f"{base}_winograd_products"),
        Node("WinogradOutputNCHWc", (m, bias) if bias else (m,), (y,),
             {"out_height": out_h, "out_width": out_w, "tile": tile}, node.name),
    ]
