"""Neural-network operators: convolution, pooling, matrix products, attention,
normalization, softmax and losses."""

from dlc.errors import ModelError, UnsupportedOpError
from dlc.frontends.onnx.registry import converter, passthrough

# == convolution, pooling, matrix products, attention (dlc/ops/conv.py, pooling.py,
# matmul.py, attention.py) =====================================================================
# Opset 22 only widened the types (bfloat16) of most of these ops.

passthrough("Conv", since=1)
passthrough("ConvInteger", since=10)
passthrough("QLinearConv", since=10)
passthrough("DeformConv", since=19)
passthrough("ConvTranspose", since=11)


@converter("ConvTranspose", since=1)
def conv_transpose_v1(cx, node):
    """Opsets 1-10 split ``total_padding`` the other way round when ``output_shape`` is
    given (or auto_pad is SAME): the extra pixel goes first only for SAME_UPPER. The same
    split is written with today's auto_pad values."""
    attrs = cx.attributes(node, "ConvTranspose")
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if attrs.get("output_shape") or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        attrs["auto_pad"] = "SAME_LOWER" if auto_pad == "SAME_UPPER" else "SAME_UPPER"
        if not attrs.get("output_shape"):
            x = cx.type_of(node.input[0])
            if x is None:
                raise UnsupportedOpError(f"ConvTranspose node {node.name!r} (opset "
                                         f"{cx.opset}): auto_pad={auto_pad} needs the input "
                                         "shape at import time")
            strides = attrs.get("strides") or [1] * (len(x.shape) - 2)
            attrs["output_shape"] = [s * k for s, k in zip(x.shape[2:], strides)]
        attrs.pop("pads", None)
    cx.emit("ConvTranspose", node.input, node.output, attrs)


# Pooling: later versions only added attributes whose defaults give the earlier behaviour
# (storage_order/Indices 8, ceil_mode/dilations 10, count_include_pad 7).
for _op in ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "MaxRoiPool"):
    passthrough(_op, since=1)
passthrough("LpPool", since=2)
passthrough("GlobalLpPool", since=2)
passthrough("MaxUnpool", since=9)


def _lp_pool_v1(cx, node):
    """Opset 1: ``p`` was a float attribute."""
    attrs = cx.attributes(node, node.op_type)
    p = float(attrs.get("p", 2.0))
    if p != int(p) or p < 1:
        raise UnsupportedOpError(f"{node.op_type} node {node.name!r}: p={p} (only positive "
                                 "integer p is supported)")
    attrs["p"] = int(p)
    cx.emit(node.op_type, node.input, node.output, attrs)


converter("LpPool", since=1)(_lp_pool_v1)
converter("GlobalLpPool", since=1)(_lp_pool_v1)

# Matrix products.
passthrough("MatMul", since=1)
passthrough("MatMulInteger", since=10)
passthrough("QLinearMatMul", since=10)
passthrough("Einsum", since=12)
passthrough("Gemm", since=7)


@converter("Gemm", since=1)
def gemm_v1(cx, node):
    """Opsets 1-6: ``broadcast=0`` asked for C of exactly the output's shape."""
    attrs = cx.attributes(node)
    broadcast = attrs.pop("broadcast", 0)
    a, b = cx.type_of(node.input[0]), cx.type_of(node.input[1])
    c = cx.type_of(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if not broadcast and a is not None and b is not None and c is not None:
        m = a.shape[1] if attrs.get("transA") else a.shape[0]
        n = b.shape[0] if attrs.get("transB") else b.shape[1]
        if tuple(c.shape) != (m, n):
            raise ModelError(f"Gemm node {node.name!r}: C has shape {list(c.shape)} but "
                             f"broadcast=0 needs [{m}, {n}]")
    cx.emit("Gemm", node.input, node.output,
            {k: v for k, v in attrs.items() if k in ("alpha", "beta", "transA", "transB")})


# Attention: opset 24 added nonpad_kv_seqlen, 25 the sliding window; their defaults give the
# earlier behaviour (the causal offset rule is an in-place errata of all three).
@converter("Attention", since=23)
def attention_v23(cx, node):
    from dlc.frontends.onnx.types import dlc_dtype

    attrs = cx.attributes(node, "Attention")
    precision = int(attrs.get("softmax_precision", 0) or 0)
    attrs["softmax_precision"] = dlc_dtype(precision, f"softmax_precision of {node.name!r}") \
        if precision else ""
    cx.emit("Attention", node.input, node.output, attrs)


passthrough("RotaryEmbedding", since=23)


# =========================================================================================
# Softmax, normalization and loss operators (dlc/ops/softmax.py, normalization.py,
# loss.py); this block keeps its own imports so the sections above can change freely.
# =========================================================================================
import math as _math  # noqa: E402

import numpy as _np  # noqa: E402

from dlc.errors import ModelError as _ModelError  # noqa: E402
from dlc.errors import UnsupportedOpError as _UnsupportedOpError  # noqa: E402
from dlc.frontends.onnx.registry import converter as _converter  # noqa: E402
from dlc.frontends.onnx.registry import passthrough as _passthrough  # noqa: E402


def _coerced_to_2d(op: str):
    """Softmax/LogSoftmax/Hardmax before opset 13: the input is coerced to 2-D
    ``[prod(shape[:axis]), prod(shape[axis:])]`` and the op applies along dimension 1."""

    def convert(cx, node):
        axis = cx.attributes(node)["axis"]
        x = node.input[0]
        t = cx.type_of(x)
        if t is None:  # shape known only at run time: Flatten, op, Reshape back
            flat, mid, shape = (cx.fresh(f"{x}_{s}") for s in ("2d", op, "shape"))
            cx.emit("Flatten", [x], [flat], {"axis": axis})
            cx.emit(op, [flat], [mid], {"axis": 1})
            cx.emit("Shape", [x], [shape], {})
            cx.emit("Reshape", [mid, shape], node.output, {})
            return
        rank = t.ndim
        if not -rank <= axis < max(rank, 1):
            raise _ModelError(f"{op} node {node.name!r}: axis={axis} is out of range for "
                              f"an input of rank {rank}")
        axis = axis + rank if axis < 0 else axis
        wide = [d for d in range(axis, rank) if t.shape[d] != 1]
        if len(wide) <= 1 or t.size == 0:  # the 2-D rows are slices along one axis
            cx.emit(op, [x], node.output, {"axis": wide[0] if wide else rank - 1})
            return
        rows = _math.prod(t.shape[:axis])
        flat, mid = cx.fresh(f"{x}_2d"), cx.fresh(f"{x}_{op}")
        cx.emit("Reshape", [x, cx.constant(_np.array([rows, -1], _np.int64))], [flat], {})
        cx.emit(op, [flat], [mid], {"axis": 1})
        cx.emit("Reshape", [mid, cx.constant(_np.array(t.shape, _np.int64))], node.output, {})

    convert.__name__ = f"convert_{op}_2d"
    return convert


for _op in ("Softmax", "LogSoftmax", "Hardmax"):
    _converter(_op, since=1)(_coerced_to_2d(_op))
    _passthrough(_op, since=13)


# BatchNormalization. Training mode (normalize with the batch statistics, output the
# running mean and variance) is selected by is_test=0 in opsets 1-6, by asking for more
# outputs than Y in opsets 7-13 and by training_mode in opset 14+ (where extra outputs are
# invalid without it). The running statistics are computed as opset 14 defines them (the
# population variance) in every opset, as onnxruntime does. No opset defines the outputs
# saved_mean and saved_var of opsets 1-13 (onnxruntime gives the batch mean and
# 1 / sqrt(var + epsilon)), so they are refused. Before opset 9, spatial=0 gives
# per-activation parameters of shape (C, D1, ...), which the dlc op accepts as is in
# inference; the opset 6 and 7 texts contradict each other on which statistics spatial=0
# computes in training, so that is refused too.
def _batchnorm(cx, node, attrs: dict, training: bool) -> None:
    where = f"BatchNormalization node {node.name!r} (opset {cx.opset})"
    extra = [k for k, name in enumerate(node.output) if k and name]
    if not training and extra:
        raise _ModelError(f"{where} asks for output {extra[0]} in inference mode; only "
                          "training mode has outputs besides Y")
    if any(k >= 3 for k in extra):
        raise _UnsupportedOpError(f"{where}: the outputs saved_mean and saved_var are not "
                                  "defined by the ONNX spec and are not supported; drop them "
                                  "(outputs 1 and 2, the running mean and variance, are)")
    if training and not attrs.get("spatial", 1):
        raise _UnsupportedOpError(f"{where}: training with spatial=0 is not supported (the "
                                  "spec does not define its statistics consistently)")
    cx.emit("BatchNormalization", node.input, node.output[:3 if training else 1],
            {"epsilon": attrs["epsilon"], "momentum": attrs["momentum"],
             "training_mode": int(training)})


@_converter("BatchNormalization", since=1)
def convert_batchnorm_v1(cx, node):
    attrs = cx.attributes(node)
    _batchnorm(cx, node, attrs, training=not attrs.get("is_test", 0))


@_converter("BatchNormalization", since=7)
def convert_batchnorm_v7(cx, node):
    _batchnorm(cx, node, cx.attributes(node), training=any(node.output[1:]))


@_converter("BatchNormalization", since=14)
def convert_batchnorm_v14(cx, node):
    attrs = cx.attributes(node)
    _batchnorm(cx, node, attrs, training=bool(attrs["training_mode"]))


@_converter("InstanceNormalization", since=1)
def convert_instancenorm_v1(cx, node):
    attrs = cx.attributes(node)
    attrs.pop("consumed_inputs", None)  # a legacy optimization hint
    cx.emit("InstanceNormalization", node.input, node.output, attrs)


_passthrough("InstanceNormalization", since=6)
_passthrough("LayerNormalization", since=17)


@_converter("GroupNormalization", since=18)
def convert_groupnorm_v18(cx, node):
    """Opset 18: scale and bias have one value per group; repeat them per channel.
    Without stash_type, stage one ran in X's type (float64 stays float64)."""
    attrs = cx.attributes(node)
    x, scale, bias = node.input
    t = cx.type_of(x)
    if t is None or t.ndim < 2:
        raise _UnsupportedOpError(f"GroupNormalization node {node.name!r} (opset 18): the "
                                  "input shape must be known when the model is imported")
    groups = attrs["num_groups"]
    if groups < 1 or t.shape[1] % groups:
        raise _ModelError(f"GroupNormalization node {node.name!r}: num_groups={groups} must "
                          f"be positive and divide the number of channels {t.shape[1]}")
    index = _np.repeat(_np.arange(groups, dtype=_np.int64), t.shape[1] // groups)
    per_channel = []
    for name in (scale, bias):
        p = cx.type_of(name)
        if p is not None and p.shape != (groups,):
            raise _ModelError(f"GroupNormalization node {node.name!r} (opset 18): scale and "
                              f"bias must have shape [{groups}] (one value per group), got "
                              f"{list(p.shape)}")
        if name in cx.graph.constants:
            per_channel.append(cx.constant(cx.graph.constants[name][index], f"{name}_c"))
        else:
            out = cx.fresh(f"{name}_per_channel")
            cx.emit("Gather", [name, cx.constant(index, "group_of_channel")], [out],
                    {"axis": 0})
            per_channel.append(out)
    attrs["stash_type"] = 11 if t.dtype == "float64" else 1
    cx.emit("GroupNormalization", [x] + per_channel, node.output, attrs)


_passthrough("GroupNormalization", since=21)
_passthrough("RMSNormalization", since=23)
_passthrough("LRN", since=1)
_passthrough("LpNormalization", since=1)
_passthrough("MeanVarianceNormalization", since=9)
_passthrough("NegativeLogLikelihoodLoss", since=12)
_passthrough("SoftmaxCrossEntropyLoss", since=12)
