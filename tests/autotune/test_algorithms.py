"""Algorithm choices (dlc/autotune/algorithms.py): the eligible convolutions and their
kernels under either algorithm, keys independent of names, the faster measured algorithm
logged and applied by compile (whichever it is), and a resumed run measuring nothing
again."""

import numpy as np
import pytest

import dlc
from dlc.autotune.algorithms import ROUNDS, TEMPLATE, algorithm_key, candidates, decide
from dlc.autotune.log import LogWriter, read_log
from dlc.autotune.measure import MeasureResult
from dlc.graph import GraphBuilder
from dlc.target import Target


def block(name="m", size=14, channels=64):
    """Conv-Relu, Conv + skip, Relu, Conv: the middle convolution is blocked on both
    sides, so it is the one eligible for Winograd."""
    rng = np.random.default_rng(5)
    g = GraphBuilder(name)
    x = g.input("x" + name, (1, channels, size, size))
    y = x
    for k in range(3):
        w = g.constant((rng.standard_normal((channels, channels, 3, 3)) * 0.05)
                       .astype(np.float32))
        y = g.op("Conv", y, w, pads=[1, 1, 1, 1])
        y = g.op("Relu", g.op("Add", y, x) if k == 1 else y)
    g.output(y)
    return g.build()


class _Engine:
    """Fixed times: a kernel of F(4x4, 3x3) (its tensors are named winograd, its tiles
    6x6) takes ``winograd`` seconds, one of F(2x2, 3x3) twice that, any other 1e-4."""

    def __init__(self, winograd):
        self.winograd, self.calls = winograd, 0

    def reference(self, func, inputs, cold=False):
        assert cold  # algorithms are timed with cold caches
        self.calls += 1
        text = str(func)
        seconds = 1e-4
        if "winograd" in text:
            seconds = self.winograd * (1 if "[6, 6," in text else 2)
        return MeasureResult([seconds] * 3, None)

    def close(self):
        pass


def test_candidates_and_keys():
    target = Target("llvm")
    found = candidates([block("a"), block("b")], target)
    assert len(found) == 1   # the same convolution in both models, named differently
    cand = found[0]
    assert cand.rule == "winograd_4x4"
    assert [len(cand.kernels[a]) for a in ("direct", "winograd_4x4", "winograd_2x2")] == \
        [1, 3, 3]
    for algorithm in ("winograd_4x4", "winograd_2x2"):
        assert [t.template for t in cand.kernels[algorithm]] == [
            "winograd_input", "winograd_gemm", "winograd_output"]
    assert cand.kernels["direct"][0].template == "conv2d_nchwc"
    assert cand.workload["template"] == TEMPLATE
    assert candidates([block(size=7)], target)[0].rule == "winograd_2x2"  # 4 or 16 tiles
    assert candidates([block(size=6)], target)[0].rule == "direct"   # 4 or 9 tiles


@pytest.mark.parametrize("winograd_seconds,chosen", [(1e-5, 4), (1e-3, 0)])
def test_the_faster_algorithm_is_logged_and_compiled(tmp_path, winograd_seconds, chosen):
    target = Target("llvm")
    model = block()
    found = candidates([model], target)
    engine = _Engine(winograd_seconds)
    choices, records = decide(found, [], target, 2, engine, 0)
    assert choices == {found[0].key: chosen} and engine.calls == 7 * ROUNDS
    assert sorted(r["config"]["algorithm"] for r in records) == [
        "direct", "winograd_2x2", "winograd_4x4"]
    assert [r["config"]["algorithm"] for r in records if r.get("default")] == [
        "winograd_4x4"]
    log = tmp_path / "alg.jsonl"
    with LogWriter(log) as writer:
        for r in records:
            writer.append(r)
    with pytest.warns(dlc.DlcWarning, match="no tuning record"):
        tuned = dlc.compile(model, tuning_log=log)
    names = " ".join(k.name for k in tuned.kernels)
    assert ("winograd" in names) == bool(chosen)
    x = np.random.default_rng(1).standard_normal((1, 64, 14, 14)).astype(np.float32)
    np.testing.assert_allclose(tuned.run(x)[0], dlc.compile(model).run(x)[0], rtol=1e-4,
                               atol=1e-4)
    # a log that has both algorithms measured is not measured again
    again = _Engine(winograd_seconds)
    choices2, new = decide(found, read_log(log).records, target, 2, again, 0)
    assert choices2 == choices and new == [] and again.calls == 0


def test_a_failing_algorithm_is_recorded_and_not_chosen():
    class Failing(_Engine):
        def reference(self, func, inputs, cold=False):
            if "winograd" in str(func):
                return MeasureResult([], "runtime_crash", "crashed")
            return super().reference(func, inputs, cold)

    target = Target("llvm")
    found = candidates([block()], target)
    choices, records = decide(found, [], target, 2, Failing(1e-6), 0)
    assert choices == {found[0].key: 0}
    failed = [r for r in records if r["error"]]
    assert sorted(r["config"]["algorithm"] for r in failed) == ["winograd_2x2",
                                                                 "winograd_4x4"]
    assert failed[0]["error"]["class"] == "runtime_crash"


def test_key_depends_on_shapes_not_names():
    from dlc.compile import run_graph_passes
    from dlc.graph.passes.infer_types import infer_types

    keys = []
    for model in (block("a"), block("b"), block("c", channels=32)):
        seen = []
        run_graph_passes(infer_types(model), 3, Target("llvm"),
                         lambda g, n, seen=seen: seen.append(algorithm_key(g, n)))
        keys.append(seen)
    assert keys[0] == keys[1] and len(keys[0]) == 1 and keys[2] != keys[0]


@pytest.mark.tune
def test_tune_measures_the_algorithms_first_and_resumes(tmp_path):
    from dlc.autotune.tuner import tune

    model = block()
    log = tmp_path / "t.jsonl"
    tune(model, log, trials=6, threads=1, confirm=False)
    records = read_log(log).records
    algorithms = [r for r in records if r["template"] == TEMPLATE]
    assert len(algorithms) == 3 and records[:3] == algorithms
    tune(model, log, trials=6, threads=1, confirm=False)
    assert len([r for r in read_log(log).records if r["template"] == TEMPLATE]) == 3
