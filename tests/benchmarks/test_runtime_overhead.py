"""benchmarks/runtime_overhead.py runs (with few repetitions) and reports the runtime's
per-inference overhead beyond kernel time next to onnxruntime on the same model."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_runtime_overhead_benchmark_runs():
    spec = importlib.util.spec_from_file_location(
        "runtime_overhead", os.path.join(ROOT, "benchmarks", "runtime_overhead.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = bench.main(["--repeat", "100"])
    text = out.getvalue()
    assert "model: 100 elementwise kernels" in text
    overhead = float(re.search(r"dlc overhead beyond kernels:\s*(-?[\d.]+) us", text).group(1))
    assert re.search(r"onnxruntime run .*:\s*[\d.]+ us", text)
    # The target (< 50 us) is checked by the exit code; a loaded test machine may miss it,
    # so only a gross regression (a Python loop over kernels: > 1 ms) fails here.
    assert code in (0, 1) and overhead < 1000, text
