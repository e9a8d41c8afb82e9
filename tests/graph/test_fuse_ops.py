"""fuse_ops (dlc/graph/passes/fuse_ops.py): golden before/after text, which nodes join
which kernel (epilogues of convolutions and matmuls, elementwise chains, reductions with
their prologue and epilogue), what must stay apart (shared anchor results, cycles between
groups, the size limit), and results against the original graph, interpreted and
compiled."""

import numpy as np
from graph_util import assert_same, check_well_formed, docstring_example, rand

import dlc
from dlc.graph import GraphBuilder, run_graph
from dlc.graph.passes import fuse_ops as module
from dlc.graph.passes.fuse_ops import MAX_GROUP_SIZE, fuse_ops
from dlc.graph.passes.infer_types import infer_types

F = np.float32


def fused(graph):
    out = fuse_ops(graph)
    check_well_formed(out)
    assert_same(graph, out, rtol=1e-5, atol=1e-5)
    return out


def groups(graph) -> list:
    """Each top-level node as the list of the ops it runs."""
    return [[m.op for m in n.attrs["body"].nodes] if n.op == "FusedGroup" else [n.op]
            for n in graph.nodes]


def axes(g, *values):
    return g.constant(np.array(values, np.int64))


def test_docstring_example():
    before, after = docstring_example(module)
    g = GraphBuilder("g")
    x = g.input("x", (1, 16, 8, 8))
    w = g.constant(rand((16, 16, 3, 3), seed=1), "w")
    b = g.constant(rand((16,), seed=2), "b")
    c = g.op("Conv", x, w, b, pads=[1, 1, 1, 1], name="c")
    r = g.op("Relu", c, name="r")
    g.output(g.op("Add", r, x, name="y"))
    graph = g.build()
    assert str(graph) == before
    out = fused(graph)
    assert str(out) == after
    feeds = {"x": rand((1, 16, 8, 8), seed=3)}
    np.testing.assert_allclose(dlc.compile(graph, opt_level=2).run(feeds)[0],
                               run_graph(graph, feeds)[0], rtol=1e-5, atol=1e-5)


def test_elementwise_and_broadcast_chain_is_one_kernel():
    g = GraphBuilder("g")
    x = g.input("x", (4, 1, 6))
    y = g.op("Exp", x) * g.input("s", (5, 1)) + g.constant(rand((6,), seed=1))
    g.output(g.op("Sigmoid", g.op("Neg", y)))
    out = fused(g.build())
    assert groups(out) == [["Exp", "Mul", "Add", "Neg", "Sigmoid"]]
    assert out.nodes[0].attrs["anchor"] == out.outputs[0]


def test_matmul_absorbs_bias_activation_and_residual():
    g = GraphBuilder("g")
    x = g.input("x", (3, 8))
    h = g.op("MatMul", x, g.constant(rand((8, 8), seed=1)), name="mm")
    y = g.op("Relu", h + g.constant(rand((8,), seed=2))) + x
    g.output(g.op("Clip", y, g.constant(np.array(0, F)), g.constant(np.array(6, F))))
    out = fused(g.build())
    assert groups(out) == [["MatMul", "Add", "Relu", "Add", "Clip"]]
    assert out.nodes[0].attrs["anchor"] == "mm"


def test_reductions_take_their_prologue_and_epilogue():
    g = GraphBuilder("g")
    x = g.input("x", (4, 32))
    mean = g.op("ReduceMean", g.op("Abs", x) * g.constant(np.array(0.5, F)), axes(g, 1),
                keepdims=1, name="mean")
    g.output(g.op("Sqrt", mean + g.constant(np.array(1e-5, F))))
    out = fused(g.build())
    assert groups(out) == [["Abs", "Mul", "ReduceMean", "Add", "Sqrt"]]
    assert out.nodes[0].attrs["anchor"] == "mean"


def test_softmax_and_layer_normalization_are_one_kernel_each():
    g = GraphBuilder("g")
    x = g.input("x", (4, 32))
    s = g.op("Softmax", x, axis=-1)
    n = g.op("LayerNormalization", s, g.constant(rand((32,), seed=1)),
             g.constant(rand((32,), seed=2)), axis=-1, outputs=["n"])
    g.output(n)
    out = fused(g.build())
    assert [k for k in groups(out) if "Softmax" in k or "LayerNormalization" in k] == \
        [["Softmax"], ["LayerNormalization"]] or len(out.nodes) < 2


def test_batch_normalization_joins_chains_only_in_inference():
    def graph(training):
        g = GraphBuilder("g")
        x = g.input("x", (2, 3, 4))
        params = [g.constant(rand((3,), seed=k, low=0.5, high=2.0)) for k in range(4)]
        out = g.op("BatchNormalization", g.op("Exp", x), *params, training_mode=training)
        g.output(g.op("Relu", out[0] if training else out))
        return g.build()

    assert groups(fused(graph(0))) == [["Exp", "BatchNormalization", "Relu"]]
    # training mode reduces over the batch: a kernel of its own, compiled right
    training = graph(1)
    assert groups(fused(training)) == [["Exp"], ["BatchNormalization"], ["Relu"]]
    feeds = {"x": rand((2, 3, 4), seed=5)}
    np.testing.assert_allclose(dlc.compile(training).run(feeds)[0],
                               run_graph(training, feeds)[0], rtol=1e-5, atol=1e-5)


def test_an_anchor_result_read_elsewhere_stays_out_of_the_epilogue():
    g = GraphBuilder("g")
    x = g.input("x", (3, 8))
    h = g.op("MatMul", x, g.constant(rand((8, 8), seed=1)))
    g.output(g.op("Relu", h), h)  # h is a graph output too
    out = fused(g.build())
    assert groups(out) == [["MatMul"], ["Relu"]]


def test_no_cycle_between_groups():
    # d and b form one group, which reads a; c would join a's group but reads m, which
    # depends on that group: merging would make the two groups wait for each other
    g = GraphBuilder("g")
    x = g.input("x", (4, 8))
    a = g.op("ReduceSum", x, axes(g, 1), keepdims=1, name="a")
    d = g.op("Exp", x, name="d")
    b = g.op("Add", d, a, name="b")
    m = g.op("ReduceMax", b, axes(g, 1), keepdims=1, name="m")
    g.output(g.op("Mul", a, m, name="c"), b)
    graph = infer_types(g.build())
    out = fused(graph)  # well formed: topologically ordered, every tensor defined once
    producer = {o: k for k, n in enumerate(out.nodes) for o in n.outputs}
    for k, node in enumerate(out.nodes):
        assert all(producer.get(x, -1) < k for x in node.inputs)
    feeds = {"x": rand((4, 8), seed=5)}
    for want, got in zip(run_graph(graph, feeds), dlc.compile(graph).run(feeds)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_groups_are_bounded():
    g = GraphBuilder("g")
    y = g.input("x", (2, 3))
    for _ in range(MAX_GROUP_SIZE + 6):
        y = g.op("Relu", y * g.constant(np.array(0.9, F)))
    g.output(y)
    out = fused(g.build())
    sizes = [len(k) for k in groups(out)]
    assert sum(sizes) == 2 * (MAX_GROUP_SIZE + 6) and max(sizes) <= MAX_GROUP_SIZE


def test_nothing_to_fuse_returns_the_graph():
    g = GraphBuilder("g")
    g.output(g.op("MatMul", g.input("a", (2, 3)), g.input("b", (3, 4))))
    graph = g.build()
    assert fuse_ops(graph) is graph
