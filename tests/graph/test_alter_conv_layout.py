"""alter_conv_layout (dlc/graph/passes/alter_conv_layout.py): golden before/after text,
which convolutions move to NCHW{b}c and which stay, how the layout flows through
elementwise ops and pools (constants repacked), transforms only at the edges, inverse
pairs cancelled, and results against the original graph (NumPy interpreter) and against
opt_level 2 on ResNet- and MobileNet-like models."""

import importlib.util
import pathlib

import numpy as np
import pytest
from graph_util import assert_same, check_well_formed, docstring_example, rand
from helpers import AVX512

import dlc
from dlc.graph import GraphBuilder
from dlc.graph.ir import Node
from dlc.graph.passes import alter_conv_layout as module
from dlc.graph.passes.alter_conv_layout import (
    alter_conv_layout,
    cancel_inverse_transforms,
    channel_block,
)

F = np.float32


def rewritten(graph, rtol=1e-5, atol=1e-5):
    out = alter_conv_layout(graph, AVX512)  # the blocks the docstring shows
    check_well_formed(out)
    assert_same(graph, out, rtol=rtol, atol=atol)
    return out


def ops(graph) -> list:
    return [n.op for n in graph.nodes]


def conv(g, x, cin, cout, k=3, seed=0, bias=True, **attrs):
    attrs.setdefault("pads", [k // 2] * 4)
    w = g.constant(rand((cout, cin // attrs.get("group", 1), k, k), seed=seed))
    b = g.constant(rand((cout,), seed=seed + 100)) if bias else None
    return g.op("Conv", x, w, b, **attrs)


def test_docstring_example():
    before, after = docstring_example(module)
    g = GraphBuilder("g")
    x = g.input("x", (1, 3, 8, 8))
    w = g.constant(rand((16, 3, 3, 3), seed=1), "w")
    b = g.constant(rand((16,), seed=2), "b")
    c = g.op("Conv", x, w, b, pads=[1, 1, 1, 1], name="c")
    r = g.op("Relu", c, name="r")
    p = g.op("MaxPool", r, kernel_shape=[2, 2], strides=[2, 2], name="p", outputs=["p"])
    g.output(g.op("Flatten", p, name="y"))
    graph = g.build()
    assert str(graph) == before
    out = rewritten(graph)
    assert str(out) == after


def test_channel_block():
    channels = (64, 96, 144, 24, 3, 1000, 12, 7, 17)
    assert [channel_block(c, 16) for c in channels] == [32, 32, 16, 8, 3, 8, 12, 7, 1]
    assert [channel_block(c, 8) for c in channels] == [16, 16, 16, 8, 3, 8, 4, 7, 1]


def test_channel_blocks_follow_the_target_vector_width():
    g = GraphBuilder("g")
    g.output(conv(g, conv(g, g.input("x", (1, 8, 10, 10)), 8, 32, seed=1), 32, 8, seed=2))
    for target, block in ((AVX512, 32), ("llvm -mcpu=haswell", 16)):
        out = alter_conv_layout(g.build(), target)
        assert out.types[out.nodes[0].outputs[0]].shape[-1] == block


def test_a_conv_chain_stays_blocked_between_convolutions():
    g = GraphBuilder("g")
    x = g.input("x", (1, 8, 10, 10))
    y = g.op("Relu", conv(g, x, 8, 32, seed=1))
    y = g.op("Relu", conv(g, y, 32, 16, k=1, seed=2) + conv(g, y, 32, 16, seed=3))
    g.output(conv(g, y, 16, 16, seed=4, strides=[2, 2]))
    out = rewritten(g.build())
    assert ops(out) == ["Conv2dNCHWc", "Relu", "Conv2dNCHWc", "Conv2dNCHWc", "Add", "Relu",
                        "Conv2dNCHWc"]
    first, last = out.nodes[0], out.nodes[-1]
    assert first.inputs[0] == "x"  # the plain input is read directly
    assert out.types[first.outputs[0]].shape == (1, 1, 10, 10, 32)
    assert last.attrs["out_layout"] == "NCHW" and last.outputs == tuple(out.outputs)
    assert out.types[out.outputs[0]].shape == (1, 16, 5, 5)
    assert out.nodes[2].attrs["pads"] == [0, 0, 0, 0]


def test_depthwise_and_grouped_convolutions():
    g = GraphBuilder("g")
    x = g.input("x", (1, 16, 9, 9))
    y = conv(g, x, 16, 16, seed=1, group=16, strides=[2, 2])  # depthwise
    y = conv(g, y, 16, 16, seed=2, group=4)  # grouped: stays NCHW
    g.output(conv(g, y, 16, 16, seed=3, group=16, bias=False))
    out = rewritten(g.build())
    # the grouped convolution reads NCHW: the depthwise one before it writes NCHW itself
    assert ops(out) == ["DepthwiseConv2dNCHWc", "Conv", "DepthwiseConv2dNCHWc"]
    assert out.types[out.nodes[0].inputs[1]].shape == (1, 3, 3, 16)
    assert out.nodes[0].attrs["out_layout"] == "NCHW"
    assert out.nodes[-1].attrs["out_layout"] == "NCHW"


def test_convolutions_that_stay():
    g = GraphBuilder("g")
    x = g.input("x", (1, 4, 6, 6))
    w = g.input("w", (4, 4, 3, 3))  # weights only known at run time
    y = g.op("Conv", x, w, pads=[1, 1, 1, 1])
    w64 = g.constant(rand((4, 4, 3, 3), seed=1).astype(np.float64))
    y = g.op("Conv", g.op("Cast", y, to="float64"), w64, pads=[1, 1, 1, 1])  # float64
    x1 = g.input("x1", (1, 4, 7))  # 1-D
    g.output(y, g.op("Conv", x1, g.constant(rand((4, 4, 3), seed=2)), pads=[1, 1]))
    graph = g.build()
    assert alter_conv_layout(graph) is graph


def test_per_channel_constants_are_repacked_and_scalars_kept():
    g = GraphBuilder("g")
    x = g.input("x", (1, 16, 5, 5))
    y = conv(g, x, 16, 16, seed=1, bias=False)
    y = y * g.constant(rand((16, 1, 1), seed=2)) + g.constant(rand((1, 16, 1, 1), seed=3))
    y = g.op("Clip", y, g.constant(np.array(0, F)), g.constant(np.array(6, F)))
    y = y * g.constant(rand((5, 5), seed=4))  # broadcasts over channels
    y = g.op("PRelu", y, g.constant(rand((16, 1, 1), seed=5)))
    g.output(conv(g, y, 16, 8, k=1, seed=6))
    out = rewritten(g.build())
    assert ops(out) == ["Conv2dNCHWc", "Mul", "Add", "Clip", "Mul", "PRelu", "Conv2dNCHWc"]
    shapes = [[list(out.types[i].shape) for i in n.inputs[1:]] for n in out.nodes[1:6]]
    assert shapes == [[[1, 1, 1, 1, 16]], [[1, 1, 1, 1, 16]], [[], []], [[1, 1, 5, 5, 1]],
                      [[1, 1, 1, 1, 16]]]


def test_edges_add_transforms_under_the_original_names():
    g = GraphBuilder("g")
    x = g.input("x", (1, 8, 6, 6))
    c = g.op("Relu", conv(g, x, 8, 8, seed=1), name="c")
    z = g.op("Add", c, x, name="z")  # a plain full-size operand: into blocks
    s = g.op("Sub", z, g.input("row", (1, 1, 6, 6)), name="s")  # not per channel: back
    y = conv(g, z, 8, 8, seed=2)
    g.output(y, c, s, g.op("Reshape", c, g.constant(np.array([1, -1], np.int64)), name="r"))
    graph = g.build()
    out = rewritten(graph)
    assert ops(out) == ["Conv2dNCHWc", "Relu", "LayoutTransform", "Add", "LayoutTransform",
                        "Sub", "Conv2dNCHWc", "LayoutTransform", "Reshape"]
    transforms = [n for n in out.nodes if n.op == "LayoutTransform"]
    assert [n.inputs[0] for n in transforms] == ["x", "z_nchw8c", "c_nchw8c"]
    assert [n.outputs[0] for n in transforms] == ["x_nchw8c", "z", "c"]
    assert out.outputs == graph.outputs


def test_pools_follow_the_layout():
    g = GraphBuilder("g")
    x = g.input("x", (1, 8, 9, 9))
    y = g.op("Relu", conv(g, x, 8, 16, seed=1))
    m = g.op("MaxPool", y, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
             outputs=["m"])
    a = g.op("AveragePool", m, kernel_shape=[2, 2], count_include_pad=1, pads=[0, 0, 1, 1])
    p = g.op("GlobalAveragePool", g.op("Relu", conv(g, a, 16, 16, seed=2)))
    mi = g.op("MaxPool", y, kernel_shape=[2, 2], outputs=["mv", "mi"])  # Indices: stays
    g.output(g.op("Flatten", p), *mi)
    out = rewritten(g.build())
    assert ops(out) == ["Conv2dNCHWc", "Relu", "MaxPoolNCHWc", "AveragePoolNCHWc",
                        "Conv2dNCHWc", "Relu", "GlobalAveragePoolNCHWc", "LayoutTransform",
                        "MaxPool", "LayoutTransform", "Flatten"]


def test_inverse_transforms_cancel():
    def transform(x, y, src, dst, channels=8):
        return Node("LayoutTransform", (x,), (y,), {"src_layout": src, "dst_layout": dst,
                                                    "channels": channels})

    nodes = [transform("x", "a", "NCHW", "NCHW8c"), transform("a", "b", "NCHW8c", "NCHW"),
             Node("Relu", ("b",), ("r",)), transform("a", "c", "NCHW8c", "NCHW4c"),
             transform("c", "d", "NCHW4c", "NCHW8c"), Node("Relu", ("d",), ("s",)),
             transform("x", "e", "NCHW", "NCHW3c", 7), transform("e", "f", "NCHW3c", "NCHW",
                                                                 7)]
    out = cancel_inverse_transforms(nodes, ["r", "s", "f"])
    assert [(n.op, n.inputs[0]) for n in out] == [
        ("LayoutTransform", "x"), ("Relu", "x"), ("Relu", "a"), ("LayoutTransform", "x"),
        ("LayoutTransform", "e")]  # padded blocks (7 channels in 3s) are not dropped


def test_nothing_to_do_returns_the_graph():
    g = GraphBuilder("g")
    x = g.input("x", (1, 4, 4, 4))
    g.output(g.op("Relu", x))
    graph = g.build()
    assert alter_conv_layout(graph) is graph


# -- models ----------------------------------------------------------------------------------
_PATH = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "models.py"
_spec = importlib.util.spec_from_file_location("benchmark_models", _PATH)
models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(models)


@pytest.mark.parametrize("name,convs,depthwise", [("resnet18", 20, 0),
                                                  ("mobilenet_v2", 25, 12)])
def test_models_run_blocked_with_transforms_only_at_the_edges(name, convs, depthwise):
    model = models.CASES[name][1]()
    graph = dlc.compile(model, opt_level=2).source_graph
    from dlc.compile import run_graph_passes
    from dlc.graph.passes.infer_types import infer_types

    cleaned = run_graph_passes(infer_types(graph), opt_level=1)
    out = rewritten(cleaned, rtol=1e-4, atol=1e-4)
    kinds = ops(out)
    assert kinds.count("Conv2dNCHWc") == convs and "Conv" not in kinds
    assert kinds.count("DepthwiseConv2dNCHWc") == depthwise
    assert kinds.count("LayoutTransform") == 1  # after GlobalAveragePool, before Flatten
    feeds = models.random_inputs(model)
    want = dlc.compile(model, opt_level=2).run(feeds)[0]
    got = dlc.compile(model, opt_level=3).run(feeds)[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
