"""Pooling: MaxPool, AveragePool, LpPool, global pools, MaxUnpool."""
