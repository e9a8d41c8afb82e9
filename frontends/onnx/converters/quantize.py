"""Quantization operators."""
