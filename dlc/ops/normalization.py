"""Normalization operators (batch, layer, instance, group, RMS, LRN, Lp)."""
