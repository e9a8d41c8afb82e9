"""Resize, Upsample, GridSample, AffineGrid, RoiAlign, Col2Im and crops."""
