"""Elementwise math and activations.

Opsets before 6 or 7 (``consumed_inputs``, the ``broadcast``/``axis`` attributes of binary
ops) are out of scope; each op registers from its first version with today's semantics.
"""

from __future__ import annotations

import numpy as np

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

