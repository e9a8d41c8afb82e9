"""Convolutions: Conv, ConvTranspose, ConvInteger, DeformConv."""
