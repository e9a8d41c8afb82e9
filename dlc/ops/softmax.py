"""Softmax, LogSoftmax, Hardmax."""
