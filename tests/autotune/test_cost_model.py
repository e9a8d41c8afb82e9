"""The LightGBM cost model: learns a ranking, deterministic, honest when untrained."""

import subprocess
import sys

import numpy as np
import pytest

from dlc.autotune.cost_model import (
    CostModel,
    TrainingSet,
    pairwise_accuracy,
    record_throughput,
)
from dlc.autotune.features import FEATURE_VERSION, N_FEATURES
from dlc.errors import ArgumentError


def synthetic(n, seed, tasks=4):
    """Rows of ``tasks`` tasks whose throughput is a non-linear function of the features
    times a task scale (tasks differ by orders of magnitude; some candidates fail)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, (n, 6))
    quality = np.exp(-4 * (X[:, 0] - 0.7) ** 2 - 3 * (X[:, 1] - 0.3) ** 2) \
        * (1 + (X[:, 2] > 0.5)) / (1 + X[:, 3])
    groups = rng.integers(0, tasks, n)
    y = quality * 10.0 ** groups
    y[X[:, 4] > 0.95] = 0.0  # failed candidates
    return X, y, np.array([f"task{g}" for g in groups])


@pytest.mark.parametrize("objective", ["rank", "regression"])
def test_learns_a_ranking_held_out(objective):
    X, y, g = synthetic(400, seed=0)
    Xt, yt, gt = synthetic(200, seed=1)
    model = CostModel(objective=objective, seed=0)
    assert model.fit(X, y, g) and model.trained
    acc = model.pairwise_accuracy(Xt, yt, gt)
    assert acc > 0.8, acc
    # scores of the rows it never saw rank the failures low
    scores = model.predict(Xt)
    failed = yt == 0
    assert scores[failed].mean() < scores[~failed].mean()


def test_deterministic_for_a_seed():
    X, y, g = synthetic(300, seed=2)
    Xt = synthetic(50, seed=3)[0]
    a, b = CostModel(seed=7), CostModel(seed=7)
    a.fit(X, y, g)
    b.fit(X, y, g)
    np.testing.assert_array_equal(a.predict(Xt), b.predict(Xt))


def test_untrained_with_too_little_data():
    model = CostModel()
    X, y, g = synthetic(10, seed=4)
    assert not model.fit(X, y, g)
    assert not model.fit([], [], [])  # no rows at all (every configuration failed to lower)
    assert model.predict(X) is None and model.pairwise_accuracy(X, y, g) is None
    # plenty of rows, but nothing to rank: one throughput per task or all equal
    X, y, _ = synthetic(100, seed=5)
    assert not model.fit(X, np.ones(100), np.array(["t"] * 100))
    assert not model.fit(X, y, np.arange(100).astype(str))
    # a model trained before is dropped, not kept stale
    X, y, g = synthetic(100, seed=6)
    assert model.fit(X, y, g)
    assert not model.fit(X[:3], y[:3], g[:3]) and model.predict(X) is None


def test_bad_arguments():
    with pytest.raises(ArgumentError, match="objective"):
        CostModel(objective="xgboost")
    with pytest.raises(ArgumentError, match="rows"):
        CostModel().fit(np.zeros((4, 3)), np.zeros(3), ["a"] * 4)


def test_pairwise_accuracy():
    y = np.array([1.0, 2.0, 3.0, 10.0, 20.0])
    groups = np.array(["a", "a", "a", "b", "b"])
    assert pairwise_accuracy(y, y, groups) == 1.0
    assert pairwise_accuracy(-y, y, groups) == 0.0
    assert pairwise_accuracy(np.zeros(5), y, groups) == 0.5
    # pairs across groups do not count: 3 pairs in a, 1 in b
    assert pairwise_accuracy(np.array([1, 2, 3, 2, 1.0]), y, groups) == 0.75
    assert pairwise_accuracy(y, np.ones(5), groups) is None


def record(task, seconds, error=None, version=FEATURE_VERSION, cpu="znver4", flops=2e6):
    return {"task": task, "seconds": seconds, "error": error, "flops": flops,
            "target": {"kind": "llvm", "cpu": cpu},
            "features": {"version": version, "values": [0.5] * N_FEATURES}}


def test_training_set_from_records():
    records = [
        record("t1", [1e-3, 2e-3, 3e-3]),
        record("t1", [], {"class": "timeout", "message": ""}),
        record("t1", [4e-3], {"class": "stopped_early", "message": ""}),
        record("t2", [1e-3], version=FEATURE_VERSION + 1),  # other features: left out
        record("t2", [1e-3], cpu="skylake-avx512"),           # another CPU
        {"task": "t3", "seconds": [1e-3], "error": None},   # logged without features
    ]
    assert record_throughput(records[0]) == pytest.approx(2e6 / 2e-3)
    assert record_throughput(records[1]) == 0.0
    assert record_throughput(records[2]) == pytest.approx(2e6 / 4e-3)
    data = TrainingSet.from_records(records, target={"kind": "llvm", "cpu": "znver4"})
    X, y, groups = data.arrays()
    assert X.shape == (3, N_FEATURES) and list(groups) == ["t1"] * 3
    np.testing.assert_allclose(y, [1e9, 0.0, 5e8])
    assert len(TrainingSet.from_records(records)) == 4  # any target
    with pytest.raises(ArgumentError, match="shape"):
        data.add("t1", [1.0, 2.0], 1.0)


def test_lightgbm_imported_only_to_train():
    code = ("import sys, dlc.autotune.search, dlc.autotune.cost_model, dlc.autotune.features;"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('lightgbm', 'scipy', 'llvmlite')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
