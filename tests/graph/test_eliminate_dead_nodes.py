"""eliminate_dead_nodes (dlc/graph/passes/eliminate_dead_nodes.py): golden before/after
text, unused optional outputs, reads from bodies, and what must stay."""

import numpy as np
from graph_util import (
    assert_compiled_same,
    assert_same,
    check_well_formed,
    docstring_example,
)

from dlc.graph import GraphBuilder, Node, run_graph
from dlc.graph.ir import Graph
from dlc.graph.passes import eliminate_dead_nodes as module
from dlc.graph.passes.eliminate_dead_nodes import eliminate_dead_nodes

F = np.float32


def test_docstring_example():
    before, after = docstring_example(module)
    g = GraphBuilder("g")
    x = g.input("x", (4,))
    c = g.constant(F(2), "c")
    g.constant(F(3), "unused")
    a = g.op("Mul", x, c, name="a")
    g.op("Exp", a, name="dead")
    g.output(g.op("Relu", a, name="y"))
    graph = g.build()
    assert str(graph) == before
    out = eliminate_dead_nodes(graph)
    assert str(out) == after
    check_well_formed(out)
    assert_same(graph, out)


def test_dead_chains_go_entirely_and_everything_live_returns_the_same_graph():
    g = GraphBuilder("g")
    x = g.input("x", (4,))
    w = g.constant(np.ones(4, F), "w")
    d1 = g.op("Mul", x, w, name="d1")
    g.op("Sqrt", g.op("Exp", d1, name="d2"), name="d3")
    g.output(g.op("Neg", x, name="y"))
    graph = g.build()
    out = eliminate_dead_nodes(graph)
    assert [n.op for n in out.nodes] == ["Neg"] and out.constants == {}
    assert set(out.types) == {"x", "y"}
    assert eliminate_dead_nodes(out) is out


def test_unused_optional_outputs_are_omitted_and_not_computed():
    g = GraphBuilder("g")
    x = g.input("x", (2, 6))
    scale = g.constant(np.linspace(0.5, 2, 6).astype(F), "scale")
    y, mean, inv = g.op("LayerNormalization", x, scale, name="ln")
    g.output(y, inv)
    graph = g.build()
    out = eliminate_dead_nodes(graph)
    assert out.nodes[0].outputs == ("ln_0", "", "ln_2")
    assert "ln_1" not in out.types
    check_well_formed(out)
    assert_same(graph, out)
    assert_compiled_same(graph)


def body_reading(name: str, outer_type) -> Graph:
    """A body with no inputs returning ``Neg(name)`` for an outer tensor ``name``."""
    body = Graph("b", [], ["o"], [Node("Neg", (name,), ("o",), {}, "neg")])
    body.types["o"] = outer_type
    return body


def test_tensors_read_only_by_a_body_stay():
    g = GraphBuilder("g")
    g.input("c", (), "bool")
    x = g.input("x", (3,))
    a = g.op("Exp", x, name="a")   # read only inside the branches, by name
    g.op("Sqrt", x, name="dead")
    graph = g.graph.copy()
    body = body_reading("a", a.type)
    graph.nodes.append(Node("If", ("c",), ("y",), {"then_branch": body,
                                                   "else_branch": body}, "if"))
    graph.outputs = ["y"]
    out = eliminate_dead_nodes(graph)
    assert [n.op for n in out.nodes] == ["Exp", "If"]
    feeds = {"c": np.array(True), "x": np.array([0, 1, 2], F)}
    np.testing.assert_allclose(run_graph(out, feeds)[0], -np.exp([0, 1, 2]).astype(F))


def test_constants_graph_inputs_override_stay_and_outputs_may_be_inputs_or_constants():
    g = GraphBuilder("g")
    x = g.input("x", (2,))
    k = g.constant(np.ones(2, F), "k")
    g.constant(np.zeros(2, F), "default")
    g.output(x, k)
    graph = g.build()
    graph.inputs.append("default")  # an initializer that callers may override
    assert eliminate_dead_nodes(graph) is graph
