"""Helpers shared by the op tests: one-node graphs compiled and run, value inputs given as
constants, exact comparisons, data, and must-fail checks at graph-building time."""

import numpy as np
import pytest

import dlc
from dlc.errors import ModelError
from dlc.graph import GraphBuilder


class C:
    """An input given as a graph constant (value inputs: pads, starts, shapes, axes, K,
    depth, ...)."""

    def __init__(self, value, dtype=np.int64):
        self.value = np.asarray(value, dtype=dtype)


def run(op, *args, outputs=1, **attrs):
    """Compile one ``op`` node and run it: arrays are graph inputs, ``C`` values
    constants, None omitted inputs. Returns the output (or the list of them)."""
    g = GraphBuilder(op.lower())
    syms, feeds = [], []
    for k, a in enumerate(args):
        if a is None:
            syms.append(None)
        elif isinstance(a, C):
            syms.append(g.constant(a.value))
        else:
            a = np.asarray(a)
            syms.append(g.input(f"in{k}", a.shape, a.dtype))
            feeds.append(a)
    out = g.op(op, *syms, outputs=[f"out{k}" for k in range(outputs)], **attrs)
    g.output(*(out if outputs > 1 else (out,)))
    result = dlc.compile(g.build()).run(*feeds)
    return result if outputs > 1 else result[0]


def same(got, want):
    want = np.asarray(want)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_array_equal(got, want)


def data(shape, dtype="float32", seed=0):
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.integers(0, 2, size=shape).astype(bool)
    return rng.integers(-50, 50, size=shape).astype(dtype)


def fails(op, *args, match, **attrs):
    g = GraphBuilder()
    syms = [None if a is None else g.constant(a.value) if isinstance(a, C)
            else g.input(f"in{k}", a.shape, a.dtype) for k, a in enumerate(args)]
    with pytest.raises(ModelError, match=match):
        g.op(op, *syms, **attrs)


def onnx_vs_ort(op, inputs, opset, outputs=1, initializers=None, **attrs):
    """One-node ONNX model of ``opset``: dlc's outputs must equal onnxruntime's."""
    import onnxruntime
    from onnx import helper, numpy_helper

    initializers = initializers or {}
    node = helper.make_node(op, list(inputs) + list(initializers),
                            [f"y{k}" for k in range(outputs)], **attrs)
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
         for k, v in inputs.items()],
        [helper.make_empty_tensor_value_info(f"y{k}") for k in range(outputs)],
        initializer=[numpy_helper.from_array(v, k) for k, v in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              ir_version=8)
    got = dlc.compile(model).run(*inputs.values())
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    for g, w in zip(got, session.run(None, inputs)):
        same(g, w)


def run_fold(op, *arrays, fold=False, **attrs):
    """Compile one ``op`` node over ``arrays`` (graph inputs; constants with ``fold``, which
    the compiler folds through the NumPy reference; None: an omitted input) and run it;
    returns the first output."""
    g = GraphBuilder(op.lower())
    syms, feeds = [], []
    for k, a in enumerate(arrays):
        if a is None:
            syms.append(None)
        elif fold:
            syms.append(g.constant(a))
        else:
            syms.append(g.input(f"in{k}", a.shape, a.dtype))
            feeds.append(a)
    g.output(g.op(op, *syms, **attrs))
    return dlc.compile(g.build()).run(*feeds)[0]


def run_consts(op, inputs, consts=(), **attrs):
    """Compile one ``op`` node over ``inputs`` (those at the positions in ``consts`` as
    constants, None omitted) and run it; returns the first output."""
    g = GraphBuilder("t")
    syms, feeds = [], []
    for k, x in enumerate(inputs):
        if x is None:
            syms.append(None)
        elif k in consts:
            syms.append(g.constant(x))
        else:
            syms.append(g.input(f"in{k}", x.shape, x.dtype))
            feeds.append(x)
    g.output(g.op(op, *syms, **attrs))
    return dlc.compile(g.build()).run(*feeds)[0]
