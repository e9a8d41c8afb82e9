"""Per-inference overhead of the runtime, beyond the time spent in kernels.

A model of 100 tiny elementwise kernels (a chain of Add/Mul on 16 floats), compiled
without fusion so that each node stays a kernel, is run by dlc's runtime (one native call
per inference, from a saved artifact loaded with ``dlc.runtime.load``) and by onnxruntime
(graph optimizations off, so it also runs 100 nodes); the outputs are checked equal. The
overhead is the median latency of ``run`` minus the median latency of calling the native
entry function directly (which includes every kernel): input checks, output allocation,
the arena pool, ctypes. The target is under 50 us; the script exits 1 above it.
Usage: python benchmarks/runtime_overhead.py [--repeat N] [--threads N]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import tempfile
import time

import numpy as np


def build_onnx(path: str, n_nodes: int = 100, size: int = 16) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    prev = "x"
    for k in range(n_nodes):
        const = f"c{k}"
        inits.append(numpy_helper.from_array(np.full((size,), 1.0 + k * 1e-3, np.float32),
                                             const))
        op = "Add" if k % 2 == 0 else "Mul"
        out = f"t{k}" if k < n_nodes - 1 else "y"
        nodes.append(helper.make_node(op, [prev, const], [out], name=f"n{k}"))
        prev = out
    graph = helper.make_graph(nodes, "chain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [size])],
                              initializer=inits)
    # the IR version opset 17 needs, not onnx's newest (older onnxruntime refuses that)
    model = helper.make_model_gen_version(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)


def median_time(fn, repeat: int) -> float:
    for _ in range(max(repeat // 10, 10)):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return float(np.median(samples))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    import dlc
    import dlc.runtime

    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = os.path.join(tmp, "chain.onnx")
        build_onnx(onnx_path)
        compiled = dlc.compile(onnx_path, opt_level=0)  # no fusion: 100 kernels
        artifact = os.path.join(tmp, "chain.dlc")
        compiled.save(artifact)
        model = dlc.runtime.load(artifact)
        model.set_num_threads(args.threads)
        x = np.random.rand(16).astype(np.float32)
        kernels = len(model.manifest["kernels"])

        run_s = median_time(lambda: model.run(x), args.repeat)

        ex = model.executor
        y = np.empty(16, np.float32)
        arena = np.empty(ex.plan["arena_bytes"] + 128, np.uint8)
        in_ptrs = (ctypes.c_void_p * 1)(x.ctypes.data)
        out_ptrs = (ctypes.c_void_p * 1)(y.ctypes.data)
        aligned = (arena.ctypes.data + 63) // 64 * 64
        weights = ex.weights.ctypes.data
        entry = ex._entry
        native_s = median_time(lambda: entry(in_ptrs, out_ptrs, aligned, weights), args.repeat)

        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        ort_s = median_time(lambda: sess.run(None, {"x": x}), args.repeat)
        np.testing.assert_allclose(model.run(x)[0], sess.run(None, {"x": x})[0], rtol=1e-5)
        dict_s = median_time(lambda: model.run({"x": x}), args.repeat)

    print(f"model: {kernels} elementwise kernels on 16 floats, {args.threads} thread(s), "
          f"median of {args.repeat} runs")
    print(f"  dlc runtime run(x):         {run_s * 1e6:8.2f} us")
    print(f"  dlc runtime run({{'x': x}}):  {dict_s * 1e6:8.2f} us")
    print(f"  native entry call (kernels):{native_s * 1e6:8.2f} us")
    print(f"  dlc overhead beyond kernels:{(run_s - native_s) * 1e6:8.2f} us  (target < 50 us)")
    print(f"  onnxruntime run (no graph opts, 100 nodes): {ort_s * 1e6:8.2f} us")
    print(f"  dlc / onnxruntime latency:  {run_s / ort_s:8.2f}x")
    return 0 if run_s - native_s < 50e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
