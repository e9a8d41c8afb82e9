"""Write a small ONNX multilayer perceptron with random weights, for trying dlc out.

    python -m dlc.examples.mlp mlp.onnx [--batch 1] [--sizes 784,256,128,10] [--seed 0]

The model maps ``x: float32[batch, sizes[0]]`` to class probabilities
``y: float32[batch, sizes[-1]]``: (MatMul + Add + Relu) per hidden layer, then
MatMul + Add + Softmax. ``--batch N`` (the default: 1) fixes the batch size; ``--batch N``
with a name (``--batch N=batch``) keeps it symbolic, so ``dlc compile`` needs
``--input-shape x=...``. Needs numpy and onnx only.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def make_mlp(sizes=(784, 256, 128, 10), batch: int | str = 1, seed: int = 0):
    """An ONNX ModelProto of an MLP with layer widths ``sizes`` and random weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
        raise ValueError(f"sizes must list at least two positive widths, got {sizes}")
    rng = np.random.default_rng(seed)
    nodes, weights = [], []
    prev = "x"
    layers = len(sizes) - 1
    for k in range(layers):
        fan_in, fan_out = int(sizes[k]), int(sizes[k + 1])
        w = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        b = (rng.standard_normal(fan_out) * 0.1).astype(np.float32)
        weights += [numpy_helper.from_array(w, f"w{k}"), numpy_helper.from_array(b, f"b{k}")]
        nodes.append(helper.make_node("MatMul", [prev, f"w{k}"], [f"mm{k}"], name=f"fc{k}"))
        nodes.append(helper.make_node("Add", [f"mm{k}", f"b{k}"], [f"fc{k}"], name=f"bias{k}"))
        last = k == layers - 1
        out = "y" if last else f"h{k}"
        act = helper.make_node("Softmax", [f"fc{k}"], [out], name="softmax", axis=-1) if last \
            else helper.make_node("Relu", [f"fc{k}"], [out], name=f"relu{k}")
        nodes.append(act)
        prev = out
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, int(sizes[0])])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, int(sizes[-1])])],
        initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="dlc.examples.mlp")
    model.ir_version = 8  # readable by onnxruntime releases of the last few years
    onnx.checker.check_model(model)
    return model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dlc.examples.mlp",
                                     description="Write a small ONNX MLP with random weights.")
    parser.add_argument("output", help="where to write the model (e.g. mlp.onnx)")
    parser.add_argument("--sizes", default="784,256,128,10",
                        help="layer widths, input first (default 784,256,128,10)")
    parser.add_argument("--batch", default="1",
                        help="batch size, or a name for a symbolic batch (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes {args.sizes!r}: expected comma-separated integers")
    batch = int(args.batch) if args.batch.isdigit() else args.batch
    try:
        model = make_mlp(sizes, batch, args.seed)
    except ValueError as err:
        parser.error(str(err))
    import onnx

    try:
        onnx.save(model, args.output)
    except OSError as err:
        print(f"error: cannot write {args.output}: {err.strerror or err}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: MLP {'x'.join(map(str, sizes))}, input x: float32"
          f"[{batch}, {sizes[0]}], output y: float32[{batch}, {sizes[-1]}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
