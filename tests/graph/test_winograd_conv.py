"""winograd_conv (dlc/graph/passes/winograd_conv.py): golden before/after text, which
convolutions qualify, results against the direct convolution (interpreted and compiled),
the pass in the pipeline (ResNet-style blocks compiled end to end), and the Winograd
kernels' knobs applied through a tuning log."""

import numpy as np
import pytest
from graph_util import check_well_formed, docstring_example, rand

import dlc
from dlc.graph import GraphBuilder, run_graph
from dlc.graph.passes import winograd_conv as module
from dlc.graph.passes.winograd_conv import MIN_CHANNELS, winograd_conv

WINOGRAD_OPS = ["WinogradInputNCHWc", "WinogradGemmNCHWc", "WinogradOutputNCHWc"]


def blocked_conv(size=16, channels=32, block=32, out_channels=None, relu=True, **attrs):
    out_channels = out_channels or channels
    g = GraphBuilder("g")
    x = g.input("x", (1, channels // block, size, size, block))
    w = g.constant(rand((out_channels // block, channels // block, 3, 3, block, block),
                        seed=1), "w")
    b = g.constant(rand((1, out_channels // block, 1, 1, block), seed=2), "b")
    attrs = {"pads": [1, 1, 1, 1], "strides": [1, 1], "dilations": [1, 1], **attrs}
    c = g.op("Conv2dNCHWc", x, w, b, name="c", outputs=["c"], **attrs)
    g.output(g.op("Relu", c, name="y", outputs=["y"]) if relu else c)
    return g.build()


def test_docstring_example():
    before, after = docstring_example(module)
    graph = blocked_conv()
    assert str(graph) == before
    out = winograd_conv(graph)
    assert str(out) == after
    check_well_formed(out)
    x = rand((1, 1, 16, 16, 32), seed=3)
    want = run_graph(graph, {"x": x})[0]
    np.testing.assert_allclose(run_graph(out, {"x": x})[0], want, rtol=0, atol=1e-4)


@pytest.mark.parametrize("changes", [
    {"strides": [2, 2]},
    {"dilations": [2, 2], "pads": [2, 2, 2, 2]},
    {"size": 6},                                    # 4 tiles of 4x4, 9 of 2x2
    {"channels": 16, "block": 16},                  # too few channels
    {"out_layout": "NCHW"},
])
def test_what_stays_direct(changes):
    graph = blocked_conv(**changes)
    assert winograd_conv(graph) is graph


def test_runtime_weights_stay_direct():
    g = GraphBuilder("g")
    x = g.input("x", (1, 1, 16, 16, 32))
    w = g.input("w", (1, 1, 3, 3, 32, 32))
    g.output(g.op("Conv2dNCHWc", x, w, pads=[1, 1, 1, 1], strides=[1, 1], dilations=[1, 1]))
    graph = g.build()
    assert winograd_conv(graph) is graph


@pytest.mark.parametrize("size,channels,out_channels,pads,tile", [
    (16, 32, 32, [1, 1, 1, 1], 4),
    (15, 64, 32, [0, 1, 2, 1], 4),    # 16x15 output: a partial tile column
    (18, 32, 64, [0, 0, 0, 0], 4),
    (7, 64, 64, [1, 1, 1, 1], 2),     # 4 tiles of 4x4, 16 of 2x2
])
def test_compiled_results_match_the_direct_convolution(size, channels, out_channels, pads,
                                                       tile):
    graph = blocked_conv(size, channels, 32, out_channels, pads=pads)
    out = winograd_conv(graph)
    assert [n.op for n in out.nodes] == WINOGRAD_OPS + ["Relu"]
    assert {n.attrs.get("tile", tile) for n in out.nodes} == {tile}
    x = rand((1, channels // 32, size, size, 32), seed=4)
    want = run_graph(graph, {"x": x})[0]
    tol = 2e-5 * channels
    np.testing.assert_allclose(run_graph(out, {"x": x})[0], want, rtol=0, atol=tol)
    np.testing.assert_allclose(dlc.compile(graph).run(x)[0], want, rtol=0, atol=tol)


def resnet_block(size=16, channels=64):
    """Conv-Relu-Conv + skip, Relu (ONNX ops), the ResNet basic block."""
    rng = np.random.default_rng(5)
    g = GraphBuilder("block")
    x = g.input("x", (1, channels, size, size))
    y = x
    for k in range(2):
        w = g.constant((rng.standard_normal((channels, channels, 3, 3)) * 0.05)
                       .astype(np.float32))
        b = g.constant(rng.standard_normal(channels).astype(np.float32))
        y = g.op("Conv", y, w, b, pads=[1, 1, 1, 1])
        y = g.op("Relu", y if k == 0 else g.op("Add", y, x))
    g.output(g.op("Relu", g.op("Conv", y, w, pads=[1, 1, 1, 1])))
    return g.build()


def test_pipeline_uses_winograd_and_matches_the_interpreter():
    graph = resnet_block()
    compiled = dlc.compile(graph)
    names = " ".join(k.name for k in compiled.kernels)
    # the first convolution reads the plain input, the last writes the plain output: they
    # stay direct; the middle one, blocked on both sides, is Winograd, its residual fused
    assert names.count("winograd_input") == 1 and names.count("winograd_products") == 1
    assert "winogradoutputnchwc_add_relu" in names
    x = rand((1, 64, 16, 16), seed=6)
    want = run_graph(graph, {"x": x})[0]
    np.testing.assert_allclose(compiled.run(x)[0], want, rtol=1e-4,
                               atol=1e-4 * np.abs(want).max())
    direct = dlc.compile(graph, opt_level=2)   # no layout passes: no Winograd
    assert "winograd" not in " ".join(k.name for k in direct.kernels)


@pytest.mark.tune
def test_knobs_apply_through_a_log(tmp_path):
    """Non-default configurations of the three Winograd templates, written to a log and
    compiled with it, give the default's outputs."""
    from dlc.autotune.log import LogWriter, make_record
    from dlc.autotune.task import extract_tasks
    from dlc.target import Target
    from dlc.tir.canonical import canonical_text

    graph = resnet_block(size=14, channels=MIN_CHANNELS * 2)
    target = Target("llvm")
    tasks = [t for t in extract_tasks(graph, target) if t.template.startswith("winograd")]
    assert {t.template for t in tasks} == {"winograd_input", "winograd_gemm",
                                           "winograd_output"}
    changes = {"tile_columns": 3, "parallel_tiles": True, "rows_outside_channels": True}
    log = tmp_path / "wino.jsonl"
    with LogWriter(log) as writer:
        for task in tasks:
            space = task.space(target)
            config = dict(space.default(), **{k: v for k, v in changes.items()
                                               if k in space.knobs})
            func, trace = task.lower(config, target)
            if config != space.default():
                assert canonical_text(func) != canonical_text(task.lower(None, target)[0])
            writer.append(make_record(task.key, task.workload, task.template, target, 1,
                                      config, trace, [1e-6], None, 0))
    x = rand((1, 64, 14, 14), seed=7)
    with pytest.warns(dlc.DlcWarning, match="no tuning record"):
        tuned = dlc.compile(graph, tuning_log=log)
    assert sum(k.tuned for k in tuned.kernels) >= len(tasks)
    np.testing.assert_allclose(tuned.run(x)[0], dlc.compile(graph).run(x)[0], rtol=1e-5,
                               atol=1e-5)
