"""Quantization: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QLinear ops."""
