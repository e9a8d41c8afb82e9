"""Tutorial: build a small CNN with dlc's native graph API, compile it, run it, save it.

    python docs/tutorials/native_cnn.py [--image-size 32] [--out-dir DIR]

No ONNX involved: ``dlc.graph.GraphBuilder`` builds a graph from Python in a NumPy-like
style (inputs, constants from numpy arrays, operators with keyword attributes; every op has
ONNX's name and semantics). The steps:

1. build the graph (types are inferred as each node is added, so a shape error points at
   the line that causes it);
2. print it and run it through the NumPy interpreter, the reference for everything else;
3. compile it with ``dlc.compile`` and compare with the reference;
4. look at what the optimizer did (fused kernels, blocked convolutions, the memory plan);
5. save the graph (JSON + weights) and load it back, and save the compiled artifact and
   run it with the lightweight runtime.

The test suite runs this file (tests/docs/test_tutorials.py).
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

import dlc
from dlc.graph import GraphBuilder, load_graph, ops, run_graph, save_graph


def weights(rng, *shape):
    """He-initialized float32 weights."""
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def conv_bn_relu(g, x, cin, cout, rng, stride=1):
    """3x3 convolution, batch normalization, ReLU (BatchNorm folds into the conv)."""
    y = ops.Conv(x, g.constant(weights(rng, cout, cin, 3, 3)), kernel_shape=[3, 3],
                 pads=[1, 1, 1, 1], strides=[stride, stride])
    scale = g.constant(rng.uniform(0.5, 1.5, cout).astype(np.float32))
    bias = g.constant(rng.uniform(-0.1, 0.1, cout).astype(np.float32))
    mean = g.constant(rng.uniform(-0.1, 0.1, cout).astype(np.float32))
    var = g.constant(rng.uniform(0.5, 1.5, cout).astype(np.float32))
    return ops.Relu(ops.BatchNormalization(y, scale, bias, mean, var, epsilon=1e-5))


def build_cnn(image_size: int = 32, classes: int = 10, seed: int = 0):
    """A small ResNet-like CNN: a stem, two residual stages, pooling, a classifier."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder("small_cnn")
    x = g.input("image", (1, 3, image_size, image_size))
    y = conv_bn_relu(g, x, 3, 16, rng)
    for cin, cout, stride in [(16, 16, 1), (16, 32, 2)]:
        z = conv_bn_relu(g, y, cin, cout, rng, stride)
        z = ops.Conv(z, g.constant(weights(rng, cout, cout, 3, 3)), pads=[1, 1, 1, 1])
        if stride != 1 or cin != cout:  # projection shortcut
            y = ops.Conv(y, g.constant(weights(rng, cout, cin, 1, 1)),
                         strides=[stride, stride])
        y = ops.Relu(z + y)  # Python operators work on graph tensors
    y = ops.Flatten(ops.GlobalAveragePool(y))
    logits = y @ g.constant(weights(rng, 32, classes)) + \
        g.constant(np.zeros(classes, np.float32))
    g.output(ops.Softmax(logits, axis=-1))
    return g.build()


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--out-dir", help="where to save the files (default: a temporary folder)")
    args = p.parse_args(argv)

    # -- 1. and 2. Build the graph, print it, run the reference.
    graph = build_cnn(args.image_size)
    print(graph)
    image = np.random.default_rng(1).random((1, 3, args.image_size, args.image_size),
                                            dtype=np.float32)
    (reference,) = run_graph(graph, {"image": image})
    print("reference probabilities:", np.round(reference[0], 4))

    # -- 3. Compile (default target: this CPU; opt_level 3: all graph passes) and compare.
    model = dlc.compile(graph)
    (probs,) = model.run(image)  # or model.run({"image": image})
    np.testing.assert_allclose(probs, reference, rtol=1e-4, atol=1e-5)
    print("compiled probabilities match the reference; class", int(probs.argmax()))

    # -- 4. What the optimizer did: the graph after the passes (BatchNorm folded, convs in
    # a blocked NCHW{b}c layout, epilogues fused into FusedGroup kernels) and the memory
    # plan (intermediates share one arena by liveness).
    print(model.graph)
    plan = model.memory_plan()
    print("memory plan:", plan)

    # -- 5. Save and load: the graph as JSON + .weights.npz, the compiled model as one
    # .dlc artifact that dlc.runtime runs with numpy alone (no llvmlite, no onnx).
    out_dir = args.out_dir or tempfile.mkdtemp(prefix="dlc_tutorial_")
    graph_path = os.path.join(out_dir, "small_cnn.json")
    save_graph(graph, graph_path)
    again = dlc.compile(load_graph(graph_path))
    np.testing.assert_allclose(again.run(image)[0], probs, rtol=1e-6, atol=1e-7)

    from dlc import runtime

    artifact = os.path.join(out_dir, "small_cnn.dlc")
    size = model.save(artifact)
    executor = runtime.load(artifact)
    np.testing.assert_array_equal(executor.run(image)[0], probs)
    print(f"saved {graph_path} and {artifact} ({size} bytes); both give the same output")
    return {"probabilities": probs, "reference": reference, "memory_plan": plan}


if __name__ == "__main__":
    main()
