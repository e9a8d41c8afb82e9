"""GRAPH_PIPELINE (dlc/compile.py): the level-1 passes in order, the IR dump after every
pass, and ONNX conformance cases that the passes rewrite giving the same results at
opt_level 0 and 1."""

import os

import numpy as np
import pytest
from graph_util import assert_compiled_same, assert_same, check_well_formed, rand

import dlc
from dlc.compile import GRAPH_PIPELINE, import_model, run_graph_passes
from dlc.frontends.onnx import conformance
from dlc.graph import GraphBuilder
from dlc.graph.passes.infer_types import infer_types

F = np.float32
CLEANUPS = ["fold_constants", "simplify_algebra", "recognize_reductions", "fold_batchnorm",
            "fold_scales", "eliminate_common_subexpressions", "eliminate_dead_nodes"]


def test_level_one_runs_the_cleanups_in_order_before_any_other_level():
    levels = [level for level, _ in GRAPH_PIPELINE]
    first_other = next((k for k, level in enumerate(levels) if level != 1), len(levels))
    assert all(level == 1 for level in levels[:first_other])
    assert all(level != 1 for level in levels[first_other:])
    assert [fn.__name__ for level, fn in GRAPH_PIPELINE if level == 1] == CLEANUPS


def small_model():
    """Conv -> BatchNorm -> Identity -> Mul by 1, plus a dead branch."""
    g = GraphBuilder("small")
    x = g.input("x", (1, 3, 6, 6))
    c = g.op("Conv", x, g.constant(rand((4, 3, 3, 3), seed=1)), pads=[1, 1, 1, 1])
    params = [g.constant(rand((4,), seed=k, low=0.5, high=2)) for k in range(4)]
    y = g.op("Identity", g.op("BatchNormalization", c, *params)) * 1.0
    g.op("Exp", x)
    g.output(g.op("Relu", y, name="y"))
    return g.build()


def test_the_cleanups_leave_one_conv_and_results_do_not_change():
    graph = small_model()
    out = run_graph_passes(graph, opt_level=1)
    assert [n.op for n in out.nodes] == ["Conv", "Relu"]
    assert out.outputs == ["y"] and out.inputs == ["x"]
    check_well_formed(out)
    assert_compiled_same(graph, rtol=1e-5, atol=1e-5)
    assert run_graph_passes(graph, opt_level=0) is graph


def test_dump_ir_writes_every_pass_and_marks_unchanged_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("DLC_DUMP_IR", str(tmp_path))
    run_graph_passes(small_model(), opt_level=1)
    files = sorted(os.listdir(tmp_path))
    assert files == [f"small.graph.{k:02d}.{name}.txt" for k, name in enumerate(CLEANUPS)]
    texts = {f.split(".")[3]: (tmp_path / f).read_text() for f in files}
    for name in ("fold_constants", "recognize_reductions", "fold_scales",
                 "eliminate_common_subexpressions"):
        assert texts[name] == "(unchanged)\n"
    assert "BatchNormalization" not in texts["fold_batchnorm"]
    assert texts["eliminate_dead_nodes"].startswith("graph small(x: float32[1, 3, 6, 6]):")


#: ONNX cases that the level-1 passes rewrite (BN folding, softmax / log-softmax / Gelu
#: recognition, identities, dead constants), and the ONNX test modules that define them.
CASES = ["test_BatchNorm2d_momentum_eval", "test_softmax_axis_1_expanded_ver18",
         "test_logsoftmax_axis_1_expanded", "test_gelu_default_1_expanded",
         "test_layer_normalization_3d_axis_negative_1_epsilon_expanded",
         "test_rms_normalization_2d_axis1_expanded"]
MODULES = ["softmax", "logsoftmax", "gelu", "layernormalization", "rmsnormalization"]


def load_cases() -> dict:
    """The CASES, importing only the ONNX test modules needed (collecting every node case
    takes many seconds); importing a module registers its cases with ONNX's collector."""
    import importlib
    import warnings

    import onnx.backend.test.case.node as node_cases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for name in MODULES:
            importlib.import_module(f"onnx.backend.test.case.node.{name}")
    found = {c.name: c for c in conformance.data_cases() if c.name in CASES}
    for c in node_cases._NodeTestCases:
        if c.name in CASES:
            data = [([conformance._array(a) for a in i], [conformance._array(a) for a in o])
                    for i, o in c.data_sets]
            found[c.name] = conformance.Case(c.name, "node", model=c.model, data_sets=data,
                                             rtol=c.rtol, atol=c.atol)
    return found


_CASES = load_cases()


@pytest.mark.parametrize("name", CASES)
def test_conformance_cases_agree_at_opt_levels_0_and_1(name):
    case = _CASES[name]
    model = case.load()
    graph = infer_types(import_model(model))
    assert run_graph_passes(graph, opt_level=1) is not graph  # the passes do something
    for inputs, outputs in case.data_sets:
        results = [dlc.compile(model, opt_level=level).run(*inputs) for level in (0, 1)]
        for got in results:
            conformance.assert_similar(outputs, got, case.rtol, case.atol)
        for a, b in zip(*results):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def random_graph(seed: int):
    """A random chain of ops the cleanups rewrite (identities, copies, transposes, BN,
    scales, biases, softmax), with some tensors read twice and some as graph outputs."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder("random")
    live = [g.input("x", (2, 4, 3, 3))]

    def channel(t, low=-1.0, high=1.0):
        shape = [1] * len(t.shape)
        shape[1] = t.shape[1]
        return rand(tuple(shape), seed=int(rng.integers(100)), low=low, high=high)

    steps = [
        lambda t: g.op("Identity", t),
        lambda t: g.op("Cast", t, to="float32"),
        lambda t: t + rng.choice([F(0), F(-0.0), F(1.5)]),
        lambda t: t * rng.choice([F(1), F(2)]),
        lambda t: g.op("Transpose", t, perm=[int(p) for p in rng.permutation(len(t.shape))]),
        lambda t: g.op("Reshape", t, g.constant(np.array([t.shape[0], -1]))),
        lambda t: g.op("Flatten", t, axis=int(rng.integers(0, len(t.shape) + 1))),
        lambda t: g.op("Unsqueeze", t, g.constant(np.array([0]))),
        lambda t: g.op("Conv", t, g.constant(rand((4, t.shape[1], 1, 1), seed=seed))),
        lambda t: g.op("BatchNormalization", t, *[g.constant(channel(t, 0.5, 2).reshape(-1))
                                                  for _ in range(4)]),
        lambda t: g.op("MatMul", t, g.constant(rand((t.shape[-1], 5), seed=seed))),
        lambda t: t * channel(t, 0.5, 2),
        lambda t: t + channel(t),
        lambda t: g.op("Relu", t),
        lambda t: g.op("Div", *(lambda e, ax: (e, g.op("ReduceSum", e, ax)))(
            g.op("Exp", g.op("Sub", t, g.op("ReduceMax", t, g.constant(
                np.array([len(t.shape) - 1]))))), g.constant(np.array([len(t.shape) - 1])))),
    ]
    for _ in range(int(rng.integers(3, 10))):
        t = live[int(rng.integers(len(live)))] if rng.random() < 0.4 else live[-1]
        try:
            live.append(steps[int(rng.integers(len(steps)))](t))
        except dlc.ModelError:
            continue    # the op does not apply to this shape
        if rng.random() < 0.15:
            g.output(live[-1])
    if live[-1].name not in g.graph.outputs:
        g.output(live[-1])
    return g.build()


@pytest.mark.parametrize("seed", range(40))
def test_random_graphs_keep_their_results_and_interface(seed):
    graph = random_graph(seed)
    out = run_graph_passes(graph, opt_level=1)
    check_well_formed(out)
    assert out.inputs == graph.inputs and out.outputs == graph.outputs
    assert_same(graph, out, rtol=1e-4, atol=1e-5)
