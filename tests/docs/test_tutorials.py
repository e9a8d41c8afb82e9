"""The tutorials in docs/tutorials run end to end at small sizes (each checks its own
results against numpy or the graph interpreter and raises on a mismatch)."""

import importlib.util
import os
import pathlib

import numpy as np

TUTORIALS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "tutorials"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"tutorial_{name}", TUTORIALS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gemm_tutorial_prints_every_step(capsys):
    results = load("gemm_cpu").main(["--size", "67", "--threads", "2"])  # 67: nothing divides
    out = capsys.readouterr().out
    steps = ["1. naive", "2. tile", "3. split k", "4. vectorize", "5. pack B", "6. parallel",
             "7. dlc.schedules"]
    assert [s for s in steps if f"=== {s}" in out] == steps
    assert out.count("--> correct") == 7
    assert "vectorized(64)" in out and "parallel(" in out and "alloc Bp" in out
    assert all(v > 0 for v in results.values())


def test_native_cnn_tutorial(capsys, tmp_path):
    results = load("native_cnn").main(["--image-size", "16", "--out-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "Conv2dNCHWc" in out and "FusedGroup" in out
    np.testing.assert_allclose(results["probabilities"].sum(), 1.0, rtol=1e-5)
    plan = results["memory_plan"]
    assert 0 < plan["arena_bytes"] < plan["without_reuse_bytes"]
    assert (tmp_path / "small_cnn.json").exists() and (tmp_path / "small_cnn.dlc").exists()


def test_tune_tutorial_tunes_resumes_reports_and_compiles(capsys, tmp_path):
    results = load("tune_cpu").main(["--trials", "12", "--out-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "--> correct" in out and "estimated latency" in out
    assert sum(r.trials for r in results["result"].tasks) >= 12  # both runs' measurements
    assert os.path.getsize(results["html"]) > 0
