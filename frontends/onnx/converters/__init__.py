"""ONNX converters, grouped like the operator sections of the ONNX spec."""

from dlc.frontends.onnx.converters import (  # noqa: F401
    math, logic, cast, reduction, nn, image, tensor, quantize, rnn, control, signal, misc,
)
