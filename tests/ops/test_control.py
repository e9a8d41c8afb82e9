"""If, Loop, Scan and BatchedScan (dlc/ops/control.py) and their ONNX converters, against
NumPy expectations written here. Bodies run compiled (dlc.compile per input types)."""

import numpy as np
import pytest
from onnx import TensorProto, helper

import dlc
from dlc.graph import GraphBuilder, run_graph
from dlc.ops import control

F = np.float32


def body_graph(name, inputs, build):
    """A body: ``inputs`` are (name, shape, dtype); ``build(g, *syms)`` returns outputs."""
    g = GraphBuilder(name)
    syms = [g.input(n, s, d) for n, s, d in inputs]
    outs = build(g, *syms)
    g.output(*outs)
    return g.build()


def compile_run(g, *feeds):
    return dlc.compile(g.build()).run(*feeds)


# -- If ---------------------------------------------------------------------------------
def if_model():
    """y = If(c, then: x * 2 (shape of x), else: concat(x, z)) reading outer x and z."""
    g = GraphBuilder("if")
    c, x, z = g.input("c", (), "bool"), g.input("x", (3,)), g.input("z", (2,))
    then_b = body_graph("then", [("x", (3,), "float32")], lambda b, x: [x * 2.0])
    else_b = body_graph("else", [("x", (3,), "float32"), ("z", (2,), "float32")],
                        lambda b, x, z: [b.op("Concat", x, z, axis=0)])
    names, (then_b, else_b) = control.capture_outer(then_b, else_b)
    assert names == []   # the bodies take x and z as inputs already
    g.output(g.op("If", c, x, z, then_branch=control.with_inputs(then_b, ["z"]),
                  else_branch=else_b))
    return g


def test_if_picks_a_branch_and_output_shapes_follow():
    model = dlc.compile(if_model().build())
    x, z = np.array([1, 2, 3], F), np.array([7, 8], F)
    np.testing.assert_array_equal(model.run(np.array(True), x, z)[0], [2, 4, 6])
    np.testing.assert_array_equal(model.run(np.array(False), x, z)[0], [1, 2, 3, 7, 8])


def test_if_with_constant_condition_folds_and_interpreter_agrees():
    g = if_model()
    graph = g.build()
    x, z = np.array([1, 2, 3], F), np.array([7, 8], F)
    for cond in (True, False):
        want = [2, 4, 6] if cond else [1, 2, 3, 7, 8]
        got = run_graph(graph, {"c": np.array(cond), "x": x, "z": z})[0]
        np.testing.assert_array_equal(got, want)


def test_folding_a_constant_if_runs_bodies_with_references_not_the_compiler():
    """Graph passes fold with NumPy references; only the compiler sets ctx.run_body (no
    global installed by importing dlc.compiler, no import cycle)."""
    import subprocess
    import sys

    code = ("import numpy as np, sys; from dlc.graph import GraphBuilder; "
            "from dlc.graph.passes.infer_types import infer_types; "
            "b = GraphBuilder('t'); x = b.constant(np.array([1., 2.], 'float32')); "
            "c = b.constant(np.array(True)); "
            "then = GraphBuilder('then'); then.output(then.op('Relu', then.input('x', (2,)))); "
            "other = GraphBuilder('else'); other.output(other.op('Neg', other.input('x', (2,)))); "
            "b.output(b.op('If', c, x, then_branch=then.build(), else_branch=other.build())); "
            "g = infer_types(b.build()); print(g.constants[g.outputs[0]].tolist(), "
            "'dlc.compiler.model' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["[1.0,", "2.0]", "False"], out.stderr


def test_capture_outer_rewrites_free_names():
    body = body_graph("b", [("a", (2,), "float32")], lambda b, a: [a])
    body.nodes = []
    body.outputs = ["outer_t"]
    names, (captured,) = control.capture_outer(body)
    assert names == ["outer_t"] and captured.inputs == ["a", "outer_t"]


# -- Loop -------------------------------------------------------------------------------
def loop_body(carry_shape=(2,)):
    """(i, cond, acc) -> (acc_sum < limit, acc + step * (i + 1), acc) with step, limit outer."""
    def build(b, i, cond, acc, step, limit):
        fi = b.op("Cast", i, to="float32")
        new = acc + step * b.op("Add", fi, b.constant(np.array(1, F)))
        total = b.op("ReduceSum", new, b.constant(np.array([0], np.int64)), keepdims=0)
        return [b.op("Less", total, limit), new, acc]
    return body_graph("loop_body", [("i", (), "int64"), ("cond", (), "bool"),
                                    ("acc", carry_shape, "float32"), ("step", (2,), "float32"),
                                    ("limit", (), "float32")], build)


def loop_expect(m, cond, acc, step, limit):
    """cond None: no condition input (the body's condition is then ignored)."""
    scans, i, going = [], 0, True if cond is None else cond
    while (m is None or i < m) and going:
        new = acc + step * (i + 1)
        scans.append(acc)
        acc = new
        if cond is not None:
            going = new.sum() < limit
        i += 1
    return acc, np.array(scans, F).reshape(len(scans), *acc.shape)


@pytest.mark.parametrize("trips, cond", [(5, True), (None, True), (3, None), (0, True),
                                         (10, False)])
def test_loop_trip_count_and_condition(trips, cond):
    g = GraphBuilder("loop")
    m = g.input("m", (), "int64") if trips is not None else None
    c = g.input("c", (), "bool") if cond is not None else None
    acc, step, limit = g.input("acc", (2,)), g.input("step", (2,)), g.input("limit", ())
    final, scan = g.op("Loop", m, c, acc, step, limit, body=loop_body(), num_captured=2,
                       outputs=["final", "scan"])
    g.output(final, scan)
    feeds = [np.array(v, dtype) for v, dtype in ((trips, np.int64), (cond, bool))
             if v is not None]
    acc0, step0, limit0 = np.array([1, 2], F), np.array([0.5, 1], F), np.array(20, F)
    got = compile_run(g, *feeds, acc0, step0, limit0)
    want = loop_expect(trips, cond, acc0, step0, limit0)
    np.testing.assert_allclose(got[0], want[0])
    assert got[1].shape == want[1].shape
    np.testing.assert_allclose(got[1], want[1])


def test_loop_carried_value_may_grow():
    body = body_graph("grow", [("i", (), "int64"), ("c", (), "bool"), ("v", (1,), "float32")],
                      lambda b, i, c, v: [c, b.op("Concat", v, v * 2.0, axis=0)])
    g = GraphBuilder("grow")
    m, v = g.input("m", (), "int64"), g.input("v", (1,))
    g.output(g.op("Loop", m, None, v, body=body))
    got = compile_run(g, np.array(3, np.int64), np.array([1], F))[0]
    np.testing.assert_array_equal(got, [1, 2, 2, 4, 2, 4, 4, 8])


def test_loop_bodies_are_compiled_once_per_input_types():
    body = loop_body()
    g = GraphBuilder("loop")
    m = g.input("m", (), "int64")
    acc, step, limit = g.input("acc", (2,)), g.input("step", (2,)), g.input("limit", ())
    g.output(*g.op("Loop", m, None, acc, step, limit, body=body, num_captured=2,
                   outputs=["f", "s"]))
    model = dlc.compile(g.build())
    for trips in (4, 6):
        model.run(np.array(trips, np.int64), np.zeros(2, F), np.ones(2, F), np.array(1, F))
    from dlc.compiler import bodies

    entries = [models for (key, (ref, models)) in bodies._CACHE.items() if key[0] == id(body)]
    assert len(entries) == 1 and len(entries[0]) == 1
    assert all(hasattr(c, "run") for c in entries[0].values())


# -- Scan -------------------------------------------------------------------------------
def scan_body():
    """(sum, x_t, w) -> (sum + x_t * w, sum + x_t * w, x_t)."""
    def build(b, s, x, w):
        new = s + x * w
        return [new, b.op("Identity", new), b.op("Identity", x)]
    return body_graph("scan_body", [("s", (3,), "float32"), ("x", (3,), "float32"),
                                    ("w", (3,), "float32")], build)


@pytest.mark.parametrize("in_axis, in_dir, out_axes, out_dirs", [
    (0, 0, [0, 0], [0, 0]), (1, 1, [1, -1], [1, 0])])
def test_scan_axes_and_directions(in_axis, in_dir, out_axes, out_dirs):
    xs = np.arange(12, dtype=F).reshape(4, 3)
    if in_axis == 1:
        xs = xs.T.copy()
    g = GraphBuilder("scan")
    s0, x, w = g.input("s0", (3,)), g.input("x", xs.shape), g.input("w", (3,))
    outs = g.op("Scan", s0, x, w, body=scan_body(), num_scan_inputs=1, num_captured=1,
                scan_input_axes=[in_axis], scan_input_directions=[in_dir],
                scan_output_axes=out_axes, scan_output_directions=out_dirs,
                outputs=["final", "sums", "elems"])
    g.output(*outs)
    wv = np.array([1, 2, 3], F)
    got = compile_run(g, np.zeros(3, F), xs, wv)
    seq = np.moveaxis(xs, in_axis, 0)
    seq = seq[::-1] if in_dir else seq
    sums = np.cumsum(seq * wv, axis=0)
    elems = seq.copy()
    np.testing.assert_allclose(got[0], sums[-1])
    for k, (want, ax, rev) in enumerate(zip((sums, elems), out_axes, out_dirs)):
        want = want[::-1] if rev else want
        np.testing.assert_allclose(got[1 + k], np.moveaxis(want, 0, ax % 2), err_msg=str(k))


def test_scan_of_scalars_and_empty_scan():
    body = body_graph("b", [("s", (), "float32"), ("x", (), "float32")],
                      lambda b, s, x: [s + x, b.op("Identity", s + x)])
    g = GraphBuilder("scan")
    s0, x = g.input("s0", ()), g.input("x", (5,))
    g.output(*g.op("Scan", s0, x, body=body, num_scan_inputs=1, outputs=["y", "z"]))
    y, z = compile_run(g, np.array(1, F), np.arange(5, dtype=F))
    assert y == 11 and z.tolist() == [1, 2, 4, 7, 11]
    g = GraphBuilder("empty")
    s0, x = g.input("s0", ()), g.input("x", (0,))
    g.output(*g.op("Scan", s0, x, body=body, num_scan_inputs=1, outputs=["y", "z"]))
    y, z = compile_run(g, np.array(1, F), np.zeros(0, F))
    assert y == 1 and z.shape == (0,) and z.dtype == F


def test_batched_scan_with_sequence_lens():
    body = body_graph("b", [("s", (2,), "float32"), ("x", (2,), "float32")],
                      lambda b, s, x: [s + x, b.op("Identity", s + x)])
    g = GraphBuilder("scan8")
    lens, s0, x = g.input("l", (3,), "int64"), g.input("s0", (3, 2)), g.input("x", (3, 4, 2))
    g.output(*g.op("BatchedScan", lens, s0, x, body=body, num_scan_inputs=1,
                   directions=[1], outputs=["y", "z"]))
    xs = np.arange(24, dtype=F).reshape(3, 4, 2)
    y, z = compile_run(g, np.array([4, 2, 0], np.int64), np.ones((3, 2), F), xs)
    for b, n in enumerate([4, 2, 0]):
        part = 1 + np.cumsum(xs[b, :n][::-1], axis=0)
        np.testing.assert_allclose(z[b, :n], part)
        np.testing.assert_allclose(z[b, n:], 0)
        np.testing.assert_allclose(y[b], part[-1] if n else 1)


# -- errors -----------------------------------------------------------------------------
def test_must_fail():
    one = body_graph("one", [], lambda b: [b.constant(np.ones(1, F))])
    two = body_graph("two", [], lambda b: [b.constant(np.ones(1, F)), b.constant(np.ones(1, F))])
    g = GraphBuilder("bad")
    c = g.input("c", (), "bool")
    with pytest.raises(dlc.ModelError, match="then_branch has 1 outputs"):
        g.op("If", c, then_branch=one, else_branch=two)
    with pytest.raises(dlc.ModelError, match="cond must be bool"):
        g.op("If", g.input("ci", (), "int32"), then_branch=one, else_branch=one)
    with pytest.raises(dlc.ModelError, match="takes 0 inputs but the node passes 1"):
        g.op("If", c, g.input("x", (1,)), then_branch=one, else_branch=one)
    with pytest.raises(dlc.ModelError, match="the body takes 0 inputs"):
        g.op("Loop", g.input("m", (), "int64"), None, body=one)
    with pytest.raises(dlc.ModelError, match="different lengths"):
        g.op("Scan", g.input("s0", (3,)), g.input("a", (3, 3)), g.input("b", (4, 3)),
             body=scan_body(), num_scan_inputs=2)
    with pytest.raises(dlc.ModelError, match="scan_input_axes has 2 entries"):
        g.op("Scan", g.input("s", (3,)), g.input("xx", (4, 3)), g.input("w", (3,)),
             body=scan_body(), num_scan_inputs=1, num_captured=1, scan_input_axes=[0, 1])


def test_body_reading_an_unknown_tensor():
    body = body_graph("b", [], lambda b: [b.constant(np.ones(1, F))])
    body.outputs = ["nowhere"]
    g = GraphBuilder("bad")
    g.output(g.op("If", g.input("c", (), "bool"), then_branch=body, else_branch=body))
    with pytest.raises(dlc.ModelError, match="'nowhere' is not defined"):
        g.build()   # the verifier
    model = dlc.compile(g.graph)
    with pytest.raises(dlc.ModelError, match="reads 'nowhere'"):
        model.run(np.array(True))


# -- ONNX -------------------------------------------------------------------------------
def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def test_onnx_if_and_loop_read_outer_tensors():
    then_g = helper.make_graph([helper.make_node("Add", ["x", "x"], ["t"])], "then", [],
                              [vi("t", TensorProto.FLOAT, [2])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [],
                               [vi("e", TensorProto.FLOAT, [2])])
    body = helper.make_graph(
        [helper.make_node("Mul", ["v_in", "x"], ["v_out"]),
         helper.make_node("Identity", ["c_in"], ["c_out"]),
         helper.make_node("If", ["c_in"], ["s"], then_branch=then_g, else_branch=else_g)],
        "body", [vi("i", TensorProto.INT64, []), vi("c_in", TensorProto.BOOL, []),
                 vi("v_in", TensorProto.FLOAT, [2])],
        [vi("c_out", TensorProto.BOOL, []), vi("v_out", TensorProto.FLOAT, [2]),
         vi("s", TensorProto.FLOAT, [2])])
    node = helper.make_node("Loop", ["m", "c", "v"], ["v_final", "scan"], body=body)
    graph = helper.make_graph([node], "g", [vi("m", TensorProto.INT64, []),
                                            vi("c", TensorProto.BOOL, []),
                                            vi("v", TensorProto.FLOAT, [2]),
                                            vi("x", TensorProto.FLOAT, [2])],
                              [vi("v_final", TensorProto.FLOAT, [2]),
                               vi("scan", TensorProto.FLOAT, [3, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    x = np.array([2, 3], F)
    v, scan = dlc.compile(model).run(np.array(3, np.int64), np.array(True), np.ones(2, F), x)
    np.testing.assert_array_equal(v, x ** 3)
    np.testing.assert_array_equal(scan, np.stack([x + x] * 3))


def test_onnx_scan8_and_scan9():
    body = helper.make_graph([helper.make_node("Add", ["s", "x"], ["s2"]),
                              helper.make_node("Mul", ["s2", "k"], ["o"])],
                             "body", [vi("s", TensorProto.FLOAT, [2]),
                                      vi("x", TensorProto.FLOAT, [2])],
                             [vi("s2", TensorProto.FLOAT, [2]), vi("o", TensorProto.FLOAT, [2])])
    xs = np.arange(6, dtype=F).reshape(3, 2)
    k = np.array([1, -1], F)
    sums = np.cumsum(xs, axis=0)
    for opset, inputs, x_shape, s_shape in [(8, ["", "s0", "xs"], [1, 3, 2], [1, 2]),
                                            (9, ["s0", "xs"], [3, 2], [2])]:
        node = helper.make_node("Scan", inputs, ["y", "z"], body=body, num_scan_inputs=1)
        graph = helper.make_graph([node], "g", [vi("s0", TensorProto.FLOAT, s_shape),
                                                vi("xs", TensorProto.FLOAT, x_shape),
                                                vi("k", TensorProto.FLOAT, [2])],
                                  [vi("y", TensorProto.FLOAT, None),
                                   vi("z", TensorProto.FLOAT, None)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        y, z = dlc.compile(model).run(np.zeros(s_shape, F), xs.reshape(x_shape), k)
        np.testing.assert_array_equal(y.reshape(2), sums[-1])
        np.testing.assert_array_equal(z.reshape(3, 2), sums * k)


def test_loop_body_adding_to_the_iteration_number():
    body = body_graph("b", [("i", (), "int64"), ("c", (), "bool"), ("v", (), "int64")],
                      lambda b, i, c, v: [c, v + i])
    g = GraphBuilder("sum")
    g.output(g.op("Loop", g.input("m", (), "int64"), None, g.input("v", (), "int64"),
                  body=body))
    assert compile_run(g, np.array(4, np.int64), np.array(0, np.int64))[0] == 6


def test_uncaptured_outer_tensors_come_from_the_enclosing_environment():
    g = GraphBuilder("outer")
    c = g.input("c", (), "bool")
    g.input("x", (2,))
    body = body_graph("b", [], lambda b: [b.constant(np.zeros(2, F))])
    body.nodes, body.outputs = [], ["x"]    # reads the outer x by name
    g.output(g.op("If", c, then_branch=body, else_branch=body, outputs=["y"]))
    graph = g.build()
    feeds = {"c": np.array(True), "x": np.array([1, 2], F)}
    np.testing.assert_array_equal(run_graph(graph, feeds)[0], [1, 2])
    np.testing.assert_array_equal(dlc.compile(graph).run(feeds)[0], [1, 2])


def test_body_tables_used_from_several_threads():
    """Models with control flow may run in several threads: the per-body tables are swept
    of dead bodies and added to by one thread at a time (else: 'dictionary changed size
    during iteration', or a KeyError when two threads delete one dead entry)."""
    from helpers import race

    from dlc.graph.ir import Graph

    table: dict = {}
    errors: list = []

    def work(_):
        try:
            for _ in range(20000):  # each graph dies at once, leaving a dead entry
                control._per_body(table, Graph("body", [], [], [], {}))
        except Exception as err:  # noqa: BLE001 - collected for the assertion
            errors.append(f"{type(err).__name__}: {err}")

    race(work, 4)
    assert errors == []
