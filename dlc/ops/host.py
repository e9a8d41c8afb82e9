"""Operators whose output shape depends on input values, run with NumPy at run time (NonZero, Unique, Compress, NonMaxSuppression)."""
