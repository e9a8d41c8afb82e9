"""simplify_algebra (dlc/graph/passes/simplify_algebra.py): golden before/after text, every
identity and the near misses that must stay, signed zeros, copy and transpose chains,
graph outputs, bodies, and results against the original graph."""

import numpy as np
import pytest
from graph_util import (
    assert_compiled_same,
    assert_same,
    check_well_formed,
    docstring_example,
)

from dlc.graph import GraphBuilder, Node, run_graph
from dlc.graph.ir import Graph
from dlc.graph.passes import simplify_algebra as module
from dlc.graph.passes.eliminate_dead_nodes import eliminate_dead_nodes
from dlc.graph.passes.simplify_algebra import simplify_algebra

F = np.float32


def simplified(graph):
    """simplify_algebra then dead-node removal, checked for types and results."""
    out = eliminate_dead_nodes(simplify_algebra(graph))
    check_well_formed(out)
    assert_same(graph, out)
    return out


def test_docstring_example():
    before, after = docstring_example(module)
    g = GraphBuilder("g")
    x = g.input("x", (2, 3))
    one = g.constant(F(1), "one")
    a = g.op("Identity", x, name="a")
    t2 = g.op("Transpose", g.op("Transpose", a, perm=[1, 0], name="t1"), perm=[1, 0],
              name="t2")
    r2 = g.op("Squeeze", g.op("Flatten", t2, axis=0, name="r1"), name="r2")
    g.output(g.op("Mul", r2, one, name="y"))
    graph = g.build()
    assert str(graph) == before
    out = simplify_algebra(graph)
    assert str(out) == after
    check_well_formed(out)
    assert_same(graph, out)
    assert simplify_algebra(out) is out


def unary_graph(build, shape=(2, 3), dtype="float32"):
    g = GraphBuilder("g")
    x = g.input("x", shape, dtype)
    g.output(g.op("Relu", build(g, x), name="y"))
    return g.build()


IDENTITIES = {
    "identity": lambda g, x: g.op("Identity", x),
    "cast_same": lambda g, x: g.op("Cast", x, to="float32"),
    "castlike_same": lambda g, x: g.op("CastLike", x, g.constant(np.ones(1, F))),
    "reshape_same": lambda g, x: g.op("Reshape", x, g.constant(np.array([2, -1]))),
    "expand_same": lambda g, x: g.op("Expand", x, g.constant(np.array([1, 3]))),
    "unsqueeze_squeeze": lambda g, x: g.op("Squeeze", g.op(
        "Unsqueeze", x, g.constant(np.array([0]))), g.constant(np.array([0]))),
    "transpose_id": lambda g, x: g.op("Transpose", x, perm=[0, 1]),
    "transpose_pair": lambda g, x: g.op("Transpose", g.op("Transpose", x)),
    "mul_one": lambda g, x: x * 1.0,
    "one_mul": lambda g, x: g.op("Mul", g.constant(np.ones((1, 3), F)), x),
    "div_one": lambda g, x: x / 1.0,
    "add_minus_zero": lambda g, x: x + F(-0.0),
    "minus_zero_add": lambda g, x: g.op("Add", g.constant(np.full(3, -0.0, F)), x),
    "sub_zero": lambda g, x: x - 0.0,
}


@pytest.mark.parametrize("case", sorted(IDENTITIES))
def test_identities_disappear(case):
    graph = unary_graph(IDENTITIES[case])
    out = simplified(graph)
    assert [n.op for n in out.nodes] == ["Relu"] and out.nodes[0].inputs == ("x",)


KEPT = {
    "cast_other": lambda g, x: g.op("Cast", g.op("Cast", x, to="float16"), to="float32"),
    "expand_broadcasts": lambda g, x: g.op("Expand", x, g.constant(np.array([2, 2, 3]))),
    "transpose_square": lambda g, x: g.op("Transpose", x),
    "mul_one_broadcasts": lambda g, x: g.op("Mul", x, g.constant(np.ones((2, 2, 3), F))),
    "mul_two": lambda g, x: x * 2.0,
    "mul_mixed": lambda g, x: g.op("Mul", x, g.constant(np.array([1, 1, 2], F))),
    "one_div": lambda g, x: g.op("Div", g.constant(F(1)), x),
    "add_plus_zero": lambda g, x: x + 0.0,
    "sub_minus_zero": lambda g, x: x - F(-0.0),
    "zero_sub": lambda g, x: g.op("Sub", g.constant(F(-0.0)), x),
    "add_input": lambda g, x: g.op("Add", x, g.op("Neg", x)),
}


@pytest.mark.parametrize("case", sorted(KEPT))
def test_near_misses_stay(case):
    graph = unary_graph(KEPT[case], shape=(3, 3) if case == "transpose_square" else (2, 3))
    assert simplify_algebra(graph) is graph


def test_signed_zeros_come_through_unchanged():
    g = GraphBuilder("g")
    x = g.input("x", (4,))
    kept = x + 0.0                      # -0.0 + 0.0 is +0.0: must stay
    gone = (x + F(-0.0)) - 0.0          # exact identities
    g.output(g.op("Div", g.constant(np.ones(4, F)), kept, name="y1"),
             g.op("Div", g.constant(np.ones(4, F)), gone * 1.0, name="y2"))
    graph = g.build()
    out = simplified(graph)
    assert [n.op for n in out.nodes] == ["Add", "Div", "Div"]
    feeds = {"x": np.array([-0.0, 0.0, np.inf, np.nan], F)}
    y1, y2 = run_graph(out, feeds)
    np.testing.assert_array_equal(y1, [np.inf, np.inf, 0, np.nan])
    np.testing.assert_array_equal(y2, [-np.inf, np.inf, 0, np.nan])
    assert_compiled_same(graph, feeds)


def test_integer_zero_and_one_are_neutral():
    graph = unary_graph(lambda g, x: (x + np.int32(0)) * np.int32(1) - np.int32(0),
                        dtype="int32")
    out = simplified(graph)
    assert [n.op for n in out.nodes] == ["Relu"]


def test_copy_chains_become_one_reshape():
    g = GraphBuilder("g")
    x = g.input("x", (2, 3, 4))
    f = g.op("Flatten", x, axis=2, name="f")
    u = g.op("Unsqueeze", f, g.constant(np.array([0]), "ax"), name="u")
    g.output(g.op("Reshape", u, g.constant(np.array([4, -1]), "s"), name="y"), f)
    graph = g.build()
    out = simplified(graph)
    assert str(out).splitlines()[1:] == [
        "  y_shape = constant int64[2] [4, 6]",
        "  f = Flatten(x) {axis=2} : float32[6, 4]",
        "  y = Reshape(x, y_shape) : float32[4, 6]",
        "  return y, f"]


def test_reshape_of_an_empty_tensor_keeps_its_zero_dimension():
    g = GraphBuilder("g")
    x = g.input("x", (0, 3))
    r = g.op("Reshape", g.op("Flatten", x, axis=0), g.constant(np.array([3, 0])), name="y",
             allowzero=1)
    g.output(r)
    out = simplified(g.build())
    assert out.nodes[0].attrs == {"allowzero": 1}
    assert out.constants[out.nodes[0].inputs[1]].tolist() == [3, 0]


def test_transpose_chains_compose():
    g = GraphBuilder("g")
    x = g.input("x", (2, 3, 4))
    t1 = g.op("Transpose", x, perm=[1, 2, 0], name="t1")
    g.output(g.op("Transpose", t1, perm=[2, 0, 1][::-1], name="y"))
    graph = g.build()
    out = simplified(graph)
    assert [(n.op, n.inputs, n.attrs) for n in out.nodes] == [
        ("Transpose", ("x",), {"perm": [2, 1, 0]})]


def test_reshape_transpose_reshape_is_left_alone():
    g = GraphBuilder("g")
    x = g.input("x", (2, 6))
    r = g.op("Reshape", x, g.constant(np.array([2, 2, 3])))
    t = g.op("Transpose", r, perm=[0, 2, 1])
    g.output(g.op("Reshape", t, g.constant(np.array([2, 6]))))
    graph = g.build()
    assert simplify_algebra(graph) is graph


def test_a_graph_output_keeps_its_name():
    g = GraphBuilder("g")
    x = g.input("x", (3,))
    e = g.op("Exp", x, name="e")
    g.output(g.op("Identity", e, name="y"), g.op("Identity", x, name="z"))
    graph = g.build()
    out = simplified(graph)
    assert str(out).splitlines()[1:] == [
        "  y = Exp(x) : float32[3]",
        "  z = Identity(x) : float32[3]",   # x is a graph input: z needs a copy
        "  return y, z"]
    assert_compiled_same(graph)


def test_an_identity_between_two_graph_outputs_stays():
    g = GraphBuilder("g")
    e = g.op("Exp", g.input("x", (3,)), name="e")
    g.output(e, g.op("Identity", e, name="y"))
    graph = g.build()
    assert simplify_algebra(graph) is graph


def test_body_reads_follow_a_removed_identity():
    g = GraphBuilder("g")
    g.input("c", (), "bool")
    x = g.input("x", (3,))
    a = g.op("Identity", g.op("Exp", x, name="e"), name="a")
    graph = g.graph.copy()
    branch = Graph("b", [], ["o"], [Node("Neg", ("a",), ("o",), {}, "neg")])
    branch.types["o"] = a.type
    graph.nodes.append(Node("If", ("c",), ("y",), {"then_branch": branch,
                                                   "else_branch": branch}, "if"))
    graph.outputs = ["y"]
    out = eliminate_dead_nodes(simplify_algebra(graph))
    assert [n.op for n in out.nodes] == ["Exp", "If"]
    assert out.nodes[1].attrs["then_branch"].nodes[0].inputs == ("e",)
    assert branch.nodes[0].inputs == ("a",)  # the original body is untouched
    feeds = {"c": np.array(False), "x": np.array([0, 1, 2], F)}
    assert_same(graph, out, feeds)
