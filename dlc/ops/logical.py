"""Comparison, logical and bitwise operators, Where, IsNaN/IsInf."""
