"""benchmarks/tune_search.py: its GEMM template computes the product in every sampled
configuration, and a small run prints both searches and the model's ranking accuracy."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import random
import re

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_bench():
    spec = importlib.util.spec_from_file_location(
        "tune_search", os.path.join(ROOT, "benchmarks", "tune_search.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_template_configurations_compute_the_product():
    bench = load_bench()
    task = bench.GemmTask(12, 20, 9, threads=1)
    space = task.space()
    assert space.default()["tile_i"] == 1 and not space.default()["vectorize"]
    measure = bench.Measurer(task)
    rng = random.Random(0)
    for config in [space.default()] + [space.sample(rng) for _ in range(4)]:
        seconds, features, error = measure(config)
        assert error == "" and seconds > 0, (config, error)
        assert np.isfinite(features).all()


def test_trials_to_reach():
    bench = load_bench()
    trials = [{"gflops": g} for g in (1.0, 5.0, 3.0, 9.5, 10.0)]
    assert bench.trials_to_reach(trials, 9.0) == 4
    assert bench.trials_to_reach(trials, 10.0) == 5
    assert bench.trials_to_reach(trials, 11.0) is None


@pytest.mark.tune
def test_small_run_reports_searches_and_accuracy():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert load_bench().main(["--shapes", "24x40x16,16x48x24", "--trials", "20",
                                  "--batch", "10"]) == 0
    text = out.getvalue()
    for name in ("random", "guided", "guided+prior"):
        assert re.search(rf"^  {re.escape(name)} +[\d.]+ +[\d.]+ +\d+ ", text, re.M), text
    assert re.search(r"pairwise ranking accuracy \(regression\) on the 20 random-search "
                     r"measurements: (0|1)\.\d+ .*earlier tasks only: (0|1)\.\d+", text), text
