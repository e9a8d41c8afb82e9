"""Comparison, logical and bitwise operators."""

from dlc.frontends.onnx.converters.math import legacy_binary
from dlc.frontends.onnx.registry import converter, passthrough

_SINCE = {
    # broadcasting since 7 (opset 1 had the broadcast/axis attributes)
    "Equal": 7, "Less": 7, "Greater": 7, "And": 7, "Or": 7, "Xor": 7, "Not": 1,
    "LessOrEqual": 12, "GreaterOrEqual": 12,
    "BitwiseAnd": 18, "BitwiseOr": 18, "BitwiseXor": 18, "BitwiseNot": 18,
    # opset 11 allowed only unsigned dtypes; 28 added signed ones and defined shifts by
    # negative or too large amounts (which 11 left undefined): one semantics for both
    "BitShift": 11,
    "Where": 9, "IsNaN": 9, "IsInf": 10,
}
for _op, _since in _SINCE.items():
    passthrough(_op, since=_since)

# opset 1: the broadcast/axis attributes (see legacy_binary)
for _op in ("Equal", "Less", "Greater", "And", "Or", "Xor"):
    converter(_op, since=1)(legacy_binary(_op))
