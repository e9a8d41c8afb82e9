"""Tiny ONNX models for runtime and command-line tests (compile in well under a second).

``small_model``: x float32[2, 12] -> y = Softmax(Relu((x + c0) @ w)) float32[2, 8],
x_copy = Identity(x), k = a constant int64[2, 3]: weights, arena intermediates, a kernel
that copies an input, and a constant output (the ``constants`` section of an artifact).
``chain_model``: x float32[16] -> y through ``n`` alternating Add/Mul nodes (with
``symbolic``, x float32[N] and constants of shape [1]).
"""

from __future__ import annotations

import numpy as np


def _save(graph, path) -> str:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


def small_model(path, batch=2) -> str:
    from onnx import TensorProto, helper, numpy_helper

    c0 = np.linspace(-1, 1, 12, dtype=np.float32).reshape(1, 12)
    w = np.linspace(-1, 1, 12 * 8, dtype=np.float32).reshape(12, 8)
    k = np.arange(6, dtype=np.int64).reshape(2, 3)
    nodes = [
        helper.make_node("Add", ["x", "c0"], ["a"], name="add"),
        helper.make_node("MatMul", ["a", "w"], ["m"], name="matmul"),
        helper.make_node("Relu", ["m"], ["r"], name="relu"),
        helper.make_node("Softmax", ["r"], ["y"], name="softmax", axis=-1),
        helper.make_node("Identity", ["x"], ["x_copy"], name="identity"),
        helper.make_node("Constant", [], ["k"], name="const",
                         value=numpy_helper.from_array(k, "kv")),
    ]
    graph = helper.make_graph(
        nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 8]),
         helper.make_tensor_value_info("x_copy", TensorProto.FLOAT, [batch, 12]),
         helper.make_tensor_value_info("k", TensorProto.INT64, [2, 3])],
        initializer=[numpy_helper.from_array(c0, "c0"), numpy_helper.from_array(w, "w")])
    return _save(graph, path)


def small_reference(x: np.ndarray) -> list:
    """NumPy outputs of small_model."""
    c0 = np.linspace(-1, 1, 12, dtype=np.float32).reshape(1, 12)
    w = np.linspace(-1, 1, 12 * 8, dtype=np.float32).reshape(12, 8)
    r = np.maximum((x + c0) @ w, 0)
    e = np.exp(r - r.max(-1, keepdims=True))
    return [e / e.sum(-1, keepdims=True), x.copy(), np.arange(6, dtype=np.int64).reshape(2, 3)]


def chain_model(path, n: int = 4, size: int = 16, symbolic: bool = False) -> str:
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, prev = [], [], "x"
    for k in range(n):
        inits.append(numpy_helper.from_array(
            np.full((1 if symbolic else size,), 1.0 + k * 1e-3, np.float32), f"c{k}"))
        out = f"t{k}" if k < n - 1 else "y"
        nodes.append(helper.make_node("Add" if k % 2 == 0 else "Mul", [prev, f"c{k}"], [out],
                                      name=f"n{k}"))
        prev = out
    dim = "N" if symbolic else size
    graph = helper.make_graph(nodes, "chain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [dim])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [dim])],
                              initializer=inits)
    return _save(graph, path)


def chain_reference(x: np.ndarray, n: int = 4) -> np.ndarray:
    y = x.copy()
    for k in range(n):
        c = np.float32(1.0 + k * 1e-3)
        y = y + c if k % 2 == 0 else y * c
    return y


#: Output names that broke ``np.savez(file, **outputs)``: its own parameters (``file``
#: collides, ``allow_pickle`` was silently swallowed), its positional keys, paths, unicode.
AWKWARD_NAMES = ["file", "allow_pickle", "args", "kwds", "arr_0", " ", ".", "a/b", "../up",
                 "x.npy", "ünï代码"]


def constants_model(path, names, relu: bool = True) -> str:
    """Constant outputs named ``names`` (output k holds ``constant_value(k)``), then, with
    ``relu``, y = Relu(x) for x float32[3] (without it the model has no input and no kernel)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, outputs = [], []
    for k, name in enumerate(names):
        value = constant_value(k)
        nodes.append(helper.make_node("Constant", [], [name], name=f"const{k}",
                                      value=numpy_helper.from_array(value, f"v{k}")))
        elem = helper.np_dtype_to_tensor_dtype(value.dtype)
        outputs.append(helper.make_tensor_value_info(name, elem, value.shape))
    inputs = []
    if relu:
        nodes.append(helper.make_node("Relu", ["x"], ["y"], name="relu"))
        inputs.append(helper.make_tensor_value_info("x", TensorProto.FLOAT, [3]))
        outputs.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, [3]))
    return _save(helper.make_graph(nodes, "constants", inputs, outputs), path)


def constant_value(k: int) -> np.ndarray:
    """Output k of constants_model: float32, int64 and bool arrays of varying shapes."""
    dtype = (np.float32, np.int64, np.bool_)[k % 3]
    return (np.arange(k + 2) % 3).astype(dtype).reshape(1, k + 2)
