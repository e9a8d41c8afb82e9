"""NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss: compiled results against NumPy
for every reduction, weights and ignore_index, and must-fail cases."""

import numpy as np
import pytest
from onnx import TensorProto, helper

import dlc
from dlc.graph.builder import GraphBuilder


def run(op, *inputs, outputs=None, **attrs):
    g = GraphBuilder("t")
    syms = [None if a is None else g.input(f"in{k}", a.shape, a.dtype)
            for k, a in enumerate(inputs)]
    out = g.op(op, *syms, **attrs)
    out = out if isinstance(out, tuple) else (out,)
    g.output(*out[:outputs])
    return dlc.compile(g.build()).run(*[a for a in inputs if a is not None])


def case(shape, seed=0, dtype="float32", tdtype="int64"):
    """Scores of ``shape`` (N, C, d...) and valid targets (N, d...)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=shape).astype(dtype)
    t = rng.integers(0, shape[1], size=shape[:1] + shape[2:]).astype(tdtype)
    return x, t


def np_log_softmax(x):
    s = x - x.max(axis=1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


def np_nll(logp, t, w=None, reduction="mean", ignore=None):
    """The spec's loss, written with explicit loops over the positions."""
    n, c = logp.shape[:2]
    flat = logp.reshape(n, c, -1)
    tf = t.reshape(n, -1)
    loss = np.zeros(tf.shape)
    weight = np.zeros(tf.shape)
    for i in range(n):
        for d in range(tf.shape[1]):
            k = tf[i, d]
            if k == ignore:
                continue
            weight[i, d] = w[k] if w is not None else 1
            loss[i, d] = -flat[i, k, d] * weight[i, d]
    if reduction == "none":
        return loss.reshape(t.shape)
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / weight.sum()


CASES = [  # (shape, reduction, weighted, ignore_index)
    ((3, 5), "none", False, None),
    ((3, 5), "sum", True, None),
    ((3, 5), "mean", False, None),
    ((3, 5, 2), "mean", True, None),
    ((3, 5, 2, 4), "mean", True, 2),
    ((4, 5, 3), "mean", False, 1),
    ((3, 4, 6), "none", True, -1),
    ((2, 3, 2, 2, 2), "sum", False, 0),
]


@pytest.mark.parametrize("shape,reduction,weighted,ignore", CASES)
def test_nll_loss(shape, reduction, weighted, ignore):
    x, t = case(shape, seed=len(shape))
    if ignore is not None and ignore >= 0:
        t.flat[::3] = ignore
    w = np.random.default_rng(9).uniform(0.5, 2, shape[1]).astype(np.float32) \
        if weighted else None
    attrs = {"reduction": reduction} | ({"ignore_index": ignore} if ignore is not None else {})
    (y,) = run("NegativeLogLikelihoodLoss", x, t, w, **attrs)
    want = np_nll(x.astype(np.float64), t, w, reduction, ignore)
    assert y.dtype == np.float32 and y.shape == np.shape(want)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape,reduction,weighted,ignore", CASES)
def test_softmax_cross_entropy_loss(shape, reduction, weighted, ignore):
    x, t = case(shape, seed=len(shape) + 10, tdtype="int32")
    if ignore is not None and ignore >= 0:
        t.flat[1::4] = ignore
    w = np.random.default_rng(8).uniform(0.5, 2, shape[1]).astype(np.float32) \
        if weighted else None
    attrs = {"reduction": reduction} | ({"ignore_index": ignore} if ignore is not None else {})
    loss, log_prob = run("SoftmaxCrossEntropyLoss", x, t, w, **attrs)
    logp = np_log_softmax(x.astype(np.float64))
    np.testing.assert_allclose(log_prob, logp, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss, np_nll(logp, t, w, reduction, ignore), rtol=1e-5,
                               atol=1e-6)


def test_softmax_cross_entropy_loss_only_and_dtypes():
    for dtype, tol in (("float16", 3e-3), ("float64", 1e-12)):
        x, t = case((6, 7, 3), seed=3, dtype=dtype)
        (loss,) = run("SoftmaxCrossEntropyLoss", x, t, outputs=1)
        assert loss.dtype == dtype and loss.shape == ()
        want = np_nll(np_log_softmax(x.astype(np.float64)), t)
        np.testing.assert_allclose(loss, want, rtol=tol)


def test_mean_with_every_target_ignored_is_nan():
    x, t = case((2, 3))
    t[:] = 1
    (y,) = run("NegativeLogLikelihoodLoss", x, t, ignore_index=1)
    assert np.isnan(y)


def test_target_outside_the_classes_gives_nan():
    x, t = case((3, 4))
    t[1] = 7
    (y,) = run("NegativeLogLikelihoodLoss", x, t, reduction="none")
    assert np.isnan(y[1]) and not np.isnan(y[[0, 2]]).any()
    t[1] = 7
    (y,) = run("NegativeLogLikelihoodLoss", x, t, ignore_index=7, reduction="none")
    assert y[1] == 0


def test_onnx_losses():
    x, t = case((3, 5, 2), seed=4)
    nodes = [helper.make_node("SoftmaxCrossEntropyLoss", ["x", "t"], ["l", "lp"],
                              reduction="sum", ignore_index=0),
             helper.make_node("NegativeLogLikelihoodLoss", ["x", "t"], ["n"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 5, 2]),
                     helper.make_tensor_value_info("t", TensorProto.INT64, [3, 2])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("l", "lp", "n")])
    for opset in (12, 13, 22):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        loss, log_prob, nll = dlc.compile(model).run(x, t)
        logp = np_log_softmax(x.astype(np.float64))
        np.testing.assert_allclose(loss, np_nll(logp, t, None, "sum", 0), rtol=1e-5)
        np.testing.assert_allclose(log_prob, logp, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(nll, np_nll(x.astype(np.float64), t), rtol=1e-5)


@pytest.mark.parametrize("op", ["NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"])
def test_errors(op):
    x, t = case((3, 5, 2))
    with pytest.raises(dlc.ModelError, match="reduction='avg'"):
        run(op, x, t, reduction="avg")
    with pytest.raises(dlc.ModelError, match=r"expected \[3, 2\]"):
        run(op, x, t[:, :1])
    with pytest.raises(dlc.ModelError, match=r"weight must have shape \[5\]"):
        run(op, x, t, np.ones(4, np.float32))
    with pytest.raises(dlc.ModelError, match="dtype float32"):
        run(op, x, t.astype(np.float32))
    with pytest.raises(dlc.ModelError, match=r"shape \(N, C, d1"):
        run(op, x[0, :, 0], t[0])
    with pytest.raises(dlc.ModelError, match="ignore_index must be an integer"):
        run(op, x, t, ignore_index=1.5)
