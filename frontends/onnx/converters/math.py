"""Elementwise math and activations.

Each op registers from the first version with today's semantics; the older versions are
converted by the legacy converters at the end: ``consumed_inputs`` (opset 1, an
in-place hint) is dropped, and binary ops before opset 7 broadcast only ``B`` to ``A``
when ``broadcast=1``, aligned at ``axis`` (suffix matching when it is not set).
"""

from __future__ import annotations

import numpy as np

from dlc.errors import ModelError, UnsupportedOpError
from dlc.frontends.onnx.registry import converter, passthrough

_SINCE = {
    # binary arithmetic: multidirectional broadcasting since 7
    "Add": 7, "Sub": 7, "Mul": 7, "Div": 7, "Pow": 7, "Mod": 10,
    # unary math (opset 6 dropped consumed_inputs)
    "Neg": 6, "Abs": 6, "Reciprocal": 6, "Sqrt": 6, "Exp": 6, "Log": 6, "Floor": 6,
    "Ceil": 6, "Round": 11, "Sign": 9, "Erf": 9, "Sin": 7, "Cos": 7, "Tan": 7, "Asin": 7,
    "Acos": 7, "Atan": 7, "Sinh": 9, "Cosh": 9, "Asinh": 9, "Acosh": 9, "Atanh": 9,
    # variadic (broadcasting since 8; opset 6-7 needed equal shapes, a special case)
    "Max": 6, "Min": 6, "Sum": 6, "Mean": 6,
    # activations
    "Relu": 6, "LeakyRelu": 6, "PRelu": 7, "Elu": 6, "Selu": 6, "Celu": 12, "Sigmoid": 6,
    "HardSigmoid": 6, "Tanh": 6, "Softplus": 1, "Softsign": 1, "HardSwish": 14, "Mish": 18,
    "Gelu": 20, "ThresholdedRelu": 10, "Shrink": 9, "Swish": 24, "SwiGLU": 28,
    "Clip": 11,
}
for _op, _since in _SINCE.items():
    passthrough(_op, since=_since)


@converter("Clip", since=6)
def clip_v6(cx, node):
    """Opsets 6-10: the bounds are float attributes (defaults: the float32 limits)."""
    attrs = cx.attributes(node)
    x = node.input[0]
    bounds = [_like(cx, np.array(attrs[key], np.float32), x, key) for key in ("min", "max")]
    cx.emit("Clip", [x] + bounds, node.output)


def _like(cx, array, like: str, base: str) -> str:
    """A constant with the dtype of tensor ``like`` (CastLike when it is not known yet)."""
    t = cx.type_of(like)
    if t is not None:
        from dlc import dtypes

        with np.errstate(over="ignore"):  # float32 limits become infinities in float16
            return cx.constant(array.astype(dtypes.to_numpy(t.dtype)), base)
    const = cx.constant(array, base)
    out = cx.fresh(base)
    cx.emit("CastLike", [const, like], [out])
    return out



# -- opsets before 6 and 7 --------------------------------------------------------------
#: ops whose first version only differs by ``consumed_inputs`` (replaced in opset 6)
_CONSUMED_INPUTS = ("Neg", "Abs", "Reciprocal", "Sqrt", "Exp", "Log", "Floor", "Ceil",
                    "Relu", "LeakyRelu", "Elu", "Selu", "Sigmoid", "HardSigmoid", "Tanh",
                    "Max", "Min", "Sum", "Mean")


def _drop_consumed_inputs(op: str):
    def convert(cx, node):
        attrs = cx.attributes(node)
        attrs.pop("consumed_inputs", None)
        cx.emit(op, node.input, node.output, attrs)

    convert.__name__ = f"convert_{op}_1"
    return convert


for _op in _CONSUMED_INPUTS:
    converter(_op, since=1)(_drop_consumed_inputs(_op))


def legacy_binary(op: str):
    """Binary ops before opset 7: ``broadcast=1`` broadcasts B to A's shape, B's dims
    aligned with A's starting at ``axis`` (suffix matching when ``axis`` is not set);
    ``broadcast=0`` needs equal shapes. B is reshaped with trailing 1s so that NumPy
    broadcasting gives the same result."""

    def convert(cx, node):
        attrs = cx.attributes(node)
        a, b = node.input[0], node.input[1]
        ta, tb = cx.type_of(a), cx.type_of(b)
        if not attrs.get("broadcast", 0):
            if ta is not None and tb is not None and ta.shape != tb.shape:
                raise ModelError(f"{op} node {node.name!r} (opset {cx.opset}): broadcast=0 "
                                 f"needs inputs of one shape, got {list(ta.shape)} and "
                                 f"{list(tb.shape)}")
        elif "axis" in attrs:
            if ta is None or tb is None:
                raise UnsupportedOpError(f"{op} node {node.name!r} (opset {cx.opset}): "
                                         "broadcast with axis needs the input shapes when "
                                         "the model is imported")
            axis = attrs["axis"] + ta.ndim if attrs["axis"] < 0 else attrs["axis"]
            if not 0 <= axis <= ta.ndim - tb.ndim:
                raise ModelError(f"{op} node {node.name!r}: axis={attrs['axis']} does not "
                                 f"place B of shape {list(tb.shape)} inside A of shape "
                                 f"{list(ta.shape)}")
            trailing = ta.ndim - axis - tb.ndim
            if trailing:
                shape = cx.constant(np.array(list(tb.shape) + [1] * trailing, np.int64),
                                    "shape")
                aligned = cx.fresh(f"{b}_aligned")
                cx.emit("Reshape", [b, shape], [aligned])
                b = aligned
        cx.emit(op, [a, b], node.output)

    convert.__name__ = f"convert_{op}_legacy"
    return convert


for _op in ("Add", "Sub", "Mul", "Div"):
    converter(_op, since=1)(legacy_binary(_op))
converter("Pow", since=1)(legacy_binary("Pow"))


@converter("Clip", since=1)
def clip_v1(cx, node):
    """Opset 1: optional float bounds (absent: unbounded)."""
    attrs = cx.attributes(node)
    x = node.input[0]
    bounds = [_like(cx, np.array(attrs.get(key, default), np.float32), x, key)
              for key, default in (("min", -np.inf), ("max", np.inf))]
    cx.emit("Clip", [x] + bounds, node.output)


@converter("PRelu", since=1)
def prelu_v1(cx, node):
    """Opsets 1-6: a slope of one value per channel (shape [C] for X of shape
    [N, C, ...]) applies along axis 1; opset 7 broadcasts it like NumPy instead."""
    x, slope = node.input[0], node.input[1]
    tx, ts = cx.type_of(x), cx.type_of(slope)
    if tx is not None and ts is not None and ts.ndim == 1 and tx.ndim > 2 and \
            ts.shape[0] == tx.shape[1] and ts.shape[0] != 1:
        shape = cx.constant(np.array([ts.shape[0]] + [1] * (tx.ndim - 2), np.int64), "shape")
        aligned = cx.fresh(f"{slope}_per_channel")
        cx.emit("Reshape", [slope, shape], [aligned])
        slope = aligned
    cx.emit("PRelu", [x, slope], node.output)
