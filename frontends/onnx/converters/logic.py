"""Comparison, logical and bitwise operators."""
