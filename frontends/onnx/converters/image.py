"""Resize and image/geometry operators."""
