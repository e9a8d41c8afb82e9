"""Losses: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.

Both take class scores of shape (N, C, d1, ...) and integer targets of shape (N, d1, ...);
``loss[n, d] = -weight[t] * input[n, t, d]`` with ``t = target[n, d]``, and 0 where
``t == ignore_index``. ``reduction`` is "none" (that tensor), "sum", or "mean" (the sum
divided by the sum of the weights of the targets not ignored; with no weights, by their
count). A target outside [0, C) that is not ignored has no defined loss: it gives NaN.
SoftmaxCrossEntropyLoss applies LogSoftmax along dimension 1 first and may also return it.
"""

from __future__ import annotations

import math

import numpy as np

from dlc import te
from dlc.ops.common import accumulation_dtype, out_type, reduce_compute, sum_dtype
from dlc.ops.registry import FLOATS, OPAQUE, OpDef, check_dtype, register
from dlc.ops.softmax import np_softmax_parts, softmax_stages

REDUCTIONS = ("none", "sum", "mean")


def check_loss_inputs(ctx, what: str) -> list:
    """Validate (scores, target, weight) and attributes; returns the loss output type."""
    x, target = ctx.type(0), ctx.type(1)
    dtype = check_dtype(ctx, 0, FLOATS)
    check_dtype(ctx, 1, ("int32", "int64"))
    if ctx.attrs["reduction"] not in REDUCTIONS:
        raise ctx.error(f"reduction={ctx.attrs['reduction']!r} is not one of "
                        f"{', '.join(REDUCTIONS)}")
    ignore = ctx.attrs["ignore_index"]
    if ignore is not None and not isinstance(ignore, (int, np.integer)):
        raise ctx.error(f"ignore_index must be an integer, got {ignore!r}")
    if x.ndim < 2:
        raise ctx.error(f"{what} must have shape (N, C, d1, ...), got {x}")
    if target.shape != x.shape[:1] + x.shape[2:]:
        raise ctx.error(f"target shape {list(target.shape)} does not match {what} shape "
                        f"{list(x.shape)}; expected {list(x.shape[:1] + x.shape[2:])}")
    if ctx.has_input(2):
        check_dtype(ctx, 2, (dtype,))
        if ctx.type(2).shape != (x.shape[1],):
            raise ctx.error(f"weight must have shape [{x.shape[1]}], got "
                            f"{list(ctx.type(2).shape)}")
    shape = target.shape if ctx.attrs["reduction"] == "none" else ()
    return out_type(shape, dtype)


def nll_compute(ctx, read, classes: int, target, weight, dtype: str, name: str):
    """The loss tensor: ``read(n, c, rest)`` gives a log-probability in the accumulation
    dtype at class ``c`` of position ``(n, *rest)`` of the target."""
    acc = accumulation_dtype(dtype)
    ignore = ctx.attrs["ignore_index"]
    zero, nan = te.const(0, acc), te.const(math.nan, acc)

    def terms(i):
        """(loss term, weight term) at target index ``i``."""
        t = te.cast(target[i], "int64")
        inside = te.all(t >= 0, t < classes)
        w = te.cast(weight[t], acc) if weight is not None else te.const(1, acc)
        w = te.if_then_else(inside, w, nan)
        loss = te.if_then_else(inside, -read(i[0], t, i[1:]) * w, nan)
        if ignore is not None:
            keep = t != te.const(int(ignore), "int64")
            loss, w = te.if_then_else(keep, loss, zero), te.if_then_else(keep, w, zero)
        return loss, w

    reduction = ctx.attrs["reduction"]
    shape, all_axes = target.shape, list(range(target.ndim))
    if reduction == "none":
        return te.compute(shape, lambda *i: te.cast(terms(i)[0], dtype), name=name)
    wide = sum_dtype(acc)

    def summed(k):
        return reduce_compute(shape, all_axes, lambda i: te.cast(terms(i)[k], wide), "sum",
                              False, name=f"{name}_{('sum', 'weights')[k]}")

    total = summed(0)
    if reduction == "sum":
        return te.compute((), lambda: te.cast(total[()], dtype), name=name)
    if weight is None and ignore is None:
        count = te.const(float(math.prod(shape)), wide)
        return te.compute((), lambda: te.cast(total[()] / count, dtype), name=name)
    weights = summed(1)
    return te.compute((), lambda: te.cast(total[()] / weights[()], dtype), name=name)


def np_nll(ctx, logp, target, weight):
    """NumPy loss from log-probabilities (in the accumulation dtype)."""
    classes = logp.shape[1]
    ignore = ctx.attrs["ignore_index"]
    t = target.astype(np.int64)
    inside = (t >= 0) & (t < classes)
    safe = np.where(inside, t, 0)
    picked = np.take_along_axis(logp, np.expand_dims(safe, 1), axis=1)[:, 0]
    w = weight.astype(logp.dtype)[safe] if weight is not None else np.ones_like(picked)
    w = np.where(inside, w, np.nan)
    loss = np.where(inside, -picked * w, np.nan)
    if ignore is not None:
        loss, w = np.where(t == ignore, 0, loss), np.where(t == ignore, 0, w)
    reduction = ctx.attrs["reduction"]
    if reduction == "none":
        return loss
    if reduction == "sum":
        return np.sum(loss)
    if weight is None and ignore is None:
        return np.sum(loss) / loss.size
    return np.sum(loss) / np.sum(w)


def _np_acc(x):
    return x.astype(np.float32) if x.dtype.itemsize < 4 else x


@register
class NegativeLogLikelihoodLoss(OpDef):
    name = "NegativeLogLikelihoodLoss"
    pattern = OPAQUE
    attrs = {"reduction": "mean", "ignore_index": None}
    num_inputs = (2, 3)

    def infer(self, ctx):
        return [check_loss_inputs(ctx, "input")]

    def reference(self, ctx, x, target, weight=None):
        loss = np_nll(ctx, _np_acc(x), target, weight)
        return [np.asarray(loss).astype(x.dtype)]

    def compute(self, ctx, x, target, weight=None):
        acc = accumulation_dtype(x.dtype)

        def read(n, c, rest):
            return te.cast(x[(n, c) + tuple(rest)], acc)

        return [nll_compute(ctx, read, x.shape[1], target, weight, x.dtype,
                            ctx.name or self.name)]


@register
class SoftmaxCrossEntropyLoss(OpDef):
    """NegativeLogLikelihoodLoss of LogSoftmax(scores, axis=1); the second (optional)
    output is that LogSoftmax."""

    name = "SoftmaxCrossEntropyLoss"
    pattern = OPAQUE
    attrs = {"reduction": "mean", "ignore_index": None}
    num_inputs = (2, 3)
    num_outputs = (1, 2)

    def infer(self, ctx):
        return [check_loss_inputs(ctx, "scores"), ctx.type(0)]

    def reference(self, ctx, scores, labels, weights=None):
        shifted, _, total = np_softmax_parts(scores, 1)
        log_prob = (shifted - np.log(total)).astype(scores.dtype)
        loss = np_nll(ctx, _np_acc(log_prob), labels, weights)
        return [np.asarray(loss).astype(scores.dtype), log_prob]

    def compute(self, ctx, scores, labels, weights=None):
        name = ctx.name or self.name
        shifted, _, total = softmax_stages(scores, 1, name)
        log_prob = te.compute(scores.shape, lambda *i: te.cast(
            shifted(i) - te.log(total(i)), scores.dtype), name=f"{name}_log_prob")
        acc = accumulation_dtype(scores.dtype)

        def read(n, c, rest):  # the rounded log-probability, as the spec's function body
            return te.cast(log_prob[(n, c) + tuple(rest)], acc)

        loss = nll_compute(ctx, read, scores.shape[1], labels, weights, scores.dtype, name)
        return [loss, log_prob]
