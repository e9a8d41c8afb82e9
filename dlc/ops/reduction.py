"""Reductions (ReduceSum, ..., ArgMax, ArgMin) and cumulative ops."""
