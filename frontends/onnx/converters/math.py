"""Elementwise math and activations."""

from dlc.frontends.onnx.registry import passthrough

for _op in ("Add", "Sub", "Mul"):
    passthrough(_op, since=7)
passthrough("Relu", since=6)
passthrough("Exp", since=6)
