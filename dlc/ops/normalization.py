"""Normalization: BatchNormalization (inference and training), InstanceNormalization,
LayerNormalization, GroupNormalization, RMSNormalization, LRN, LpNormalization,
MeanVarianceNormalization.

Statistics are computed in two passes (mean, then the mean of squared deviations), in the
``stash_type`` precision where the op has one and otherwise in the accumulation dtype of
the input (float32 for float16/bfloat16; half-precision stash types are computed in
float32 too), with sums accumulated in float64 for float32. Where the spec has two
stages, normalized values are rounded to the input dtype before the scale and bias are
applied (in the accumulation dtype of the input).
"""

from __future__ import annotations

import math

import numpy as np

from dlc import dtypes, te
from dlc.ops.common import (
    accumulation_dtype,
    broadcast_read,
    normalize_axes,
    normalize_axis,
    out_type,
    reduce_compute,
    sum_dtype,
)
from dlc.ops.registry import (
    FLOATS,
    INJECTIVE,
    OPAQUE,
    REQUIRED,
    OpDef,
    check_dtype,
    register,
)

#: ONNX TensorProto element types allowed as ``stash_type``
STASH_DTYPES = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16"}


def kept(index, axes) -> tuple:
    """``index`` with 0 at ``axes``: where a keepdims reduction is read."""
    return tuple(0 if d in axes else i for d, i in enumerate(index))


def moments(value, shape, axes, dtype: str, name: str):
    """(mean, variance) in ``dtype`` of ``value(index)`` (of that dtype) over ``axes`` of
    ``shape`` (keepdims), in two passes: the variance is the mean of squared deviations,
    never negative. Sums accumulate in ``sum_dtype(dtype)``."""
    count = math.prod(shape[a] for a in axes)
    wide = sum_dtype(dtype)
    total = reduce_compute(shape, axes, lambda idx: te.cast(value(idx), wide), "sum",
                           name=f"{name}_sum")
    mean = te.compute(total.shape, lambda *i: te.cast(total[i] / count, dtype),
                      name=f"{name}_mean")

    def squared_deviation(idx):
        d = value(idx) - mean[kept(idx, axes)]
        return te.cast(d * d, wide)

    dev = reduce_compute(shape, axes, squared_deviation, "sum", name=f"{name}_dev")
    var = te.compute(dev.shape, lambda *i: te.cast(dev[i] / count, dtype),
                     name=f"{name}_var")
    return mean, var


def np_moments(x, axes):
    return np.mean(x, axis=axes, keepdims=True), np.var(x, axis=axes, keepdims=True)


def np_compute_dtype(*dts):
    """The NumPy dtype to compute in for inputs of dtypes ``dts``."""
    names = [accumulation_dtype(dtypes.canonical(d)) for d in dts]
    return np.float64 if "float64" in names else np.float32


def stash_dtype(ctx) -> str:
    stash = ctx.attrs["stash_type"]
    if stash not in STASH_DTYPES:
        raise ctx.error(f"stash_type={stash} is not a floating-point type; expected one of "
                        f"{', '.join(f'{k} ({v})' for k, v in STASH_DTYPES.items())}")
    return STASH_DTYPES[stash]


def check_unidirectional(ctx, index: int, shape) -> None:
    """Input ``index`` must broadcast to ``shape`` without changing it."""
    t = ctx.type(index)
    offset = len(shape) - t.ndim
    if offset < 0 or any(d not in (1, shape[offset + k]) for k, d in enumerate(t.shape)):
        raise ctx.error(f"input {index} of shape {list(t.shape)} does not broadcast to the "
                        f"input shape {list(shape)}")


def check_channel_param(ctx, index: int, channels: int, what: str) -> None:
    t = ctx.type(index)
    if t.shape != (channels,):
        raise ctx.error(f"{what} (input {index}) must have shape [{channels}], got "
                        f"{list(t.shape)}")


# -- BatchNormalization -----------------------------------------------------------------
def batchnorm(sqrt, x, mean, var, scale, bias, epsilon: float):
    """BatchNormalization's formula, for NumPy arrays (``sqrt=np.sqrt``) and tensor
    expressions (``sqrt=te.sqrt``) alike."""
    return (x - mean) / sqrt(var + epsilon) * scale + bias


def running(old, current, momentum: float):
    """A running statistic after one training step (NumPy arrays or expressions)."""
    return old * momentum + current * (1 - momentum)


@register
class BatchNormalization(OpDef):
    """``(x - mean) / sqrt(var + epsilon) * scale + B`` per channel (dim 1; rank-1 inputs
    have one channel).

    Inference (``training_mode=0``): mean and var are the inputs ``input_mean`` and
    ``input_var``; the per-channel inputs may also have the shape ``X.shape[1:]`` (per
    activation, the pre-opset-9 ``spatial=0`` form).

    Training (``training_mode=1``): mean and var are the batch statistics, over every
    axis but 1, var the population variance (divided by N, not N - 1), computed like
    the other normalizations' statistics (``moments``). Outputs 1 and 2 are
    ``running_mean = input_mean * momentum + mean * (1 - momentum)`` and ``running_var``
    likewise, in the dtypes of ``input_mean`` and ``input_var``. The node reduces, so it
    is not fused as an injective op."""

    name = "BatchNormalization"
    pattern = INJECTIVE
    attrs = {"epsilon": 1e-5, "momentum": 0.9, "training_mode": 0}
    num_inputs = (5, 5)
    num_outputs = (1, 3)

    def node_pattern(self, attrs):
        return OPAQUE if attrs.get("training_mode", 0) else self.pattern

    def infer(self, ctx):
        x = ctx.type(0)
        for k in range(5):
            check_dtype(ctx, k, FLOATS)
        channels = x.shape[1] if x.ndim >= 2 else 1
        if not ctx.attrs["training_mode"]:
            for k in range(1, 5):
                shape = ctx.type(k).shape
                if shape != (channels,) and not (x.ndim >= 2 and shape == x.shape[1:]):
                    raise ctx.error(f"input {k} must have shape [{channels}] (one value "
                                    f"per channel), got {list(shape)}")
            return [x]
        if x.ndim < 1:
            raise ctx.error("training_mode=1 needs an input of rank 1 or more (N x C x "
                            f"D1 ...), got {x}")
        for k in range(1, 5):
            shape = ctx.type(k).shape
            if shape != (channels,):
                raise ctx.error(f"input {k} must have shape [{channels}] (one value per "
                                f"channel) in training mode, got {list(shape)}")
        return [x, out_type((channels,), ctx.type(3).dtype),
                out_type((channels,), ctx.type(4).dtype)]

    @staticmethod
    def statistic_axes(rank: int) -> tuple:
        """The axes batch statistics are computed over: all but the channel axis 1."""
        return tuple(d for d in range(rank) if d != 1)

    def reference(self, ctx, x, scale, bias, mean, var):
        dt = np_compute_dtype(x.dtype, scale.dtype, bias.dtype, mean.dtype, var.dtype)
        eps = ctx.attrs["epsilon"]
        s, b, m, v = (self._np_param(p.astype(dt), x.ndim) for p in (scale, bias, mean, var))
        if not ctx.attrs["training_mode"]:
            return [batchnorm(np.sqrt, x.astype(dt), m, v, s, b, eps).astype(x.dtype)]
        batch_mean, batch_var = np_moments(x.astype(dt), self.statistic_axes(x.ndim))
        y = batchnorm(np.sqrt, x.astype(dt), batch_mean, batch_var, s, b, eps)
        momentum = ctx.attrs["momentum"]
        return [y.astype(x.dtype),
                running(mean.astype(dt), batch_mean.reshape(-1), momentum).astype(mean.dtype),
                running(var.astype(dt), batch_var.reshape(-1), momentum).astype(var.dtype)]

    @staticmethod
    def _np_param(p, rank):
        return p.reshape(p.shape + (1,) * (rank - 1 - p.ndim)) if rank >= 2 else p

    def compute(self, ctx, x, scale, bias, mean, var):
        acc = "float64" if "float64" in {t.dtype for t in ctx.in_types} else \
            accumulation_dtype(x.dtype)
        eps = ctx.attrs["epsilon"]
        name = ctx.name or self.name

        def param(p, i):
            if x.ndim < 2:
                return te.cast(p[0], acc)
            return te.cast(p[i[1:1 + p.ndim]], acc)

        if not ctx.attrs["training_mode"]:
            def fcompute(*i):
                y = batchnorm(te.sqrt, te.cast(x[i], acc), param(mean, i), param(var, i),
                              param(scale, i), param(bias, i), eps)
                return te.cast(y, x.dtype)

            return [te.compute(x.shape, fcompute, name=name)]

        axes = list(self.statistic_axes(x.ndim))
        batch_mean, batch_var = moments(lambda idx: te.cast(x[idx], acc), x.shape, axes,
                                        acc, name)

        def normalize(*i):
            k = kept(i, axes)
            y = batchnorm(te.sqrt, te.cast(x[i], acc), batch_mean[k], batch_var[k],
                          param(scale, i), param(bias, i), eps)
            return te.cast(y, x.dtype)

        def update(old, batch, what):
            def fcompute(c):
                at = tuple(c if d == 1 else 0 for d in range(x.ndim))
                return te.cast(running(te.cast(old[c], acc), batch[at],
                                       ctx.attrs["momentum"]), old.dtype)

            return te.compute(old.shape, fcompute, name=f"{name}_{what}")

        return [te.compute(x.shape, normalize, name=name),
                update(mean, batch_mean, "running_mean"),
                update(var, batch_var, "running_var")]


# -- InstanceNormalization / GroupNormalization -----------------------------------------
@register
class InstanceNormalization(OpDef):
    """``scale * (x - mean) / sqrt(var + epsilon) + B``, statistics per (n, c) over the
    spatial dimensions."""

    name = "InstanceNormalization"
    pattern = OPAQUE
    schedule = "reduction"
    attrs = {"epsilon": 1e-5}
    num_inputs = (3, 3)

    def infer(self, ctx):
        x = ctx.type(0)
        check_dtype(ctx, 0, FLOATS)
        if x.ndim < 3:
            raise ctx.error(f"input must have rank 3 or more (N x C x D1 ...), got {x}")
        for k, what in ((1, "scale"), (2, "B")):
            check_dtype(ctx, k, (x.dtype,))
            check_channel_param(ctx, k, x.shape[1], what)
        return [x]

    def reference(self, ctx, x, scale, bias):
        dt = np_compute_dtype(x.dtype)
        v = x.astype(dt)
        mean, var = np_moments(v, tuple(range(2, x.ndim)))
        ones = (1,) * (x.ndim - 2)
        y = scale.astype(dt).reshape(-1, *ones) * (v - mean) / np.sqrt(
            var + dt(ctx.attrs["epsilon"])) + bias.astype(dt).reshape(-1, *ones)
        return [y.astype(x.dtype)]

    def compute(self, ctx, x, scale, bias):
        name = ctx.name or self.name
        acc = accumulation_dtype(x.dtype)
        axes = list(range(2, x.ndim))
        mean, var = moments(lambda idx: te.cast(x[idx], acc), x.shape, axes, acc, name)
        eps = ctx.attrs["epsilon"]

        def fcompute(*i):
            k = kept(i, axes)
            norm = (te.cast(x[i], acc) - mean[k]) / te.sqrt(var[k] + eps)
            return te.cast(te.cast(scale[i[1]], acc) * norm + te.cast(bias[i[1]], acc),
                           x.dtype)

        return [te.compute(x.shape, fcompute, name=name)]


@register
class GroupNormalization(OpDef):
    """Opset 21: statistics per (n, group of C/num_groups channels), ``scale`` and
    ``bias`` per channel; stage one in ``stash_type``."""

    name = "GroupNormalization"
    pattern = OPAQUE
    attrs = {"num_groups": REQUIRED, "epsilon": 1e-5, "stash_type": 1}
    num_inputs = (3, 3)

    def infer(self, ctx):
        x = ctx.type(0)
        check_dtype(ctx, 0, FLOATS)
        stash_dtype(ctx)
        groups = ctx.attrs["num_groups"]
        if x.ndim < 2:
            raise ctx.error(f"input must have rank 2 or more (N x C x D1 ...), got {x}")
        if groups < 1 or x.shape[1] % groups:
            raise ctx.error(f"num_groups={groups} must be positive and divide the number of "
                            f"channels {x.shape[1]}")
        for k, what in ((1, "scale"), (2, "bias")):
            check_dtype(ctx, k, (x.dtype,))
            check_channel_param(ctx, k, x.shape[1], what)
        return [x]

    def reference(self, ctx, x, scale, bias):
        dt = np_compute_dtype(x.dtype, stash_dtype(ctx))
        n, c = x.shape[:2]
        g = ctx.attrs["num_groups"]
        grouped = x.astype(dt).reshape(n, g, -1)
        mean, var = np_moments(grouped, (2,))
        norm = ((grouped - mean) / np.sqrt(var + dt(ctx.attrs["epsilon"]))).reshape(x.shape)
        norm = norm.astype(x.dtype).astype(np_compute_dtype(x.dtype))
        ones = (1,) * (x.ndim - 2)
        y = scale.reshape(-1, *ones) * norm + bias.reshape(-1, *ones)
        return [y.astype(x.dtype)]

    def compute(self, ctx, x, scale, bias):
        name = ctx.name or self.name
        stash = accumulation_dtype(stash_dtype(ctx))
        acc = accumulation_dtype(x.dtype)
        groups = ctx.attrs["num_groups"]
        per_group = x.shape[1] // groups
        # X viewed as (N, G, C/G, D1, ...): statistics over the axes after G
        view = (x.shape[0], groups, per_group) + tuple(x.shape[2:])
        axes = list(range(2, len(view)))

        def value(idx):
            return te.cast(x[(idx[0], idx[1] * per_group + idx[2]) + tuple(idx[3:])], stash)

        mean, var = moments(value, view, axes, stash, name)
        eps = ctx.attrs["epsilon"]

        def fcompute(*i):
            k = (i[0], i[1] // per_group) + (0,) * len(axes)
            norm = (te.cast(x[i], stash) - mean[k]) / te.sqrt(var[k] + eps)
            norm = te.cast(te.cast(norm, x.dtype), acc)
            return te.cast(te.cast(scale[i[1]], acc) * norm + te.cast(bias[i[1]], acc),
                           x.dtype)

        return [te.compute(x.shape, fcompute, name=name)]


# -- LayerNormalization / RMSNormalization ----------------------------------------------
@register
class LayerNormalization(OpDef):
    """Standardize over the axes ``axis .. rank-1`` (stage one in ``stash_type``), then
    ``* Scale + B`` (broadcast to X). Optional outputs: Mean and InvStdDev, of shape
    ``X.shape[:axis] + [1] * (rank - axis)`` and dtype ``stash_type``."""

    name = "LayerNormalization"
    pattern = OPAQUE
    schedule = "reduction"
    attrs = {"axis": -1, "epsilon": 1e-5, "stash_type": 1}
    num_inputs = (2, 3)
    num_outputs = (1, 3)

    def infer(self, ctx):
        x = ctx.type(0)
        check_dtype(ctx, 0, FLOATS)
        stash = stash_dtype(ctx)
        axis = normalize_axis(ctx, ctx.attrs["axis"], x.ndim)
        for k in (1, 2):
            if ctx.has_input(k):
                check_dtype(ctx, k, (x.dtype,))
                check_unidirectional(ctx, k, x.shape)
        stats = out_type(x.shape[:axis] + (1,) * (x.ndim - axis), stash)
        return [x, stats, stats]

    def reference(self, ctx, x, scale, bias=None):
        axis = normalize_axis(ctx, ctx.attrs["axis"], x.ndim)
        stash = stash_dtype(ctx)
        dt = np_compute_dtype(stash)
        v = x.astype(dt)
        mean, var = np_moments(v, tuple(range(axis, x.ndim)))
        inv = 1 / np.sqrt(var + dt(ctx.attrs["epsilon"]))
        acc = np_compute_dtype(x.dtype)
        norm = ((v - mean) * inv).astype(x.dtype).astype(acc)
        y = norm * scale.astype(acc) + (bias.astype(acc) if bias is not None else 0)
        st = dtypes.to_numpy(stash)
        return [y.astype(x.dtype), mean.astype(st), inv.astype(st)]

    def compute(self, ctx, x, scale, bias=None):
        name = ctx.name or self.name
        axis = normalize_axis(ctx, ctx.attrs["axis"], x.ndim)
        stash_out = stash_dtype(ctx)
        stash = accumulation_dtype(stash_out)
        acc = accumulation_dtype(x.dtype)
        axes = list(range(axis, x.ndim))
        mean, var = moments(lambda idx: te.cast(x[idx], stash), x.shape, axes, stash, name)
        eps = ctx.attrs["epsilon"]
        inv = te.compute(var.shape, lambda *i: 1 / te.sqrt(var[i] + eps), name=f"{name}_inv")

        def fcompute(*i):
            k = kept(i, axes)
            norm = te.cast(te.cast((te.cast(x[i], stash) - mean[k]) * inv[k], x.dtype), acc)
            y = norm * te.cast(broadcast_read(scale, i), acc)
            if bias is not None:
                y = y + te.cast(broadcast_read(bias, i), acc)
            return te.cast(y, x.dtype)

        y = te.compute(x.shape, fcompute, name=name)
        mean_out = te.compute(mean.shape, lambda *i: te.cast(mean[i], stash_out),
                              name=f"{name}_Mean")
        inv_out = te.compute(inv.shape, lambda *i: te.cast(inv[i], stash_out),
                             name=f"{name}_InvStdDev")
        return [y, mean_out, inv_out]


@register
class RMSNormalization(OpDef):
    """``X / sqrt(mean(X^2 over axis..rank-1) + epsilon)`` (in ``stash_type``), rounded
    to X's dtype, then ``* scale``; the output has scale's dtype."""

    name = "RMSNormalization"
    pattern = OPAQUE
    schedule = "reduction"
    attrs = {"axis": -1, "epsilon": 1e-5, "stash_type": 1}
    num_inputs = (2, 2)

    def infer(self, ctx):
        x = ctx.type(0)
        check_dtype(ctx, 0, FLOATS)
        check_dtype(ctx, 1, FLOATS)
        stash_dtype(ctx)
        normalize_axis(ctx, ctx.attrs["axis"], x.ndim)
        check_unidirectional(ctx, 1, x.shape)
        return [out_type(x.shape, ctx.type(1).dtype)]

    def reference(self, ctx, x, scale):
        axis = normalize_axis(ctx, ctx.attrs["axis"], x.ndim)
        dt = np_compute_dtype(stash_dtype(ctx))
        v = x.astype(dt)
        ms = np.mean(v * v, axis=tuple(range(axis, x.ndim)), keepdims=True)
        norm = (v / np.sqrt(ms + dt(ctx.attrs["epsilon"]))).astype(x.dtype)
        acc = np_compute_dtype(x.dtype, scale.dtype)
        return [(norm.astype(acc) * scale.astype(acc)).astype(scale.dtype)]

    def compute(self, ctx, x, scale):
        name = ctx.name or self.name
        axis = normalize_axis(ctx, ctx.attrs["axis"], x.ndim)
        stash = accumulation_dtype(stash_dtype(ctx))
        out = ctx.out_types[0].dtype
        acc = "float64" if "float64" in (x.dtype, out) else "float32"
        axes = list(range(axis, x.ndim))
        count = math.prod(x.shape[a] for a in axes)

        def square(idx):
            v = te.cast(x[idx], stash)
            return te.cast(v * v, sum_dtype(stash))

        total = reduce_compute(x.shape, axes, square, "sum", name=f"{name}_sum")
        eps = ctx.attrs["epsilon"]
        rms = te.compute(total.shape,
                         lambda *i: te.sqrt(te.cast(total[i] / count, stash) + eps),
                         name=f"{name}_rms")

        def fcompute(*i):
            norm = te.cast(te.cast(te.cast(x[i], stash) / rms[kept(i, axes)], x.dtype), acc)
            return te.cast(norm * te.cast(broadcast_read(scale, i), acc), out)

        return [te.compute(x.shape, fcompute, name=name)]


# -- LRN, LpNormalization, MeanVarianceNormalization ------------------------------------
@register
class LRN(OpDef):
    """``x / (bias + alpha / size * sum of x^2 over nearby channels) ^ beta``, the
    channels ``c - floor((size-1)/2) .. c + ceil((size-1)/2)`` (clipped)."""

    name = "LRN"
    pattern = OPAQUE
    attrs = {"size": REQUIRED, "alpha": 1e-4, "beta": 0.75, "bias": 1.0}

    def infer(self, ctx):
        x = ctx.type(0)
        check_dtype(ctx, 0, FLOATS)
        if x.ndim < 2:
            raise ctx.error(f"input must have rank 2 or more (N x C x D1 ...), got {x}")
        if ctx.attrs["size"] < 1:
            raise ctx.error(f"size={ctx.attrs['size']} must be positive")
        return [x]

    def window(self, ctx):
        size = ctx.attrs["size"]
        return (size - 1) // 2, -(-(size - 1) // 2)

    def reference(self, ctx, x):
        dt = np_compute_dtype(x.dtype)
        v = x.astype(dt)
        before, after = self.window(ctx)
        channels = x.shape[1]
        square_sum = np.zeros_like(v)
        for c in range(channels):
            lo, hi = max(0, c - before), min(channels, c + after + 1)
            square_sum[:, c] = np.sum(v[:, lo:hi] ** 2, axis=1)
        a = ctx.attrs
        base = dt(a["bias"]) + dt(a["alpha"]) / dt(a["size"]) * square_sum
        return [(v / base ** dt(a["beta"])).astype(x.dtype)]

    def compute(self, ctx, x):
        name = ctx.name or self.name
        acc = accumulation_dtype(x.dtype)
        before, after = self.window(ctx)
        channels = x.shape[1]
        k = te.reduce_axis(before + after + 1, "k")

        def square_sum(*i):
            c = i[1] + k - before
            inside = te.all(c >= 0, c < channels)
            read = te.if_then_else(inside, te.cast(x[(i[0], c) + i[2:]], acc),
                                   te.const(0, acc))
            return te.sum(read * read, axis=k, where=inside)

        total = te.compute(x.shape, square_sum, name=f"{name}_sum")
        a = ctx.attrs
        coef = te.const(a["alpha"], acc) / te.const(float(a["size"]), acc)

        def fcompute(*i):
            base = te.const(a["bias"], acc) + coef * total[i]
            return te.cast(te.cast(x[i], acc) / te.pow(base, te.const(a["beta"], acc)),
                           x.dtype)

        return [te.compute(x.shape, fcompute, name=name)]


@register
class LpNormalization(OpDef):
    """``x / ||x||_p`` along ``axis`` (p = 1 or 2); 0 where the norm is 0."""

    name = "LpNormalization"
    pattern = OPAQUE
    schedule = "reduction"
    attrs = {"axis": -1, "p": 2}

    def infer(self, ctx):
        x = ctx.type(0)
        check_dtype(ctx, 0, FLOATS)
        normalize_axis(ctx, ctx.attrs["axis"], x.ndim)
        if ctx.attrs["p"] not in (1, 2):
            raise ctx.error(f"p={ctx.attrs['p']} is not supported; p must be 1 or 2")
        return [x]

    def reference(self, ctx, x):
        axis = normalize_axis(ctx, ctx.attrs["axis"], x.ndim)
        v = x.astype(np_compute_dtype(x.dtype))
        if ctx.attrs["p"] == 1:
            norm = np.sum(np.abs(v), axis=axis, keepdims=True)
        else:
            norm = np.sqrt(np.sum(v * v, axis=axis, keepdims=True))
        return [np.where(norm == 0, 0, v / np.where(norm == 0, 1, norm)).astype(x.dtype)]

    def compute(self, ctx, x):
        name = ctx.name or self.name
        axis = normalize_axis(ctx, ctx.attrs["axis"], x.ndim)
        acc = accumulation_dtype(x.dtype)
        p = ctx.attrs["p"]

        def term(idx):
            v = te.cast(x[idx], acc)
            return te.cast(te.abs(v) if p == 1 else v * v, sum_dtype(acc))

        total = reduce_compute(x.shape, [axis], term, "sum", name=f"{name}_sum")

        def fcompute(*i):
            s = te.cast(total[kept(i, [axis])], acc)
            norm = s if p == 1 else te.sqrt(s)
            zero = te.const(0, acc)
            return te.cast(te.if_then_else(norm == zero, zero, te.cast(x[i], acc) / norm),
                           x.dtype)

        return [te.compute(x.shape, fcompute, name=name)]


@register
class MeanVarianceNormalization(OpDef):
    """``(X - mean) / (sqrt(variance) + 1e-9)`` over ``axes`` (the spec computes the
    variance as E[X^2] - E[X]^2; it is computed here as the mean squared deviation, the
    same value without the cancellation that can make it negative)."""

    name = "MeanVarianceNormalization"
    pattern = OPAQUE
    attrs = {"axes": [0, 2, 3]}

    def axes(self, ctx):
        return sorted(normalize_axes(ctx, ctx.attrs["axes"], ctx.type(0).ndim))

    def infer(self, ctx):
        check_dtype(ctx, 0, FLOATS)
        self.axes(ctx)
        return [ctx.type(0)]

    def reference(self, ctx, x):
        v = x.astype(np_compute_dtype(x.dtype))
        mean, var = np_moments(v, tuple(self.axes(ctx)))
        return [((v - mean) / (np.sqrt(var) + 1e-9)).astype(x.dtype)]

    def compute(self, ctx, x):
        name = ctx.name or self.name
        axes = self.axes(ctx)
        acc = accumulation_dtype(x.dtype)
        mean, var = moments(lambda idx: te.cast(x[idx], acc), x.shape, axes, acc, name)

        def fcompute(*i):
            k = kept(i, axes)
            return te.cast((te.cast(x[i], acc) - mean[k]) / (te.sqrt(var[k]) + 1e-9), x.dtype)

        return [te.compute(x.shape, fcompute, name=name)]
