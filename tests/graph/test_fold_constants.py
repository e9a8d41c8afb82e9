"""fold_constants (dlc/graph/passes/fold_constants.py): golden before/after text, chains,
type-only ops, what must not fold, and results against the original graph."""

import numpy as np
from graph_util import (
    assert_compiled_same,
    assert_same,
    check_well_formed,
    docstring_example,
)

from dlc.graph import GraphBuilder
from dlc.graph.passes import fold_constants as module
from dlc.graph.passes import infer_types
from dlc.graph.passes.fold_constants import fold_constants

F = np.float32


def docstring_graph():
    g = GraphBuilder("g")
    x = g.input("x", (2, 3))
    a = g.constant(np.array([1, 2, 3], F), "a")
    b = g.constant(F(2), "b")
    g.output(g.op("Add", x, g.op("Mul", a, b, name="s"), name="y"))
    return g.build()


def test_docstring_example():
    before, after = docstring_example(module)
    graph = docstring_graph()
    assert str(graph) == before
    out = fold_constants(graph)
    assert str(out) == after
    check_well_formed(out)
    assert_same(graph, out)


def test_chains_fold_in_one_sweep_and_the_input_graph_is_untouched():
    g = GraphBuilder("g")
    x = g.input("x", (3,))
    c = g.constant(np.array([1, -2, 3], F), "c")
    r = g.op("Relu", g.op("Neg", c, name="n"), name="r")
    e = g.op("Exp", r, name="e")
    g.output(g.op("Mul", x, e, name="y"))
    graph = g.build()
    text = str(graph)
    out = fold_constants(graph)
    assert [n.op for n in out.nodes] == ["Mul"]
    np.testing.assert_allclose(out.constants["e"], np.exp([0, 2, 0]).astype(F))
    assert str(graph) == text
    check_well_formed(out)
    assert_same(graph, out)


def test_type_only_ops_fold_on_typed_inputs():
    g = GraphBuilder("g")
    x = g.input("x", (2,))
    size = g.op("Cast", g.op("Shape", x, name="s"), to="float32", name="n")
    g.output(g.op("Add", x, size, name="y"))
    graph = g.build()
    out = fold_constants(graph)
    assert [n.op for n in out.nodes] == ["Add"]
    assert out.constants["n"].tolist() == [2.0]
    check_well_formed(out)


def test_nodes_typed_only_once_their_inputs_fold_get_types():
    g = GraphBuilder("g")
    x = g.input("x", (2, 5))
    shape = g.op("Mul", g.op("Shape", x), g.constant(np.array([1, 1])), name="shape")
    g.output(g.op("Reshape", x, shape, name="y"))
    graph = g.graph.copy()  # built without folding: "y" is untyped
    assert "y" not in graph.types
    out = fold_constants(graph)
    assert [n.op for n in out.nodes] == ["Reshape"]
    assert str(out.types["y"]) == "float32[2, 5]"
    check_well_formed(out)


def test_nothing_to_fold_returns_the_same_graph():
    g = GraphBuilder("g")
    x = g.input("x", (3,))
    g.output(g.op("Add", x, g.constant(np.ones(3, F)), name="y"))
    graph = g.build()
    assert fold_constants(graph) is graph


def test_a_constant_that_a_graph_input_overrides_is_not_folded():
    graph = docstring_graph()
    graph.inputs.append("b")  # an initializer listed as input: callers may replace it
    assert fold_constants(graph) is graph


def test_outputs_larger_than_the_limit_stay_nodes(monkeypatch):
    g = GraphBuilder("g")
    x = g.input("x", (64,))
    big = g.op("Expand", g.constant(F(1)), g.constant(np.array([64])), name="big")
    g.output(g.op("Add", x, big, name="y"))
    graph = g.build()
    monkeypatch.setattr(infer_types, "MAX_FOLDED_BYTES", 64)
    assert fold_constants(graph) is graph
    monkeypatch.setattr(infer_types, "MAX_FOLDED_BYTES", 256)
    assert [n.op for n in fold_constants(graph).nodes] == ["Add"]


def test_folding_a_graph_output_makes_it_a_constant_output():
    graph = docstring_graph()
    graph.outputs.append("s")
    out = fold_constants(graph)
    assert "s" in out.constants and out.outputs == ["y", "s"]
    assert_same(graph, out)
    assert_compiled_same(graph)
