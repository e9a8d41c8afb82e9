"""eliminate_common_subexpressions (dlc/graph/passes/eliminate_common_subexpressions.py):
golden before/after text, attribute equality (defaults, arrays, signed zeros, bodies),
graph outputs, constants, and results against the original graph."""

import numpy as np
from graph_util import (
    assert_compiled_same,
    assert_same,
    check_well_formed,
    docstring_example,
)

from dlc.graph import GraphBuilder, Node
from dlc.graph.ir import Graph
from dlc.graph.passes import eliminate_common_subexpressions as module
from dlc.graph.passes.eliminate_common_subexpressions import eliminate_common_subexpressions

F = np.float32
cse = eliminate_common_subexpressions


def test_docstring_example():
    before, after = docstring_example(module)
    g = GraphBuilder("g")
    x = g.input("x", (4,))
    c1, c2 = g.constant(F(2), "c1"), g.constant(F(2), "c2")
    a = g.op("Mul", x, c1, name="a")
    b = g.op("Mul", c2, x, name="b")
    g.output(g.op("Add", a, b, name="y"))
    graph = g.build()
    assert str(graph) == before
    out = cse(graph)
    assert str(out) == after
    check_well_formed(out)
    assert_same(graph, out)


def test_merges_cascade_and_the_result_is_a_fixed_point():
    g = GraphBuilder("g")
    x = g.input("x", (2, 3))
    a = g.op("Transpose", g.op("Exp", x, name="e1"), perm=[1, 0], name="a")
    b = g.op("Transpose", g.op("Exp", x, name="e2"), perm=[1, 0], name="b")
    c = g.op("Transpose", g.op("Exp", x, name="e3"), perm=[0, 1], name="c")
    g.output(g.op("Concat", a, b, axis=0, name="y"), c)
    graph = g.build()
    out = cse(graph)
    assert [n.name for n in out.nodes] == ["e1", "a", "c", "y"]
    assert out.nodes[2].inputs == ("e1",)           # e3 merged into e1; c's perm differs
    assert out.nodes[3].inputs == ("a", "a")
    assert cse(out) is out
    check_well_formed(out)
    assert_same(graph, out)


def test_attribute_equality_fills_defaults_and_compares_exactly():
    g = GraphBuilder("g")
    x = g.input("x", (5,))
    default = g.op("LeakyRelu", x, name="default")
    explicit = g.op("LeakyRelu", x, alpha=0.009999999776482582, name="explicit")
    other = g.op("LeakyRelu", x, alpha=0.5, name="other")
    plus = g.op("Shrink", x, bias=0.0, name="plus")
    minus = g.op("Shrink", x, bias=-0.0, name="minus")
    g.output(g.op("Sum", default, explicit, other, plus, minus, name="y"))
    graph = g.build()
    out = cse(graph)
    assert [n.name for n in out.nodes] == ["default", "other", "plus", "minus", "y"]
    assert_same(graph, out)


def test_array_attributes_compare_dtype_shape_and_bytes():
    g = GraphBuilder("g")
    dims = g.constant(np.array([3]), "dims")
    values = [np.array([1], F), np.array([1], F), np.array([2], F), np.array([1.0])]
    k = [g.op("ConstantOfShape", dims, value=v, name=f"k{i}") for i, v in enumerate(values)]
    g.output(g.op("Sum", k[0], k[1], k[2], g.op("Cast", k[3], to="float32", name="c"),
                  name="y"))
    graph = g.build()
    out = cse(graph)
    assert [n.name for n in out.nodes] == ["k0", "k2", "k3", "c", "y"]
    assert out.nodes[-1].inputs == ("k0", "k0", "k2", "c")
    assert_same(graph, out, {})


def body(name: str, op: str) -> Graph:
    g = GraphBuilder(name)
    v = g.input("v", (3,))
    g.output(g.op(op, v, name="o"))
    return g.build()


def test_nodes_with_bodies_merge_only_when_the_bodies_are_structurally_equal():
    g = GraphBuilder("g")
    g.input("c", (), "bool")
    g.input("x", (3,))
    graph = g.graph.copy()
    same1, same2, other = body("b1", "Exp"), body("b2", "Exp"), body("b3", "Neg")
    for k, then in enumerate([same1, same2, other]):
        graph.nodes.append(Node("If", ("c", "x"), (f"y{k}",),
                                {"then_branch": then, "else_branch": same1}, f"if{k}"))
    graph.outputs = ["y0"]
    graph.nodes.append(Node("Sum", ("y0", "y1", "y2"), ("s",), {}, "sum"))
    graph.outputs = ["s"]
    out = cse(graph)
    assert [n.name for n in out.nodes] == ["if0", "if2", "sum"]
    assert out.nodes[-1].inputs == ("y0", "y0", "y2")
    feeds = {"c": np.array(True), "x": np.array([0, 1, 2], F)}
    assert_same(graph, out, feeds)


def test_a_duplicate_producing_a_graph_output_gives_its_name_to_the_survivor():
    g = GraphBuilder("g")
    x = g.input("x", (3,))
    a = g.op("Exp", x, name="a")
    r = g.op("Relu", a, name="r")
    g.output(g.op("Exp", x, name="y"), r)
    graph = g.build()
    out = cse(graph)
    assert str(out).splitlines()[1:] == [
        "  y = Exp(x) : float32[3]",
        "  r = Relu(y) : float32[3]",
        "  return y, r"]
    check_well_formed(out)
    assert_same(graph, out)


def test_two_graph_outputs_computing_the_same_thing_both_stay():
    g = GraphBuilder("g")
    x = g.input("x", (3,))
    g.output(g.op("Exp", x, name="y1"), g.op("Exp", x, name="y2"))
    graph = g.build()
    assert cse(graph) is graph


def test_constants_merge_only_with_equal_dtype_shape_and_bytes():
    g = GraphBuilder("g")
    x = g.input("x", (2,))
    values = {"a": np.array([0.0, 1.0], F), "b": np.array([0.0, 1.0], F),
              "c": np.array([0.0, 1.0]), "d": np.array([-0.0, 1.0], F),
              "e": np.array([[0.0, 1.0]], F)}
    total = x
    for name, value in values.items():
        total = g.op("Add", total, g.op("Cast", g.constant(value, name), to="float32"))
    g.output(total)
    graph = g.build()
    out = cse(graph)
    assert list(out.constants) == ["a", "c", "d", "e"]
    check_well_formed(out)
    assert_same(graph, out)
    assert_compiled_same(graph)


def test_a_constant_that_a_graph_input_overrides_is_never_merged():
    g = GraphBuilder("g")
    x = g.input("x", (2,))
    a = g.constant(np.ones(2, F), "a")
    b = g.constant(np.ones(2, F), "b")
    g.output(g.op("Add", x, a), g.op("Mul", x, b))
    graph = g.build()
    graph.inputs.append("b")
    assert cse(graph) is graph
