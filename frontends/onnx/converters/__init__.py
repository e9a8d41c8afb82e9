"""ONNX converters, grouped like the operator sections of the ONNX spec."""

from dlc.frontends.onnx.converters import (  # noqa: F401
    cast,
    control,
    image,
    logic,
    math,
    misc,
    ml,
    nn,
    quantize,
    reduction,
    rnn,
    signal,
    tensor,
)
