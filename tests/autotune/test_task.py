"""Tasks: identity by canonical computation, extraction from models, lowering by config."""

import numpy as np
import pytest

from dlc.autotune.task import extract_tasks
from dlc.compiler.kernels import lower_graph
from dlc.errors import ScheduleError
from dlc.graph import GraphBuilder
from dlc.tir.canonical import canonical_text


def conv_model(name, relu_names=("r",)):
    b = GraphBuilder(name)
    x = b.input("x" + name, (1, 16, 12, 12))
    w = b.constant(np.random.default_rng(0).random((16, 16, 3, 3), np.float32))
    y = b.op("Relu", b.op("Conv", x, w, pads=[1, 1, 1, 1]))
    b.output(b.op("Conv", y, w, pads=[1, 1, 1, 1]))
    return b.build()


def test_fused_bodies_that_differ_make_different_tasks():
    b = GraphBuilder("m")
    x = b.input("x", (4, 100))
    b.output(b.op("Exp", b.op("Relu", x)), b.op("Exp", b.op("Abs", x)))
    tasks = extract_tasks(b.build())
    assert [t.workload["attrs"]["ops"] for t in tasks] == [["Relu", "Exp"], ["Abs", "Exp"]]
    assert tasks[0].key != tasks[1].key


def test_same_computation_under_other_names_is_one_task_counted_per_occurrence():
    tasks = extract_tasks([conv_model("a"), conv_model("b")])
    keys = {t.key for t in tasks}
    assert len(keys) == len(tasks)
    by_models = {tuple(sorted(t.models.items())) for t in tasks}
    assert by_models == {(("a", 1), ("b", 1))}
    assert all(t.weight == 2 for t in tasks)
    assert all(t.flops > 0 for t in tasks if t.template == "conv2d_nchwc")


def test_default_configuration_lowers_to_the_compiled_kernel():
    from dlc.compile import run_graph_passes
    from dlc.graph.passes.infer_types import infer_types

    graph = run_graph_passes(infer_types(conv_model("a")))
    kernels = lower_graph(graph)
    tasks = extract_tasks(conv_model("a"))
    assert len(tasks) == len(kernels)
    for task, kernel in zip(tasks, kernels):
        func, trace = task.lower()
        assert canonical_text(func) == canonical_text(kernel.func)
        assert trace["primitives"]


def test_a_configuration_changes_the_schedule_and_is_checked():
    task = next(t for t in extract_tasks(conv_model("a")) if t.template == "conv2d_nchwc")
    space = task.space()
    assert len(space) > 1 and "tile_columns" in space.knobs
    default = canonical_text(task.lower()[0])
    other = dict(space.default(), tile_columns=3)
    assert canonical_text(task.lower(other)[0]) != default
    with pytest.raises(ScheduleError, match="is not one of"):
        task.lower(dict(space.default(), tile_columns=999))
    with pytest.raises(ScheduleError, match="unknown knob"):
        task.lower(dict(space.default(), no_such_knob=1))


def test_inputs_use_the_model_constants_and_seeded_random_data():
    task = next(t for t in extract_tasks(conv_model("a")) if t.template == "conv2d_nchwc")
    specs = task.param_specs()
    assert [s["output"] for s in specs].count(True) == 1
    a, b = task.inputs(seed=1), task.inputs(seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    weights = [s["name"] for s in specs if s["name"] in task.graph.constants]
    assert weights


def test_every_configuration_of_each_template_lowers():
    """Knob choices depend on the workload only, never on another knob: any configuration
    drawn from a space lowers (a template whose choices moved with another knob's value
    rejected most of its own space)."""
    import random

    b = GraphBuilder("m")
    x = b.input("x", (1, 16, 12, 12))
    w = b.constant(np.random.default_rng(0).random((16, 16, 3, 3), np.float32))
    y = b.op("Conv", x, w, pads=[1, 1, 1, 1])
    flat = b.op("Reshape", y, b.constant(np.array([48, 48], np.int64)))
    dense = b.op("MatMul", flat, b.constant(np.ones((48, 40), np.float32)))
    b.output(b.op("Softmax", b.op("MatMul", flat, b.op("Transpose", flat)), axis=-1), dense)
    tasks = extract_tasks(b.build())
    templates = {t.template for t in tasks}
    assert {"conv2d_nchwc", "dense", "matmul", "reduction"} <= templates
    rng = random.Random(0)
    for task in tasks:
        space = task.space()
        for _ in range(min(len(space), 12)):
            task.lower(space.sample(rng))


def test_inputs_keep_scalar_parameters_scalar():
    """A 0-d constant (Clip's bounds) or a 0-d input stays 0-d in the measured inputs."""
    b = GraphBuilder("m")
    x = b.input("x", (4, 8))
    s = b.input("s", ())
    b.output(b.op("Mul", b.op("Clip", x, b.constant(np.float32(0)), b.constant(np.float32(6))),
                  s))
    for task in extract_tasks(b.build(), opt_level=0):
        specs = [sp for sp in task.param_specs() if not sp["output"]]
        assert [a.shape for a in task.inputs()] == [tuple(sp["shape"]) for sp in specs]


def test_rows_outside_channels_computes_the_same_convolutions(tmp_path):
    """The conv templates' loop-order knob and their in-place border reads (no padded
    copy), applied through a tuning log to a convolution with a fused Relu and a depthwise
    convolution, give the default's outputs."""
    import dlc
    from dlc.autotune.log import LogWriter, make_record
    from dlc.target import Target

    b = GraphBuilder("m")
    x = b.input("x", (1, 48, 10, 10))
    rng = np.random.default_rng(1)
    w = b.constant(rng.standard_normal((48, 48, 3, 3)).astype(np.float32))
    dw = b.constant(rng.standard_normal((48, 1, 3, 3)).astype(np.float32))
    y = b.op("Relu", b.op("Conv", x, w, pads=[1, 1, 1, 1]))
    y = b.op("Conv", y, dw, pads=[1, 1, 1, 1], group=48)
    b.output(b.op("AveragePool", y, kernel_shape=[2, 2], strides=[2, 2]))
    model = b.build()
    target = Target("llvm")
    tasks = [t for t in extract_tasks(model, target)
             if "rows_outside_channels" in t.space(target).knobs]
    assert len(tasks) >= 2
    assert sum("read_borders_in_place" in t.space(target).knobs for t in tasks) >= 2
    log = tmp_path / "rows.jsonl"
    with LogWriter(log) as writer:
        for task in tasks:
            knobs = task.space(target).knobs
            config = dict(task.space(target).default(), rows_outside_channels=True)
            if "read_borders_in_place" in knobs:
                config["read_borders_in_place"] = True
            func, trace = task.lower(config, target)
            assert canonical_text(func) != canonical_text(task.lower(None, target)[0])
            writer.append(make_record(task.key, task.workload, task.template, target, 1,
                                      config, trace, [1e-6], None, 0))
    data = rng.standard_normal((1, 48, 10, 10)).astype(np.float32)
    with pytest.warns(dlc.DlcWarning, match="no tuning record"):  # the pool's kernel
        tuned = dlc.compile(model, tuning_log=log)
    assert sum(k.tuned for k in tuned.kernels) == len(tasks)
    np.testing.assert_allclose(tuned.run(data)[0], dlc.compile(model).run(data)[0],
                               rtol=1e-5, atol=1e-5)
