"""Gather/Scatter family and OneHot."""
