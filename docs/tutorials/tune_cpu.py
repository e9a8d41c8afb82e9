"""Tutorial: tune a small CNN for this machine, read the report, compile with the log.

    python docs/tutorials/tune_cpu.py [--trials 40] [--out-dir DIR]

1. build a small ONNX model;
2. tune it from the command line: ``dlc tune model.onnx --log tune.jsonl --trials N``;
3. tune it again from Python with ``dlc.autotune.tuner.tune`` on the same log: the run
   resumes, nothing already measured is measured again;
4. read the report (``dlc report tune.jsonl``, and ``--html`` for the plots);
5. compile with the log (``dlc.compile(..., tuning_log=...)``) and check the result.

The test suite runs this file with a small budget (tests/docs/test_tutorials.py).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

import dlc
from dlc.graph import run_graph


def build_model():
    """An ONNX model: conv 3x3 -> relu -> conv 3x3 -> softmax, on a 16x16 image."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((32, 16, 3, 3)).astype(np.float32) * 0.1
    w2 = rng.standard_normal((32, 32, 3, 3)).astype(np.float32) * 0.1
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("Softmax", ["c2"], ["y"], axis=-1)]
    graph = helper.make_graph(
        nodes, "tiny_cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                          [1, 16, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 16, 16])],
        initializer=[numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--out-dir", default=None)
    args = parser.parse_args(argv)
    out = args.out_dir or tempfile.mkdtemp(prefix="dlc_tune_")
    path = os.path.join(out, "tiny_cnn.onnx")
    with open(path, "wb") as f:
        f.write(build_model().SerializeToString())
    log = os.path.join(out, "tune.jsonl")

    print("=== 2. dlc tune (command line)")
    half = max(1, args.trials // 2)
    cli = [sys.executable, "-m", "dlc", "tune", path, "--log", log, "--trials", str(half)]
    print(subprocess.run(cli, check=True, capture_output=True, text=True).stdout)

    print("=== 3. the same from Python, resuming the log")
    from dlc.autotune.tuner import tune

    result = tune(path, log, trials=args.trials - half)
    for r in result.tasks:
        print(f"  {r.task.name:28s} trials {r.trials:3d}  best {r.best_seconds * 1e6:9.1f} us"
              f"  default {r.default_seconds * 1e6:9.1f} us")

    print("=== 4. the report")
    html = os.path.join(out, "report.html")
    report = subprocess.run([sys.executable, "-m", "dlc", "report", log, "--html", html],
                            check=True, capture_output=True, text=True).stdout
    print(report)

    print("=== 5. compile with the log")
    model = dlc.compile(path, tuning_log=log)
    x = np.random.default_rng(1).standard_normal((1, 16, 16, 16)).astype(np.float32)
    want = run_graph(dlc.compile(path, opt_level=0).source_graph, {"x": x})[0]
    got = model.run(x)[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    print(f"  {sum(k.tuned for k in model.kernels)} of {len(model.kernels)} kernels tuned; "
          "--> correct")
    return {"log": log, "html": html, "report": report, "result": result}


if __name__ == "__main__":
    main()
