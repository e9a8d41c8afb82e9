"""Operators without a family of their own: Det (opset 11; 22 adds bfloat16)."""

from dlc.frontends.onnx.registry import passthrough

passthrough("Det", since=11)
