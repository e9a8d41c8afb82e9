"""Reductions, ArgMax/ArgMin, cumulative ops."""
