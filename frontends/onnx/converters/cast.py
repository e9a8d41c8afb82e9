"""Casts between dtypes."""
