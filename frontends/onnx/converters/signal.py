"""Signal processing operators."""
